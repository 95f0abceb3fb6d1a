package users_test

import (
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/sesame-idp/sesame/idp/users"
)

// recoveryAlphabet is the documented alphabet: no 0/O, 1/I/L, nor U.
const recoveryAlphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"

var recoveryCodeRE = regexp.MustCompile(`^[` + recoveryAlphabet + `]{4}(-[` + recoveryAlphabet + `]{4}){3}$`)

func TestRecoveryCodes(t *testing.T) {
	codes := users.NewRecoveryCodes()
	if len(codes) != 5 || users.RecoveryCodeCount != 5 {
		t.Fatalf("%d codes (RecoveryCodeCount %d), want 5", len(codes), users.RecoveryCodeCount)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if !recoveryCodeRE.MatchString(c) {
			t.Errorf("code %q: not XXXX-XXXX-XXXX-XXXX from %s", c, recoveryAlphabet)
		}
		if seen[c] {
			t.Errorf("code %q twice in one set", c)
		}
		seen[c] = true
		if !users.LooksLikeRecoveryCode(c) {
			t.Errorf("%q does not look like a recovery code", c)
		}
	}
	if bits := 16 * math.Log2(float64(len(recoveryAlphabet))); bits < 78 {
		t.Errorf("%.1f bits per code, want at least 78", bits)
	}
}

// TestRecoveryCodesUniform draws many codes: every letter of the alphabet
// appears about equally often, and no code repeats.
func TestRecoveryCodesUniform(t *testing.T) {
	const sets = 400 // 2,000 codes, 32,000 letters
	counts := map[rune]int{}
	seen := map[string]bool{}
	for range sets {
		for _, c := range users.NewRecoveryCodes() {
			if seen[c] {
				t.Fatalf("code %q drawn twice", c)
			}
			seen[c] = true
			for _, r := range strings.ReplaceAll(c, "-", "") {
				counts[r]++
			}
		}
	}
	if len(counts) != len(recoveryAlphabet) {
		t.Fatalf("%d distinct letters, want %d: %v", len(counts), len(recoveryAlphabet), counts)
	}
	expected := float64(sets*users.RecoveryCodeCount*16) / float64(len(recoveryAlphabet)) // ≈ 1067, σ ≈ 32
	for r, n := range counts {
		if float64(n) < 0.8*expected || float64(n) > 1.2*expected {
			t.Errorf("letter %q drawn %d times, expected about %.0f", r, n, expected)
		}
	}
}

func TestRecoveryCodeNormalisation(t *testing.T) {
	const user = "3f0c8f5e-0000-4000-8000-000000000001"
	code := "ABCD-EFGH-JKMN-PQRS"
	want := users.HashRecoveryCode(user, code)
	for _, typed := range []string{
		"abcd-efgh-jkmn-pqrs",
		"ABCDEFGHJKMNPQRS",
		"abcd efgh jkmn pqrs",
		"  Abcd-Efgh Jkmn-pqrs\n",
		"ABCD\u00a0EFGH\u00a0JKMN\u00a0PQRS",
		"AB-CD-EF-GH-JK-MN-PQ-RS",
	} {
		if got := users.HashRecoveryCode(user, typed); got != want {
			t.Errorf("%q hashes differently from %q", typed, code)
		}
		if !users.LooksLikeRecoveryCode(typed) {
			t.Errorf("%q does not look like a recovery code", typed)
		}
	}
	if users.HashRecoveryCode("another-user", code) == want {
		t.Error("the hash is not bound to the user")
	}
	if users.HashRecoveryCode(user, "ABCD-EFGH-JKMN-PQRT") == want {
		t.Error("another code has the same hash")
	}
	for _, notRecovery := range []string{"123456", "123 456", "", "ABCD-EFGH-JKMN-PQR"} {
		if users.LooksLikeRecoveryCode(notRecovery) {
			t.Errorf("%q looks like a recovery code", notRecovery)
		}
	}
}
