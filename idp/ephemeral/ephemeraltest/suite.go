package ephemeraltest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
)

// NewStore returns a new, empty store and the clock that moves its time,
// and registers the store's cleanup with tb.Cleanup. Two stores returned in
// one test must not see each other's keys (separate maps, or separate key
// prefixes on one server).
type NewStore func(tb testing.TB) (ephemeral.Store, Clock)

const (
	long  = time.Hour
	short = 200 * time.Millisecond
	// concurrency is the number of goroutines racing in the concurrency tests.
	concurrency = 50
)

// Run runs the conformance suite against the stores newStore returns. Each
// subtest gets a store of its own.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s ephemeral.Store, advance Clock)
	}{
		{"PutGet", testPutThenGet},
		{"PutOverwrites", testPutOverwrites},
		{"PutNew", testPutNew},
		{"Delete", testDelete},
		{"Take", testTake},
		{"Incr", testIncr},
		{"BinaryValues", testBinaryValues},
		{"Keys", testKeys},
		{"ValuesAreCopied", testValuesAreCopied},
		{"NonPositiveTTL", testNonPositiveTTL},
		{"ValueAndCounterDoNotMix", testValueAndCounterDoNotMix},
		{"Expiry", testExpiry},
		{"Ping", testPing},
		{"ConcurrentTake", testConcurrentTake},
		{"ConcurrentPutNew", testConcurrentPutNew},
		{"ConcurrentIncr", testConcurrentIncr},
		{"GetMany", testGetMany},
		{"PutGet", testPutThenGet},
		{"Update", testUpdate},
		{"ConcurrentUpdate", testConcurrentUpdate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, advance := newStore(t)
			tt.fn(t, s, advance)
		})
	}
	t.Run("Isolated", func(t *testing.T) {
		a, _ := newStore(t)
		b, _ := newStore(t)
		testIsolated(t, a, b)
	})
}

func mustPut(t *testing.T, s ephemeral.Store, key, value string, ttl time.Duration) {
	t.Helper()
	if err := s.Put(t.Context(), key, []byte(value), ttl); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, s ephemeral.Store, key, want string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if string(got) != want {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func wantNotFound(t *testing.T, s ephemeral.Store, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if !errors.Is(err, ephemeral.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

func wantIncr(t *testing.T, s ephemeral.Store, key string, window time.Duration, want int64) {
	t.Helper()
	got, err := s.Incr(t.Context(), key, window)
	if err != nil {
		t.Fatalf("Incr(%q): %v", key, err)
	}
	if got != want {
		t.Fatalf("Incr(%q) = %d, want %d", key, got, want)
	}
}

func testPutGet(t *testing.T, s ephemeral.Store, _ Clock) {
	mustPut(t, s, "a", "value a", long)
	mustPut(t, s, "b", "value b", long)
	wantValue(t, s, "a", "value a")
	wantValue(t, s, "b", "value b")
	wantNotFound(t, s, "missing")
}

func testPutOverwrites(t *testing.T, s ephemeral.Store, _ Clock) {
	mustPut(t, s, "k", "first", long)
	mustPut(t, s, "k", "second", long)
	wantValue(t, s, "k", "second")
}

func testPutNew(t *testing.T, s ephemeral.Store, _ Clock) {
	ctx := t.Context()
	if err := s.PutNew(ctx, "k", []byte("first"), long); err != nil {
		t.Fatalf("PutNew on a free key: %v", err)
	}
	if err := s.PutNew(ctx, "k", []byte("second"), long); !errors.Is(err, ephemeral.ErrExists) {
		t.Fatalf("PutNew on a set key: %v, want ErrExists", err)
	}
	wantValue(t, s, "k", "first")

	mustPut(t, s, "put", "by put", long)
	if err := s.PutNew(ctx, "put", []byte("x"), long); !errors.Is(err, ephemeral.ErrExists) {
		t.Fatalf("PutNew on a key set by Put: %v, want ErrExists", err)
	}
	wantValue(t, s, "put", "by put")
}

func testDelete(t *testing.T, s ephemeral.Store, _ Clock) {
	ctx := t.Context()
	mustPut(t, s, "k", "v", long)
	mustPut(t, s, "other", "v", long)
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, s, "k")
	wantValue(t, s, "other", "v")
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete of a deleted key: %v, want nil", err)
	}
	if err := s.Delete(ctx, "never-set"); err != nil {
		t.Fatalf("Delete of a missing key: %v, want nil", err)
	}
	if err := s.PutNew(ctx, "k", []byte("again"), long); err != nil {
		t.Fatalf("PutNew after Delete: %v", err)
	}
}

func testTake(t *testing.T, s ephemeral.Store, _ Clock) {
	ctx := t.Context()
	mustPut(t, s, "code", "grant", long)
	got, err := s.Take(ctx, "code")
	if err != nil || string(got) != "grant" {
		t.Fatalf("Take = %q, %v; want grant", got, err)
	}
	if got, err := s.Take(ctx, "code"); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Fatalf("second Take = %q, %v; want ErrNotFound", got, err)
	}
	wantNotFound(t, s, "code")
	if _, err := s.Take(ctx, "never-set"); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Fatalf("Take of a missing key: %v, want ErrNotFound", err)
	}
}

func testIncr(t *testing.T, s ephemeral.Store, _ Clock) {
	for i := int64(1); i <= 5; i++ {
		wantIncr(t, s, "user:a", long, i)
	}
	wantIncr(t, s, "user:b", long, 1)
	wantIncr(t, s, "user:a", long, 6)

	// Delete resets a counter (as after a successful sign-in).
	if err := s.Delete(t.Context(), "user:a"); err != nil {
		t.Fatalf("Delete counter: %v", err)
	}
	wantIncr(t, s, "user:a", long, 1)
}

func testBinaryValues(t *testing.T, s ephemeral.Store, _ Clock) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	values := map[string][]byte{
		"all-bytes": all,
		"nul":       {0},
		"invalid":   {0xff, 0xfe, 0xc3},
		"empty":     {},
		"large":     bytes.Repeat(all, 256), // 64 KiB
	}
	for k, v := range values {
		if err := s.Put(t.Context(), k, v, long); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	for k, v := range values {
		got, err := s.Get(t.Context(), k)
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		if !bytes.Equal(got, v) {
			t.Fatalf("Get(%q) returned %d bytes, not the %d put", k, len(got), len(v))
		}
	}
}

func testKeys(t *testing.T, s ephemeral.Store, _ Clock) {
	keys := []string{
		"a:b:c", "with space", "é/ü\x00\xff", "*", "[a-z]?", strings.Repeat("k", 1024),
		"sess", "sess:", "SESS", // differ only by a suffix or case
	}
	for i, k := range keys {
		mustPut(t, s, k, k+string(rune('0'+i)), long)
	}
	for i, k := range keys {
		wantValue(t, s, k, k+string(rune('0'+i)))
	}
}

func testValuesAreCopied(t *testing.T, s ephemeral.Store, _ Clock) {
	v := []byte("original")
	if err := s.Put(t.Context(), "k", v, long); err != nil {
		t.Fatal(err)
	}
	copy(v, "XXXXXXXX")
	got, err := s.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "original" {
		t.Fatalf("the store kept the caller's slice: Get = %q", got)
	}
	copy(got, "YYYYYYYY")
	wantValue(t, s, "k", "original")
}

func testNonPositiveTTL(t *testing.T, s ephemeral.Store, _ Clock) {
	ctx := t.Context()
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := s.Put(ctx, "put", []byte("v"), ttl); err == nil {
			t.Errorf("Put with ttl %v succeeded", ttl)
		}
		if err := s.PutNew(ctx, "putnew", []byte("v"), ttl); err == nil {
			t.Errorf("PutNew with ttl %v succeeded", ttl)
		}
		if _, err := s.Incr(ctx, "incr", ttl); err == nil {
			t.Errorf("Incr with window %v succeeded", ttl)
		}
	}
	// A value without a lifetime must never be stored: it would outlive
	// everything (a throttle counter that never resets, a session that
	// never ends).
	wantNotFound(t, s, "put")
	wantNotFound(t, s, "putnew")
	wantIncr(t, s, "incr", long, 1)
}

func testValueAndCounterDoNotMix(t *testing.T, s ephemeral.Store, _ Clock) {
	mustPut(t, s, "value", "v", long)
	if n, err := s.Incr(t.Context(), "value", long); err == nil {
		t.Errorf("Incr on a value = %d, want an error", n)
	}
	wantIncr(t, s, "counter", long, 1)
	if v, err := s.Get(t.Context(), "counter"); err == nil {
		t.Errorf("Get on a counter = %q, want an error", v)
	}
}

// testExpiry uses one timeline so that a store on a server sleeps 250 ms in
// all. Checks that a key is still there come at most 100 ms after it was
// set, with a 200 ms TTL.
func testExpiry(t *testing.T, s ephemeral.Store, advance Clock) {
	ctx := t.Context()
	mustPut(t, s, "get", "v", short)
	mustPut(t, s, "take", "v", short)
	if err := s.PutNew(ctx, "putnew", []byte("v"), short); err != nil {
		t.Fatalf("PutNew: %v", err)
	}
	mustPut(t, s, "renewed", "short", short)
	mustPut(t, s, "renewed", "long", long) // Put replaces the TTL too
	mustPut(t, s, "long", "v", long)
	wantIncr(t, s, "window", short, 1)
	wantIncr(t, s, "long-window", long, 1)

	advance(short / 2)
	wantValue(t, s, "get", "v")
	// A later increment does not extend the window the first one started.
	wantIncr(t, s, "window", short, 2)

	advance(short*3/4 + 1) // now past short
	wantNotFound(t, s, "get")
	if got, err := s.Take(ctx, "take"); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Errorf("Take after expiry = %q, %v; want ErrNotFound", got, err)
	}
	if err := s.PutNew(ctx, "putnew", []byte("again"), long); err != nil {
		t.Errorf("PutNew on an expired key: %v", err)
	} else {
		wantValue(t, s, "putnew", "again")
	}
	wantIncr(t, s, "window", short, 1) // a new window
	wantIncr(t, s, "window", short, 2)
	wantValue(t, s, "renewed", "long")
	wantValue(t, s, "long", "v")
	wantIncr(t, s, "long-window", long, 2)
}

func testPing(t *testing.T, s ephemeral.Store, _ Clock) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// race runs fn in concurrency goroutines released together.
func race(fn func(ctx context.Context, i int)) {
	ctx := context.Background()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			<-start
			fn(ctx, i)
		})
	}
	close(start)
	wg.Wait()
}

func testConcurrentTake(t *testing.T, s ephemeral.Store, _ Clock) {
	mustPut(t, s, "code", "grant", long)
	var won, notFound atomic.Int64
	race(func(ctx context.Context, _ int) {
		v, err := s.Take(ctx, "code")
		switch {
		case err == nil && string(v) == "grant":
			won.Add(1)
		case errors.Is(err, ephemeral.ErrNotFound):
			notFound.Add(1)
		default:
			t.Errorf("Take = %q, %v", v, err)
		}
	})
	if won.Load() != 1 || notFound.Load() != concurrency-1 {
		t.Fatalf("%d callers got the value and %d ErrNotFound; want 1 and %d", won.Load(), notFound.Load(), concurrency-1)
	}
}

func testConcurrentPutNew(t *testing.T, s ephemeral.Store, _ Clock) {
	var winner atomic.Int64
	var won, exists atomic.Int64
	race(func(ctx context.Context, i int) {
		err := s.PutNew(ctx, "k", []byte{byte(i)}, long)
		switch {
		case err == nil:
			won.Add(1)
			winner.Store(int64(i))
		case errors.Is(err, ephemeral.ErrExists):
			exists.Add(1)
		default:
			t.Errorf("PutNew: %v", err)
		}
	})
	if won.Load() != 1 || exists.Load() != concurrency-1 {
		t.Fatalf("%d PutNew won and %d got ErrExists; want 1 and %d", won.Load(), exists.Load(), concurrency-1)
	}
	wantValue(t, s, "k", string([]byte{byte(winner.Load())}))
}

func testConcurrentIncr(t *testing.T, s ephemeral.Store, _ Clock) {
	var seen [concurrency + 1]atomic.Int64
	race(func(ctx context.Context, _ int) {
		n, err := s.Incr(ctx, "ctr", long)
		if err != nil || n < 1 || n > concurrency {
			t.Errorf("Incr = %d, %v", n, err)
			return
		}
		seen[n].Add(1)
	})
	for n := 1; n <= concurrency; n++ {
		if c := seen[n].Load(); c != 1 {
			t.Fatalf("%d callers got count %d, want exactly 1", c, n)
		}
	}
	wantIncr(t, s, "ctr", long, concurrency+1)
}

func testGetMany(t *testing.T, s ephemeral.Store, advance Clock) {
	mustPut(t, s, "a", "alpha", long)
	mustPut(t, s, "b", "", long)
	mustPut(t, s, "brief", "x", short)
	advance(2 * short)
	got, err := s.GetMany(t.Context(), "a", "missing", "b", "brief", "a")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alpha", "<nil>", "", "<nil>", "alpha"}
	if len(got) != len(want) {
		t.Fatalf("GetMany returned %d values, want %d", len(got), len(want))
	}
	for i, v := range got {
		s := string(v)
		if v == nil {
			s = "<nil>"
		}
		if s != want[i] {
			t.Errorf("value %d = %q, want %q", i, s, want[i])
		}
	}
	if got, err := s.GetMany(t.Context()); err != nil || len(got) != 0 {
		t.Errorf("GetMany() = %v, %v", got, err)
	}
}

func testPutThenGet(t *testing.T, s ephemeral.Store, advance Clock) {
	ctx := t.Context()
	mustPut(t, s, "other", "omega", long)
	mustPut(t, s, "empty", "", long)
	for _, tc := range []struct{ key, value, other, want string }{
		{"k1", "v1", "other", "omega"},
		{"k2", "v2", "missing", "<nil>"},
		{"k3", "v3", "empty", ""},
		{"k4", "v4", "k4", "v4"}, // the put comes first
	} {
		got, err := s.PutGet(ctx, tc.key, []byte(tc.value), short, tc.other)
		if err != nil {
			t.Fatalf("PutGet(%s, %s): %v", tc.key, tc.other, err)
		}
		str := string(got)
		if got == nil {
			str = "<nil>"
		}
		if str != tc.want {
			t.Errorf("PutGet(%s, %s) = %q, want %q", tc.key, tc.other, str, tc.want)
		}
		if v, err := s.Get(ctx, tc.key); err != nil || string(v) != tc.value {
			t.Errorf("Get(%s) after PutGet = %q, %v, want %q", tc.key, v, err, tc.value)
		}
	}
	if _, err := s.PutGet(ctx, "k5", []byte("v"), 0, "other"); err == nil {
		t.Error("PutGet with a zero ttl succeeded")
	}
	advance(2 * short)
	if _, err := s.Get(ctx, "k1"); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Errorf("Get(k1) after its ttl: %v, want ErrNotFound", err)
	}
}

func testUpdate(t *testing.T, s ephemeral.Store, advance Clock) {
	ctx := t.Context()
	// A missing key: fn sees nil and creates it.
	err := s.Update(ctx, "u", long, func(old []byte) ([]byte, error) {
		if old != nil {
			t.Errorf("old = %q, want nil", old)
		}
		return []byte("one"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, s, "u", "one")
	// An existing key: fn sees its value.
	if err := s.Update(ctx, "u", long, func(old []byte) ([]byte, error) { return append(old, "+two"...), nil }); err != nil {
		t.Fatal(err)
	}
	wantValue(t, s, "u", "one+two")
	// An error writes nothing and comes back.
	boom := errors.New("boom")
	if err := s.Update(ctx, "u", long, func([]byte) ([]byte, error) { return []byte("x"), boom }); !errors.Is(err, boom) {
		t.Fatalf("Update error = %v, want boom", err)
	}
	wantValue(t, s, "u", "one+two")
	// nil deletes.
	if err := s.Update(ctx, "u", long, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, s, "u")
	// The new value lives for ttl.
	if err := s.Update(ctx, "u", short, func([]byte) ([]byte, error) { return []byte("brief"), nil }); err != nil {
		t.Fatal(err)
	}
	advance(2 * short)
	wantNotFound(t, s, "u")
	if err := s.Update(ctx, "u", 0, func([]byte) ([]byte, error) { return []byte("x"), nil }); err == nil {
		t.Fatal("Update with ttl 0: no error")
	}
}

// testConcurrentUpdate: 50 read-modify-writes of one key lose none.
func testConcurrentUpdate(t *testing.T, s ephemeral.Store, _ Clock) {
	race(func(ctx context.Context, i int) {
		err := s.Update(ctx, "list", long, func(old []byte) ([]byte, error) {
			return append(old, byte(i)), nil
		})
		if err != nil {
			t.Errorf("Update: %v", err)
		}
	})
	got, err := s.Get(t.Context(), "list")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[byte]bool{}
	for _, b := range got {
		seen[b] = true
	}
	if len(got) != concurrency || len(seen) != concurrency {
		t.Fatalf("after %d concurrent updates the value holds %d entries (%d distinct)", concurrency, len(got), len(seen))
	}
}

func testIsolated(t *testing.T, a, b ephemeral.Store) {
	mustPut(t, a, "k", "in a", long)
	wantNotFound(t, b, "k")
	mustPut(t, b, "k", "in b", long)
	wantValue(t, a, "k", "in a")
	wantIncr(t, a, "ctr", long, 1)
	wantIncr(t, b, "ctr", long, 1)
	if err := b.Delete(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	wantValue(t, a, "k", "in a")
}
