package oidcstore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
	eredis "github.com/sesame-idp/sesame/idp/ephemeral/redis"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/testenv"
	"github.com/sesame-idp/sesame/internal/teststore"
)

// storageT0 is the storage's fixed clock in these tests.
var storageT0 = time.Unix(1700000000, 0).UTC()

// storageBackends are the two pairings Sésame runs on. The memory store
// follows the test's clock; Redis expires keys by its own.
var storageBackends = []struct {
	name string
	open func(t testing.TB, now func() time.Time) (store.Store, ephemeral.Store)
}{
	{"sqlite+memory", func(t testing.TB, now func() time.Time) (store.Store, ephemeral.Store) {
		return teststore.SQLite(t), memory.New(now)
	}},
	{"postgres+redis", func(t testing.TB, _ func() time.Time) (store.Store, ephemeral.Store) {
		db := teststore.Postgres(t)
		redisURL := testenv.RedisURL(t)
		sealer, err := seal.New(seal.GenerateKey())
		if err != nil {
			t.Fatal(err)
		}
		prefix := "sesame-test-" + uuid.NewString()[:8] + ":"
		r, err := eredis.Open(context.Background(), redisURL, prefix, sealer)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			testenv.CleanRedisPrefix(t, redisURL, prefix)
			r.Close()
		})
		return db, r
	}},
}

// storageEnv is a Storage on real stores, with a user and a client.
type storageEnv struct {
	s      *Storage
	clock  *keysClock
	user   store.User
	client store.Client

	mu     sync.Mutex
	events []store.AuditEvent
}

func forEachStorage(t *testing.T, f func(t *testing.T, e *storageEnv)) {
	for _, b := range storageBackends {
		t.Run(b.name, func(t *testing.T) {
			clock := &keysClock{t: storageT0}
			st, eph := b.open(t, clock.Now)
			f(t, newStorageEnv(t, clock, st, eph))
		})
	}
}

func newStorageEnv(t *testing.T, clock *keysClock, st store.Store, eph ephemeral.Store) *storageEnv {
	t.Helper()
	ctx := t.Context()
	e := &storageEnv{
		clock: clock,
		user: store.User{ID: uuid.NewString(), Username: "sophie", Email: "sophie@example.org",
			Locale: "fr-CA", Status: store.StatusActive, AccountType: "person", CreatedAt: storageT0, UpdatedAt: storageT0},
		client: store.Client{ID: "emr", Name: "EMR", SecretHash: HashSecret("secret"),
			RedirectURIs: []string{"https://emr.example/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes: []string{"openid", "offline_access"}, AuthMethod: "client_secret_basic", TokenFormat: "opaque",
			IDTokenAlg: "RS256", CreatedAt: storageT0, UpdatedAt: storageT0},
	}
	if err := st.CreateUser(ctx, e.user); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(ctx, e.client); err != nil {
		t.Fatal(err)
	}
	e.s = &Storage{
		Store:     st,
		Ephemeral: eph,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:       clock.Now,
		Audit: func(_ context.Context, ev store.AuditEvent) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.events = append(e.events, ev)
			return nil
		},
	}
	return e
}

// eventCount counts the audit events of type typ.
func (e *storageEnv) eventCount(typ string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// signedIn stores a finished auth request of the user in browser session
// sid and returns its id.
func (e *storageEnv) signedIn(t testing.TB, sid string) string {
	t.Helper()
	a := &AuthRequest{
		ID: uuid.NewString(), CreatedAt: storageT0, ClientID: e.client.ID, RedirectURI: e.client.RedirectURIs[0],
		Scopes: []string{"openid", "offline_access"}, ResponseType: "code",
		Flow: Flow{UserID: e.user.ID, Done: true, AuthTime: storageT0, AMR: []string{"pwd", "otp", "mfa"}, SessionID: sid},
	}
	if err := e.s.SaveAuthRequest(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// code finishes a sign-in in session sid and returns its code.
func (e *storageEnv) code(t testing.TB, sid string) string {
	t.Helper()
	code := randomToken()
	if err := e.s.SaveAuthCode(context.Background(), e.signedIn(t, sid), code); err != nil {
		t.Fatal(err)
	}
	return code
}

// tokens is what one token response carries.
type tokens struct{ access, refresh string }

// exchange is the storage's part of a code exchange, as zitadel/oidc
// drives it.
func (e *storageEnv) exchange(ctx context.Context, code string) (tokens, error) {
	req, err := e.s.AuthRequestByCode(ctx, code)
	if err != nil {
		return tokens{}, err
	}
	access, refresh, _, err := e.s.CreateAccessAndRefreshTokens(ctx, req, "")
	if err != nil {
		return tokens{}, err
	}
	return tokens{access, refresh}, nil
}

// refresh is the storage's part of a refresh grant, marked for a claim as
// the token endpoint marks one that asks for no scope.
func (e *storageEnv) refresh(ctx context.Context, refreshToken string) (tokens, error) {
	return e.refreshUnmarked(WithRefreshClaim(ctx, e.client.ID), refreshToken)
}

// refreshUnmarked is a refresh grant not marked for a claim (one that
// narrows the scope): the token is read, then rotated.
func (e *storageEnv) refreshUnmarked(ctx context.Context, refreshToken string) (tokens, error) {
	req, err := e.s.TokenRequestByRefreshToken(ctx, refreshToken)
	if err != nil {
		return tokens{}, err
	}
	access, refresh, _, err := e.s.CreateAccessAndRefreshTokens(ctx, req, refreshToken)
	if err != nil {
		return tokens{}, err
	}
	return tokens{access, refresh}, nil
}

// usable lists what still works of tks: userinfo and introspection of the
// access token, a refresh with the refresh token (which rotates it).
func (e *storageEnv) usable(ctx context.Context, tks tokens) []string {
	var live []string
	if err := e.s.SetUserinfoFromToken(ctx, new(oidc.UserInfo), tks.access, e.user.ID, ""); err == nil {
		live = append(live, "userinfo")
	}
	if err := e.s.SetIntrospectionFromToken(ctx, new(oidc.IntrospectionResponse), tks.access, e.user.ID, e.client.ID); err == nil {
		live = append(live, "introspection")
	}
	if tks.refresh != "" {
		if _, err := e.refresh(ctx, tks.refresh); err == nil {
			live = append(live, "refresh")
		}
	}
	return live
}

// isInvalidRequest reports whether err is the OAuth error invalid_request.
func isInvalidRequest(err error) bool {
	var oe *oidc.Error
	return errors.As(err, &oe) && oe.ErrorType == oidc.InvalidRequest
}

// isInvalidGrant reports whether err is the OAuth error invalid_grant.
func isInvalidGrant(err error) bool {
	var oe *oidc.Error
	return errors.As(err, &oe) && oe.ErrorType == oidc.InvalidGrant
}

// A client is read from the store once per ClientTTL: within it the
// cached client is used, and a change (here a removed client, as by the
// CLI) is seen once it has passed.
func TestClientCache(t *testing.T) {
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := t.Context()
		e.s.ClientTTL = time.Second
		if err := e.s.AuthorizeClientIDSecret(ctx, "emr", "secret"); err != nil {
			t.Fatal(err)
		}
		if err := e.s.Store.DeleteClient(ctx, "emr"); err != nil {
			t.Fatal(err)
		}
		if err := e.s.AuthorizeClientIDSecret(ctx, "emr", "secret"); err != nil {
			t.Fatalf("within ClientTTL the cached client is used: %v", err)
		}
		if err := e.s.AuthorizeClientIDSecret(ctx, "emr", "wrong"); err == nil {
			t.Fatal("a wrong secret is accepted from the cache")
		}
		e.clock.Advance(time.Second)
		if err := e.s.AuthorizeClientIDSecret(ctx, "emr", "secret"); err == nil {
			t.Fatal("a removed client still authenticates after ClientTTL")
		}
		// Unknown ids are not kept.
		_ = e.s.AuthorizeClientIDSecret(ctx, "nope", "x")
		if n := len(e.s.clients.m); n != 0 {
			t.Fatalf("%d clients cached after misses", n)
		}
		// ForgetClient drops an entry at once.
		c := e.client
		if err := e.s.Store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := e.s.AuthorizeClientIDSecret(ctx, "emr", "secret"); err != nil {
			t.Fatal(err)
		}
		if err := e.s.Store.DeleteClient(ctx, "emr"); err != nil {
			t.Fatal(err)
		}
		e.s.ForgetClient("emr")
		if err := e.s.AuthorizeClientIDSecret(ctx, "emr", "secret"); err == nil {
			t.Fatal("a forgotten client is still cached")
		}
	})
}

// Userinfo reads the user once per UserTTL: a disabled account is refused
// once it has passed.
func TestUserCache(t *testing.T) {
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := t.Context()
		e.s.UserTTL = time.Second
		info := new(oidc.UserInfo)
		if err := e.s.setUserinfo(ctx, info, e.user.ID, []string{oidc.ScopeOpenID, oidc.ScopeEmail}); err != nil || info.Email != "sophie@example.org" {
			t.Fatalf("%+v %v", info, err)
		}
		u := e.user
		u.Status = store.StatusDisabled
		u.Email = "changed@example.org"
		if err := e.s.Store.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		info = new(oidc.UserInfo)
		if err := e.s.setUserinfo(ctx, info, e.user.ID, []string{oidc.ScopeOpenID, oidc.ScopeEmail}); err != nil || info.Email != "sophie@example.org" {
			t.Fatalf("within UserTTL the cached user is used: %+v %v", info, err)
		}
		e.clock.Advance(time.Second)
		if err := e.s.setUserinfo(ctx, new(oidc.UserInfo), e.user.ID, []string{oidc.ScopeOpenID}); err == nil {
			t.Fatal("a disabled account still gets userinfo after UserTTL")
		}
		if err := e.s.setUserinfo(ctx, new(oidc.UserInfo), uuid.NewString(), []string{oidc.ScopeOpenID}); err == nil {
			t.Fatal("an unknown user gets userinfo")
		}
	})
}
