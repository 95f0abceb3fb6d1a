package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/sesame-idp/sesame/idp/store"
)

const auditEventCols = `id, at, type, actor_id, user_id, client_id, ip, request_id, details`

func scanAuditEvent(row row) (store.AuditEvent, error) {
	var e store.AuditEvent
	err := row.Scan(&e.ID, (*timeCol)(&e.At), &e.Type, &e.ActorID, &e.UserID, &e.ClientID, &e.IP,
		&e.RequestID, (*mapCol)(&e.Details))
	return e, mapErr(err)
}

// AppendAuditEvent stores e, with a new ID when e.ID is empty.
func (q queries) AppendAuditEvent(ctx context.Context, e store.AuditEvent) error {
	const query = `INSERT INTO audit_events (` + auditEventCols + `) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)`

	if e.ID == "" {
		e.ID = newID()
	}
	_, err := q.w.ExecContext(ctx, query, e.ID, ts(e.At), e.Type, e.ActorID, e.UserID, e.ClientID, e.IP,
		e.RequestID, jsonMap(e.Details))
	if err != nil {
		return fmt.Errorf("append audit event %s: %w", e.Type, mapErr(err))
	}
	return nil
}

// ListAuditEvents returns the newest events first (ties by ID, descending).
func (q queries) ListAuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	// The conditions are fixed fragments; only the values are parameters.
	var (
		where []string
		args  []any
	)
	cond := func(fragment string, arg any) {
		where = append(where, fragment)
		args = append(args, arg)
	}
	if f.UserID != "" {
		cond("user_id = ?", f.UserID)
	}
	if f.Type != "" {
		cond("type = ?", f.Type)
	}
	if f.ActorID != "" {
		cond("actor_id = ?", f.ActorID)
	}
	if !f.Since.IsZero() {
		cond("at >= ?", ts(f.Since))
	}
	if !f.Before.IsZero() && f.BeforeID != "" {
		where = append(where, "(at < ? OR (at = ? AND id < ?))")
		args = append(args, ts(f.Before), ts(f.Before), f.BeforeID)
	} else if !f.Before.IsZero() {
		cond("at < ?", ts(f.Before))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	query := `SELECT ` + auditEventCols + ` FROM audit_events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	query += ` ORDER BY at DESC, id DESC LIMIT ?`

	rows, err := q.r.QueryContext(ctx, query, args...)
	events, err := collect(rows, err, scanAuditEvent)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return events, nil
}
