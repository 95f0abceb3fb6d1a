package memory

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEvictionOrderMatchesMap runs random operations on a small bounded
// store and checks after each that the eviction order lists exactly the
// evictable entries of the map, and that the store is over its cap only
// when at most one evictable entry is left.
func TestEvictionOrderMatchesMap(t *testing.T) {
	const max = 8
	now := time.Unix(1700000000, 0)
	s := NewWithOptions(func() time.Time { return now }, Options{
		MaxEntries: max,
		Evictable:  func(k string) bool { return strings.HasPrefix(k, "ar:") },
	})
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		key := []string{"ar:", "m:"}[rng.IntN(2)] + strconv.Itoa(rng.IntN(12))
		ttl := time.Duration(1+rng.IntN(120)) * time.Second
		switch rng.IntN(7) {
		case 0:
			_ = s.Put(ctx, key, []byte("v"), ttl)
		case 1:
			_ = s.PutNew(ctx, key, []byte("v"), ttl)
		case 2:
			_ = s.Delete(ctx, key)
		case 3:
			_, _ = s.Take(ctx, key)
		case 4:
			_, _ = s.Incr(ctx, "n"+key, ttl)
		case 5:
			_ = s.Update(ctx, key, ttl, func(old []byte) ([]byte, error) {
				if rng.IntN(3) == 0 {
					return nil, nil
				}
				return append(old, 'x'), nil
			})
		case 6:
			now = now.Add(time.Duration(rng.IntN(20)) * time.Second)
			_, _ = s.Get(ctx, key)
		}
		n := 0
		for k, e := range s.entries {
			if e.elem == nil {
				continue
			}
			n++
			if e.elem.Value.(string) != k {
				t.Fatalf("op %d: entry %s listed as %v", i, k, e.elem.Value)
			}
		}
		if n != s.evictable.Len() {
			t.Fatalf("op %d: %d evictable entries, %d in the eviction order", i, n, s.evictable.Len())
		}
		if len(s.entries) > max && s.evictable.Len() > 1 {
			t.Fatalf("op %d: %d entries over the cap of %d with %d evictable", i, len(s.entries), max, s.evictable.Len())
		}
	}
}
