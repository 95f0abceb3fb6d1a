package ephemeraltest

import (
	"sync"
	"time"
)

// Clock moves time forward by d as the store under test sees it: a store
// with an injected clock passes FakeClock.Advance, a store on a server
// passes time.Sleep. The suite keeps the total under a second and its TTLs
// at least 100 ms, so sleeping is fine.
type Clock func(d time.Duration)

// FakeClock is a settable clock, safe for concurrent use. Pass its Now to the
// store and its Advance to Run.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a clock reading start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now reads the clock.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
