package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sesame-idp/sesame/migrations"
)

// The migration lock is a session-level advisory lock keyed on the current
// schema, so that nodes starting together take turns, and that schemas of
// one database (tests) do not wait for each other. It is taken before each
// migration's transaction begins, so that the transaction sees the catalog
// as the previous holder left it (a transaction-level lock, taken inside,
// would leave the backend's catalog caches as they were when it began).
const (
	lockMigrationsSQL   = `SELECT pg_advisory_lock(hashtextextended('sesame.migrations.' || current_schema(), 0))`
	unlockMigrationsSQL = `SELECT pg_advisory_unlock(hashtextextended('sesame.migrations.' || current_schema(), 0))`
)

// Migrate applies the migrations the database lacks, in order, one
// transaction per file, under an advisory lock. It refuses, with
// migrations.ErrSchemaTooNew, a database written by a newer binary.
func (db *DB) Migrate(ctx context.Context) error {
	all, err := migrations.Load(migrations.Postgres)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if _, err := conn.Exec(ctx, lockMigrationsSQL); err != nil {
		conn.Release()
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	defer unlock(ctx, conn)

	for {
		done, err := migrateNext(ctx, conn, all)
		if err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		if done {
			return nil
		}
	}
}

// unlock releases the migration lock and the connection; when the lock
// cannot be released, it closes the connection, which releases it too.
func unlock(ctx context.Context, conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, unlockMigrationsSQL); err != nil {
		_ = conn.Hijack().Close(ctx)
		return
	}
	conn.Release()
}

// migrateNext applies the first pending migration, if any, in a transaction
// that reads the version and records the new one.
func migrateNext(ctx context.Context, conn *pgxpool.Conn, all []migrations.Migration) (done bool, err error) {
	const recordSQL = `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())`

	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
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
