// Package ephemeral is the contract for short-lived state with a time to
// live: authorization requests, codes, login-flow state, challenges, throttle
// counters and browser sessions. Losing it logs people out; it never lets
// anyone in. Implementations: ephemeral/redis (go-redis v9, values sealed
// with AES-GCM) and ephemeral/memory (in-process, injected clock); both pass
// ephemeral/ephemeraltest.
//
// Keys are chosen by callers; a key derived from a secret must be a hash of
// it, never the secret itself.
package ephemeral

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound: no such key, or it expired.
	ErrNotFound = errors.New("ephemeral: not found")
	// ErrExists: PutNew found the key already set.
	ErrExists = errors.New("ephemeral: key exists")
	// ErrUnavailable marks a failure of the store itself (Redis
	// unreachable, loading, timed out): never a verdict about the key.
	// Implementations wrap such errors with it; callers answer 503 and
	// never "expired" or "invalid".
	ErrUnavailable = errors.New("ephemeral: unavailable")
)

// Store holds values with a time to live.
type Store interface {
	// Put sets key to value for ttl (ttl > 0), replacing any value.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// PutNew sets key only if it is not set: ErrExists otherwise.
	PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Get(ctx context.Context, key string) ([]byte, error)
	// GetMany gets several keys in one round trip: values[i] is the value
	// of keys[i], nil when it is not set.
	GetMany(ctx context.Context, keys ...string) ([][]byte, error)
	// PutGet puts key as Put does, then gets other, in one round trip:
	// the value of other, nil when it is not set. The put is done even
	// when the get finds nothing; an error may leave it done or not.
	PutGet(ctx context.Context, key string, value []byte, ttl time.Duration, other string) ([]byte, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Take gets and deletes key atomically: of concurrent callers, exactly one
	// gets the value, the others ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)
	// Incr adds one to the counter at key and returns the new count. The
	// first increment starts a window of length window; the counter vanishes
	// when it ends.
	Incr(ctx context.Context, key string, window time.Duration) (int64, error)
	// Update changes the value at key by one atomic read-modify-write: fn
	// gets the current value (nil when the key is not set) and returns the
	// new one, stored for ttl (ttl > 0); a nil result deletes the key. When
	// fn returns an error nothing is written and Update returns it.
	// Concurrent updates of one key never lose a write: fn may be called
	// again with a newer value, so it must not have side effects.
	Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error
	Ping(ctx context.Context) error
	Close() error
}
