package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sesame-idp/sesame/idp/store"
)

// classify marks an error of the database itself with store.ErrUnavailable,
// once, where every statement's error comes out (boundary): a refused or
// broken connection, a timeout, a server shutting down or out of
// resources. A statement's own failure (no rows, a constraint, a bad
// query) is returned as is, for mapErr.
func classify(err error) error {
	switch {
	case err == nil, errors.Is(err, pgx.ErrNoRows), errors.Is(err, store.ErrUnavailable):
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"28", // invalid authorization (the server refused this node)
			"40", // transaction rollback: serialization failure, deadlock
			"53", // insufficient resources: too many connections, disk full
			"55", // object not in prerequisite state: lock not available
			"57", // operator intervention: admin shutdown, cannot connect now
			"58": // system error
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return err
	}
	var scanErr pgx.ScanArgError
	if errors.As(err, &scanErr) {
		return err // a column that does not fit its Go value: a bug
	}
	// No answer from the server: dial refused, connection lost, the
	// context's deadline.
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// boundary is a querier whose errors go through classify, and whose
// statements (with their wait for a connection of the pool) end within
// timeout: the pool, or a transaction (then it is a pgx.Tx, which guarded
// tells apart).
type boundary struct {
	q       querier
	timeout time.Duration
}

func (b boundary) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if b.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, b.timeout)
}

func (b boundary) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	tag, err := b.q.Exec(ctx, sql, args...)
	return tag, classify(err)
}

func (b boundary) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	ctx, cancel := b.bound(ctx)
	rows, err := b.q.Query(ctx, sql, args...)
	if err != nil {
		cancel()
		return nil, classify(err)
	}
	return boundaryRows{Rows: rows, cancel: cancel}, nil
}

func (b boundary) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	ctx, cancel := b.bound(ctx)
	return boundaryRow{r: b.q.QueryRow(ctx, sql, args...), cancel: cancel}
}

func (b boundary) Begin(ctx context.Context) (pgx.Tx, error) {
	bctx, cancel := b.bound(ctx)
	defer cancel()
	tx, err := b.q.Begin(bctx)
	if err != nil {
		return nil, classify(err)
	}
	return boundaryTx{Tx: tx, timeout: b.timeout}, nil
}

// boundaryTx is a transaction (or savepoint) whose errors are classified
// and whose statements are bounded.
type boundaryTx struct {
	pgx.Tx
	timeout time.Duration
}

func (t boundaryTx) inner() boundary { return boundary{q: t.Tx, timeout: t.timeout} }

func (t boundaryTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.inner().Exec(ctx, sql, args...)
}

func (t boundaryTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.inner().Query(ctx, sql, args...)
}

func (t boundaryTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.inner().QueryRow(ctx, sql, args...)
}

func (t boundaryTx) Begin(ctx context.Context) (pgx.Tx, error) { return t.inner().Begin(ctx) }

func (t boundaryTx) Commit(ctx context.Context) error {
	ctx, cancel := t.inner().bound(ctx)
	defer cancel()
	return classify(t.Tx.Commit(ctx))
}

type boundaryRow struct {
	r      pgx.Row
	cancel context.CancelFunc
}

func (r boundaryRow) Scan(dest ...any) error {
	defer r.cancel()
	return classify(r.r.Scan(dest...))
}

type boundaryRows struct {
	pgx.Rows
	cancel context.CancelFunc
}

func (r boundaryRows) Scan(dest ...any) error { return classify(r.Rows.Scan(dest...)) }
func (r boundaryRows) Err() error             { return classify(r.Rows.Err()) }
func (r boundaryRows) Close() {
	r.Rows.Close()
	r.cancel()
}
