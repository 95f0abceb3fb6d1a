package users

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
)

const (
	// TOTPSecretSize is the size of the secrets Sésame generates: 160 bits.
	TOTPSecretSize = 20
	// minImportedSecret: imported authenticators may be older 80-bit ones.
	minImportedSecret = 10
)

// badSecret says what an imported key must be.
const badSecret = "the key must be base32, at least 16 characters (80 bits)"

// ErrBadSecret: an imported key is not base32 or too short.
var ErrBadSecret = errors.New("users: " + badSecret)

// NewTOTPSecret returns a fresh random 160-bit secret.
func NewTOTPSecret() []byte {
	b := make([]byte, TOTPSecretSize)
	_, _ = rand.Read(b)
	return b
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// EncodeSecret is the base32 form shown to users and put in otpauth URLs.
func EncodeSecret(secret []byte) string { return b32.EncodeToString(secret) }

// ParseSecret reads a base32 key as people type or export it: spaces,
// dashes, lower case and padding are tolerated.
func ParseSecret(s string) ([]byte, error) {
	s = strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "=", "").Replace(strings.TrimSpace(s)))
	b, err := b32.DecodeString(s)
	if err != nil || len(b) < minImportedSecret {
		return nil, ErrBadSecret
	}
	return b, nil
}

func totpAAD(credentialID string) []byte { return []byte("totp:" + credentialID) }

// SealSecret seals a TOTP secret for storage, bound to its credential.
func SealSecret(s *seal.Sealer, credentialID string, secret []byte) []byte {
	return s.Seal(secret, totpAAD(credentialID))
}

// OpenSecret opens a stored TOTP secret.
func OpenSecret(s *seal.Sealer, c store.Credential) ([]byte, error) {
	return s.Open(c.Secret, totpAAD(c.ID))
}

// NewTOTPCredential builds a TOTP credential for secret. verifiedAt is zero
// while the enrollment is unconfirmed.
func NewTOTPCredential(s *seal.Sealer, userID, name string, secret []byte, now, verifiedAt time.Time) store.Credential {
	id := uuid.NewString()
	return store.Credential{
		ID:         id,
		UserID:     userID,
		Type:       store.CredTOTP,
		Name:       name,
		Secret:     SealSecret(s, id, secret),
		CreatedAt:  now,
		VerifiedAt: verifiedAt,
	}
}
