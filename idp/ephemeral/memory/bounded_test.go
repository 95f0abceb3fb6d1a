package memory_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/ephemeral/ephemeraltest"
	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
)

// authRequests is the evictability rule cmd/sesame uses (oidcstore's
// authorization requests, under "ar:").
func authRequests(key string) bool { return strings.HasPrefix(key, "ar:") }

func newBounded(t testing.TB, max int) (*memory.Store, *ephemeraltest.FakeClock) {
	clock := ephemeraltest.NewFakeClock(time.Unix(1700000000, 0))
	s := memory.NewWithOptions(clock.Now, memory.Options{MaxEntries: max, Evictable: authRequests})
	t.Cleanup(func() { s.Close() })
	return s, clock
}

// A bounded store, every key evictable and a cap the suite never reaches,
// still keeps the whole contract.
func TestBoundedStore(t *testing.T) {
	ephemeraltest.Run(t, func(tb testing.TB) (ephemeral.Store, ephemeraltest.Clock) {
		clock := ephemeraltest.NewFakeClock(time.Unix(1700000000, 0))
		s := memory.NewWithOptions(clock.Now, memory.Options{MaxEntries: 1 << 20, Evictable: func(string) bool { return true }})
		tb.Cleanup(func() { s.Close() })
		return s, clock.Advance
	})
}

func present(t *testing.T, s ephemeral.Store, key string) bool {
	t.Helper()
	_, err := s.Get(t.Context(), key)
	if err != nil && !errors.Is(err, ephemeral.ErrNotFound) {
		t.Fatalf("Get %s: %v", key, err)
	}
	return err == nil
}

func put(t *testing.T, s ephemeral.Store, key string) {
	t.Helper()
	if err := s.Put(t.Context(), key, []byte("v"), time.Hour); err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
}

// Past the cap, the oldest authorization requests go; the single-use
// markers, codes and counters written among them stay.
func TestCapEvictsOldestAuthRequestsOnly(t *testing.T) {
	ctx := t.Context()
	s, _ := newBounded(t, 10)
	put(t, s, "codeuse:1")
	for i := range 20 {
		put(t, s, fmt.Sprintf("ar:%d", i))
		if i == 5 {
			if err := s.PutNew(ctx, "code:1", []byte("c"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Incr(ctx, "throttle:1", time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, k := range []string{"codeuse:1", "code:1"} {
		if !present(t, s, k) {
			t.Errorf("%s evicted", k)
		}
	}
	if n, err := s.Incr(ctx, "throttle:1", time.Hour); err != nil || n != 2 {
		t.Errorf("counter after the flood: %d %v, want 2", n, err)
	}
	// 10 entries: the 3 above and the 7 newest authorization requests.
	for i := range 20 {
		if got, want := present(t, s, fmt.Sprintf("ar:%d", i)), i >= 13; got != want {
			t.Errorf("ar:%d present %v, want %v", i, got, want)
		}
	}
}

// A full store of markers takes more markers (never refused, never
// evicted) and holds at most one authorization request.
func TestCapNeverRefusesOrEvictsMarkers(t *testing.T) {
	ctx := t.Context()
	s, _ := newBounded(t, 10)
	put(t, s, "ar:old")
	for i := range 15 {
		key := fmt.Sprintf("codeuse:%d", i)
		if err := s.PutNew(ctx, key, []byte("u"), time.Hour); err != nil {
			t.Fatalf("PutNew %s on a full store: %v", key, err)
		}
	}
	if present(t, s, "ar:old") {
		t.Error("ar:old kept, want it evicted to make room for a marker")
	}
	put(t, s, "ar:1")
	put(t, s, "ar:2")
	if present(t, s, "ar:1") || !present(t, s, "ar:2") {
		t.Error("with no room, the newest authorization request must replace the previous one")
	}
	if _, err := s.Incr(ctx, "throttle:x", time.Hour); err != nil {
		t.Fatalf("Incr on a full store: %v", err)
	}
	err := s.Update(ctx, "flow:x", time.Hour, func([]byte) ([]byte, error) { return []byte("f"), nil })
	if err != nil {
		t.Fatalf("Update on a full store: %v", err)
	}
	for i := range 15 {
		if !present(t, s, fmt.Sprintf("codeuse:%d", i)) {
			t.Errorf("codeuse:%d evicted", i)
		}
	}
	if !present(t, s, "flow:x") {
		t.Error("flow:x evicted")
	}
}

// "Oldest" is least recently written: a request whose flow moves on is
// kept over one left untouched. Deleted, taken and expired requests leave
// the eviction order with the map.
func TestCapOrderFollowsWrites(t *testing.T) {
	ctx := t.Context()
	s, clock := newBounded(t, 5)
	for i := range 5 {
		put(t, s, fmt.Sprintf("ar:%d", i))
	}
	if err := s.Update(ctx, "ar:0", time.Hour, func(old []byte) ([]byte, error) { return append(old, '!'), nil }); err != nil {
		t.Fatal(err)
	}
	put(t, s, "ar:1") // rewritten: now newer than ar:2
	put(t, s, "ar:5")
	put(t, s, "ar:6")
	for k, want := range map[string]bool{"ar:0": true, "ar:1": true, "ar:2": false, "ar:3": false, "ar:4": true, "ar:5": true, "ar:6": true} {
		if got := present(t, s, k); got != want {
			t.Errorf("%s present %v, want %v", k, got, want)
		}
	}

	// Free two places by Delete and Take, one by expiry: three markers fit
	// with no eviction, the fourth evicts the oldest request left (ar:4).
	if err := s.Delete(ctx, "ar:0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Take(ctx, "ar:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "ar:6", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if present(t, s, "ar:6") {
		t.Fatal("ar:6 not expired")
	}
	for i := range 3 {
		put(t, s, fmt.Sprintf("m:%d", i))
	}
	if !present(t, s, "ar:4") || !present(t, s, "ar:5") {
		t.Fatal("a request evicted while there was room")
	}
	put(t, s, "m:3")
	if present(t, s, "ar:4") || !present(t, s, "ar:5") {
		t.Error("the fourth marker must evict ar:4, the oldest request left, and only it")
	}
}

// Without Options, nothing is ever evicted.
func TestUnboundedByDefault(t *testing.T) {
	s := memory.New(nil)
	t.Cleanup(func() { s.Close() })
	for i := range 1000 {
		put(t, s, fmt.Sprintf("ar:%d", i))
	}
	if !present(t, s, "ar:0") {
		t.Error("ar:0 evicted from an unbounded store")
	}
}

// A flood of twice the cap costs O(1) per write: a full scan per write
// would make this test take minutes instead of a fraction of a second.
func TestCapFloodIsCheap(t *testing.T) {
	const max = 50_000
	s, _ := newBounded(t, max)
	put(t, s, "codeuse:first")
	for i := range 2 * max {
		put(t, s, fmt.Sprintf("ar:%d", i))
	}
	if !present(t, s, "codeuse:first") || present(t, s, "ar:0") || !present(t, s, fmt.Sprintf("ar:%d", 2*max-1)) {
		t.Error("flood: the marker must stay, the oldest request go, the newest stay")
	}
}

// BenchmarkPutFullStore: each write into a full store evicts one
// authorization request.
func BenchmarkPutFullStore(b *testing.B) {
	const max = 200_000
	s, _ := newBounded(b, max)
	ctx := b.Context()
	for i := range max {
		_ = s.Put(ctx, fmt.Sprintf("ar:fill%d", i), []byte("v"), time.Hour)
	}
	for i := 0; b.Loop(); i++ {
		if err := s.Put(ctx, "ar:"+strconv.Itoa(i), []byte("v"), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
