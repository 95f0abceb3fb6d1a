package idp

import (
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// Opaque tokens and codes are sealed with AES-256-GCM (idp/seal), not
// zitadel/oidc's JWE; values sealed by the default JWE still open; any
// change to a sealed value, or another key, is refused.
func TestTokenCrypto(t *testing.T) {
	var key [32]byte
	copy(key[:], "0123456789abcdef0123456789abcdef")
	c, err := newTokenCrypto(key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Encrypt("3f1c7a52-1111-4222-8333-944455556666:user-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, sealedPrefix) || strings.Count(v, ".") != 1 {
		t.Fatalf("not a sealed value: %q", v)
	}
	if got, err := c.Decrypt(v); err != nil || got != "3f1c7a52-1111-4222-8333-944455556666:user-1" {
		t.Fatalf("round trip: %q %v", got, err)
	}
	legacy, err := op.NewAES256GCMCrypto(key, "").Encrypt("id:sub")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Decrypt(legacy); err != nil || got != "id:sub" {
		t.Fatalf("a JWE token of before does not open: %q %v", got, err)
	}
	other, _ := newTokenCrypto([32]byte{1})
	for _, bad := range []string{
		flip(v, len(v)/2),
		v[:len(v)-4],
		sealedPrefix + "!!!",
		sealedPrefix + strings.Repeat("A", 5000),
		"s1.",
		mustEncrypt(t, other, "id:sub"),
	} {
		if got, err := c.Decrypt(bad); err == nil {
			t.Errorf("Decrypt(%.40q) = %q, want an error", bad, got)
		}
	}
}

func mustEncrypt(t *testing.T, c *tokenCrypto, s string) string {
	v, err := c.Encrypt(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// flip changes the character at i to another base64url character.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}
