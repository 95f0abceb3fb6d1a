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

// PasswordResetKind names forgotten-password tokens in the store (the
// links of idp/login's forgotten-password pages).
const PasswordResetKind = "password_reset"

// NewActivationToken creates a single-use activation link for a
// pending_activation user, in tx, and returns the token to put in the URL.
// The user's earlier activation links stop working: only the latest one
// does (callers that may run at once for a user hold its lock,
// tx.LockUser, as ResendActivation and the approval of a request do).
func NewActivationToken(ctx context.Context, tx store.Tx, userID string, now time.Time) (string, error) {
	return NewActivationTokenTTL(ctx, tx, userID, now, ActivationTTL)
}

// NewActivationTokenTTL is NewActivationToken with a link that works for
// ttl (provisioning.activation_ttl for welcome emails).
func NewActivationTokenTTL(ctx context.Context, tx store.Tx, userID string, now time.Time, ttl time.Duration) (string, error) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	if _, err := tx.ExpireActionTokens(ctx, userID, ActivationKind, now); err != nil {
		return "", err
	}
	err := tx.CreateActionToken(ctx, store.ActionToken{
		Hash:      oidcstore.HashToken(token),
		Kind:      ActivationKind,
		UserID:    userID,
		CreatedAt: now,
		ExpiresAt: now.Add(ttl),
	})
	return token, err
}

// ExpireEmailedLinks ends, in tx, the user's unused activation and
// forgotten-password links, for an email address that changes: a link
// already sent to the old address must not open the account. It returns
// how many links it ended.
func ExpireEmailedLinks(ctx context.Context, tx store.Tx, userID string, now time.Time) (int64, error) {
	var n int64
	for _, kind := range []string{ActivationKind, PasswordResetKind} {
		k, err := tx.ExpireActionTokens(ctx, userID, kind, now)
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}
