package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/store/sqlite"
)

// Reads are not queued behind a write transaction: they see the last
// committed state while it runs.
func TestReadsDuringWrite(t *testing.T) {
	ctx := t.Context()
	db := newDB(t)
	if err := db.CreateUser(ctx, user("user-0")); err != nil {
		t.Fatal(err)
	}

	inTx, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.InTx(ctx, func(tx store.Tx) error {
			if err := tx.CreateUser(ctx, user("user-1")); err != nil {
				return err
			}
			close(inTx)
			<-release
			return nil
		})
	}()
	<-inTx

	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := db.GetUser(rctx, "user-0"); err != nil {
				t.Errorf("read during a write transaction: %v", err)
			}
			if _, err := db.GetUser(rctx, "user-1"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("uncommitted user: %v, want ErrNotFound", err)
			}
		})
	}
	wg.Wait()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetUser(ctx, "user-1"); err != nil {
		t.Fatalf("committed user: %v", err)
	}
}

// Two handles on one file, as two processes (the server and the CLI):
// writers wait for the lock (busy_timeout, BEGIN IMMEDIATE) instead of
// failing with SQLITE_BUSY.
func TestWritersOfTwoHandles(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sesame.db")
	var dbs [2]*sqlite.DB
	for i := range dbs {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		dbs[i] = db
	}

	var wg sync.WaitGroup
	for i := range 50 {
		db := dbs[i%2]
		wg.Go(func() {
			id := fmt.Sprintf("user-%02d", i)
			err := db.InTx(ctx, func(tx store.Tx) error {
				if _, err := tx.ListUsers(ctx, "", 10); err != nil { // read, then write
					return err
				}
				if err := tx.CreateUser(ctx, user(id)); err != nil {
					return err
				}
				return tx.SetPassword(ctx, id, "phc", time.Unix(1700000000, 0))
			})
			if err == nil {
				err = db.ReplaceRecoveryCodes(ctx, id, []string{"a", "b"}, time.Unix(1700000000, 0))
			}
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	users, err := dbs[0].ListUsers(ctx, "", 100)
	if err != nil || len(users) != 50 {
		t.Fatalf("ListUsers: %d users, %v; want 50", len(users), err)
	}
}

func user(id string) store.User {
	return store.User{ID: id, Username: id, Status: store.StatusActive, CreatedAt: time.Unix(1700000000, 0)}
}
