package audit

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/store"
)

type ctxKey struct{}

// WithRequestID returns a context whose audit events carry the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// Recorder appends audit events to the durable store.
type Recorder struct {
	Store  store.Store
	Logger *slog.Logger
	Now    func() time.Time
	// Observe, when set, sees every event Record is given (the metrics).
	Observe func(store.AuditEvent)
}

// Record appends e, filling its id, time and request id. A failure is
// logged and returned: the action the event records must then fail (a
// 503), so that nothing happens unaudited. Writes that must be atomic
// with a change use Event and tx.AppendAuditEvent instead.
func (r *Recorder) Record(ctx context.Context, e store.AuditEvent) error {
	e = r.Event(ctx, e)
	if r.Observe != nil {
		r.Observe(e)
	}
	if err := r.Store.AppendAuditEvent(ctx, e); err != nil {
		r.Logger.Error("audit event not recorded", "type", e.Type, "err", err, "request_id", e.RequestID)
		return fmt.Errorf("audit %s: %w", e.Type, err)
	}
	return nil
}

// Event fills e's id, time and request id.
func (r *Recorder) Event(ctx context.Context, e store.AuditEvent) store.AuditEvent {
	if e.ID == "" {
		e.ID = uuid.NewString()
	}
	if e.At.IsZero() {
		if r.Now != nil {
			e.At = r.Now().UTC()
		} else {
			e.At = time.Now().UTC()
		}
	}
	if e.RequestID == "" {
		e.RequestID, _ = ctx.Value(ctxKey{}).(string)
	}
	NoteUser(ctx, e.UserID)
	return e
}
