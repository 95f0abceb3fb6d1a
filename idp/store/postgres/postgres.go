package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sesame-idp/sesame/idp/store"
)

// DB is the PostgreSQL store. Its methods are safe for concurrent use.
type DB struct {
	queries
	pool     *pgxpool.Pool
	boundary boundary
}

var _ store.Store = (*DB)(nil)

// DefaultTimeout bounds connecting and each statement (Options.Timeout).
const DefaultTimeout = 5 * time.Second

// Options tune Open.
type Options struct {
	// Timeout bounds connecting (unless the URL sets connect_timeout) and
	// each statement, with its wait for a connection of the pool: past
	// it the statement fails with store.ErrUnavailable. Zero is
	// DefaultTimeout; negative, no bound.
	Timeout time.Duration
}

// Open connects to the database at url (postgres://… or key=value form)
// and checks that it answers. It does not migrate: call Migrate.
func Open(ctx context.Context, url string) (*DB, error) {
	return OpenWith(ctx, url, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, and with it a password.
		return nil, errors.New("postgres: cannot parse the database URL")
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if cfg.ConnConfig.ConnectTimeout == 0 && timeout > 0 {
		cfg.ConnConfig.ConnectTimeout = timeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	b := boundary{q: pool, timeout: max(timeout, 0)}
	return &DB{queries: queries{q: b}, pool: pool, boundary: b}, nil
}

// Close closes every connection of the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", classify(err))
	}
	return nil
}

// InTx runs fn in one transaction (the server's default isolation, READ
// COMMITTED): committed when fn returns nil, rolled back otherwise (and on
// panic). The error of fn is returned as is.
//
// When a statement fails (a unique or foreign key violation…), PostgreSQL
// aborts the transaction: after such an error, fn should return it. A lost
// compare-and-set (AdvanceTOTPStep, RotateRefreshToken, Consume*) is not a
// failed statement, and RotateRefreshToken and ReplaceRecoveryCodes run in
// a savepoint: after their errors the transaction goes on, as on SQLite.
// The store.Tx must not be used by several goroutines at once, nor after fn
// returns.
func (db *DB) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	tx, err := db.boundary.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // no-op once committed
	if err := fn(queries{q: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", mapErr(err))
	}
	return nil
}

// querier is what the pool and a transaction have in common, so that one
// set of methods (queries) serves both. Begin on a transaction makes a
// savepoint.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// queries implements store.Tx on the pool or on a transaction.
type queries struct {
	q querier
}

// atomic runs fn in a transaction of its own on the pool, or in a savepoint
// inside a transaction, for the few operations that take several statements.
func (q queries) atomic(ctx context.Context, fn func(q queries) error) error {
	return pgx.BeginFunc(ctx, q.q, func(tx pgx.Tx) error { return fn(queries{q: tx}) })
}

// guarded runs fn as is on the pool, where its one statement is atomic, and
// in a savepoint inside a transaction, so that its failure does not abort
// the transaction: a caller may go on after a lost rotation, as on SQLite.
func (q queries) guarded(ctx context.Context, fn func(q queries) error) error {
	if _, inTx := q.q.(pgx.Tx); !inTx {
		return fn(q)
	}
	return q.atomic(ctx, fn)
}

// lostOrMissing tells why a compare-and-set changed no row: store.ErrConflict
// when the row exists (the condition did not hold), store.ErrNotFound when
// it does not. existsSQL is a SELECT EXISTS (…) on args.
func (q queries) lostOrMissing(ctx context.Context, existsSQL string, args ...any) error {
	var exists bool
	if err := q.q.QueryRow(ctx, existsSQL, args...).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return store.ErrConflict
	}
	return store.ErrNotFound
}

// mapErr turns driver errors into the store's sentinels: no rows and foreign
// keys pointing nowhere are store.ErrNotFound, unique violations
// store.ErrConflict. Other errors are returned as they are.
func mapErr(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w (%s)", store.ErrConflict, pgErr.ConstraintName)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w (%s)", store.ErrNotFound, pgErr.ConstraintName)
		}
	}
	return err
}

// affected turns "no row changed" into store.ErrNotFound.
func affected(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// collect scans every row with scan.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// newID returns a UUIDv7: unique, and ordered by creation within a process.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// ts is the parameter for a timestamptz column: NULL for the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// timeCol scans a timestamptz column into a time.Time, in UTC; NULL gives
// the zero time. Use as (*timeCol)(&v.Field) in a Scan list.
type timeCol time.Time

func (c *timeCol) ScanTimestamptz(v pgtype.Timestamptz) error {
	switch {
	case !v.Valid:
		*c = timeCol{}
	case v.InfinityModifier != pgtype.Finite:
		return errors.New("infinite timestamp")
	default:
		*c = timeCol(v.Time.UTC())
	}
	return nil
}

// blob is the parameter for a bytea column: NULL when empty.
func blob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// jsonList is the parameter for a jsonb array column.
func jsonList(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v) // cannot fail for []string
	return string(b)
}

// jsonMap is the parameter for a jsonb object column.
func jsonMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // cannot fail for map[string]string
	return string(b)
}

// listCol scans a jsonb array column; an empty array gives nil. Use as
// (*listCol)(&v.Field) in a Scan list.
type listCol []string

func (c *listCol) Scan(src any) error {
	b, ok := src.([]byte)
	if !ok {
		return fmt.Errorf("scan JSON array: unexpected %T", src)
	}
	var v []string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("scan JSON array: %w", err)
	}
	if len(v) == 0 {
		v = nil
	}
	*c = v
	return nil
}

// mapCol scans a jsonb object column; an empty object gives nil.
type mapCol map[string]string

func (c *mapCol) Scan(src any) error {
	b, ok := src.([]byte)
	if !ok {
		return fmt.Errorf("scan JSON object: unexpected %T", src)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("scan JSON object: %w", err)
	}
	if len(m) == 0 {
		m = nil
	}
	*c = m
	return nil
}

// PoolStat returns the connection pool's statistics, for the metrics.
func (db *DB) PoolStat() *pgxpool.Stat { return db.pool.Stat() }

// signingKeysLock is the advisory lock key of the signing keys (any
// constant unique to them).
const signingKeysLock = 0x5e5a3e_0001

// LockSigningKeys holds a transaction-level advisory lock until the
// transaction ends, so that the nodes changing the signing keys (a
// rotation, the first start) do it one after the other: the second one
// then sees the first one's keys and has nothing left to do. Outside a
// transaction it is held for the statement only.
func (q queries) LockSigningKeys(ctx context.Context) error {
	const query = `SELECT pg_advisory_xact_lock($1)`

	if _, err := q.q.Exec(ctx, query, int64(signingKeysLock)); err != nil {
		return fmt.Errorf("lock signing keys: %w", mapErr(err))
	}
	return nil
}
