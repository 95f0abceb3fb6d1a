package regulate

import (
	"context"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral/ephemeraltest"
	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
)

func TestLegacyAttemptLimitsAndWindow(t *testing.T) {
	clock := ephemeraltest.NewFakeClock(time.Unix(1700000000, 0))
	mem := memory.New(clock.Now)
	r := &Regulator{Counter: mem}
	k := LegacyKind{Name: "t", PerSubject: 3, PerIP: 5, Window: time.Minute}
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		if ok, err := r.Attempt(ctx, k, "alice", "192.0.2.1"); err != nil || !ok {
			t.Fatalf("attempt %d refused: %v", i, err)
		}
	}
	if ok, _ := r.Attempt(ctx, k, "alice", "192.0.2.1"); ok {
		t.Fatal("4th attempt for one account allowed")
	}
	// Another account from the same address: allowed until the address limit.
	if ok, _ := r.Attempt(ctx, k, "bob", "192.0.2.1"); !ok {
		t.Fatal("other account refused")
	}
	if ok, _ := r.Attempt(ctx, k, "carol", "192.0.2.1"); ok {
		t.Fatal("6th attempt from one address allowed")
	}
	// A success resets the account, the window resets everything.
	r.Reset(ctx, k, "bob")
	clock.Advance(time.Minute + time.Second)
	if ok, _ := r.Attempt(ctx, k, "alice", "192.0.2.1"); !ok {
		t.Fatal("attempt after the window refused")
	}
}
