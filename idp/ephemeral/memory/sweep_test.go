package memory

import (
	"testing"
	"time"
)

func TestSweepDropsExpiredEntries(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s := New(func() time.Time { return now })
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		if err := s.Put(ctx, k, []byte("v"), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "long", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	now = now.Add(sweepEvery) // a, b, c expired and never read again
	if _, err := s.Incr(ctx, "ctr", time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := len(s.entries); n != 2 {
		t.Fatalf("%d entries after the sweep, want 2 (long, ctr)", n)
	}
}
