package notify

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/teststore"
)

// recordingSender records what it is given. Until both workers of the test
// hold a claimed batch, the first send of each waits for the other: the
// two claims are then concurrent, and must be disjoint.
type recordingSender struct {
	mu    sync.Mutex
	sent  map[string]int // message id → sends
	ready [2]chan struct{}
	once  [2]sync.Once
}

func (r *recordingSender) forWorker(w int) Sender {
	return senderFunc(func(ctx context.Context, m store.OutboxMessage) error {
		r.mu.Lock()
		r.sent[m.ID]++
		r.mu.Unlock()
		first := false
		r.once[w].Do(func() { first = true; close(r.ready[w]) })
		if first {
			select {
			case <-r.ready[1-w]:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
}

type senderFunc func(ctx context.Context, m store.OutboxMessage) error

func (f senderFunc) Send(ctx context.Context, m store.OutboxMessage) error { return f(ctx, m) }

// TestTwoWorkersSendEachMessageOnce: two workers (two nodes) drain one
// outbox of N messages, claiming at the same time: every message is sent
// exactly once, and all are marked sent.
func TestTwoWorkersSendEachMessageOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		const n = 120
		for i := range n {
			enqueueWelcome(t, s, fmt.Sprintf("welcome:%d", i))
		}
		clk := &clock{t: t0}
		rec := &recordingSender{sent: map[string]int{}, ready: [2]chan struct{}{make(chan struct{}), make(chan struct{})}}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for w := range 2 {
			worker := &Worker{Store: s, Senders: map[string]Sender{KindEmail: rec.forWorker(w)}, Now: clk.Now, Batch: 7}
			wg.Go(func() {
				for {
					got, err := worker.RunOnce(ctx)
					if err != nil {
						errs <- err
						return
					}
					if got == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if len(rec.sent) != n {
			t.Errorf("%d messages sent, want %d", len(rec.sent), n)
		}
		for id, c := range rec.sent {
			if c != 1 {
				t.Errorf("message %s sent %d times", id, c)
			}
		}
		for i := range n {
			if m := message(t, s, fmt.Sprintf("welcome:%d", i)); m.SentAt.IsZero() || m.Attempts != 1 {
				t.Errorf("welcome:%d: sent at %v after %d attempts, want sent after 1", i, m.SentAt, m.Attempts)
			}
		}
	})
}

// TestClaimSkipsMessagesBeingClaimed (PostgreSQL; SQLite runs one node):
// while another node's claim is still uncommitted, a claim takes the other
// messages at once, neither waiting for the first nor taking its messages
// (FOR UPDATE SKIP LOCKED).
func TestClaimSkipsMessagesBeingClaimed(t *testing.T) {
	s := teststore.Postgres(t)
	for i := range 6 {
		enqueueWelcome(t, s, fmt.Sprintf("skip:%d", i))
	}
	const lease = time.Minute
	held := make(chan []store.OutboxMessage)
	release := make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- s.InTx(t.Context(), func(tx store.Tx) error {
			msgs, err := tx.ClaimOutbox(t.Context(), t0, lease, 2)
			if err != nil {
				close(held)
				return err
			}
			held <- msgs
			<-release
			return nil
		})
	}()
	first, ok := <-held
	if !ok || len(first) != 2 {
		t.Fatalf("first claim: %d messages, want 2 (%v)", len(first), <-txDone)
	}
	// A claim that waited for the first would hang until the first commits:
	// give up long before the test's own timeout.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	second, err := s.ClaimOutbox(ctx, t0, lease, 10)
	cancel()
	close(release)
	if err := <-txDone; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("second claim while the first is uncommitted: %v (it waited for the first's rows)", err)
	}
	if len(second) != 4 {
		t.Errorf("second claim: %d messages, want the 4 others", len(second))
	}
	for _, m := range second {
		for _, f := range first {
			if m.ID == f.ID {
				t.Errorf("message %s claimed by both", m.ID)
			}
		}
	}
}
