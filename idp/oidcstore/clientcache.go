package oidcstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// clientCache keeps the clients read from the durable store for
// Storage.ClientTTL, so that a token, introspection or userinfo request
// does not read its client from the database each time. Only clients that
// exist are kept (so the map holds at most the registered clients, whatever
// ids are tried), and each for ClientTTL from its read: a change made by
// the CLI, the API or another node (a rotated secret, a removed client) is
// seen within ClientTTL.
type clientCache struct {
	mu sync.RWMutex
	m  map[string]cachedClient
}

type cachedClient struct {
	c       store.Client
	expires time.Time
}

func (cc *clientCache) get(id string, now time.Time) (store.Client, bool) {
	cc.mu.RLock()
	e, ok := cc.m[id]
	cc.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return store.Client{}, false
	}
	return e.c, true
}

func (cc *clientCache) put(c store.Client, expires time.Time) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m == nil {
		cc.m = make(map[string]cachedClient)
	}
	cc.m[c.ID] = cachedClient{c: c, expires: expires}
}

// ForgetClient drops a client from the cache: the next request reads it
// from the store (for changes made in this process).
func (s *Storage) ForgetClient(id string) {
	s.clients.mu.Lock()
	defer s.clients.mu.Unlock()
	delete(s.clients.m, id)
}

// loadClient reads a client through the cache (when ClientTTL > 0). The
// client returned shares its slices with the cache: read them only.
func (s *Storage) loadClient(ctx context.Context, id string) (store.Client, error) {
	if s.ClientTTL <= 0 {
		return s.Store.GetClient(ctx, id)
	}
	now := s.now()
	if c, ok := s.clients.get(id, now); ok {
		return c, nil
	}
	c, err := s.Store.GetClient(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.ForgetClient(id) // a removed client's expired entry
		}
		return c, err
	}
	s.clients.put(c, now.Add(s.ClientTTL))
	return c, nil
}

// maxCachedUsers bounds the user cache; when full it starts again empty.
const maxCachedUsers = 10000

// userCache keeps the users read for userinfo, introspection and refresh answers
// for Storage.UserTTL, as clientCache does clients: a changed or disabled
// account is seen within UserTTL (and a disable or close through the API
// or the console refuses the account's access tokens at once:
// RevokeUserAccessTokens).
type userCache struct {
	mu sync.RWMutex
	m  map[string]cachedUser
}

type cachedUser struct {
	u       store.User
	expires time.Time
}

// ForgetUser drops a user from the cache (for changes made in this
// process: an account disabled or closed is refused at once).
func (s *Storage) ForgetUser(id string) {
	s.users.mu.Lock()
	defer s.users.mu.Unlock()
	delete(s.users.m, id)
}

// loadUser reads a user through the cache (when UserTTL > 0).
func (s *Storage) loadUser(ctx context.Context, id string) (store.User, error) {
	if s.UserTTL <= 0 {
		return s.Store.GetUser(ctx, id)
	}
	now := s.now()
	s.users.mu.RLock()
	e, ok := s.users.m[id]
	s.users.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.u, nil
	}
	u, err := s.Store.GetUser(ctx, id)
	s.users.mu.Lock()
	defer s.users.mu.Unlock()
	if err != nil {
		delete(s.users.m, id)
		return u, err
	}
	if s.users.m == nil || len(s.users.m) >= maxCachedUsers {
		s.users.m = make(map[string]cachedUser)
	}
	s.users.m[id] = cachedUser{u: u, expires: now.Add(s.UserTTL)}
	return u, nil
}
