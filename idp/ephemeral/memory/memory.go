package memory

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
)

// sweepEvery is how often, in clock time, a write sweeps expired entries.
const sweepEvery = time.Minute

var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("ephemeral/memory: store closed")

	errIsCounter = errors.New("ephemeral/memory: key holds a counter, not a value")
	errNotCount  = errors.New("ephemeral/memory: key holds a value, not a counter")
)

var _ ephemeral.Store = (*Store)(nil)

// Store is an in-process ephemeral.Store, safe for concurrent use.
type Store struct {
	now func() time.Time

	mu        sync.Mutex
	entries   map[string]*entry // nil once closed
	nextSweep time.Time
}

type entry struct {
	value     []byte
	count     int64
	isCounter bool
	expires   time.Time
}

// New returns an empty store reading time from now (time.Now if nil).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, entries: make(map[string]*entry)}
}

// Put sets key to a copy of value for ttl.
func (s *Store) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ctx, ttl); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now, err := s.beginWrite()
	if err != nil {
		return err
	}
	s.entries[key] = &entry{value: bytes.Clone(value), expires: now.Add(ttl)}
	return nil
}

// PutNew sets key to a copy of value for ttl unless it is set.
func (s *Store) PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ctx, ttl); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now, err := s.beginWrite()
	if err != nil {
		return err
	}
	if s.live(key, now) != nil {
		return ephemeral.ErrExists
	}
	s.entries[key] = &entry{value: bytes.Clone(value), expires: now.Add(ttl)}
	return nil
}

// Get returns a copy of the value at key.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		return nil, ErrClosed
	}
	e := s.live(key, s.now())
	if e == nil {
		return nil, ephemeral.ErrNotFound
	}
	if e.isCounter {
		return nil, errIsCounter
	}
	return bytes.Clone(e.value), nil
}

// Delete removes key, value or counter.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		return ErrClosed
	}
	delete(s.entries, key)
	return nil
}

// Take returns the value at key and removes it.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		return nil, ErrClosed
	}
	e := s.live(key, s.now())
	if e == nil {
		return nil, ephemeral.ErrNotFound
	}
	if e.isCounter {
		return nil, errIsCounter
	}
	delete(s.entries, key)
	// The entry is no longer reachable from the map: no copy needed.
	return e.value, nil
}

// Incr adds one to the counter at key, starting a window of length window
// when the counter is new.
func (s *Store) Incr(ctx context.Context, key string, window time.Duration) (int64, error) {
	if err := checkTTL(ctx, window); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now, err := s.beginWrite()
	if err != nil {
		return 0, err
	}
	e := s.live(key, now)
	if e == nil {
		s.entries[key] = &entry{isCounter: true, count: 1, expires: now.Add(window)}
		return 1, nil
	}
	if !e.isCounter {
		return 0, errNotCount
	}
	e.count++
	return e.count, nil
}

// Update changes the value at key under the store's lock.
func (s *Store) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	if err := checkTTL(ctx, ttl); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now, err := s.beginWrite()
	if err != nil {
		return err
	}
	var old []byte
	if e := s.live(key, now); e != nil {
		if e.isCounter {
			return errIsCounter
		}
		old = bytes.Clone(e.value)
	}
	v, err := fn(old)
	if err != nil {
		return err
	}
	if v == nil {
		delete(s.entries, key)
		return nil
	}
	s.entries[key] = &entry{value: bytes.Clone(v), expires: now.Add(ttl)}
	return nil
}

// Ping reports whether the store is open.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		return ErrClosed
	}
	return nil
}

// Close drops every entry; the store then answers ErrClosed. Closing twice
// is not an error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = nil
	return nil
}

func checkTTL(ctx context.Context, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("ephemeral/memory: ttl must be positive")
	}
	return ctx.Err()
}

// beginWrite reads the clock and sweeps if one is due. s.mu is held.
func (s *Store) beginWrite() (time.Time, error) {
	if s.entries == nil {
		return time.Time{}, ErrClosed
	}
	now := s.now()
	if !now.Before(s.nextSweep) {
		for k, e := range s.entries {
			if !now.Before(e.expires) {
				delete(s.entries, k)
			}
		}
		s.nextSweep = now.Add(sweepEvery)
	}
	return now, nil
}

// live returns the unexpired entry at key, dropping an expired one. s.mu is
// held.
func (s *Store) live(key string, now time.Time) *entry {
	e, ok := s.entries[key]
	if !ok {
		return nil
	}
	if !now.Before(e.expires) {
		delete(s.entries, key)
		return nil
	}
	return e
}
