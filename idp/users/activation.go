package users

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
)

// ActivationKind names activation tokens in the store.
const ActivationKind = "activation"

// ActivationTTL is how long an activation link works.
const ActivationTTL = 7 * 24 * time.Hour

// NewActivationToken creates a single-use activation link for a
// pending_activation user, in tx, and returns the token to put in the URL.
func NewActivationToken(ctx context.Context, tx store.Tx, userID string, now time.Time) (string, error) {
	return NewActivationTokenTTL(ctx, tx, userID, now, ActivationTTL)
}

// NewActivationTokenTTL is NewActivationToken with a link that works for
// ttl (provisioning.activation_ttl for welcome emails).
func NewActivationTokenTTL(ctx context.Context, tx store.Tx, userID string, now time.Time, ttl time.Duration) (string, error) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	err := tx.CreateActionToken(ctx, store.ActionToken{
		Hash:      oidcstore.HashToken(token),
		Kind:      ActivationKind,
		UserID:    userID,
		CreatedAt: now,
		ExpiresAt: now.Add(ttl),
	})
	return token, err
}
