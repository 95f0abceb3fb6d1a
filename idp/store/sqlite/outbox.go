package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

const outboxCols = `id, kind, idempotency_key, payload, attempts, next_attempt_at, sent_at, last_error, created_at,
	then_id, then_kind, then_key, then_payload`

func scanOutboxMessage(row row) (store.OutboxMessage, error) {
	var m store.OutboxMessage
	var then store.OutboxMessage
	err := row.Scan(&m.ID, &m.Kind, &m.IdempotencyKey, &m.Payload, &m.Attempts,
		(*timeCol)(&m.NextAttemptAt), (*timeCol)(&m.SentAt), &m.LastError, (*timeCol)(&m.CreatedAt),
		&then.ID, &then.Kind, &then.IdempotencyKey, &then.Payload)
	if then.ID != "" {
		m.Then = &then
	}
	return m, mapErr(err)
}

// EnqueueOutbox stores m, with a new ID when m.ID is empty. A zero
// NextAttemptAt means due at once; an empty IdempotencyKey opts out of
// deduplication.
func (q queries) EnqueueOutbox(ctx context.Context, m store.OutboxMessage) error {
	const query = `INSERT INTO outbox (` + outboxCols + `) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)`

	if m.ID == "" {
		m.ID = newID()
	}
	var then store.OutboxMessage
	if m.Then != nil {
		then = *m.Then
		if then.ID == "" {
			then.ID = newID()
		}
	}
	_, err := q.w.ExecContext(ctx, query, m.ID, m.Kind, m.IdempotencyKey, blob(m.Payload), m.Attempts,
		ts(m.NextAttemptAt), ts(m.SentAt), m.LastError, ts(m.CreatedAt), then.ID, then.Kind, then.IdempotencyKey,
		blob(then.Payload))
	if err != nil {
		return fmt.Errorf("enqueue %s message %s: %w", m.Kind, m.ID, mapErr(err))
	}
	return nil
}

func (q queries) GetOutboxMessage(ctx context.Context, id string) (store.OutboxMessage, error) {
	const query = `SELECT ` + outboxCols + ` FROM outbox WHERE id = ?1`

	m, err := scanOutboxMessage(q.r.QueryRowContext(ctx, query, id))
	if err != nil {
		return store.OutboxMessage{}, fmt.Errorf("get outbox message %s: %w", id, err)
	}
	return m, nil
}

// ClaimOutbox is one statement on the one write connection: concurrent
// claims are serialised and take disjoint sets.
func (q queries) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.OutboxMessage, error) {
	const query = `UPDATE outbox SET next_attempt_at = ?2, attempts = attempts + 1
		WHERE id IN (
			SELECT id FROM outbox
			WHERE sent_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)
			ORDER BY created_at, id
			LIMIT ?3
		)
		RETURNING ` + outboxCols

	if limit <= 0 {
		return nil, nil
	}
	rows, err := q.w.QueryContext(ctx, query, ts(now), ts(now.Add(lease)), limit)
	msgs, err := collect(rows, err, scanOutboxMessage)
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	// RETURNING follows no order.
	slices.SortFunc(msgs, func(a, b store.OutboxMessage) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return msgs, nil
}

func (q queries) MarkOutboxSent(ctx context.Context, id string, at time.Time) error {
	const query = `UPDATE outbox SET sent_at = ?2 WHERE id = ?1`

	err := q.atomic(ctx, func(q queries) error {
		if err := affected(q.w.ExecContext(ctx, query, id, ts(at))); err != nil {
			return err
		}
		return q.completeOnSent(ctx, id, at)
	})
	if err != nil {
		return fmt.Errorf("mark outbox message %s sent: %w", id, err)
	}
	return nil
}

func (q queries) MarkOutboxFailed(ctx context.Context, id string, nextAttempt time.Time, lastError string) error {
	const query = `UPDATE outbox SET next_attempt_at = ?2, last_error = ?3 WHERE id = ?1`

	if err := affected(q.w.ExecContext(ctx, query, id, ts(nextAttempt), lastError)); err != nil {
		return fmt.Errorf("mark outbox message %s failed: %w", id, err)
	}
	return nil
}
