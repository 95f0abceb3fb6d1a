package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sesame-idp/sesame/idp/store"
)

// Sender delivers outbox messages of one kind. Send returns nil once the
// message is accepted (by the relay, the gateway); an error wrapping
// ErrPermanent when retrying cannot help; any other error is retried.
// Senders must honour ctx's deadline and must not log the payload.
type Sender interface {
	Send(ctx context.Context, m store.OutboxMessage) error
}

// ErrPermanent marks a failure that retrying will not cure (a malformed
// payload, an address the relay refuses). Test with errors.Is.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds. It
// returns nil for nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// LogSender is the sender used when no relay or gateway is configured: it
// logs that a message would have been sent (kind, recipient, subject,
// idempotency key), never its body, which carries activation links and
// codes. With it, nothing reaches users.
type LogSender struct {
	Logger *slog.Logger
}

var _ Sender = LogSender{}

// Send logs m and reports success.
func (s LogSender) Send(ctx context.Context, m store.OutboxMessage) error {
	attrs := []slog.Attr{
		slog.String("kind", m.Kind),
		slog.String("outbox_id", m.ID),
		slog.String("idempotency_key", m.IdempotencyKey),
	}
	switch m.Kind {
	case KindEmail:
		var e Email
		if err := json.Unmarshal(m.Payload, &e); err != nil {
			return Permanent(fmt.Errorf("decode email payload: %w", err))
		}
		attrs = append(attrs, slog.String("to", e.To), slog.String("subject", e.Subject))
	case KindSMS:
		var sms SMS
		if err := json.Unmarshal(m.Payload, &sms); err != nil {
			return Permanent(fmt.Errorf("decode sms payload: %w", err))
		}
		attrs = append(attrs, slog.String("to", sms.To))
	}
	logger(s.Logger).LogAttrs(ctx, slog.LevelWarn,
		"message not delivered: no sender configured, only logged (body withheld)", attrs...)
	return nil
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
