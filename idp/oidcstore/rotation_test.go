package oidcstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/faulty"
)

// accessTokenKeys is an ephemeral store that remembers the access tokens
// written to it.
type accessTokenKeys struct {
	ephemeral.Store
	mu  sync.Mutex
	ids []string
}

func (a *accessTokenKeys) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if id, ok := strings.CutPrefix(key, keyAccessToken); ok {
		a.mu.Lock()
		a.ids = append(a.ids, id)
		a.mu.Unlock()
	}
	return a.Store.Put(ctx, key, value, ttl)
}

// Unmarked (a refresh that narrows the scope), the access token of a
// rotation is stored before the rotation's statement; when that fails, the
// token is deleted (it was never handed out) and the presented refresh
// token still works.
func TestFailedRotationLeavesNoAccessToken(t *testing.T) {
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := t.Context()
		tks, err := e.exchange(ctx, e.code(t, "sid-rotation"))
		if err != nil {
			t.Fatal(err)
		}
		rec := &accessTokenKeys{Store: e.s.Ephemeral}
		e.s.Ephemeral = rec
		healthy := e.s.Store
		down := faulty.NewStore(healthy)
		down.Down("RotateRefreshToken")
		e.s.Store = down
		if _, err := e.refreshUnmarked(ctx, tks.refresh); !IsUnavailable(err) {
			t.Fatalf("refresh with the database failing: %v, want temporarily unavailable", err)
		}
		if len(rec.ids) != 1 {
			t.Fatalf("%d access tokens stored for the failed rotation, want 1", len(rec.ids))
		}
		if _, err := e.s.accessToken(ctx, rec.ids[0]); !errors.As(err, new(notFound)) {
			t.Errorf("the failed rotation's access token: %v, want not found (deleted)", err)
		}
		e.s.Store = healthy
		if _, err := e.refresh(ctx, tks.refresh); err != nil {
			t.Errorf("the refresh token after the outage: %v", err)
		}
		if n := e.eventCount("token.refresh_reused"); n != 0 {
			t.Errorf("%d reuse events for a failed rotation", n)
		}
	})
}

// claimRecorder is a store that remembers the successors its claims were
// given.
type claimRecorder struct {
	store.Store
	mu   sync.Mutex
	next []string
}

func (c *claimRecorder) ClaimRefreshToken(ctx context.Context, hash, clientID, nextID, nextHash string, at time.Time) (store.RefreshToken, bool, error) {
	c.mu.Lock()
	c.next = append(c.next, nextID)
	c.mu.Unlock()
	return c.Store.ClaimRefreshToken(ctx, hash, clientID, nextID, nextHash, at)
}

// record makes e's store a claimRecorder.
func (e *storageEnv) record() *claimRecorder {
	c := &claimRecorder{Store: e.s.Store}
	e.s.Store = c
	return c
}

// tokens are the tokens of a code exchange for a sign-in with session
// sid.
func (e *storageEnv) tokens(t *testing.T, sid string) tokens {
	t.Helper()
	tks, err := e.exchange(t.Context(), e.code(t, sid))
	if err != nil {
		t.Fatal(err)
	}
	return tks
}

// tokenByValue is the stored refresh token of a value.
func (e *storageEnv) tokenByValue(t *testing.T, value string) store.RefreshToken {
	t.Helper()
	rt, err := e.s.Store.GetRefreshTokenByHash(t.Context(), HashToken(value))
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// wantGone fails unless the claims' successors are not stored.
func (c *claimRecorder) wantGone(t *testing.T) {
	t.Helper()
	if len(c.next) == 0 {
		t.Fatal("no claim was made")
	}
	for _, id := range c.next {
		if _, err := c.Store.GetRefreshToken(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("successor %s of an undone claim: %v, want not found", id, err)
		}
	}
}

// A claim (rotation and successor in one statement) whose access token
// cannot be stored, or whose session cannot be checked, is undone: the
// refresh fails with temporarily_unavailable, the successor is gone, and
// the presented token works once the ephemeral store is back, with no
// reuse seen.
func TestFailedAccessTokenGivesTheClaimBack(t *testing.T) {
	for _, prefix := range []string{keyAccessToken, keyRevokedSession} {
		t.Run(strings.TrimSuffix(prefix, ":"), func(t *testing.T) {
			forEachStorage(t, func(t *testing.T, e *storageEnv) {
				ctx := t.Context()
				tks := e.tokens(t, "sid-claim")
				rec := e.record()
				down := faulty.NewEphemeral(e.s.Ephemeral)
				healthy := e.s.Ephemeral
				e.s.Ephemeral = down
				down.Down(prefix)
				if _, err := e.refresh(ctx, tks.refresh); !IsUnavailable(err) {
					t.Fatalf("refresh with the ephemeral store failing: %v, want temporarily unavailable", err)
				}
				if got := e.tokenByValue(t, tks.refresh); !got.RotatedAt.IsZero() {
					t.Errorf("the presented token is rotated at %v after the failed refresh", got.RotatedAt)
				}
				rec.wantGone(t)
				e.s.Ephemeral = healthy
				next, err := e.refresh(ctx, tks.refresh)
				if err != nil {
					t.Fatalf("the refresh token after the outage: %v", err)
				}
				if live := e.usable(ctx, next); len(live) != 3 {
					t.Errorf("the tokens of the refresh after the outage: only %v usable", live)
				}
				if n := e.eventCount("token.refresh_reused"); n != 0 {
					t.Errorf("%d reuse events for a failed refresh", n)
				}
			})
		})
	}
}

// When the claim cannot be undone either, the presented token stays
// rotated: presented again it is a reuse, and nothing of the family works.
// Never is it accepted twice.
func TestClaimNotUndoneIsNeverAcceptedTwice(t *testing.T) {
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := t.Context()
		tks := e.tokens(t, "sid-claim")
		rec := e.record()
		downE := faulty.NewEphemeral(e.s.Ephemeral)
		downE.Down(keyAccessToken)
		healthyE, healthyS := e.s.Ephemeral, e.s.Store
		downS := faulty.NewStore(healthyS)
		downS.Down("UnclaimRefreshToken")
		e.s.Ephemeral, e.s.Store = downE, downS
		if _, err := e.refresh(ctx, tks.refresh); !IsUnavailable(err) {
			t.Fatalf("refresh with the ephemeral store failing: %v, want temporarily unavailable", err)
		}
		e.s.Ephemeral, e.s.Store = healthyE, healthyS
		ids := append([]string{e.tokenByValue(t, tks.refresh).ID}, rec.next...)
		if _, err := e.refresh(ctx, tks.refresh); !isInvalidGrant(err) {
			t.Fatalf("the presented token again: %v, want invalid_grant", err)
		}
		if n := e.eventCount("token.refresh_reused"); n != 1 {
			t.Errorf("%d reuse events, want 1", n)
		}
		for _, id := range ids {
			if rt, err := healthyS.GetRefreshToken(ctx, id); err != nil || rt.RevokedAt.IsZero() {
				t.Errorf("token %s of the family: %v, revoked at %v, want revoked", id, err, rt.RevokedAt)
			}
		}
	})
}

// A claim that fails in the database is no verdict: the presented token
// works once the database is back.
func TestFailedClaimLeavesTheTokenUsable(t *testing.T) {
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := t.Context()
		tks := e.tokens(t, "sid-claim")
		healthy := e.s.Store
		down := faulty.NewStore(healthy)
		down.Down("ClaimRefreshToken")
		e.s.Store = down
		if _, err := e.refresh(ctx, tks.refresh); !IsUnavailable(err) {
			t.Fatalf("refresh with the database failing: %v, want temporarily unavailable", err)
		}
		e.s.Store = healthy
		if _, err := e.refresh(ctx, tks.refresh); err != nil {
			t.Errorf("the refresh token after the outage: %v", err)
		}
	})
}

// A marked refresh claims only a token of the marked client: another
// client's token comes back unclaimed and untouched (zitadel/oidc then
// refuses the grant), and works for its own client.
func TestClaimNeedsTheTokensClient(t *testing.T) {
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := t.Context()
		tks := e.tokens(t, "sid-claim")
		req, err := e.s.TokenRequestByRefreshToken(WithRefreshClaim(ctx, "another-client"), tks.refresh)
		if err != nil {
			t.Fatal(err)
		}
		if got := req.GetClientID(); got != e.client.ID {
			t.Errorf("client of the token: %q, want %q", got, e.client.ID)
		}
		if got := e.tokenByValue(t, tks.refresh); !got.RotatedAt.IsZero() {
			t.Errorf("another client's refresh rotated the token at %v", got.RotatedAt)
		}
		if _, err := e.refresh(ctx, tks.refresh); err != nil {
			t.Errorf("the token for its own client: %v", err)
		}
	})
}

// A claimed token whose grant narrows the scope is given back and rotated
// with the narrowed scope (the successor of the claim had the token's).
func TestClaimWithNarrowedScope(t *testing.T) {
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := WithRefreshClaim(t.Context(), e.client.ID)
		tks := e.tokens(t, "sid-claim")
		rec := e.record()
		req, err := e.s.TokenRequestByRefreshToken(ctx, tks.refresh)
		if err != nil {
			t.Fatal(err)
		}
		req.SetCurrentScopes([]string{"openid"})
		_, refresh, _, err := e.s.CreateAccessAndRefreshTokens(ctx, req, tks.refresh)
		if err != nil {
			t.Fatal(err)
		}
		next := e.tokenByValue(t, refresh)
		if !slices.Equal(next.Scopes, []string{"openid"}) {
			t.Errorf("scopes of the successor: %v, want [openid]", next.Scopes)
		}
		rec.wantGone(t)
		if got := e.tokenByValue(t, tks.refresh); got.RotatedAt.IsZero() {
			t.Error("the presented token is not rotated")
		}
	})
}

// A claimed token whose account is not active is given back (an account
// cache may be behind an enable) and refused.
func TestClaimForAnInactiveAccount(t *testing.T) {
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := t.Context()
		tks := e.tokens(t, "sid-claim")
		u := e.user
		u.Status = store.StatusDisabled
		if err := e.s.Store.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		e.s.ForgetUser(u.ID)
		rec := e.record()
		if _, err := e.refresh(ctx, tks.refresh); !isInvalidGrant(err) {
			t.Fatalf("refresh for a disabled account: %v, want invalid_grant", err)
		}
		got := e.tokenByValue(t, tks.refresh)
		if !got.RotatedAt.IsZero() {
			t.Errorf("the token is rotated at %v after a refused refresh", got.RotatedAt)
		}
		rec.wantGone(t)
	})
}

// Of concurrent refreshes with one token, marked or not, one gets tokens;
// the others are a reuse, which revokes the family: nothing the winner got
// works afterwards.
func TestConcurrentRefreshesOneWins(t *testing.T) {
	const workers = 8
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := context.Background()
		tks := e.tokens(t, "sid-claim")
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			got   = make([]tokens, workers)
			errs  = make([]error, workers)
		)
		for i := range workers {
			wg.Go(func() {
				<-start
				if i%2 == 0 {
					got[i], errs[i] = e.refresh(ctx, tks.refresh)
				} else {
					got[i], errs[i] = e.refreshUnmarked(ctx, tks.refresh)
				}
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
				if live := e.usable(ctx, got[i]); len(live) > 0 {
					t.Errorf("the winner's tokens %v usable after the reuse", live)
				}
			case !isInvalidGrant(err):
				t.Errorf("refresh %d: %v, want invalid_grant", i, err)
			}
		}
		if won != 1 {
			t.Errorf("%d refreshes got tokens, want 1", won)
		}
	})
}
