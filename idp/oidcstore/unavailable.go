package oidcstore

import (
	"context"
	"errors"
	"sync"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/store"
)

// TemporarilyUnavailable is the OAuth error code (RFC 6749 §4.1.2.1) of an
// answer that a dependency failed: the request was neither accepted nor
// refused.
const TemporarilyUnavailable = "temporarily_unavailable"

// UnavailableDescription is the only description sent with it: the
// dependency's own error (an address, a driver message) stays in the logs.
const UnavailableDescription = "the service is temporarily unavailable; try again shortly"

// IsUnavailable reports whether err is, or wraps, a failure of the
// database or the ephemeral store.
func IsUnavailable(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, ephemeral.ErrUnavailable)
}

// Faults collects the dependency failures met while the provider answers
// one HTTP request (WithFaults): zitadel/oidc turns a storage error into a
// verdict of its own (an unknown client, an invalid grant), so the server
// answers a request that met one with a 503 instead.
type Faults struct {
	mu  sync.Mutex
	err error
}

type faultsKey struct{}

// WithFaults returns ctx carrying a new Faults.
func WithFaults(ctx context.Context) (context.Context, *Faults) {
	f := &Faults{}
	return context.WithValue(ctx, faultsKey{}, f), f
}

// Err is the first dependency failure noted, or nil.
func (f *Faults) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Faulted reports whether a dependency failure was noted in ctx's Faults.
func Faulted(ctx context.Context) bool {
	f, _ := ctx.Value(faultsKey{}).(*Faults)
	return f != nil && f.Err() != nil
}

func (f *Faults) note(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

// unavailable notes err (a dependency failure) in the request's Faults
// and returns the error for zitadel/oidc: temporarily_unavailable with a
// generic description, err as its parent (logged, never sent).
func (s *Storage) unavailable(ctx context.Context, err error) error {
	if f, _ := ctx.Value(faultsKey{}).(*Faults); f != nil {
		f.note(err)
	}
	return &oidc.Error{ErrorType: TemporarilyUnavailable, Description: UnavailableDescription, Parent: err}
}

// verdict returns refusal for err, unless err is a dependency failure:
// then the request is answered temporarily_unavailable (unavailable).
// Other errors (a bug) are server errors without their text.
func (s *Storage) verdict(ctx context.Context, err, refusal error) error {
	if IsUnavailable(err) {
		return s.unavailable(ctx, err)
	}
	return refusal
}

// fail is for an error that is no verdict: a dependency failure is
// temporarily_unavailable, anything else a server error whose text stays
// in the logs.
func (s *Storage) fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var oe *oidc.Error
	if errors.As(err, &oe) {
		return err
	}
	if IsUnavailable(err) {
		return s.unavailable(ctx, err)
	}
	return oidc.ErrServerError().WithParent(err).WithDescription("internal error")
}
