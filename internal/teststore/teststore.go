// Package teststore opens fresh, migrated durable stores for tests: SQLite
// in a temporary directory, and PostgreSQL in a schema of its own (through
// internal/testenv, so the test skips, or fails under
// SESAME_TEST_REQUIRE_ALL=1, when SESAME_TEST_POSTGRES_URL is unset).
package teststore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/store/postgres"
	"github.com/sesame-idp/sesame/idp/store/sqlite"
	"github.com/sesame-idp/sesame/internal/testenv"
)

// SQLite returns a migrated SQLite store, closed when the test ends.
func SQLite(t testing.TB) store.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sesame.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// Postgres returns a migrated PostgreSQL store in a fresh schema; the
// store is closed, then the schema dropped, when the test ends.
func Postgres(t testing.TB) store.Store {
	t.Helper()
	url := testenv.PostgresSchema(t)
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}
