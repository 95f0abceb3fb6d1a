package mfa

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
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
