package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sesame-idp/sesame/idp/store"
)

// DB is the SQLite store. Its methods are safe for concurrent use.
type DB struct {
	queries
	read  *sql.DB // read-only connections, used concurrently
	write *sql.DB // the one connection that writes
	stmts *stmtCache
}

var _ store.Store = (*DB)(nil)

// Connection settings. busy_timeout comes first so that the others wait
// for a lock instead of failing.
const (
	commonParams = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	writeParams  = commonParams + "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	readParams   = commonParams + "&_pragma=query_only(1)"
)

// Open opens the database file at path, creating it (mode 0600) if needed,
// and checks that it answers. It does not migrate: call Migrate. The
// directory must exist.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: %q: want the path of a file", path)
	}
	// The file holds password hashes and sealed keys: only the owner reads
	// it. SQLite gives the -wal and -shm files the same mode.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	name := "file:" + (&url.URL{Path: path}).EscapedPath() + "?"

	// The writer first: it turns WAL on.
	write, err := sql.Open("sqlite", name+writeParams)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	read, err := sql.Open("sqlite", name+readParams)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	stmts := newStmtCache(read)
	return &DB{queries: queries{r: stmts, w: write, pool: write}, read: read, write: write, stmts: stmts}, nil
}

// Close closes the connections.
func (db *DB) Close() error {
	db.stmts.close()
	return errors.Join(db.read.Close(), db.write.Close())
}

// Ping reports whether the database answers. It uses a read connection, so
// that it does not queue behind a write transaction.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// InTx runs fn in one transaction (BEGIN IMMEDIATE: it holds the write lock
// from the start, so it never fails to upgrade): committed when fn returns
// nil, rolled back otherwise (and on panic). The error of fn is returned as
// is. Writes of other goroutines wait until it ends, so fn must be short
// and must use the store.Tx it is given, never the DB, to write. The Tx
// must not be used by several goroutines at once, nor after fn returns.
func (db *DB) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	return inTx(ctx, db.write, func(q queries) error { return fn(q) })
}

func inTx(ctx context.Context, db *sql.DB, fn func(q queries) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op once committed
	if err := fn(queries{r: tx, w: tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", mapErr(err))
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common, so that one set of
// methods (queries) serves both.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries implements store.Tx. Outside a transaction, r is the read pool
// and w the write connection; inside one, both are the transaction.
type queries struct {
	r, w querier
	pool *sql.DB // the write pool, to begin transactions; nil inside one
}

// atomic runs fn in a transaction of its own, or in a savepoint inside a
// transaction, for the few operations that take several statements.
func (q queries) atomic(ctx context.Context, fn func(q queries) error) error {
	if q.pool != nil {
		return inTx(ctx, q.pool, fn)
	}
	if _, err := q.w.ExecContext(ctx, "SAVEPOINT atomic"); err != nil {
		return err
	}
	if err := fn(q); err != nil {
		if _, rbErr := q.w.ExecContext(ctx, "ROLLBACK TO atomic"); rbErr != nil {
			return errors.Join(err, rbErr)
		}
		_, _ = q.w.ExecContext(ctx, "RELEASE atomic")
		return err
	}
	_, err := q.w.ExecContext(ctx, "RELEASE atomic")
	return err
}

// lostOrMissing tells why a compare-and-set changed no row: store.ErrConflict
// when the row exists (the condition did not hold), store.ErrNotFound when
// it does not. existsSQL is a SELECT EXISTS (…) on args.
func (q queries) lostOrMissing(ctx context.Context, existsSQL string, args ...any) error {
	var exists bool
	if err := q.r.QueryRowContext(ctx, existsSQL, args...).Scan(&exists); err != nil {
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
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w (%s)", store.ErrConflict, e.Error())
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w (%s)", store.ErrNotFound, e.Error())
		}
		switch e.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
			// The file, not the data: unavailable.
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// rowsAffected returns the number of rows a statement changed.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, mapErr(err)
	}
	return res.RowsAffected()
}

// affected turns "no row changed" into store.ErrNotFound.
func affected(res sql.Result, err error) error {
	n, err := rowsAffected(res, err)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	return err
}

// row is what *sql.Row and *sql.Rows have in common.
type row interface {
	Scan(dest ...any) error
}

// collect scans every row with scan.
func collect[T any](rows *sql.Rows, err error, scan func(row) (T, error)) ([]T, error) {
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

// ts is the parameter for a timestamp column: unix microseconds, NULL for
// the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// timeCol scans a timestamp column into a time.Time, in UTC; NULL gives the
// zero time. Use as (*timeCol)(&v.Field) in a Scan list.
type timeCol time.Time

func (c *timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c = timeCol{}
	case int64:
		*c = timeCol(time.UnixMicro(v).UTC())
	default:
		return fmt.Errorf("scan timestamp: unexpected %T", src)
	}
	return nil
}

// blob is the parameter for a BLOB column: NULL when empty.
func blob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// jsonList is the parameter for a JSON array column.
func jsonList(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v) // cannot fail for []string
	return string(b)
}

// jsonMap is the parameter for a JSON object column.
func jsonMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // cannot fail for map[string]string
	return string(b)
}

// jsonBytes returns the text of a JSON column.
func jsonBytes(src any) ([]byte, error) {
	switch v := src.(type) {
	case string:
		return []byte(v), nil
	case []byte:
		return v, nil
	}
	return nil, fmt.Errorf("scan JSON: unexpected %T", src)
}

// listCol scans a JSON array column; an empty array gives nil. Use as
// (*listCol)(&v.Field) in a Scan list.
type listCol []string

func (c *listCol) Scan(src any) error {
	b, err := jsonBytes(src)
	if err != nil {
		return err
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

// mapCol scans a JSON object column; an empty object gives nil.
type mapCol map[string]string

func (c *mapCol) Scan(src any) error {
	b, err := jsonBytes(src)
	if err != nil {
		return err
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
