package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// workers is how many goroutines race for one value.
const workers = 50

// RunConcurrency checks that single-use values are used once, that
// compare-and-set operations have one winner and that transactions holding
// a user's lock run one after the other, under concurrent calls. Run
// calls it; newStore is the same as for Run.
func RunConcurrency(t *testing.T, newStore func(t *testing.T) store.Store) {
	for _, tc := range []testCase{
		{"ConsumeRecoveryCode", testRaceRecoveryCode},
		{"CreateUser", testRaceCreateUser},
		{"RotateRefreshToken", testRaceRotateRefreshToken},
		{"ClaimRefreshToken", testRaceClaimRefreshToken},
		{"AdvanceTOTPStep", testRaceAdvanceTOTPStep},
		{"ConsumeActionToken", testRaceConsumeActionToken},
		{"ClaimOutbox", testRaceClaimOutbox},
		{"Transactions", testRaceTransactions},
		{"LockUser", testRaceLockUser},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

// race runs fn in n goroutines released together and returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// warm opens the connections a race will use, by running concurrent
// transactions first: a pool that opens them lazily would otherwise let
// the first transaction end while the others still connect, and the race
// would not be one.
func warm(t *testing.T, s store.Store) {
	t.Helper()
	for i, err := range race(workers, func(int) error {
		return s.InTx(t.Context(), func(tx store.Tx) error { _, err := tx.ListUsers(t.Context(), "", 1); return err })
	}) {
		if err != nil {
			t.Fatalf("warm-up %d: %v", i, err)
		}
	}
}

// oneWins checks that exactly one error is nil and the others are loser.
func oneWins(t *testing.T, errs []error, loser error) (winner int) {
	t.Helper()
	winner = -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("goroutines %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, loser):
			t.Errorf("goroutine %d: %v, want %v", i, err, loser)
		}
	}
	if winner < 0 {
		t.Fatalf("no goroutine won")
	}
	return winner
}

func testRaceRecoveryCode(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	must(t, s.ReplaceRecoveryCodes(ctx, u.ID, []string{"h1", "h2"}, t0))
	errs := race(workers, func(i int) error {
		return s.ConsumeRecoveryCode(ctx, u.ID, "h1", at(time.Duration(i)*time.Millisecond))
	})
	oneWins(t, errs, store.ErrNotFound)
	must(t, s.ConsumeRecoveryCode(ctx, u.ID, "h2", t0))
}

func testRaceCreateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	errs := race(workers, func(i int) error {
		return s.CreateUser(ctx, newUser(fmt.Sprintf("user-%02d", i), "Alice"))
	})
	w := oneWins(t, errs, store.ErrConflict)
	got, err := s.GetUserByUsername(ctx, "alice")
	must(t, err)
	equal(t, got.ID, fmt.Sprintf("user-%02d", w), "the winner's user")
	all, err := s.ListUsers(ctx, "", 0)
	must(t, err)
	equal(t, len(all), 1, "users")
}

func testRaceRotateRefreshToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	must(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-0", "fam", "", u.ID, c.ID, t0)))
	next := seq("rt-next-", workers)
	errs := race(workers, func(i int) error {
		return s.RotateRefreshToken(ctx, "rt-0", newRefreshToken(next[i], "fam", "rt-0", u.ID, c.ID, at(time.Hour)))
	})
	onlyWinnerStored(t, s, next, oneWins(t, errs, store.ErrConflict))
}

// onlyWinnerStored fails unless next[w], the winner's new token, is
// stored, and none of the losers' is.
func onlyWinnerStored(t *testing.T, s store.Store, next []string, w int) {
	t.Helper()
	for i, id := range next {
		_, err := s.GetRefreshToken(t.Context(), id)
		if i == w {
			must(t, err)
		} else if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token %s of a loser: %v, want ErrNotFound", id, err)
		}
	}
}

func testRaceClaimRefreshToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	first := newRefreshToken("rt-0", "fam", "", u.ID, c.ID, t0)
	must(t, s.CreateRefreshToken(ctx, first))
	next := seq("rt-next-", workers)
	errs := race(workers, func(i int) error {
		_, claimed, err := s.ClaimRefreshToken(ctx, first.Hash, c.ID, next[i], "hash-"+next[i], at(time.Hour))
		if err == nil && !claimed {
			err = store.ErrConflict
		}
		return err
	})
	onlyWinnerStored(t, s, next, oneWins(t, errs, store.ErrConflict))
}

func testRaceAdvanceTOTPStep(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	must(t, s.CreateCredential(ctx, totp("cred-1", u.ID, t0)))
	errs := race(workers, func(i int) error {
		return s.AdvanceTOTPStep(ctx, "cred-1", 56666667, at(time.Duration(i)*time.Millisecond))
	})
	oneWins(t, errs, store.ErrConflict)
}

func testRaceConsumeActionToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	must(t, s.CreateActionToken(ctx, store.ActionToken{Hash: "tok-1", Kind: "activation", UserID: u.ID,
		CreatedAt: t0, ExpiresAt: at(time.Hour)}))
	errs := race(workers, func(i int) error {
		_, err := s.ConsumeActionToken(ctx, "tok-1", "activation", at(time.Minute))
		return err
	})
	oneWins(t, errs, store.ErrNotFound)
}

// Workers claiming at once get disjoint sets that cover the outbox.
func testRaceClaimOutbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	const messages = 60
	for i := range messages {
		must(t, s.EnqueueOutbox(ctx, newMessage(fmt.Sprintf("m-%02d", i), fmt.Sprintf("k-%02d", i),
			at(time.Duration(i)*time.Second))))
	}
	var (
		mu      sync.Mutex
		claimed = map[string]int{}
	)
	errs := race(10, func(int) error {
		for {
			msgs, err := s.ClaimOutbox(ctx, at(time.Hour), time.Hour, 4)
			if err != nil || len(msgs) == 0 {
				return err
			}
			mu.Lock()
			for _, m := range msgs {
				claimed[m.ID]++
			}
			mu.Unlock()
		}
	})
	for _, err := range errs {
		must(t, err)
	}
	if len(claimed) != messages {
		t.Errorf("%d messages claimed, want %d", len(claimed), messages)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("message %s claimed %d times", id, n)
		}
	}
}

// Concurrent transactions and single writes all succeed: no "database is
// locked", no deadlock, no serialization failure.
func testRaceTransactions(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, c := seed(t, s)
	errs := race(workers, func(i int) error {
		id := fmt.Sprintf("user-%02d", i)
		err := s.InTx(ctx, func(tx store.Tx) error {
			if err := tx.CreateUser(ctx, newUser(id, "u"+id)); err != nil {
				return err
			}
			if err := tx.SetPassword(ctx, id, "phc", t0); err != nil {
				return err
			}
			if _, err := tx.GetUser(ctx, id); err != nil {
				return err
			}
			if err := tx.ReplaceRecoveryCodes(ctx, id, []string{"a", "b", "c"}, t0); err != nil {
				return err
			}
			return tx.AppendAuditEvent(ctx, store.AuditEvent{At: t0, Type: "user.created", UserID: id})
		})
		if err != nil {
			return err
		}
		if err := s.CreateRefreshToken(ctx, newRefreshToken("rt-"+id, "fam-"+id, "", id, c.ID, t0)); err != nil {
			return err
		}
		if _, err := s.GetClient(ctx, c.ID); err != nil {
			return err
		}
		return s.ConsumeRecoveryCode(ctx, id, "b", t0)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	events, err := s.ListAuditEvents(ctx, store.AuditFilter{Limit: 1000})
	must(t, err)
	equal(t, len(events), workers, "audit events")
}

// testRaceLockUser: transactions that lock the user, check it has no
// second factor, then create one, have one winner (at READ COMMITTED,
// without the lock, each would see no factor and create its own). A few
// rounds, each on a user of its own, so that a missing lock shows however
// the transactions happen to interleave.
func testRaceLockUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	warm(t, s)
	errEnrolled := errors.New("already enrolled")
	for round := range 5 {
		u := newUser(fmt.Sprintf("user-%d", round), fmt.Sprintf("user%d", round))
		must(t, s.CreateUser(ctx, u))
		errs := race(workers, func(i int) error {
			return s.InTx(ctx, func(tx store.Tx) error {
				if err := tx.LockUser(ctx, u.ID); err != nil {
					return err
				}
				existing, err := tx.ListCredentials(ctx, u.ID, store.CredTOTP)
				if err != nil {
					return err
				}
				if len(existing) > 0 {
					return errEnrolled
				}
				return tx.CreateCredential(ctx, totp(fmt.Sprintf("cred-%d-%02d", round, i), u.ID, t0))
			})
		})
		w := oneWins(t, errs, errEnrolled)
		creds, err := s.ListCredentials(ctx, u.ID, store.CredTOTP)
		must(t, err)
		equal(t, ids(creds, credID), []string{fmt.Sprintf("cred-%d-%02d", round, w)}, "credentials")
	}
}
