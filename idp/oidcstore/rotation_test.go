package oidcstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
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

// The access token of a rotation is stored before the rotation's statement;
// when that fails, the token is deleted (it was never handed out) and the
// presented refresh token still works.
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
		if _, err := e.refresh(ctx, tks.refresh); !IsUnavailable(err) {
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
