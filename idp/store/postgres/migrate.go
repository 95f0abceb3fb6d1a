package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sesame-idp/sesame/migrations"
)

// The migration lock is a transaction-level advisory lock keyed on the
// current schema, so that nodes starting together take turns, and that
// schemas of one database (tests) do not wait for each other.
const lockMigrationsSQL = `SELECT pg_advisory_xact_lock(hashtextextended('sesame.migrations.' || current_schema(), 0))`

// Migrate applies the migrations the database lacks, in order, one
// transaction per file, under an advisory lock. It refuses, with
// migrations.ErrSchemaTooNew, a database written by a newer binary.
func (db *DB) Migrate(ctx context.Context) error {
	all, err := migrations.Load(migrations.Postgres)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	for {
		done, err := db.migrateNext(ctx, all)
		if err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		if done {
			return nil
		}
	}
}

// migrateNext applies the first pending migration, if any, in a transaction
// that holds the lock from reading the version to recording the new one.
func (db *DB) migrateNext(ctx context.Context, all []migrations.Migration) (done bool, err error) {
	const recordSQL = `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())`

	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockMigrationsSQL); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		current, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		pending, err := migrations.Pending(all, current)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			done = true
			return nil
		}
		m := pending[0]
		// Without arguments, pgx uses the simple protocol: a file may hold
		// several statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("%04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, recordSQL, m.Version, m.Name); err != nil {
			return fmt.Errorf("%04d_%s: record: %w", m.Version, m.Name, err)
		}
		return nil
	})
	return done, err
}

// SchemaVersion returns the version of the newest migration applied, 0 for
// an empty database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	v, err := schemaVersion(ctx, db.pool)
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	return v, nil
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	const (
		tableSQL   = `SELECT to_regclass('schema_migrations') IS NOT NULL`
		versionSQL = `SELECT COALESCE(max(version), 0) FROM schema_migrations`
	)
	var exists bool
	if err := q.QueryRow(ctx, tableSQL).Scan(&exists); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := q.QueryRow(ctx, versionSQL).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
