package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// txCases are about InTx itself.
var txCases = []testCase{
	{"Commit", testInTxCommit},
	{"Rollback", testInTxRollback},
	{"Panic", testInTxPanic},
	{"FailedStepKeepsTransaction", testInTxFailedAtomicStep},
	{"ReuseRevokesFamily", testInTxReuseRevokesFamily},
	{"Ping", testPing},
}

func testInTxCommit(t *testing.T, s store.Store) {
	ctx := t.Context()
	err := s.InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateUser(ctx, newUser("user-1", "alice")); err != nil {
			return err
		}
		// The transaction reads its own writes.
		if _, err := tx.GetUserByUsername(ctx, "alice"); err != nil {
			return err
		}
		if err := tx.SetPassword(ctx, "user-1", "phc", t0); err != nil {
			return err
		}
		if err := tx.ReplaceRecoveryCodes(ctx, "user-1", []string{"h1"}, t0); err != nil {
			return err
		}
		return tx.EnqueueOutbox(ctx, newMessage("msg-1", "welcome:user-1", t0))
	})
	must(t, err)

	_, err = s.GetUser(ctx, "user-1")
	must(t, err)
	creds, err := s.ListCredentials(ctx, "user-1", store.CredPassword)
	must(t, err)
	equal(t, len(creds), 1, "passwords")
	must(t, s.ConsumeRecoveryCode(ctx, "user-1", "h1", t0))
	_, err = s.GetOutboxMessage(ctx, "msg-1")
	must(t, err)
}

func testInTxRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	must(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-1", "fam-1", "", u.ID, c.ID, t0)))
	must(t, s.ReplaceRecoveryCodes(ctx, u.ID, []string{"h1"}, t0))

	errBoom := errors.New("boom")
	err := s.InTx(ctx, func(tx store.Tx) error {
		steps := []error{
			tx.CreateUser(ctx, newUser("user-2", "bob")),
			tx.RotateRefreshToken(ctx, "rt-1", newRefreshToken("rt-2", "fam-1", "rt-1", u.ID, c.ID, at(time.Hour))),
			tx.ReplaceRecoveryCodes(ctx, u.ID, []string{"h2"}, at(time.Hour)),
			tx.EnqueueOutbox(ctx, newMessage("msg-1", "k", t0)),
		}
		if err := errors.Join(steps...); err != nil {
			return err
		}
		return errBoom
	})
	if err != errBoom {
		t.Fatalf("InTx returned %v, want the error of fn as is", err)
	}

	_, err = s.GetUser(ctx, "user-2")
	wantErr(t, err, store.ErrNotFound, "user created in a rolled back transaction")
	rt, err := s.GetRefreshToken(ctx, "rt-1")
	must(t, err)
	if !rt.RotatedAt.IsZero() {
		t.Fatalf("rt-1 rotated in a rolled back transaction")
	}
	_, err = s.GetRefreshToken(ctx, "rt-2")
	wantErr(t, err, store.ErrNotFound, "token created in a rolled back transaction")
	must(t, s.ConsumeRecoveryCode(ctx, u.ID, "h1", t0))
	_, err = s.GetOutboxMessage(ctx, "msg-1")
	wantErr(t, err, store.ErrNotFound, "message enqueued in a rolled back transaction")
}

func testInTxPanic(t *testing.T, s store.Store) {
	ctx := t.Context()
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("InTx swallowed a panic")
			}
		}()
		_ = s.InTx(ctx, func(tx store.Tx) error {
			if err := tx.CreateUser(ctx, newUser("user-1", "alice")); err != nil {
				return err
			}
			panic("in fn")
		})
	}()
	_, err := s.GetUser(ctx, "user-1")
	wantErr(t, err, store.ErrNotFound, "user created before a panic")

	// The connection went back to the pool: writes still work.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	must(t, s.CreateUser(wctx, newUser("user-1", "alice")))
}

// An operation that fails inside a transaction leaves nothing behind (it is
// atomic), and the transaction can go on.
func testInTxFailedAtomicStep(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	must(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-1", "fam-1", "", u.ID, c.ID, t0)))
	must(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-9", "fam-9", "", u.ID, c.ID, t0)))
	must(t, s.ReplaceRecoveryCodes(ctx, u.ID, []string{"h1"}, t0))

	err := s.InTx(ctx, func(tx store.Tx) error {
		next := newRefreshToken("rt-2", "fam-1", "rt-1", u.ID, c.ID, at(time.Hour))
		next.Hash = "hash-rt-9"
		if err := tx.RotateRefreshToken(ctx, "rt-1", next); !errors.Is(err, store.ErrConflict) {
			t.Errorf("RotateRefreshToken with a taken hash: %v, want ErrConflict", err)
		}
		if err := tx.ReplaceRecoveryCodes(ctx, u.ID, []string{"h2", "h2"}, t0); !errors.Is(err, store.ErrConflict) {
			t.Errorf("ReplaceRecoveryCodes with a duplicate: %v, want ErrConflict", err)
		}
		return tx.AppendAuditEvent(ctx, store.AuditEvent{ID: "ev-1", At: t0, Type: "token.reuse"})
	})
	must(t, err)

	rt, err := s.GetRefreshToken(ctx, "rt-1")
	must(t, err)
	if !rt.RotatedAt.IsZero() {
		t.Fatalf("rt-1 rotated although its successor was not stored")
	}
	must(t, s.ConsumeRecoveryCode(ctx, u.ID, "h1", t0))
	events, err := s.ListAuditEvents(ctx, store.AuditFilter{})
	must(t, err)
	equal(t, ids(events, eventID), []string{"ev-1"}, "events committed")
}

// The refresh reuse path: a lost rotation, then the revocation of the
// family, in one transaction.
func testInTxReuseRevokesFamily(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	must(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-1", "fam-1", "", u.ID, c.ID, t0)))
	must(t, s.RotateRefreshToken(ctx, "rt-1", newRefreshToken("rt-2", "fam-1", "rt-1", u.ID, c.ID, at(time.Hour))))
	must(t, s.CreateCredential(ctx, totp("cred-1", u.ID, t0)))
	must(t, s.AdvanceTOTPStep(ctx, "cred-1", 10, t0))

	err := s.InTx(ctx, func(tx store.Tx) error {
		err := tx.RotateRefreshToken(ctx, "rt-1", newRefreshToken("rt-3", "fam-1", "rt-1", u.ID, c.ID, at(2*time.Hour)))
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("reuse: %v, want ErrConflict", err)
		}
		if err := tx.AdvanceTOTPStep(ctx, "cred-1", 10, t0); !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("TOTP replay: %v, want ErrConflict", err)
		}
		if err := tx.ConsumeRecoveryCode(ctx, u.ID, "h-unknown", t0); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("unknown recovery code: %v, want ErrNotFound", err)
		}
		n, err := tx.RevokeRefreshFamily(ctx, "fam-1", at(2*time.Hour))
		if err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("%d tokens revoked, want 2", n)
		}
		return tx.AppendAuditEvent(ctx, store.AuditEvent{At: at(2 * time.Hour), Type: "token.reused", UserID: u.ID})
	})
	must(t, err)
	rt, err := s.GetRefreshToken(ctx, "rt-2")
	must(t, err)
	equal(t, rt.RevokedAt, at(2*time.Hour), "RevokedAt of the family")
}

func testPing(t *testing.T, s store.Store) {
	must(t, s.Ping(t.Context()))
}
