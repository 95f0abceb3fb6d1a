package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sesame-idp/sesame/idp/store"
)

// Worker defaults.
const (
	DefaultLease       = time.Minute
	DefaultBatch       = 10
	DefaultPollEvery   = 2 * time.Second
	DefaultMaxAttempts = 12

	backoffBase = 30 * time.Second
	backoffCap  = time.Hour
	// A message given up is parked this far ahead, out of every claim.
	giveUpDelay = 100 * 365 * 24 * time.Hour
	// Marking a message sent or failed gets its own time: a worker told to
	// stop right after a send should still record it.
	markTimeout   = 10 * time.Second
	maxLastError  = 1000
	outcomeSent   = "sent"
	outcomeFailed = "failed"
	outcomeGaveUp = "given_up"
	// gaveUpPrefix starts the last error of a message given up.
	gaveUpPrefix = "gave up"
)

// Worker delivers the outbox: it claims due messages for a lease, hands each
// to the Sender of its kind and records the outcome. Several workers, on one
// node or several, may run on the same store. Set the fields, then call
// Run; do not copy a Worker after first use.
type Worker struct {
	Store   store.Store
	Senders map[string]Sender // by kind: KindEmail, KindSMS
	Logger  *slog.Logger
	Now     func() time.Time // time.Now when nil

	// Lease is how long a claimed message is withheld from other workers
	// (DefaultLease when zero). A worker sends a batch only during the first
	// three quarters of it, in real time; it must exceed a sender's timeout.
	Lease       time.Duration
	Batch       int           // messages per claim; DefaultBatch when zero
	PollEvery   time.Duration // idle wait between claims; DefaultPollEvery when zero
	MaxAttempts int           // attempts before giving up; DefaultMaxAttempts when zero

	// Registerer, when set, gets sesame_outbox_messages_total{kind,outcome}.
	Registerer prometheus.Registerer

	once     sync.Once
	poke     chan struct{}
	drain    chan struct{} // closed by Drain
	drainMu  sync.Once
	outcomes *prometheus.CounterVec
}

func (w *Worker) init() {
	w.once.Do(func() {
		w.poke = make(chan struct{}, 1)
		w.drain = make(chan struct{})
		if w.Registerer == nil {
			return
		}
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_outbox_messages_total",
			Help: "Outbox messages by kind and outcome: sent, failed (to be retried), given_up.",
		}, []string{"kind", "outcome"})
		if err := w.Registerer.Register(cv); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				w.logger().Error("outbox metrics not registered", "err", err)
				return
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return
			}
			cv = existing
		}
		for kind := range w.Senders {
			for _, o := range []string{outcomeSent, outcomeFailed, outcomeGaveUp} {
				cv.WithLabelValues(kind, o)
			}
		}
		w.outcomes = cv
	})
}

// Poke wakes a waiting Run at once, e.g. right after a transaction that
// enqueued a message has committed. It never blocks.
func (w *Worker) Poke() {
	w.init()
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// Drain asks Run to return between messages (a graceful stop): the
// message being sent is sent and its outcome recorded, the rest of the
// batch is left for the next claim. It never blocks; wait for Run to
// return before closing the store. Cancelling Run's context instead
// interrupts a send (the lease brings that message back).
func (w *Worker) Drain() {
	w.init()
	w.drainMu.Do(func() { close(w.drain) })
}

func (w *Worker) draining() bool {
	select {
	case <-w.drain:
		return true
	default:
		return false
	}
}

// Run delivers messages until ctx is done or Drain is called: it claims a
// batch, sends it, and claims again at once after a full batch, otherwise
// after PollEvery or a Poke. Errors are logged.
func (w *Worker) Run(ctx context.Context) {
	w.init()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if w.draining() {
			return
		}
		n, err := w.RunOnce(ctx)
		if ctx.Err() != nil || w.draining() {
			return
		}
		if err != nil {
			w.logger().ErrorContext(ctx, "outbox", "err", err)
		}
		if err == nil && n >= w.batch() {
			continue // more may be due
		}
		timer.Reset(w.pollEvery())
		select {
		case <-ctx.Done():
			return
		case <-w.drain:
			return
		case <-w.poke:
		case <-timer.C:
		}
	}
}

// RunOnce claims one batch of due messages and attempts each. It returns the
// number claimed, and the errors of the store (a send failure is recorded
// on its message, not returned).
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	w.init()
	lease := w.lease()
	// Past the lease another worker may claim these messages: stop sending
	// well before, in real time whatever Now says.
	sendCtx, cancel := context.WithTimeout(ctx, lease-lease/4)
	defer cancel()
	msgs, err := w.Store.ClaimOutbox(ctx, w.now(), lease, w.batch())
	if err != nil {
		return 0, fmt.Errorf("notify: claim outbox: %w", err)
	}
	var errs []error
	for i, m := range msgs {
		if w.draining() {
			w.logger().InfoContext(ctx, "outbox worker stopping: rest of the batch left for the next claim", "left", len(msgs)-i)
			break
		}
		if sendCtx.Err() != nil {
			if ctx.Err() == nil {
				w.logger().WarnContext(ctx, "outbox lease running out: rest of the batch left for the next claim",
					"left", len(msgs)-i)
			}
			break
		}
		if err := w.attempt(sendCtx, m); err != nil {
			errs = append(errs, err)
		}
	}
	return len(msgs), errors.Join(errs...)
}

// attempt sends m and records the outcome. It returns only store errors.
func (w *Worker) attempt(ctx context.Context, m store.OutboxMessage) error {
	log := w.logger().With("outbox_id", m.ID, "kind", m.Kind, "idempotency_key", m.IdempotencyKey, "attempts", m.Attempts)
	var err error
	if sender, ok := w.Senders[m.Kind]; !ok {
		err = fmt.Errorf("no sender for kind %q", m.Kind)
	} else if m.Kind == KindSMS && smsExpired(m, w.now()) {
		err = Permanent(errSMSExpired)
	} else {
		err = sender.Send(ctx, m)
	}

	markCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	now := w.now()
	switch {
	case err == nil:
		if err := w.Store.MarkOutboxSent(markCtx, m.ID, now); err != nil {
			log.ErrorContext(ctx, "outbox message sent but not marked: it will be sent again after the lease", "err", err)
			return fmt.Errorf("notify: mark %s sent: %w", m.ID, err)
		}
		w.count(m.Kind, outcomeSent)
		log.InfoContext(ctx, "outbox message sent")
		return nil

	case ctx.Err() != nil && !errors.Is(err, ErrPermanent):
		// Stopped, or out of lease, in the middle: whether the other side
		// got the message is unknown. The lease brings it back.
		log.WarnContext(ctx, "outbox message interrupted: retried after the lease", "err", err)
		return nil

	case errors.Is(err, ErrPermanent), m.Attempts >= w.maxAttempts():
		reason := fmt.Sprintf(gaveUpPrefix+" after %d attempts: %v", m.Attempts, err)
		if errors.Is(err, ErrPermanent) {
			reason = fmt.Sprintf(gaveUpPrefix+" (permanent failure) after %d attempts: %v", m.Attempts, err)
		}
		if err := w.Store.MarkOutboxFailed(markCtx, m.ID, now.Add(giveUpDelay), truncate(reason)); err != nil {
			return fmt.Errorf("notify: mark %s given up: %w", m.ID, err)
		}
		w.count(m.Kind, outcomeGaveUp)
		log.ErrorContext(ctx, "outbox message given up: not delivered", "err", err)
		return nil

	default:
		next := now.Add(backoffFor(m.Kind, m.Attempts))
		if err := w.Store.MarkOutboxFailed(markCtx, m.ID, next, truncate(err.Error())); err != nil {
			return fmt.Errorf("notify: mark %s failed: %w", m.ID, err)
		}
		w.count(m.Kind, outcomeFailed)
		log.WarnContext(ctx, "outbox message not sent: will retry", "err", err, "next_attempt_at", next)
		return nil
	}
}

// backoff is the wait after the attempts-th failed attempt: 30 s doubled at
// each attempt, capped at 1 h, with jitter that takes up to half of it
// away (so at least half of it is always waited).
func backoff(attempts int) time.Duration {
	d := backoffCap
	if attempts < 1 {
		attempts = 1
	}
	if attempts <= 8 { // 30 s << 7 > 1 h already
		d = min(backoffCap, backoffBase<<(attempts-1))
	}
	return d - rand.N(d/2+1)
}

// SMS carry codes that live minutes: they are retried sooner (5 s doubled,
// capped at 1 min) and given up once expired.
const (
	smsBackoffBase = 5 * time.Second
	smsBackoffCap  = time.Minute
)

var errSMSExpired = errors.New("expired before it could be delivered")

func backoffFor(kind string, attempts int) time.Duration {
	if kind != KindSMS {
		return backoff(attempts)
	}
	attempts = max(attempts, 1)
	d := smsBackoffCap
	if attempts <= 4 {
		d = min(smsBackoffCap, smsBackoffBase<<(attempts-1))
	}
	return d - rand.N(d/2+1)
}

func smsExpired(m store.OutboxMessage, now time.Time) bool {
	var sms SMS
	if json.Unmarshal(m.Payload, &sms) != nil {
		return false // the sender refuses it
	}
	return !sms.ExpiresAt.IsZero() && !now.Before(sms.ExpiresAt)
}

func truncate(s string) string {
	if len(s) <= maxLastError {
		return s
	}
	// Cut on a rune boundary.
	i := maxLastError
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "…"
}

func (w *Worker) count(kind, outcome string) {
	if w.outcomes != nil {
		w.outcomes.WithLabelValues(kind, outcome).Inc()
	}
}

func (w *Worker) logger() *slog.Logger { return logger(w.Logger) }

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Worker) lease() time.Duration {
	if w.Lease > 0 {
		return w.Lease
	}
	return DefaultLease
}

func (w *Worker) batch() int {
	if w.Batch > 0 {
		return w.Batch
	}
	return DefaultBatch
}

func (w *Worker) pollEvery() time.Duration {
	if w.PollEvery > 0 {
		return w.PollEvery
	}
	return DefaultPollEvery
}

func (w *Worker) maxAttempts() int {
	if w.MaxAttempts > 0 {
		return w.MaxAttempts
	}
	return DefaultMaxAttempts
}
