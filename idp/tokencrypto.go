package idp

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sesame-idp/sesame/idp/seal"
)

// sealedPrefix marks the values tokenCrypto makes (a JWE compact value
// starts with its base64url header, "ey").
const sealedPrefix = "s1."

// tokenAAD binds the sealed values to their use.
var tokenAAD = []byte("sesame/oidc-token")

// tokenCrypto is what zitadel/oidc encrypts opaque access tokens and codes
// with ("token id:subject"): AES-256-GCM through idp/seal, written as
// "s1." + base64url, instead of zitadel/oidc's default JWE (A256GCMKW +
// A256GCM), which costs a JSON header, a key wrap and their encodings for
// each token. Values made by the default (before an upgrade) still open.
type tokenCrypto struct {
	sealer *seal.Sealer
	legacy op.Crypto
}

func newTokenCrypto(key [32]byte) (*tokenCrypto, error) {
	s, err := seal.New(seal.Key{ID: "t1", Secret: key[:]})
	if err != nil {
		return nil, err
	}
	return &tokenCrypto{sealer: s, legacy: op.NewAES256GCMCrypto(key, "")}, nil
}

func (c *tokenCrypto) Encrypt(s string) (string, error) {
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(c.sealer.Seal([]byte(s), tokenAAD)), nil
}

var errTokenOpen = errors.New("token cannot be opened")

func (c *tokenCrypto) Decrypt(s string) (string, error) {
	rest, ok := strings.CutPrefix(s, sealedPrefix)
	if !ok {
		return c.legacy.Decrypt(s)
	}
	if len(rest) > 4096 {
		return "", errTokenOpen
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return "", errTokenOpen
	}
	p, err := c.sealer.Open(b, tokenAAD)
	if err != nil {
		return "", errTokenOpen
	}
	return string(p), nil
}
