package oidcstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
	"github.com/sesame-idp/sesame/internal/teststore"
)

// A code exchanged, and replayed during the exchange: in even rounds the
// replay races the take, in odd rounds it lands between the take and the
// issue of the tokens. Whatever the interleaving, the tokens of the first
// exchange end up unusable, either because the replay revoked them or
// because the exchange saw the replay and refused to hand them out.
func TestCodeReplayDuringExchangeRevokes(t *testing.T) {
	const rounds = 1000
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := context.Background()
		var revokedAfter, refusedDuring int
		for round := range rounds {
			code := e.code(t, fmt.Sprintf("sid-%d", round))
			var (
				wg      sync.WaitGroup
				start   = make(chan struct{})
				taken   = make(chan struct{})
				results [2]tokens
				errs    [2]error
			)
			wg.Add(2)
			go func() { // the exchange
				defer wg.Done()
				<-start
				req, err := e.s.AuthRequestByCode(ctx, code)
				close(taken)
				if errs[0] = err; err != nil {
					return
				}
				results[0].access, results[0].refresh, _, errs[0] = e.s.CreateAccessAndRefreshTokens(ctx, req, "")
			}()
			go func() { // the replay
				defer wg.Done()
				<-start
				if round%2 == 1 {
					<-taken
				}
				results[1], errs[1] = e.exchange(ctx, code)
			}()
			close(start)
			wg.Wait()

			for i, err := range errs {
				if err != nil && !isInvalidGrant(err) {
					t.Fatalf("round %d: exchange %d: %v, want invalid_grant", round, i, err)
				}
			}
			switch {
			case errs[0] == nil && errs[1] == nil:
				t.Fatalf("round %d: both exchanges of one code got tokens", round)
			case errs[0] != nil && errs[1] != nil:
				refusedDuring++ // the replay came between the take and the record
			default:
				revokedAfter++
				winner := results[0]
				if errs[0] != nil {
					winner = results[1]
				}
				if live := e.usable(ctx, winner); len(live) > 0 {
					t.Fatalf("round %d: the first exchange's tokens still work after a replay: %v", round, live)
				}
			}
		}
		t.Logf("%d rounds: %d revoked by the replay, %d refused to the exchange", rounds, revokedAfter, refusedDuring)
		if n := e.eventCount("token.code_replayed"); n != rounds {
			t.Errorf("%d token.code_replayed events, want %d", n, rounds)
		}
	})
}

// The code's life, one step at a time: a code works once, its replay
// revokes what it issued, a later replay still fails, and an unknown code
// is refused without an alarm.
func TestCodeLifecycle(t *testing.T) {
	forEachStorage(t, func(t *testing.T, e *storageEnv) {
		ctx := context.Background()
		code := e.code(t, "sid-1")
		tks, err := e.exchange(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		// Check the access token alone: a refresh would rotate the token.
		if live := e.usable(ctx, tokens{access: tks.access}); len(live) != 2 {
			t.Fatalf("fresh access token: %v usable, want userinfo and introspection", live)
		}
		for i := range 2 {
			if _, err := e.exchange(ctx, code); !isInvalidGrant(err) {
				t.Fatalf("replay %d: %v, want invalid_grant", i+1, err)
			}
		}
		if live := e.usable(ctx, tks); len(live) > 0 {
			t.Errorf("after a replay: %v still usable", live)
		}
		if n := e.eventCount("token.code_replayed"); n != 2 {
			t.Errorf("%d token.code_replayed events, want 2", n)
		}
		if _, err := e.exchange(ctx, randomToken()); !isInvalidGrant(err) {
			t.Errorf("unknown code: %v, want invalid_grant", err)
		}
		if n := e.eventCount("token.code_replayed"); n != 2 {
			t.Errorf("an unknown code raised token.code_replayed (%d events)", n)
		}

		// One code per auth request.
		id := e.signedIn(t, "sid-2")
		if err := e.s.SaveAuthCode(ctx, id, randomToken()); err != nil {
			t.Fatal(err)
		}
		if err := e.s.SaveAuthCode(ctx, id, randomToken()); !isInvalidRequest(err) {
			t.Errorf("second code for one auth request: %v, want invalid_request", err)
		}
	})
}

// An unused code lives CodeTTL.
func TestCodeExpires(t *testing.T) {
	clock := &keysClock{t: storageT0}
	e := newStorageEnv(t, clock, teststore.SQLite(t), memory.New(clock.Now))
	ctx := context.Background()
	late := e.code(t, "sid-1")
	onTime := e.code(t, "sid-2")
	clock.Advance(CodeTTL - time.Second)
	if _, err := e.exchange(ctx, onTime); err != nil {
		t.Fatalf("a code just before CodeTTL: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := e.exchange(ctx, late); !isInvalidGrant(err) {
		t.Fatalf("a code after CodeTTL: %v, want invalid_grant", err)
	}
	if n := e.eventCount("token.code_replayed"); n != 0 {
		t.Errorf("an expired code raised token.code_replayed (%d events)", n)
	}
}
