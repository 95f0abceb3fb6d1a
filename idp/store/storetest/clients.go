package storetest

import (
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

func testCreateGetClient(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := newClient("client-1")
	must(t, s.CreateClient(ctx, c))
	got, err := s.GetClient(ctx, c.ID)
	must(t, err)
	equal(t, got, c, "GetClient")

	// A public client: nil and empty slices both come back nil.
	p := store.Client{
		ID: "client-public", Name: "Mobile", Public: true,
		RedirectURIs: []string{"com.example.app:/cb"}, PostLogoutURIs: []string{}, GrantTypes: nil,
		Scopes: []string{"openid"}, AuthMethod: "none", PKCERequired: true, TokenFormat: "opaque",
		IDTokenAlg: "RS256", AccessTokenTTL: 90 * time.Second, CreatedAt: t0,
	}
	must(t, s.CreateClient(ctx, p))
	got, err = s.GetClient(ctx, p.ID)
	must(t, err)
	p.PostLogoutURIs = nil
	equal(t, got, p, "GetClient public")

	wantErr(t, s.CreateClient(ctx, newClient("client-1")), store.ErrConflict, "CreateClient duplicate")
	_, err = s.GetClient(ctx, "client-unknown")
	wantErr(t, err, store.ErrNotFound, "GetClient unknown")
}

func testListClients(t *testing.T, s store.Store) {
	ctx := t.Context()
	none, err := s.ListClients(ctx)
	must(t, err)
	equal(t, len(none), 0, "ListClients empty")

	for _, id := range []string{"emr", "Lab", "billing", "lab-2"} {
		must(t, s.CreateClient(ctx, newClient(id)))
	}
	all, err := s.ListClients(ctx)
	must(t, err)
	equal(t, ids(all, clientID), []string{"Lab", "billing", "emr", "lab-2"}, "ListClients by ID, byte-wise")
	equal(t, all[2], newClient("emr"), "listed client")
}

func testUpdateClient(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := newClient("client-1")
	must(t, s.CreateClient(ctx, c))

	upd := store.Client{
		ID: c.ID, Name: "Renamed", SecretHash: "", Public: true,
		RedirectURIs: []string{"https://new.example.org/cb"}, PostLogoutURIs: nil,
		GrantTypes: []string{"client_credentials"}, Scopes: nil, AuthMethod: "none",
		PKCERequired: false, TokenFormat: "opaque", IDTokenAlg: "RS256",
		AccessTokenTTL: time.Minute, IDTokenTTL: 0, RefreshTokenTTL: 1500 * time.Millisecond,
		BackchannelURI: "",
		CreatedAt:      at(time.Hour), // ignored
		UpdatedAt:      at(2 * time.Hour),
	}
	must(t, s.UpdateClient(ctx, upd))
	want := upd
	want.CreatedAt = c.CreatedAt
	got, err := s.GetClient(ctx, c.ID)
	must(t, err)
	equal(t, got, want, "GetClient after UpdateClient")

	wantErr(t, s.UpdateClient(ctx, newClient("client-unknown")), store.ErrNotFound, "UpdateClient unknown")
}

func testDeleteClient(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	must(t, s.CreateClient(ctx, newClient("client-2")))
	must(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-1", "fam-1", "", u.ID, c.ID, t0)))
	must(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-2", "fam-2", "", u.ID, "client-2", t0)))

	must(t, s.DeleteClient(ctx, c.ID))
	_, err := s.GetClient(ctx, c.ID)
	wantErr(t, err, store.ErrNotFound, "GetClient after delete")
	wantErr(t, s.DeleteClient(ctx, c.ID), store.ErrNotFound, "DeleteClient twice")

	// The client's refresh tokens go with it; others stay.
	_, err = s.GetRefreshToken(ctx, "rt-1")
	wantErr(t, err, store.ErrNotFound, "refresh token of a deleted client")
	_, err = s.GetRefreshToken(ctx, "rt-2")
	must(t, err)
}
