package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/store"
)

// Outbox message kinds, the keys of Worker.Senders.
const (
	KindEmail = "email"
	KindSMS   = "sms"
)

// Email is the payload of an "email" outbox message. At least one of Text
// and HTML is set; with both, the message is multipart/alternative.
type Email struct {
	To      string `json:"to"` // one address, "name <addr>" or addr
	Subject string `json:"subject"`
	Text    string `json:"text,omitempty"`
	HTML    string `json:"html,omitempty"`
	Lang    string `json:"lang,omitempty"` // BCP 47, e.g. fr-CA: Content-Language
}

// SMS is the payload of an "sms" outbox message.
type SMS struct {
	To   string `json:"to"` // E.164
	Body string `json:"body"`
	// ExpiresAt, when set, is when the text stops being worth sending (the
	// code it carries has expired): the worker gives it up instead.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

const (
	maxSubjectBytes = 400
	maxSMSRunes     = 1600
)

var (
	langRE  = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)
	e164RE  = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	idSpace = uuid.MustParse("5b0d6a52-3c1e-4f0e-9a57-2f9c2f6c1d0e")
)

// EnqueueEmail writes e to the outbox in tx, so that it is sent if and only
// if tx commits. idempotencyKey names the event that causes the email (e.g.
// "activation-email:<user id>"); it is unique across kinds. A message
// already queued under the key is not queued again, and that is not an
// error.
func EnqueueEmail(ctx context.Context, tx store.Tx, idempotencyKey string, e Email, now time.Time) error {
	if err := e.validate(); err != nil {
		return fmt.Errorf("notify: email %s: %w", idempotencyKey, err)
	}
	return enqueue(ctx, tx, KindEmail, idempotencyKey, e, now)
}

// EnqueueEmailThen is EnqueueEmail with a follow-up: then (an outbox
// message with ID, Kind, IdempotencyKey and Payload; nil for none) is
// queued by the store in the same transaction that marks e sent, so that
// it never leaves before e has (the requester's confirmation after the new
// user's welcome).
func EnqueueEmailThen(ctx context.Context, tx store.Tx, idempotencyKey string, e Email, then *store.OutboxMessage, now time.Time) error {
	if err := e.validate(); err != nil {
		return fmt.Errorf("notify: email %s: %w", idempotencyKey, err)
	}
	if then != nil {
		if then.ID == "" || then.IdempotencyKey == "" || then.Kind == "" {
			return fmt.Errorf("notify: email %s: follow-up without id, kind or key", idempotencyKey)
		}
		if then.Kind == KindEmail {
			var f Email
			if err := json.Unmarshal(then.Payload, &f); err != nil {
				return fmt.Errorf("notify: email %s: follow-up: %w", idempotencyKey, err)
			}
			if err := f.validate(); err != nil {
				return fmt.Errorf("notify: email %s: follow-up: %w", idempotencyKey, err)
			}
		}
	}
	return enqueueThen(ctx, tx, KindEmail, idempotencyKey, e, then, now)
}

// EnqueueSMS writes s to the outbox in tx, as EnqueueEmail does.
func EnqueueSMS(ctx context.Context, tx store.Tx, idempotencyKey string, s SMS, now time.Time) error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("notify: sms %s: %w", idempotencyKey, err)
	}
	return enqueue(ctx, tx, KindSMS, idempotencyKey, s, now)
}

// enqueue stores the message under an ID derived from the key and looks
// that ID up first: on PostgreSQL a failed INSERT aborts the caller's
// transaction, so the usual duplicate must not reach the unique index. Two
// transactions racing with the same key still meet there; the loser gets
// store.ErrConflict, taken as success here, and on PostgreSQL its commit
// fails.
func enqueue(ctx context.Context, tx store.Tx, kind, key string, payload any, now time.Time) error {
	return enqueueThen(ctx, tx, kind, key, payload, nil, now)
}

func enqueueThen(ctx context.Context, tx store.Tx, kind, key string, payload any, then *store.OutboxMessage, now time.Time) error {
	if key == "" {
		return fmt.Errorf("notify: %s: empty idempotency key", kind)
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("notify: %s %s: %w", kind, key, err)
	}
	id := outboxID(key)
	switch _, err := tx.GetOutboxMessage(ctx, id); {
	case err == nil:
		return nil // already queued
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("notify: %s %s: %w", kind, key, err)
	}
	err = tx.EnqueueOutbox(ctx, store.OutboxMessage{
		ID:             id,
		Kind:           kind,
		IdempotencyKey: key,
		Payload:        b,
		CreatedAt:      now,
		Then:           then,
		// NextAttemptAt zero: due at once, whatever the workers' clocks say.
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("notify: %s %s: %w", kind, key, err)
	}
	return nil
}

// OutboxID is the outbox ID of the message queued under idempotencyKey
// (store.Store.GetOutboxMessage tells whether it was sent).
func OutboxID(idempotencyKey string) string { return outboxID(idempotencyKey) }

// GaveUp reports whether the worker gave m up: a permanent failure (a 4xx
// from the gateway), too many attempts, or an expired text.
func GaveUp(m store.OutboxMessage) bool {
	return m.SentAt.IsZero() && strings.HasPrefix(m.LastError, gaveUpPrefix)
}

// outboxID is the ID of the message of an idempotency key.
func outboxID(key string) string {
	return uuid.NewSHA1(idSpace, []byte(key)).String()
}

func (e Email) validate() error {
	if _, err := parseRecipient(e.To); err != nil {
		return err
	}
	if e.Subject == "" {
		return errors.New("empty subject")
	}
	if err := headerSafe("subject", e.Subject); err != nil {
		return err
	}
	if len(e.Subject) > maxSubjectBytes {
		return fmt.Errorf("subject longer than %d bytes", maxSubjectBytes)
	}
	if e.Text == "" && e.HTML == "" {
		return errors.New("no body")
	}
	if !utf8.ValidString(e.Text) || !utf8.ValidString(e.HTML) {
		return errors.New("body is not valid UTF-8")
	}
	if e.Lang != "" && (len(e.Lang) > 35 || !langRE.MatchString(e.Lang)) {
		return fmt.Errorf("lang %q is not a language tag", e.Lang)
	}
	return nil
}

// parseRecipient parses an email's To: exactly one address, no control
// characters (CR and LF would inject headers).
func parseRecipient(to string) (*mail.Address, error) {
	if err := headerSafe("to", to); err != nil {
		return nil, err
	}
	a, err := mail.ParseAddress(to)
	if err != nil {
		return nil, fmt.Errorf("to: not an email address: %w", err)
	}
	if strings.ContainsAny(a.Address, "<>\"\\ ") {
		return nil, errors.New("to: not a plain address")
	}
	return a, nil
}

// headerSafe refuses what cannot go into a header line: invalid UTF-8 and
// control characters, CR and LF first.
func headerSafe(name, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8", name)
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return fmt.Errorf("%s contains a control character (CR/LF: header injection)", name)
	}
	return nil
}

func (s SMS) validate() error {
	if !e164RE.MatchString(s.To) {
		return errors.New("to: not an E.164 phone number")
	}
	if s.Body == "" {
		return errors.New("empty body")
	}
	if !utf8.ValidString(s.Body) {
		return errors.New("body is not valid UTF-8")
	}
	if utf8.RuneCountInString(s.Body) > maxSMSRunes {
		return fmt.Errorf("body longer than %d characters", maxSMSRunes)
	}
	return nil
}
