package audit

import (
	"context"
	"sync"
)

type userKey struct{}

// userSlot is where a request's handlers note whom it is about, for the
// access log line written after them.
type userSlot struct {
	mu sync.Mutex
	id string
}

// WithUserSlot returns a context in which NoteUser can record a user id
// for the request's log line (the middleware calls it).
func WithUserSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, userKey{}, &userSlot{})
}

// NoteUser records that the request concerns userID (an id, never a
// username or other text a person typed). Every event recorded notes its
// user.
func NoteUser(ctx context.Context, userID string) {
	if s, ok := ctx.Value(userKey{}).(*userSlot); ok && userID != "" {
		s.mu.Lock()
		s.id = userID
		s.mu.Unlock()
	}
}

// NotedUser returns the user id noted for the request, or "".
func NotedUser(ctx context.Context) string {
	s, ok := ctx.Value(userKey{}).(*userSlot)
	if !ok {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}
