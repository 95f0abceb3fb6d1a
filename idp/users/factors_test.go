package users_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// newAccount creates an active user with a password and returns it.
func newAccount(t *testing.T, svc *users.Service, username string) store.User {
	t.Helper()
	created, err := svc.CreateUsers(context.Background(), []users.NewUser{
		{Username: username, Email: username + "@clinique.example", Password: "une phrase de passe"},
	}, byAdmin)
	if err != nil {
		t.Fatal(err)
	}
	return created[0]
}

// addTOTP gives u an authenticator, verified or not, and returns it.
func addTOTP(t *testing.T, svc *users.Service, u store.User, name string, verified bool) store.Credential {
	t.Helper()
	var at time.Time
	if verified {
		at = t0
	}
	c := users.NewTOTPCredential(svc.Sealer, u.ID, name, users.NewTOTPSecret(), t0, at)
	if err := svc.Store.CreateCredential(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// factors returns the names of u's verified second factors.
func factors(t *testing.T, st store.Store, u store.User) []string {
	t.Helper()
	creds, err := st.ListCredentials(context.Background(), u.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range creds {
		if c.Type != store.CredPassword && !c.VerifiedAt.IsZero() {
			names = append(names, c.Name)
		}
	}
	return names
}

func TestRemoveSecondFactor(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		u := newAccount(t, svc, "sophie")
		other := newAccount(t, svc, "marc")
		phone := addTOTP(t, svc, u, "Phone", true)
		tablet := addTOTP(t, svc, u, "Tablet", true)
		pending := addTOTP(t, svc, u, "Unconfirmed", false)
		othersPhone := addTOTP(t, svc, other, "Marc's phone", true)
		addTOTP(t, svc, other, "Marc's tablet", true)
		pw, err := svc.Store.ListCredentials(ctx, u.ID, store.CredPassword)
		if err != nil || len(pw) != 1 {
			t.Fatal(pw, err)
		}

		for _, step := range []struct {
			name         string
			userID, cred string
			want         error
			left         int
		}{
			{"another user's credential", u.ID, othersPhone.ID, store.ErrNotFound, 2},
			{"the password", u.ID, pw[0].ID, store.ErrNotFound, 2},
			{"unknown credential", u.ID, "no-such-id", store.ErrNotFound, 2},
			{"unknown user", "no-such-user", phone.ID, store.ErrNotFound, 2},
			{"an unfinished enrollment", u.ID, pending.ID, nil, 2},
			{"one of two", u.ID, phone.ID, nil, 1},
			{"the last one", u.ID, tablet.ID, users.ErrLastMethod, 1},
			{"already removed", u.ID, phone.ID, store.ErrNotFound, 1},
		} {
			removed, err := svc.RemoveSecondFactor(ctx, step.userID, step.cred, store.AuditEvent{ActorID: u.ID, IP: "192.0.2.7"})
			if !errors.Is(err, step.want) || (step.want != nil && err == nil) {
				t.Fatalf("%s: error %v, want %v", step.name, err, step.want)
			}
			if err == nil && removed.ID != step.cred {
				t.Errorf("%s: returned %+v", step.name, removed)
			}
			if got := factors(t, svc.Store, u); len(got) != step.left {
				t.Fatalf("%s: factors left %v, want %d", step.name, got, step.left)
			}
		}
		if got := factors(t, svc.Store, other); len(got) != 2 {
			t.Errorf("the other user's factors: %v", got)
		}
		// The events have the same time (the clock is fixed): any order.
		removed := map[string]bool{}
		for _, e := range events(t, svc.Store, "mfa.removed") {
			if e.Details["method"] != "totp" || e.UserID != u.ID || e.ActorID != u.ID || e.IP != "192.0.2.7" {
				t.Errorf("mfa.removed event %+v", e)
			}
			removed[e.Details["credential_id"]] = true
		}
		if len(removed) != 2 || !removed[phone.ID] || !removed[pending.ID] {
			t.Errorf("mfa.removed events for %v, want %s and %s", removed, phone.ID, pending.ID)
		}
	})
}

func TestEnsureNoSecondFactor(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		u := newAccount(t, svc, "sophie")
		check := func(userID string) error {
			return svc.Store.InTx(ctx, func(tx store.Tx) error { return users.EnsureNoSecondFactor(ctx, tx, userID) })
		}
		if err := check(u.ID); err != nil {
			t.Fatalf("password only: %v", err)
		}
		addTOTP(t, svc, u, "Unconfirmed", false)
		if err := check(u.ID); err != nil {
			t.Fatalf("an unfinished enrollment: %v", err)
		}
		addTOTP(t, svc, u, "Phone", true)
		if err := check(u.ID); !errors.Is(err, users.ErrAlreadyEnrolled) {
			t.Fatalf("enrolled: %v, want ErrAlreadyEnrolled", err)
		}
		if err := check("no-such-user"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown user: %v, want ErrNotFound", err)
		}
	})
}

const racers = 20

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

// warm opens the database connections the races use (a pool opens them
// lazily: the first transaction would end while the others connect).
func warm(t *testing.T, st store.Store) {
	t.Helper()
	for _, err := range race(racers, func(int) error {
		return st.InTx(context.Background(), func(tx store.Tx) error { _, err := tx.ListUsers(context.Background(), "", 1); return err })
	}) {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// rounds: each race runs a few times, on fresh users, so that a missing
// lock shows however the transactions happen to interleave.
const rounds = 5

func TestConcurrentRemovals(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		warm(t, svc.Store)
		for round := range rounds {
			u := newAccount(t, svc, fmt.Sprintf("user%d", round))
			methods := []store.Credential{addTOTP(t, svc, u, "Phone", true), addTOTP(t, svc, u, "Tablet", true)}
			// Half the goroutines remove one method, half the other.
			errs := race(racers, func(i int) error {
				_, err := svc.RemoveSecondFactor(ctx, u.ID, methods[i%2].ID, store.AuditEvent{ActorID: u.ID})
				return err
			})
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, users.ErrLastMethod) && !errors.Is(err, store.ErrNotFound):
					t.Errorf("round %d, goroutine %d: %v", round, i, err)
				}
			}
			if won != 1 {
				t.Errorf("round %d: %d removals succeeded, want 1", round, won)
			}
			if left := factors(t, svc.Store, u); len(left) != 1 {
				t.Fatalf("round %d: factors left %v, want one", round, left)
			}
		}
		if ev := events(t, svc.Store, "mfa.removed"); len(ev) != rounds {
			t.Errorf("%d mfa.removed events, want %d", len(ev), rounds)
		}
	})
}

func TestConcurrentFirstEnrollments(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		warm(t, svc.Store)
		for round := range rounds {
			u := newAccount(t, svc, fmt.Sprintf("user%d", round))
			errs := race(racers, func(i int) error {
				c := users.NewTOTPCredential(svc.Sealer, u.ID, fmt.Sprintf("Phone %d", i), users.NewTOTPSecret(), t0, t0)
				return svc.Store.InTx(ctx, func(tx store.Tx) error {
					if err := users.EnsureNoSecondFactor(ctx, tx, u.ID); err != nil {
						return err
					}
					return tx.CreateCredential(ctx, c)
				})
			})
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, users.ErrAlreadyEnrolled):
					t.Errorf("round %d, goroutine %d: %v", round, i, err)
				}
			}
			if left := factors(t, svc.Store, u); won != 1 || len(left) != 1 {
				t.Fatalf("round %d: %d enrollments succeeded, factors %v; want one", round, won, left)
			}
		}
	})
}
