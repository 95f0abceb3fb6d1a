package users

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// cheapParams keeps the tests fast; the PHC format and the code paths are
// the same as with the defaults.
var cheapParams = PasswordParams{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

func TestPasswordDefaults(t *testing.T) {
	want := PasswordParams{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	if got := DefaultPasswordParams(); got != want {
		t.Fatalf("DefaultPasswordParams() = %+v, want %+v", got, want)
	}
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	if (Passwords{}).params() != want {
		t.Fatal("zero Passwords does not use the default parameters")
	}
}

func TestPasswordHashFormat(t *testing.T) {
	phc, err := HashPassword("correct horse", DefaultPasswordParams())
	if err != nil {
		t.Fatal(err)
	}
	// 16-byte salt → 22 chars, 32-byte hash → 43 chars, no padding.
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(phc) {
		t.Fatalf("HashPassword = %q, not the reference PHC format", phc)
	}
	again, _ := HashPassword("correct horse", DefaultPasswordParams())
	if again == phc {
		t.Fatal("two hashes of the same password are equal: salt not random")
	}
}

// Hashes made by the reference implementation, the argon2 CLI:
// echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e
// echo -n password | argon2 somesaltsomesalt -id -t 1 -k 64 -p 1 -l 32 -e
func TestPasswordVerifyReferenceVectors(t *testing.T) {
	for _, phc := range []string{
		"$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$55PWTvddWPUD1GMbKxSff4ASfF85k9ibHJt4HlHQtBM",
	} {
		ok, rehash, err := VerifyPassword(phc, "password")
		if err != nil || !ok {
			t.Fatalf("VerifyPassword(%s) = %v, %v, %v; want true", phc, ok, rehash, err)
		}
		if !rehash {
			t.Fatal("reference hash has other parameters: want needsRehash")
		}
		if ok, _, _ := VerifyPassword(phc, "Password"); ok {
			t.Fatal("wrong password accepted")
		}
	}
	// And the reference implementation's output for our own salt and
	// parameters is what HashPassword's encoding would produce.
	salt := []byte("somesaltsomesalt")
	p := PasswordParams{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	key := argon2.IDKey([]byte("password"), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	if got, want := encodePHC(p, salt, key), "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$55PWTvddWPUD1GMbKxSff4ASfF85k9ibHJt4HlHQtBM"; got != want {
		t.Fatalf("encodePHC = %s, want %s", got, want)
	}
}

func TestPasswordRoundTrip(t *testing.T) {
	ps := Passwords{Params: cheapParams}
	for _, pw := range []string{"correct horse battery staple", "Mot de passe très sûr ça", "😀😀😀😀😀😀😀😀", strings.Repeat("x", 1024)} {
		phc, err := ps.Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		ok, rehash, err := ps.Verify(phc, pw)
		if err != nil || !ok || rehash {
			t.Fatalf("Verify(own hash of %.20q) = %v, %v, %v; want true, false, nil", pw, ok, rehash, err)
		}
		for _, wrong := range []string{pw + " ", pw[:len(pw)-1], "", strings.ToUpper(pw)} {
			if wrong == pw {
				continue
			}
			ok, rehash, err := ps.Verify(phc, wrong)
			if err != nil || ok || rehash {
				t.Fatalf("Verify(hash of %.20q, %.20q) = %v, %v, %v; want false, false, nil", pw, wrong, ok, rehash, err)
			}
		}
	}
}

func TestPasswordNeedsRehash(t *testing.T) {
	old := cheapParams
	phc, err := HashPassword("correct horse", old)
	if err != nil {
		t.Fatal(err)
	}
	changes := map[string]func(*PasswordParams){
		"memory":      func(p *PasswordParams) { p.Memory *= 2 },
		"iterations":  func(p *PasswordParams) { p.Iterations++ },
		"parallelism": func(p *PasswordParams) { p.Parallelism++ },
		"salt":        func(p *PasswordParams) { p.SaltLen = 32 },
		"key":         func(p *PasswordParams) { p.KeyLen = 64 },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			cur := old
			change(&cur)
			ok, rehash, err := Passwords{Params: cur}.Verify(phc, "correct horse")
			if err != nil || !ok || !rehash {
				t.Fatalf("Verify with new %s = %v, %v, %v; want true, true, nil", name, ok, rehash, err)
			}
			// A wrong password never asks for a rehash.
			if ok, rehash, _ := (Passwords{Params: cur}).Verify(phc, "wrong horse"); ok || rehash {
				t.Fatalf("Verify(wrong) = %v, %v", ok, rehash)
			}
		})
	}
	// The package-level function judges against the defaults.
	if ok, rehash, err := VerifyPassword(phc, "correct horse"); err != nil || !ok || !rehash {
		t.Fatalf("VerifyPassword(cheap hash) = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
}

func TestPasswordMalformedHash(t *testing.T) {
	const salt, key = "c29tZXNhbHRzb21lc2FsdA", "Ty1uC1pd5ohXNqVw6zI7o9j+oC+J+aACBqYPC+M+rQg"
	good := "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key
	if _, _, err := VerifyPassword(good, "x"); err != nil {
		t.Fatalf("control case rejected: %v", err)
	}
	cases := map[string]string{
		"empty":               "",
		"not phc":             "hunter2",
		"bcrypt":              "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":             "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"argon2d":             "$argon2d$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"version 16":          "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"no version":          "$argon2id$m=64,t=1,p=1$" + salt + "$" + key,
		"params reordered":    "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"param missing":       "$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"extra param":         "$argon2id$v=19$m=64,t=1,p=1,k=x$" + salt + "$" + key,
		"negative":            "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key,
		"plus sign":           "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key,
		"leading zero":        "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key,
		"not a number":        "$argon2id$v=19$m=6x,t=1,p=1$" + salt + "$" + key,
		"empty number":        "$argon2id$v=19$m=,t=1,p=1$" + salt + "$" + key,
		"overflow":            "$argon2id$v=19$m=4294967296,t=1,p=1$" + salt + "$" + key,
		"zero iterations":     "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"zero parallelism":    "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"p over 255":          "$argon2id$v=19$m=4096,t=1,p=257$" + salt + "$" + key,
		"memory below 8p":     "$argon2id$v=19$m=8,t=1,p=2$" + salt + "$" + key,
		"padded salt":         "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key,
		"url base64":          "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.NewReplacer("+", "-", "/", "_").Replace(key),
		"bad base64":          "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:len(key)-1] + "!",
		"non-canonical b64":   "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:len(key)-1] + "h",
		"short salt":          "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key,
		"empty salt":          "$argon2id$v=19$m=64,t=1,p=1$$" + key,
		"short hash":          "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$c2hvcnQ",
		"empty hash":          "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",
		"missing hash":        "$argon2id$v=19$m=64,t=1,p=1$" + salt,
		"trailing field":      good + "$",
		"no leading dollar":   good[1:],
		"trailing newline":    good + "\n",
		"newline in hash":     "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:10] + "\r\n" + key[10:],
		"space in params":     "$argon2id$v=19$m=64, t=1,p=1$" + salt + "$" + key,
		"uppercase algorithm": "$ARGON2ID$v=19$m=64,t=1,p=1$" + salt + "$" + key,
	}
	for name, phc := range cases {
		t.Run(name, func(t *testing.T) {
			ok, rehash, err := VerifyPassword(phc, "x")
			if !errors.Is(err, ErrMalformedHash) || ok || rehash {
				t.Fatalf("VerifyPassword(%q) = %v, %v, %v; want ErrMalformedHash", phc, ok, rehash, err)
			}
		})
	}
}

// A tampered row must not make us allocate gigabytes or spin for minutes:
// these are refused before argon2 runs (the test would time out or run out
// of memory otherwise).
func TestPasswordAbsurdParamsRejected(t *testing.T) {
	const salt, key = "c29tZXNhbHRzb21lc2FsdA", "Ty1uC1pd5ohXNqVw6zI7o9j+oC+J+aACBqYPC+M+rQg"
	for _, params := range []string{
		"m=1048577,t=1,p=1",    // just over 1 GiB
		"m=4294967295,t=1,p=1", // 4 TiB
		"m=1048576,t=5,p=1",    // 1 GiB but 5 passes
		"m=65536,t=65,p=1",     // too many passes
		"m=64,t=4294967295,p=1",
		"m=4096,t=1,p=17", // too many lanes
		"m=4096,t=1,p=255",
	} {
		phc := "$argon2id$v=19$" + params + "$" + salt + "$" + key
		ok, _, err := VerifyPassword(phc, "x")
		if !errors.Is(err, ErrMalformedHash) || ok {
			t.Errorf("VerifyPassword(%s) = %v, %v; want ErrMalformedHash", params, ok, err)
		}
	}
	// Long salts and keys too.
	long := strings.Repeat("A", 88) // 66 bytes
	for _, phc := range []string{
		"$argon2id$v=19$m=64,t=1,p=1$" + long + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + long,
	} {
		if _, _, err := VerifyPassword(phc, "x"); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("VerifyPassword(%s) = %v, want ErrMalformedHash", phc, err)
		}
	}
	// The same bounds apply to hashing, so a bad setting fails at once.
	for _, p := range []PasswordParams{
		{},
		{Memory: 2 << 20, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 19456, Iterations: 0, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 8},
	} {
		if _, err := HashPassword("correct horse", p); err == nil {
			t.Errorf("HashPassword with %+v: no error", p)
		}
	}
}

func TestPasswordDummyVerify(t *testing.T) {
	// DummyVerify must go through the full verification (a malformed dummy
	// hash would return at once and give unknown users away by timing).
	for _, p := range []PasswordParams{DefaultPasswordParams(), cheapParams, {Memory: 4096, Iterations: 3, Parallelism: 4, SaltLen: 8, KeyLen: 64}} {
		if _, _, _, err := decodePHC(dummyPHC(p)); err != nil {
			t.Fatalf("dummy hash for %+v: %v", p, err)
		}
		ok, _, err := Passwords{Params: p}.Verify(dummyPHC(p), "password")
		if err != nil || ok {
			t.Fatalf("Verify(dummy) = %v, %v", ok, err)
		}
	}
	Passwords{Params: cheapParams}.DummyVerify("anything")
}

func TestPasswordPolicy(t *testing.T) {
	cases := []struct {
		name, pw, username string
		want               error
	}{
		{"empty", "", "alice", ErrPasswordTooShort},
		{"seven", "abcdefg", "alice", ErrPasswordTooShort},
		{"seven accented runes, more bytes", "éééééé€", "alice", ErrPasswordTooShort},
		{"eight", "tqbfjotl", "alice", nil},
		{"max", strings.Repeat("é", 256), "alice", nil},
		{"too long", strings.Repeat("é", 257), "alice", ErrPasswordTooLong},
		{"common", "password", "alice", ErrPasswordCommon},
		{"common mixed case", "PassWord123", "alice", ErrPasswordCommon},
		{"common with spaces", "  motdepasse ", "alice", ErrPasswordCommon},
		{"common french", "Bonjour123", "alice", ErrPasswordCommon},
		{"common azerty", "AZERTYUIOP", "alice", ErrPasswordCommon},
		{"common digits", "12345678", "alice", ErrPasswordCommon},
		{"common season", "Hiver2026!", "alice", ErrPasswordCommon},
		{"username", "jean.tremblay", "jean.tremblay", ErrPasswordCommon},
		{"username other case", "Jean.Tremblay", "jean.tremblay", ErrPasswordCommon},
		{"empty username ignored", "tqbfjotl", "", nil},
		{"passphrase with accents", "Le cœur a ses raisons, éh!", "alice", nil},
		{"passphrase", "correct horse battery staple", "alice", nil},
		{"contains username", "alice-in-wonderland-42", "alice", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := CheckPasswordPolicy(c.pw, c.username); err != c.want {
				t.Fatalf("CheckPasswordPolicy(%.30q, %q) = %v, want %v", c.pw, c.username, err, c.want)
			}
		})
	}
}

func TestPasswordCommonList(t *testing.T) {
	set := commonPasswords()
	if len(set) < 2000 {
		t.Fatalf("common password list has %d entries", len(set))
	}
	if len(commonPasswordsTxt) > 200<<10 {
		t.Fatalf("common password list is %d bytes, keep it under 200 KiB", len(commonPasswordsTxt))
	}
	for pw := range set {
		if pw != strings.ToLower(pw) || pw != strings.TrimSpace(pw) {
			t.Fatalf("entry %q is not lower case and trimmed: it can never match", pw)
		}
	}
	for _, pw := range []string{"password", "motdepasse", "azertyuiop", "qwertyuiop", "iloveyou", "bonjour1", "soleil123", "sunshine", "12345678", "jetaime123"} {
		if _, ok := set[pw]; !ok {
			t.Errorf("%q missing from the common password list", pw)
		}
	}
}

func BenchmarkHashPassword(b *testing.B) {
	p := DefaultPasswordParams()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple", p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPassword(b *testing.B) {
	phc, err := HashPassword("correct horse battery staple", DefaultPasswordParams())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := VerifyPassword(phc, "correct horse battery staple"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkDummyVerify(b *testing.B) {
	ps := Passwords{}
	b.ReportAllocs()
	for b.Loop() {
		ps.DummyVerify("correct horse battery staple")
	}
}

func BenchmarkCheckPasswordPolicy(b *testing.B) {
	commonPasswords()
	b.ReportAllocs()
	for b.Loop() {
		_ = CheckPasswordPolicy("Correct Horse Battery Staple", "jean.tremblay")
	}
}
