package session

import (
	"context"
	"encoding/json"
	"slices"
	"time"
)

// The per-user index of browser sessions, so that a password change can
// sign the user's other browsers out. Its key carries the user id (not a
// secret); each entry is a session id (public: the ID token's sid) and the
// hash of its cookie value (the session's own key suffix), never the
// cookie value.
const (
	keyUserSessions = "usess:"
	// maxUserSessions bounds the index: beyond it, the oldest session is
	// signed out.
	maxUserSessions = 64
)

type indexEntry struct {
	ID        string    `json:"id"`
	Key       string    `json:"k"` // Hash(cookie value)
	ExpiresAt time.Time `json:"e"`
}

func decodeIndex(b []byte) ([]indexEntry, error) {
	var entries []indexEntry
	if b == nil {
		return nil, nil
	}
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, err
	}
	return entries, nil
}

// index records that the session s lives under key (replacing what the
// index held for s.ID: its previous cookie, which Start has deleted), and
// forgets expired sessions.
func (m *Manager) index(ctx context.Context, key string, s *Session) error {
	var evicted []string
	err := m.Ephemeral.Update(ctx, keyUserSessions+s.UserID, m.TTL+time.Minute, func(old []byte) ([]byte, error) {
		entries, err := decodeIndex(old)
		if err != nil {
			entries = nil // a damaged index is rebuilt
		}
		now := m.now()
		entries = slices.DeleteFunc(entries, func(e indexEntry) bool { return e.ID == s.ID || !now.Before(e.ExpiresAt) })
		entries = append(entries, indexEntry{ID: s.ID, Key: key, ExpiresAt: s.ExpiresAt})
		evicted = evicted[:0]
		for len(entries) > maxUserSessions {
			evicted = append(evicted, entries[0].Key)
			entries = entries[1:]
		}
		return json.Marshal(entries)
	})
	if err != nil {
		return err
	}
	for _, k := range evicted {
		_ = m.Ephemeral.Delete(ctx, keySession+k)
	}
	return nil
}

// EndUserSessions signs out every browser session of the user but keep
// (a session id; "" ends them all), wherever they are, and returns the ids
// of the sessions ended (for their tokens to be revoked).
func (m *Manager) EndUserSessions(ctx context.Context, userID, keep string) ([]string, error) {
	var ended []indexEntry
	err := m.Ephemeral.Update(ctx, keyUserSessions+userID, m.TTL+time.Minute, func(old []byte) ([]byte, error) {
		entries, err := decodeIndex(old)
		if err != nil {
			entries = nil
		}
		ended = ended[:0]
		var kept []indexEntry
		for _, e := range entries {
			if keep != "" && e.ID == keep {
				kept = append(kept, e)
			} else {
				ended = append(ended, e)
			}
		}
		if len(kept) == 0 {
			return nil, nil // deletes the index
		}
		return json.Marshal(kept)
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(ended))
	for _, e := range ended {
		if err := m.Ephemeral.Delete(ctx, keySession+e.Key); err != nil {
			return ids, err
		}
		ids = append(ids, e.ID)
	}
	return ids, nil
}
