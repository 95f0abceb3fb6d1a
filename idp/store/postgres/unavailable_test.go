package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/store/postgres"
	"github.com/sesame-idp/sesame/internal/testenv"
)

// A database that no longer answers is store.ErrUnavailable, never
// store.ErrNotFound: outside and inside a transaction.
func TestUnreachableIsUnavailable(t *testing.T) {
	url := testenv.PostgresSchema(t)
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := db.GetUser(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing user while up: %v, want ErrNotFound", err)
	}
	// A statement cut short by its deadline: the server did not answer.
	short, cancel := context.WithTimeout(ctx, 0)
	defer cancel()
	if _, err := db.GetUser(short, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
		t.Errorf("timed out: %v, want ErrUnavailable", err)
	}
	db.Close()
	if _, err := db.GetUser(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
		t.Errorf("closed pool: %v, want ErrUnavailable", err)
	}
	err = db.InTx(ctx, func(tx store.Tx) error { _, err := tx.GetClient(ctx, "x"); return err })
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("transaction on a closed pool: %v, want ErrUnavailable", err)
	}
	if _, err := db.ListUsers(ctx, "", 10); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("list on a closed pool: %v, want ErrUnavailable", err)
	}
}
