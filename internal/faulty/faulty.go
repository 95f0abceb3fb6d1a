package faulty

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/store"
)

// Detail is the text of every injected failure: a response that shows it
// leaks internal detail.
const Detail = "dial tcp 127.0.0.1:1: connect: connection refused"

// Store is a store.Store whose methods named in Down fail. Only the
// methods below can fail; the others, and everything inside InTx's
// transaction, pass through (InTx itself fails when "InTx" is down).
type Store struct {
	store.Store
	mu     sync.Mutex
	down   map[string]bool
	broken map[string]bool
}

// NewStore wraps s.
func NewStore(s store.Store) *Store {
	return &Store{Store: s, down: map[string]bool{}, broken: map[string]bool{}}
}

// Break makes the named methods fail with an error that is not a
// dependency failure (a bug: a 500 without its text) until Up.
func (s *Store) Break(methods ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range methods {
		s.broken[m] = true
	}
}

// Down makes the named methods fail until Up.
func (s *Store) Down(methods ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range methods {
		s.down[m] = true
	}
}

// Up makes every method work again.
func (s *Store) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.down)
	clear(s.broken)
}

func (s *Store) fail(method string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down[method] {
		return fmt.Errorf("%s: %w: %s", method, store.ErrUnavailable, Detail)
	}
	if s.broken[method] {
		return fmt.Errorf("%s: bug: %s", method, Detail)
	}
	return nil
}

func (s *Store) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := s.fail("InTx"); err != nil {
		return err
	}
	return s.Store.InTx(ctx, fn)
}

func (s *Store) Ping(ctx context.Context) error {
	if err := s.fail("Ping"); err != nil {
		return err
	}
	return s.Store.Ping(ctx)
}

func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	if err := s.fail("GetUser"); err != nil {
		return store.User{}, err
	}
	return s.Store.GetUser(ctx, id)
}

func (s *Store) GetUserByUsername(ctx context.Context, username string) (store.User, error) {
	if err := s.fail("GetUserByUsername"); err != nil {
		return store.User{}, err
	}
	return s.Store.GetUserByUsername(ctx, username)
}

func (s *Store) ListCredentials(ctx context.Context, userID string, typ store.CredentialType) ([]store.Credential, error) {
	if err := s.fail("ListCredentials"); err != nil {
		return nil, err
	}
	return s.Store.ListCredentials(ctx, userID, typ)
}

func (s *Store) AdvanceTOTPStep(ctx context.Context, credentialID string, step int64, at time.Time) error {
	if err := s.fail("AdvanceTOTPStep"); err != nil {
		return err
	}
	return s.Store.AdvanceTOTPStep(ctx, credentialID, step, at)
}

func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	if err := s.fail("GetClient"); err != nil {
		return store.Client{}, err
	}
	return s.Store.GetClient(ctx, id)
}

func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if err := s.fail("CreateRefreshToken"); err != nil {
		return err
	}
	return s.Store.CreateRefreshToken(ctx, t)
}

func (s *Store) GetRefreshToken(ctx context.Context, id string) (store.RefreshToken, error) {
	if err := s.fail("GetRefreshToken"); err != nil {
		return store.RefreshToken{}, err
	}
	return s.Store.GetRefreshToken(ctx, id)
}

func (s *Store) GetRefreshTokenByHash(ctx context.Context, hash string) (store.RefreshToken, error) {
	if err := s.fail("GetRefreshTokenByHash"); err != nil {
		return store.RefreshToken{}, err
	}
	return s.Store.GetRefreshTokenByHash(ctx, hash)
}

func (s *Store) ClaimRefreshToken(ctx context.Context, hash, clientID, nextID, nextHash string, at time.Time) (store.RefreshToken, bool, error) {
	if err := s.fail("ClaimRefreshToken"); err != nil {
		return store.RefreshToken{}, false, err
	}
	return s.Store.ClaimRefreshToken(ctx, hash, clientID, nextID, nextHash, at)
}

func (s *Store) UnclaimRefreshToken(ctx context.Context, oldID, nextID string) error {
	if err := s.fail("UnclaimRefreshToken"); err != nil {
		return err
	}
	return s.Store.UnclaimRefreshToken(ctx, oldID, nextID)
}

func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, next store.RefreshToken) error {
	if err := s.fail("RotateRefreshToken"); err != nil {
		return err
	}
	return s.Store.RotateRefreshToken(ctx, oldID, next)
}

func (s *Store) RevokeRefreshFamily(ctx context.Context, family string, at time.Time) (int64, error) {
	if err := s.fail("RevokeRefreshFamily"); err != nil {
		return 0, err
	}
	return s.Store.RevokeRefreshFamily(ctx, family, at)
}

func (s *Store) AppendAuditEvent(ctx context.Context, e store.AuditEvent) error {
	if err := s.fail("AppendAuditEvent"); err != nil {
		return err
	}
	return s.Store.AppendAuditEvent(ctx, e)
}

// Ephemeral is an ephemeral.Store whose operations on keys with a prefix
// given to Down fail ("" fails every key).
type Ephemeral struct {
	ephemeral.Store
	mu       sync.Mutex
	prefixes []string
}

// NewEphemeral wraps s.
func NewEphemeral(s ephemeral.Store) *Ephemeral { return &Ephemeral{Store: s} }

// Down makes the operations on keys starting with one of prefixes fail
// until Up.
func (e *Ephemeral) Down(prefixes ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.prefixes = append(e.prefixes, prefixes...)
}

// Up makes every key work again.
func (e *Ephemeral) Up() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.prefixes = nil
}

func (e *Ephemeral) fail(op string, keys ...string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range keys {
		for _, p := range e.prefixes {
			if strings.HasPrefix(k, p) {
				return fmt.Errorf("ephemeral: %s: %w: %s", op, ephemeral.ErrUnavailable, Detail)
			}
		}
	}
	return nil
}

func (e *Ephemeral) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := e.fail("put", key); err != nil {
		return err
	}
	return e.Store.Put(ctx, key, value, ttl)
}

func (e *Ephemeral) PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := e.fail("put new", key); err != nil {
		return err
	}
	return e.Store.PutNew(ctx, key, value, ttl)
}

func (e *Ephemeral) Get(ctx context.Context, key string) ([]byte, error) {
	if err := e.fail("get", key); err != nil {
		return nil, err
	}
	return e.Store.Get(ctx, key)
}

func (e *Ephemeral) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	if err := e.fail("get many", keys...); err != nil {
		return nil, err
	}
	return e.Store.GetMany(ctx, keys...)
}

func (e *Ephemeral) PutGet(ctx context.Context, key string, value []byte, ttl time.Duration, other string) ([]byte, error) {
	if err := e.fail("put get", key, other); err != nil {
		return nil, err
	}
	return e.Store.PutGet(ctx, key, value, ttl, other)
}

func (e *Ephemeral) Delete(ctx context.Context, key string) error {
	if err := e.fail("delete", key); err != nil {
		return err
	}
	return e.Store.Delete(ctx, key)
}

func (e *Ephemeral) Take(ctx context.Context, key string) ([]byte, error) {
	if err := e.fail("take", key); err != nil {
		return nil, err
	}
	return e.Store.Take(ctx, key)
}

func (e *Ephemeral) Incr(ctx context.Context, key string, window time.Duration) (int64, error) {
	if err := e.fail("incr", key); err != nil {
		return 0, err
	}
	return e.Store.Incr(ctx, key, window)
}

func (e *Ephemeral) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	if err := e.fail("update", key); err != nil {
		return err
	}
	return e.Store.Update(ctx, key, ttl, fn)
}

func (e *Ephemeral) Ping(ctx context.Context) error {
	if err := e.fail("ping", ""); err != nil {
		return err
	}
	return e.Store.Ping(ctx)
}
