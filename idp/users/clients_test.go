package users_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

func TestNewClientValidate(t *testing.T) {
	good := users.NewClient{ID: "emr", RedirectURIs: []string{"https://emr.example/cb", "http://localhost:8080/cb", "http://[::1]/cb"}}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid client: %v", err)
	}
	for _, tc := range []struct {
		name    string
		edit    func(*users.NewClient)
		field   string
		message string
	}{
		{"id", func(c *users.NewClient) { c.ID = "bad id" }, "id", `"bad id" must be 1 to 64 letters, digits or . _ -`},
		{"empty id", func(c *users.NewClient) { c.ID = "" }, "id", `"" must be 1 to 64 letters, digits or . _ -`},
		{"grant", func(c *users.NewClient) { c.GrantTypes = []string{"password"} }, "grant_types", `"password" is not one of authorization_code, refresh_token, client_credentials`},
		{"public client_credentials", func(c *users.NewClient) { c.Public, c.GrantTypes = true, []string{"client_credentials"} }, "grant_types", "a public client cannot use client_credentials"},
		{"no redirect", func(c *users.NewClient) { c.RedirectURIs = nil }, "redirect_uris", "required for the authorization_code grant"},
		{"relative redirect", func(c *users.NewClient) { c.RedirectURIs = []string{"/cb"} }, "redirect_uris", `"/cb" must be an absolute URL without fragment`},
		{"fragment", func(c *users.NewClient) { c.RedirectURIs = []string{"https://emr.example/cb#x"} }, "redirect_uris", `"https://emr.example/cb#x" must be an absolute URL without fragment`},
		{"http", func(c *users.NewClient) { c.RedirectURIs = []string{"http://emr.example/cb"} }, "redirect_uris", `"http://emr.example/cb" must use https (http only on localhost)`},
		{"scheme", func(c *users.NewClient) { c.RedirectURIs = []string{"emr://cb"} }, "redirect_uris", `"emr://cb" must use https`},
		{"post-logout", func(c *users.NewClient) { c.PostLogoutURIs = []string{"http://evil.example/"} }, "post_logout_uris", `"http://evil.example/" must use https (http only on localhost)`},
		{"token format", func(c *users.NewClient) { c.TokenFormat = "xml" }, "token_format", `"xml" must be opaque or jwt`},
		{"alg", func(c *users.NewClient) { c.SigningAlg = "HS256" }, "signing_alg", `"HS256" must be RS256 or ES256`},
		{"unknown scope", func(c *users.NewClient) { c.Scopes = []string{"openid", "root"} }, "scopes", `"root" is not one of openid, profile, email, offline_access, sesame:institutions, sesame:admin, sesame:requests`},
		{"public admin", func(c *users.NewClient) { c.Public, c.Scopes = true, []string{"openid", "sesame:admin"} }, "scopes", "a public client cannot have sesame:admin"},
		{"auth method", func(c *users.NewClient) { c.AuthMethod = "private_key_jwt" }, "auth_method", `"private_key_jwt" must be client_secret_basic or client_secret_post`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			if ie := wantInput(t, c.Validate(), tc.field); ie.Message != tc.message {
				t.Errorf("message %q, want %q", ie.Message, tc.message)
			}
		})
	}
	// client_credentials alone needs no redirect URI.
	if err := (users.NewClient{ID: "batch", GrantTypes: []string{"client_credentials"}}).Validate(); err != nil {
		t.Errorf("client_credentials client: %v", err)
	}
}

func TestClients(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		c, secret, err := svc.CreateClient(ctx, users.NewClient{ID: "emr", Name: "EMR", RedirectURIs: []string{"https://emr.example/cb"}}, byAdmin)
		if err != nil {
			t.Fatal(err)
		}
		if len(secret) < 40 || c.SecretHash != oidcstore.HashSecret(secret) {
			t.Fatalf("secret %q, hash %q", secret, c.SecretHash)
		}
		got, err := svc.Store.GetClient(ctx, "emr")
		if err != nil {
			t.Fatal(err)
		}
		// The defaults.
		if got.Public || got.AuthMethod != "client_secret_basic" || got.PKCERequired || got.TokenFormat != "opaque" || got.IDTokenAlg != "RS256" ||
			!slices.Equal(got.GrantTypes, users.DefaultGrants) || !slices.Equal(got.Scopes, users.DefaultScopes) || got.SecretHash != c.SecretHash {
			t.Fatalf("stored client %+v", got)
		}

		spa, secret, err := svc.CreateClient(ctx, users.NewClient{ID: "spa", Public: true, RedirectURIs: []string{"http://localhost:3000/cb"},
			GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, TokenFormat: "jwt", SigningAlg: "ES256"}, byAdmin)
		if err != nil || secret != "" || spa.SecretHash != "" || spa.AuthMethod != "none" || !spa.PKCERequired {
			t.Fatalf("public client %+v %q %v", spa, secret, err)
		}
		if pkce, _, err := svc.CreateClient(ctx, users.NewClient{ID: "strict", RedirectURIs: []string{"https://s.example/cb"}, PKCE: true, AuthMethod: "client_secret_post"}, byAdmin); err != nil || !pkce.PKCERequired || pkce.AuthMethod != "client_secret_post" {
			t.Fatalf("confidential client with PKCE %+v %v", pkce, err)
		}

		_, _, err = svc.CreateClient(ctx, users.NewClient{ID: "emr", RedirectURIs: []string{"https://emr.example/cb"}}, byAdmin)
		if wantInput(t, err, "id"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate id: %v", err)
		}
		_, _, err = svc.CreateClient(ctx, users.NewClient{ID: "bad", RedirectURIs: []string{"http://bad.example/cb"}}, byAdmin)
		wantInput(t, err, "redirect_uris")
		if _, err := svc.Store.GetClient(ctx, "bad"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an invalid client was stored: %v", err)
		}

		list, err := svc.ListClients(ctx)
		if err != nil || len(list) != 3 {
			t.Fatalf("clients %+v %v", list, err)
		}

		rotated, err := svc.RotateClientSecret(ctx, "emr", byAdmin)
		if err != nil || rotated == secret || len(rotated) < 40 {
			t.Fatalf("rotate: %q %v", rotated, err)
		}
		if got, _ := svc.Store.GetClient(ctx, "emr"); got.SecretHash != oidcstore.HashSecret(rotated) {
			t.Error("the new secret is not the stored one")
		}
		if _, err := svc.RotateClientSecret(ctx, "spa", byAdmin); !errors.Is(err, users.ErrPublicClient) {
			t.Errorf("rotate a public client: %v", err)
		}
		if _, err := svc.RotateClientSecret(ctx, "nope", byAdmin); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rotate an unknown client: %v", err)
		}

		if err := svc.DeleteClient(ctx, "spa", byAdmin); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Store.GetClient(ctx, "spa"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted client: %v", err)
		}
		if err := svc.DeleteClient(ctx, "spa", byAdmin); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete twice: %v", err)
		}

		for typ, n := range map[string]int{"client.created": 3, "client.secret_rotated": 1, "client.deleted": 1} {
			ev := events(t, svc.Store, typ)
			if len(ev) != n {
				t.Errorf("%s events: %+v", typ, ev)
			}
			for _, e := range ev {
				if e.ClientID == "" || e.ActorID != "admin-1" {
					t.Errorf("%s event %+v", typ, e)
				}
			}
		}
	})
}
