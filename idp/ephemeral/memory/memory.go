package memory

import (
	"bytes"
	"container/list"
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
	now  func() time.Time
	opts Options

	mu        sync.Mutex
	entries   map[string]*entry // nil once closed
	evictable list.List         // of keys (string) of evictable entries, least recently written first
	nextSweep time.Time
}

type entry struct {
	value     []byte
	count     int64
	isCounter bool
	expires   time.Time
	elem      *list.Element // in Store.evictable; nil if the entry is not evictable
}

// Options bounds a store. The zero value is no bound.
type Options struct {
	// MaxEntries caps the number of entries (0: no cap). A write that adds
	// an entry to a full store first evicts the least recently written
	// evictable entries. Entries that are not evictable are never evicted
	// and never refused: they may take the store past the cap; evictable
	// ones do not (but for the one just written, when nothing else can go).
	MaxEntries int
	// Evictable reports whether the entry at key may be evicted to make
	// room, asked once when the key is first written. Nil: none may.
	Evictable func(key string) bool
}

// New returns an empty, unbounded store reading time from now (time.Now
// if nil).
func New(now func() time.Time) *Store { return NewWithOptions(now, Options{}) }

// NewWithOptions returns an empty store bounded by opts, reading time from
// now (time.Now if nil).
func NewWithOptions(now func() time.Time, opts Options) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{now: now, opts: opts, entries: make(map[string]*entry)}
	s.evictable.Init()
	return s
}

// Put sets key to a copy of value for ttl.
func (s *Store) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	now, err := s.lockWrite(ctx, ttl)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.set(key, &entry{value: bytes.Clone(value), expires: now.Add(ttl)})
	return nil
}

// PutNew sets key to a copy of value for ttl unless it is set.
func (s *Store) PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	now, err := s.lockWrite(ctx, ttl)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.live(key, now) != nil {
		return ephemeral.ErrExists
	}
	s.set(key, &entry{value: bytes.Clone(value), expires: now.Add(ttl)})
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

// GetMany returns copies of the values at keys (nil where not set).
func (s *Store) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		return nil, ErrClosed
	}
	now := s.now()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		e := s.live(k, now)
		if e == nil {
			continue
		}
		if e.isCounter {
			return nil, errIsCounter
		}
		out[i] = bytes.Clone(e.value)
	}
	return out, nil
}

// PutGet puts key, then returns a copy of other's value (nil when not set).
func (s *Store) PutGet(ctx context.Context, key string, value []byte, ttl time.Duration, other string) ([]byte, error) {
	if err := s.Put(ctx, key, value, ttl); err != nil {
		return nil, err
	}
	v, err := s.GetMany(ctx, other)
	if err != nil {
		return nil, err
	}
	return v[0], nil
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
	if e, ok := s.entries[key]; ok {
		s.remove(key, e)
	}
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
	s.remove(key, e)
	// The entry is no longer reachable from the map: no copy needed.
	return e.value, nil
}

// Incr adds one to the counter at key, starting a window of length window
// when the counter is new.
func (s *Store) Incr(ctx context.Context, key string, window time.Duration) (int64, error) {
	now, err := s.lockWrite(ctx, window)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	e := s.live(key, now)
	if e == nil {
		s.set(key, &entry{isCounter: true, count: 1, expires: now.Add(window)})
		return 1, nil
	}
	if !e.isCounter {
		return 0, errNotCount
	}
	e.count++
	if e.elem != nil {
		s.evictable.MoveToBack(e.elem)
	}
	return e.count, nil
}

// Update changes the value at key under the store's lock.
func (s *Store) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	now, err := s.lockWrite(ctx, ttl)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
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
		if e, ok := s.entries[key]; ok {
			s.remove(key, e)
		}
		return nil
	}
	s.set(key, &entry{value: bytes.Clone(v), expires: now.Add(ttl)})
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
	s.evictable.Init()
	return nil
}

func checkTTL(ctx context.Context, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("ephemeral/memory: ttl must be positive")
	}
	return ctx.Err()
}

// lockWrite checks ttl, takes the lock and begins a write; the caller
// then unlocks s.mu.
func (s *Store) lockWrite(ctx context.Context, ttl time.Duration) (time.Time, error) {
	if err := checkTTL(ctx, ttl); err != nil {
		return time.Time{}, err
	}
	s.mu.Lock()
	now, err := s.beginWrite()
	if err != nil {
		s.mu.Unlock()
		return time.Time{}, err
	}
	return now, nil
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
				s.remove(k, e)
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
		s.remove(key, e)
		return nil
	}
	return e
}

// set stores e at key. A new key first makes room; a rewritten evictable
// key becomes the most recently written. s.mu is held.
func (s *Store) set(key string, e *entry) {
	if old, ok := s.entries[key]; ok {
		if e.elem = old.elem; e.elem != nil {
			s.evictable.MoveToBack(e.elem)
		}
		s.entries[key] = e
		return
	}
	s.makeRoom()
	if s.opts.Evictable != nil && s.opts.Evictable(key) {
		e.elem = s.evictable.PushBack(key)
	}
	s.entries[key] = e
}

// makeRoom evicts the least recently written evictable entries until one
// more entry fits under MaxEntries, or none is left. Each eviction costs
// O(1), and a write evicts at most one entry: the store holds more than
// MaxEntries only when no evictable entry is left but the newest. s.mu is
// held.
func (s *Store) makeRoom() {
	for s.opts.MaxEntries > 0 && len(s.entries) >= s.opts.MaxEntries {
		front := s.evictable.Front()
		if front == nil {
			return
		}
		key := s.evictable.Remove(front).(string)
		delete(s.entries, key)
	}
}

// remove deletes the entry e at key. s.mu is held.
func (s *Store) remove(key string, e *entry) {
	if e.elem != nil {
		s.evictable.Remove(e.elem)
	}
	delete(s.entries, key)
}
