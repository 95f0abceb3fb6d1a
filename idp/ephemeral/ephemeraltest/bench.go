package ephemeraltest

import (
	"bytes"
	"strconv"
	"testing"
)

// benchValue is about the size of a stored authorization request.
var benchValue = bytes.Repeat([]byte("v"), 512)

// Bench measures Put, Get, Take and Incr, one call at a time (for a store on
// a server, a round trip each).
func Bench(b *testing.B, newStore NewStore) {
	b.Run("Put", func(b *testing.B) {
		s, _ := newStore(b)
		ctx := b.Context()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := s.Put(ctx, "bench:"+strconv.Itoa(i%1024), benchValue, long); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		s, _ := newStore(b)
		ctx := b.Context()
		if err := s.Put(ctx, "bench", benchValue, long); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Take", func(b *testing.B) {
		// Keys are put in batches with the timer stopped, then taken.
		const batch = 1024
		s, _ := newStore(b)
		ctx := b.Context()
		keys := make([]string, batch)
		for i := range keys {
			keys[i] = "bench:" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for done := 0; done < b.N; done += batch {
			n := min(batch, b.N-done)
			b.StopTimer()
			for _, k := range keys[:n] {
				if err := s.Put(ctx, k, benchValue, long); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			for _, k := range keys[:n] {
				if _, err := s.Take(ctx, k); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("Incr", func(b *testing.B) {
		s, _ := newStore(b)
		ctx := b.Context()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Incr(ctx, "bench:ctr", long); err != nil {
				b.Fatal(err)
			}
		}
	})
}
