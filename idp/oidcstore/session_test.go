package oidcstore

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Logout of session A ends A's tokens, every family and every access token
// of it, and only those.
func TestRevokeSession(t *testing.T) {
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := context.Background()
		mustExchange := func(sid string) tokens {
			t.Helper()
			tks, err := e.exchange(ctx, e.code(t, sid))
			if err != nil {
				t.Fatal(err)
			}
			return tks
		}
		first := mustExchange("session-a")
		second := mustExchange("session-a") // a second sign-in in the same browser session
		rotated, err := e.refresh(ctx, second.refresh)
		if err != nil {
			t.Fatal(err)
		}
		pending := e.code(t, "session-a") // a code of A not yet exchanged
		other := mustExchange("session-b")

		if err := e.s.RevokeSession(ctx, "session-a"); err != nil {
			t.Fatal(err)
		}
		for name, tks := range map[string]tokens{
			"first sign-in": first, "second sign-in, rotated": rotated,
			"second sign-in, first access token": {access: second.access},
		} {
			if live := e.usable(ctx, tks); len(live) > 0 {
				t.Errorf("session A, %s: %v still usable after logout", name, live)
			}
		}
		if tks, err := e.exchange(ctx, pending); !isInvalidGrant(err) {
			t.Errorf("a code of session A exchanged after logout: %v, want invalid_grant", err)
		} else if live := e.usable(ctx, tks); len(live) > 0 {
			t.Errorf("a code of session A exchanged after logout: %v usable", live)
		}
		if live := e.usable(ctx, other); len(live) != 3 {
			t.Errorf("session B after A's logout: only %v usable, want userinfo, introspection, refresh", live)
		}
		if n := e.eventCount("session.tokens_revoked"); n != 1 {
			t.Errorf("%d session.tokens_revoked events, want 1", n)
		}

		// Nothing to revoke: still fine, and no session matches "".
		if err := e.s.RevokeSession(ctx, ""); err != nil {
			t.Errorf("RevokeSession(\"\"): %v", err)
		}
		fresh := mustExchange("session-c")
		if live := e.usable(ctx, fresh); len(live) != 3 {
			t.Errorf("session C: only %v usable", live)
		}
	})
}

// A refresh that rotates while the session is being revoked does not
// leave a usable token behind: in even rounds the logout races the whole
// refresh, in odd rounds it lands after the token was loaded (claimed,
// when the refresh is marked for a claim: half the rounds).
func TestRevokeSessionDuringRefresh(t *testing.T) {
	const rounds = 200
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := context.Background()
		refused := 0
		for round := range rounds {
			sid := "session-" + randomToken()[:8]
			tks, err := e.exchange(ctx, e.code(t, sid))
			if err != nil {
				t.Fatal(err)
			}
			var (
				wg      sync.WaitGroup
				start   = make(chan struct{})
				loaded  = make(chan struct{})
				rotated tokens
				rerr    error
			)
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				rctx := ctx
				if round%4 >= 2 {
					rctx = WithRefreshClaim(ctx, e.client.ID)
				}
				req, err := e.s.TokenRequestByRefreshToken(rctx, tks.refresh)
				close(loaded)
				if rerr = err; err != nil {
					return
				}
				rotated.access, rotated.refresh, _, rerr = e.s.CreateAccessAndRefreshTokens(rctx, req, tks.refresh)
			}()
			go func() {
				defer wg.Done()
				<-start
				if round%2 == 1 { // land between the load and the rotation
					<-loaded
				}
				if err := e.s.RevokeSession(ctx, sid); err != nil {
					t.Error(err)
				}
			}()
			close(start)
			wg.Wait()
			if rerr != nil {
				if !isInvalidGrant(rerr) {
					t.Fatalf("round %d: refresh: %v, want invalid_grant", round, rerr)
				}
				refused++
				rotated = tks
			}
			if live := e.usable(ctx, rotated); len(live) > 0 {
				t.Fatalf("round %d: %v usable after the session's logout", round, live)
			}
		}
		t.Logf("%d rounds: %d refreshes refused", rounds, refused)
	})
}

// A client cannot make access tokens outlive the revocation markers.
func TestAccessTokenLifetimeCapped(t *testing.T) {
	c := &Client{}
	c.c.AccessTokenTTL = 30 * 24 * time.Hour
	if got := c.AccessTokenLifetime(); got != MaxAccessTokenTTL {
		t.Errorf("AccessTokenLifetime = %v, want %v", got, MaxAccessTokenTTL)
	}
	if MaxAccessTokenTTL >= revokedFamilyTTL || MaxAccessTokenTTL >= revokedSessionTTL {
		t.Errorf("MaxAccessTokenTTL %v does not stay under the markers' lifetimes", MaxAccessTokenTTL)
	}
	c.c.AccessTokenTTL = 5 * time.Minute
	if got := c.AccessTokenLifetime(); got != 5*time.Minute {
		t.Errorf("AccessTokenLifetime = %v, want 5m", got)
	}
}

// RevokeUserAccessTokens refuses every access token issued to the user
// until now, whatever it is bound to: a session that is still open (not
// signed out), a refresh family that is not revoked, nothing at all. The
// refresh tokens are SetStatus's to revoke: they still rotate here, but
// what a sign-in issues later works.
func TestRevokeUserAccessTokens(t *testing.T) {
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := context.Background()
		bound, err := e.exchange(ctx, e.code(t, "session-a"))
		if err != nil {
			t.Fatal(err)
		}
		rotated, err := e.refresh(ctx, bound.refresh)
		if err != nil {
			t.Fatal(err)
		}
		req, err := e.s.AuthRequestByCode(ctx, e.code(t, ""))
		if err != nil {
			t.Fatal(err)
		}
		unbound, _, err := e.s.CreateAccessToken(ctx, req) // no session, no family
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)

		if err := e.s.RevokeUserAccessTokens(ctx, e.user.ID); err != nil {
			t.Fatal(err)
		}
		for name, tks := range map[string]tokens{
			"of a session": {access: bound.access}, "of a refresh": {access: rotated.access}, "of neither": {access: unbound},
		} {
			if live := e.usable(ctx, tks); len(live) > 0 {
				t.Errorf("access token %s: %v still usable", name, live)
			}
		}
		// A sign-in after it works; a later revocation refuses it too.
		e.clock.Advance(time.Second)
		later, err := e.exchange(ctx, e.code(t, "session-b"))
		if err != nil {
			t.Fatal(err)
		}
		if live := e.usable(ctx, tokens{access: later.access}); len(live) != 2 {
			t.Errorf("a token issued after the revocation: only %v usable", live)
		}
		e.clock.Advance(time.Second)
		if err := e.s.RevokeUserAccessTokens(ctx, e.user.ID); err != nil {
			t.Fatal(err)
		}
		// A node whose clock is behind does not move the marker back.
		e.clock.Advance(-2 * time.Second)
		if err := e.s.RevokeUserAccessTokens(ctx, e.user.ID); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(2 * time.Second)
		if live := e.usable(ctx, tokens{access: later.access}); len(live) > 0 {
			t.Errorf("a token issued before the second revocation: %v still usable", live)
		}
	})
}
