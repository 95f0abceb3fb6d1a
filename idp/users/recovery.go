package users

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// RecoveryCodeCount is the size of a set of recovery codes.
const RecoveryCodeCount = 5

// recoveryAlphabet avoids look-alikes (no 0/O, 1/I/L): Crockford-like.
const recoveryAlphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewRecoveryCodes returns a fresh set: five codes of 16 characters from a
// 30-letter alphabet (78 bits each), shown as XXXX-XXXX-XXXX-XXXX.
func NewRecoveryCodes() []string {
	codes := make([]string, RecoveryCodeCount)
	for i := range codes {
		var b strings.Builder
		for j := range 16 {
			if j > 0 && j%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(recoveryAlphabet[randIndex(len(recoveryAlphabet))])
		}
		codes[i] = b.String()
	}
	return codes
}

// randIndex is uniform in [0, n) (rejection sampling).
func randIndex(n int) int {
	limit := 256 - 256%n
	var b [1]byte
	for {
		_, _ = rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}

// NormalizeRecoveryCode uppercases and drops separators.
func NormalizeRecoveryCode(code string) string {
	return strings.ToUpper(NormalizeCode(code))
}

// HashRecoveryCode is how recovery codes are stored: bound to the user.
// The codes carry 78 bits, so a fast hash is enough.
func HashRecoveryCode(userID, code string) string {
	sum := sha256.Sum256([]byte("sesame-recovery:" + userID + ":" + NormalizeRecoveryCode(code)))
	return hex.EncodeToString(sum[:])
}

// LooksLikeRecoveryCode tells a recovery code from a 6-digit app code, so
// either can be typed in the same field.
func LooksLikeRecoveryCode(code string) bool {
	return len(NormalizeRecoveryCode(code)) == 16
}

// HashRecoveryCodes hashes a set for the store.
func HashRecoveryCodes(userID string, codes []string) []string {
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = HashRecoveryCode(userID, c)
	}
	return hashes
}

// RegenerateRecoveryCodes replaces the user's recovery codes (voiding the
// old set) with the audit event, and returns the new ones, to show once.
func RegenerateRecoveryCodes(ctx context.Context, st store.Store, userID string, now time.Time, event store.AuditEvent) ([]string, error) {
	codes := NewRecoveryCodes()
	err := st.InTx(ctx, func(tx store.Tx) error {
		if err := tx.ReplaceRecoveryCodes(ctx, userID, HashRecoveryCodes(userID, codes), now); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, event)
	})
	return codes, err
}

// NormalizeCode drops the spaces and dashes people type in codes.
func NormalizeCode(code string) string {
	return strings.NewReplacer(" ", "", "-", "", "\u00a0", "").Replace(strings.TrimSpace(code))
}

// SecondFactors are the user's verified second factors (not the password,
// not a method still being set up).
func SecondFactors(ctx context.Context, st store.Store, userID string) ([]store.Credential, error) {
	creds, err := st.ListCredentials(ctx, userID, "")
	if err != nil {
		return nil, err
	}
	out := creds[:0]
	for _, c := range creds {
		if c.Type != store.CredPassword && !c.VerifiedAt.IsZero() {
			out = append(out, c)
		}
	}
	return out, nil
}
