package postgres_test

import (
	"testing"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/store/postgres"
	"github.com/sesame-idp/sesame/idp/store/storetest"
	"github.com/sesame-idp/sesame/internal/testenv"
)

func TestStore(t *testing.T) {
	testenv.PostgresURL(t) // skip (or fail) once, not in every subtest
	storetest.Run(t, func(t *testing.T) store.Store { return newDB(t) })
}

func BenchmarkStore(b *testing.B) { storetest.Bench(b, newDB(b)) }

// newDB returns a migrated store in a fresh schema (SESAME_TEST_POSTGRES_URL),
// closed and dropped when the test ends.
func newDB(t testing.TB) *postgres.DB {
	db, err := postgres.Open(t.Context(), testenv.PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db
}
