package users

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/sesame-idp/sesame/idp/users/argon2id"

	"github.com/sesame-idp/sesame/idp/store"
)

// PasswordParams are the argon2id cost parameters of a password hash.
type PasswordParams struct {
	Memory      uint32 // KiB
	Iterations  uint32
	Parallelism uint8
	SaltLen     uint32 // bytes
	KeyLen      uint32 // bytes
}

// DefaultPasswordParams is the OWASP recommendation for argon2id:
// 19 MiB of memory, 2 iterations, 1 lane, a 16-byte salt and a 32-byte hash.
func DefaultPasswordParams() PasswordParams {
	return PasswordParams{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
}

// Bounds on the parameters we hash with or accept from a stored hash. They
// let ordinary parameter sets through (OWASP's, RFC 9106's second choice)
// and refuse ones that would let a tampered database row or a bad setting
// make each verification cost gigabytes or minutes.
const (
	maxMemoryKiB   = 1 << 20 // 1 GiB
	maxIterations  = 64
	maxCostKiB     = 1 << 22 // Memory × Iterations: 4 GiB worth of passes
	maxParallelism = 16
	minSaltLen     = 8
	maxSaltLen     = 64
	minKeyLen      = 16
	maxKeyLen      = 64
)

// ErrMalformedHash is returned (wrapped) for a stored hash that is not an
// argon2id PHC string with acceptable parameters.
var ErrMalformedHash = errors.New("users: malformed password hash")

// Validate reports whether p is within the bounds Sésame hashes with and
// accepts in stored hashes.
func (p PasswordParams) Validate() error {
	switch {
	case p.Parallelism < 1 || p.Parallelism > maxParallelism:
		return fmt.Errorf("argon2id parallelism %d: must be 1 to %d", p.Parallelism, maxParallelism)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB: must be 8×parallelism to %d", p.Memory, maxMemoryKiB)
	case p.Iterations < 1 || p.Iterations > maxIterations:
		return fmt.Errorf("argon2id iterations %d: must be 1 to %d", p.Iterations, maxIterations)
	case uint64(p.Memory)*uint64(p.Iterations) > maxCostKiB:
		return fmt.Errorf("argon2id memory × iterations %d: must be at most %d", uint64(p.Memory)*uint64(p.Iterations), maxCostKiB)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("argon2id salt length %d: must be %d to %d bytes", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("argon2id key length %d: must be %d to %d bytes", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// HashPassword hashes pw with argon2id and a fresh random salt and returns
// the PHC string, as the reference implementation writes it:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (standard base64, no padding).
func HashPassword(pw string, p PasswordParams) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never returns an error
	key := argon2id.IDKey([]byte(pw), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	return encodePHC(p, salt, key), nil
}

// VerifyPassword checks pw against a PHC string made by HashPassword,
// whatever its parameters, in constant time. needsRehash is true when the
// password matches but the hash was made with parameters other than
// DefaultPasswordParams: the caller should store a new hash. err is
// non-nil (wrapping ErrMalformedHash) only when phc cannot be used; a wrong
// password is ok == false with a nil error.
func VerifyPassword(phc, pw string) (ok bool, needsRehash bool, err error) {
	return verify(phc, pw, DefaultPasswordParams())
}

// Passwords hashes and verifies passwords with configured parameters. The
// zero value uses DefaultPasswordParams.
type Passwords struct {
	Params PasswordParams
}

func (ps Passwords) params() PasswordParams {
	if ps.Params == (PasswordParams{}) {
		return DefaultPasswordParams()
	}
	return ps.Params
}

// Hash is HashPassword with ps's parameters.
func (ps Passwords) Hash(pw string) (string, error) { return HashPassword(pw, ps.params()) }

// Verify is VerifyPassword, with needsRehash judged against ps's parameters.
func (ps Passwords) Verify(phc, pw string) (ok bool, needsRehash bool, err error) {
	return verify(phc, pw, ps.params())
}

// DummyVerify does the work of Verify against a fixed hash with ps's
// parameters and throws the result away. Call it when the user is unknown
// (or has no password) so that the answer takes as long as for a wrong
// password.
func (ps Passwords) DummyVerify(pw string) {
	_, _, _ = verify(dummyPHC(ps.params()), pw, ps.params())
}

// dummyPHC is a valid hash with parameters p that no password is expected
// to match: a fixed salt and an all-zero hash. It costs a string
// concatenation to build, so it follows the configured parameters without
// needing a slow precomputation.
func dummyPHC(p PasswordParams) string {
	var salt [maxSaltLen]byte
	for i := range salt {
		salt[i] = byte(i) // any fixed value: the result is thrown away
	}
	var key [maxKeyLen]byte
	return encodePHC(p, salt[:p.SaltLen], key[:p.KeyLen])
}

func verify(phc, pw string, current PasswordParams) (ok bool, needsRehash bool, err error) {
	p, salt, want, err := decodePHC(phc)
	if err != nil {
		return false, false, err
	}
	got := argon2id.IDKey([]byte(pw), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != current, nil
}

var b64 = base64.RawStdEncoding.Strict()

func encodePHC(p PasswordParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2id.Version, p.Memory, p.Iterations, p.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decodePHC parses $argon2id$v=19$m=M,t=T,p=P$salt$hash strictly: argon2id
// only, version 19, the three parameters in this order as canonical
// decimals, unpadded standard base64, and parameters within Validate's
// bounds (checked before any work is done with them).
func decodePHC(phc string) (p PasswordParams, salt, key []byte, err error) {
	malformed := func(why string) error { return fmt.Errorf("%w: %s", ErrMalformedHash, why) }
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, nil, nil, malformed("not a PHC string")
	}
	if parts[1] != "argon2id" {
		return p, nil, nil, malformed("not argon2id")
	}
	if parts[2] != "v=19" {
		return p, nil, nil, malformed("not argon2 version 19")
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return p, nil, nil, malformed("want parameters m, t and p")
	}
	var vals [3]uint32
	for i, name := range [3]string{"m=", "t=", "p="} {
		digits, found := strings.CutPrefix(kv[i], name)
		if !found {
			return p, nil, nil, malformed("want parameters m, t and p")
		}
		v, ok := parseDecimal(digits)
		if !ok {
			return p, nil, nil, malformed("bad value of parameter " + name[:1])
		}
		vals[i] = v
	}
	if vals[2] > maxParallelism {
		return p, nil, nil, malformed("parameters out of bounds")
	}
	if salt, err = decodeB64(parts[4]); err != nil {
		return p, nil, nil, malformed("bad salt encoding")
	}
	if key, err = decodeB64(parts[5]); err != nil {
		return p, nil, nil, malformed("bad hash encoding")
	}
	p = PasswordParams{
		Memory:      vals[0],
		Iterations:  vals[1],
		Parallelism: uint8(vals[2]),
		SaltLen:     uint32(len(salt)),
		KeyLen:      uint32(len(key)),
	}
	if err := p.Validate(); err != nil {
		return PasswordParams{}, nil, nil, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	return p, salt, key, nil
}

// decodeB64 decodes unpadded standard base64, refusing the line breaks the
// encoding/base64 decoder would otherwise skip.
func decodeB64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break in base64")
	}
	return b64.DecodeString(s)
}

// parseDecimal accepts what encodePHC writes: 1 to 10 ASCII digits without
// a leading zero (or "0"), fitting in 32 bits.
func parseDecimal(s string) (uint32, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err == nil
}

// Password policy errors, returned as is by CheckPasswordPolicy.
var (
	ErrPasswordTooShort = errors.New("users: password too short")
	ErrPasswordTooLong  = errors.New("users: password too long")
	ErrPasswordCommon   = errors.New("users: password too common")
)

// Password length bounds, in characters (Unicode code points). The upper
// bound keeps the cost of hashing bounded; NIST SP 800-63B asks for at
// least 64.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 256
)

// CheckPasswordPolicy applies the policy for a new password: 8 to 256
// characters, not among the common passwords shipped with Sésame and not
// the username, both compared case-insensitively and ignoring surrounding
// spaces. There are no composition rules (NIST SP 800-63B).
func CheckPasswordPolicy(pw, username string) error {
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLen {
		return ErrPasswordTooShort
	}
	if n > MaxPasswordLen {
		return ErrPasswordTooLong
	}
	folded := store.FoldUsername(pw)
	if _, common := commonPasswords()[folded]; common {
		return ErrPasswordCommon
	}
	if u := store.FoldUsername(username); u != "" && folded == u {
		return ErrPasswordCommon
	}
	return nil
}

// commonpasswords.txt holds one lower-case password per line; lines
// starting with # are comments.
//
//go:embed commonpasswords.txt
var commonPasswordsTxt string

var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, strings.Count(commonPasswordsTxt, "\n")+1)
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsTxt))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[strings.ToLower(line)] = struct{}{}
	}
	return set
})
