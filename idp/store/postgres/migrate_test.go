package postgres_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sesame-idp/sesame/idp/store/postgres"
	"github.com/sesame-idp/sesame/internal/testenv"
	"github.com/sesame-idp/sesame/migrations"
)

func TestMigrate(t *testing.T) {
	ctx := t.Context()
	url := testenv.PostgresSchema(t)
	all, err := migrations.Load(migrations.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	latest := all[len(all)-1].Version

	// Several nodes starting together on an empty database.
	dbs := make([]*postgres.DB, 3)
	for i := range dbs {
		if dbs[i], err = postgres.Open(ctx, url); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	if v, err := dbs[0].SchemaVersion(ctx); err != nil || v != 0 {
		t.Fatalf("SchemaVersion of an empty schema = %d, %v; want 0", v, err)
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

	// A newer binary migrated the database.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, 'future')`, latest+1); err != nil {
		t.Fatal(err)
	}
	if err := dbs[0].Migrate(ctx); !errors.Is(err, migrations.ErrSchemaTooNew) {
		t.Fatalf("Migrate on a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenHidesThePassword(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://sesame:s3cr3t@localhost:notaport/sesame")
	if err == nil {
		t.Fatal("Open with a bad URL succeeded")
	}
	if msg := err.Error(); strings.Contains(msg, "s3cr3t") {
		t.Fatalf("error %q shows the password", msg)
	}
}
