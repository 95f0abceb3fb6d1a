package sqlite_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sesame-idp/sesame/idp/store/sqlite"
	"github.com/sesame-idp/sesame/migrations"
)

func TestMigrate(t *testing.T) {
	ctx := t.Context()
	all, err := migrations.Load(migrations.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	latest := all[len(all)-1].Version

	// Two processes starting together on a new file.
	path := filepath.Join(t.TempDir(), "sesame.db")
	dbs := make([]*sqlite.DB, 2)
	for i := range dbs {
		if dbs[i], err = sqlite.Open(ctx, path); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	if v, err := dbs[0].SchemaVersion(ctx); err != nil || v != 0 {
		t.Fatalf("SchemaVersion of a new file = %d, %v; want 0", v, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(dbs))
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.Migrate(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Migrate: %v", err)
	}
	if v, err := dbs[1].SchemaVersion(ctx); err != nil || v != latest {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latest)
	}
	if err := dbs[0].Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}

	// A newer binary migrated the file.
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)`, latest+1); err != nil {
		t.Fatal(err)
	}
	if err := dbs[0].Migrate(ctx); !errors.Is(err, migrations.ErrSchemaTooNew) {
		t.Fatalf("Migrate on a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

// The file and its WAL hold secrets: only the owner reads them.
func TestFileMode(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "sesame.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "sesame.db*"))
	if err != nil || len(files) < 2 {
		t.Fatalf("database files: %v, %v; want the file and its WAL", files, err)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(f), mode)
		}
	}
}

func TestOpenWantsAFile(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file::memory:?cache=shared"} {
		if db, err := sqlite.Open(t.Context(), path); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}
