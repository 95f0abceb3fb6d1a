package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/sesame-idp/sesame/migrations"
)

// Migrate applies the migrations the database lacks, in order, one
// transaction per file. Each transaction begins IMMEDIATE, so it holds the
// write lock of the file from reading the version to recording the new one:
// two processes cannot race. It refuses, with migrations.ErrSchemaTooNew, a
// database written by a newer binary.
func (db *DB) Migrate(ctx context.Context) error {
	all, err := migrations.Load(migrations.SQLite)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	for {
		done, err := db.migrateNext(ctx, all)
		if err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		if done {
			return nil
		}
	}
}

// migrateNext applies the first pending migration, if any.
func (db *DB) migrateNext(ctx context.Context, all []migrations.Migration) (done bool, err error) {
	const recordSQL = `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`

	err = inTx(ctx, db.write, func(q queries) error {
		current, err := schemaVersion(ctx, q.w)
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
		if _, err := q.w.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("%04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := q.w.ExecContext(ctx, recordSQL, m.Version, m.Name, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("%04d_%s: record: %w", m.Version, m.Name, err)
		}
		return nil
	})
	return done, err
}

// SchemaVersion returns the version of the newest migration applied, 0 for
// an empty database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	v, err := schemaVersion(ctx, db.read)
	if err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	return v, nil
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	const (
		tableSQL   = `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')`
		versionSQL = `SELECT COALESCE(max(version), 0) FROM schema_migrations`
	)
	var exists bool
	if err := q.QueryRowContext(ctx, tableSQL).Scan(&exists); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := q.QueryRowContext(ctx, versionSQL).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
