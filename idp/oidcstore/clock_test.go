package oidcstore

import (
	"sync"
	"time"
)

// keysClock is the storage tests' movable clock.
type keysClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *keysClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *keysClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
