package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/store/sqlite"
	"github.com/sesame-idp/sesame/idp/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newDB(t) })
}

func BenchmarkStore(b *testing.B) { storetest.Bench(b, newDB(b)) }

// newDB returns a migrated store on a fresh file, closed when the test ends.
func newDB(t testing.TB) *sqlite.DB {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sesame.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db
}
