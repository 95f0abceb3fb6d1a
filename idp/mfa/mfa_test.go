package mfa_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/sesame-idp/sesame/idp/mfa"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/internal/teststore"
)

// fixedNow is the clock of these tests.
var fixedNow = time.Unix(1700000000, 0).UTC()

func TestMatchTOTPSkew(t *testing.T) {
	secret := []byte("12345678901234567890")
	step := mfa.TOTPStep(fixedNow)
	for _, tc := range []struct {
		name string
		d    int64
		ok   bool
	}{
		{"two steps early", -2, false},
		{"one step early", -1, true},
		{"current step", 0, true},
		{"one step late", 1, true},
		{"two steps late", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := mfa.TOTPCode(secret, step+tc.d)
			got, ok := mfa.MatchTOTP(secret, code, fixedNow)
			if ok != tc.ok {
				t.Fatalf("MatchTOTP(code of step %+d) = %v, want %v", tc.d, ok, tc.ok)
			}
			if ok && got != step+tc.d {
				t.Errorf("matched step %d, want %d", got, step+tc.d)
			}
		})
	}
	code := mfa.TOTPCode(secret, step)
	for _, typed := range []string{code[:3] + " " + code[3:], " " + code + " ", code[:3] + "-" + code[3:], code[:3] + "\u00a0" + code[3:]} {
		if _, ok := mfa.MatchTOTP(secret, typed, fixedNow); !ok {
			t.Errorf("%q refused", typed)
		}
	}
	for _, bad := range []string{"", code[:5], code + "0", "abcdef", "0" + code[1:] + "x", strings.Repeat("9", 1000)} {
		if bad == code {
			continue
		}
		if _, ok := mfa.MatchTOTP(secret, bad, fixedNow); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, ok := mfa.MatchTOTP([]byte("another secret of 20"), code, fixedNow); ok {
		t.Error("code accepted for another secret")
	}
}

// RFC 6238 appendix B, SHA-1: the 8-digit values, of which Sésame shows
// the last six digits (RFC 4226 truncation modulo 10^6).
func TestTOTPRFC6238Vectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix   int64
		eight  string
		six    string
		inStep int64
	}{
		{59, "94287082", "287082", 1},
		{1111111109, "07081804", "081804", 37037036},
		{1111111111, "14050471", "050471", 37037037},
		{1234567890, "89005924", "005924", 41152263},
		{2000000000, "69279037", "279037", 66666666},
		{20000000000, "65353130", "353130", 666666666},
	} {
		now := time.Unix(tc.unix, 0)
		step := mfa.TOTPStep(now)
		if step != tc.inStep {
			t.Errorf("T=%d: step %d, want %d", tc.unix, step, tc.inStep)
		}
		eight, err := hotp.GenerateCodeCustom(users.EncodeSecret(secret), uint64(step), hotp.ValidateOpts{Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA1})
		if err != nil || eight != tc.eight {
			t.Errorf("T=%d: 8 digits %q (%v), want %q", tc.unix, eight, err, tc.eight)
		}
		if got := mfa.TOTPCode(secret, step); got != tc.six {
			t.Errorf("T=%d: TOTPCode = %q, want %q", tc.unix, got, tc.six)
		}
		if got, ok := mfa.MatchTOTP(secret, tc.six, now); !ok || got != step {
			t.Errorf("T=%d: MatchTOTP = %d, %v", tc.unix, got, ok)
		}
	}
}

func TestOTPAuthURL(t *testing.T) {
	secret := []byte("12345678901234567890")
	got := mfa.OTPAuthURL("Sésame", "sophie", secret)
	want := "otpauth://totp/S%C3%A9same:sophie?algorithm=SHA1&digits=6&issuer=S%C3%A9same&period=30&secret=" + users.EncodeSecret(secret)
	if got != want {
		t.Errorf("OTPAuthURL:\n got %s\nwant %s", got, want)
	}

	// What an authenticator app reads back, for names that need escaping.
	for _, username := range []string{"sophie", "jean.tremblay+clinique@example.org", "élise côté", "a/b?c#d&e=f", "100%"} {
		t.Run(username, func(t *testing.T) {
			raw := mfa.OTPAuthURL("Sésame", username, secret)
			key, err := otp.NewKeyFromURL(raw)
			if err != nil {
				t.Fatal(err)
			}
			if key.Type() != "totp" || key.Issuer() != "Sésame" || key.AccountName() != username {
				t.Errorf("type %q, issuer %q, account %q", key.Type(), key.Issuer(), key.AccountName())
			}
			if key.Secret() != users.EncodeSecret(secret) || key.Period() != mfa.TOTPPeriod ||
				key.Digits() != otp.DigitsSix || key.Algorithm() != otp.AlgorithmSHA1 {
				t.Errorf("secret %q, period %d, digits %v, algorithm %v", key.Secret(), key.Period(), key.Digits(), key.Algorithm())
			}
			// The label's issuer prefix and the issuer parameter agree
			// (Key URI format: apps may use either).
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if prefix, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), ":"); prefix != u.Query().Get("issuer") {
				t.Errorf("label issuer %q, parameter %q", prefix, u.Query().Get("issuer"))
			}
			if _, err := mfa.QRDataURI(raw); err != nil {
				t.Errorf("QR code: %v", err)
			}
		})
	}
}

func TestGroupSecret(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"ABC", []string{"ABC"}},
		{"ABCD", []string{"ABCD"}},
		{"ABCDE", []string{"ABCD", "E"}},
		{"ABCDEFGHIJ", []string{"ABCD", "EFGH", "IJ"}},
		{"ABCDEFGHIJKLMNOP", []string{"ABCD", "EFGH", "IJKL", "MNOP"}},
	} {
		if got := mfa.GroupSecret(tc.in); !equal(got, tc.want) {
			t.Errorf("GroupSecret(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	b32 := users.EncodeSecret(users.NewTOTPSecret())
	groups := mfa.GroupSecret(b32)
	if len(b32) != 32 || len(groups) != 8 || strings.Join(groups, "") != b32 {
		t.Errorf("160-bit key %q grouped as %q", b32, groups)
	}
	// The grouped key, typed with its spaces, is the same key.
	if s, err := users.ParseSecret(strings.ToLower(strings.Join(groups, " "))); err != nil || users.EncodeSecret(s) != b32 {
		t.Errorf("ParseSecret of the grouped key: %v", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// totpFixture is a user with a verified authenticator in a store.
type totpFixture struct {
	st     store.Store
	factor mfa.TOTP
	user   store.User
	secret []byte
	cred   store.Credential
}

func newTOTPFixture(t testing.TB, st store.Store) *totpFixture {
	t.Helper()
	sealer, err := seal.New(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u := store.User{
		ID: uuid.NewString(), Username: "sophie-" + uuid.NewString()[:8], Email: "sophie@clinic.example",
		Status: store.StatusActive, AccountType: "person", CreatedAt: fixedNow, UpdatedAt: fixedNow,
	}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	secret := users.NewTOTPSecret()
	c := users.NewTOTPCredential(sealer, u.ID, "Phone", secret, fixedNow, fixedNow)
	if err := st.CreateCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	return &totpFixture{st: st, factor: mfa.TOTP{Store: st, Sealer: sealer}, user: u, secret: secret, cred: c}
}

// stores opens each durable store these tests run on; PostgreSQL only
// when SESAME_TEST_POSTGRES_URL is set.
var stores = []struct {
	name string
	open func(t testing.TB) store.Store
}{
	{"sqlite", teststore.SQLite},
	{"postgres", teststore.Postgres},
}

func TestTOTPVerifyReplay(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			fx := newTOTPFixture(t, s.open(t))
			ctx := context.Background()
			step := mfa.TOTPStep(fixedNow)
			code := mfa.TOTPCode(fx.secret, step)

			c, err := fx.factor.Verify(ctx, fx.user, code, fixedNow)
			if err != nil {
				t.Fatal(err)
			}
			if c.ID != fx.cred.ID || c.TOTPLastStep != step {
				t.Errorf("credential %s at step %d, want %s at %d", c.ID, c.TOTPLastStep, fx.cred.ID, step)
			}
			if _, err := fx.factor.Verify(ctx, fx.user, code, fixedNow); !errors.Is(err, mfa.ErrCodeInvalid) {
				t.Fatalf("same code again: %v, want ErrCodeInvalid", err)
			}
			// The previous step's code is still within the window, but older
			// than the one used: refused too.
			if _, err := fx.factor.Verify(ctx, fx.user, mfa.TOTPCode(fx.secret, step-1), fixedNow); !errors.Is(err, mfa.ErrCodeInvalid) {
				t.Fatalf("older step after a newer one: %v, want ErrCodeInvalid", err)
			}
			// The next step's code is fine.
			if _, err := fx.factor.Verify(ctx, fx.user, mfa.TOTPCode(fx.secret, step+1), fixedNow); err != nil {
				t.Fatalf("next step: %v", err)
			}
			stored, err := fx.st.GetCredential(ctx, fx.cred.ID)
			if err != nil || stored.TOTPLastStep != step+1 || stored.LastUsedAt.IsZero() {
				t.Errorf("stored step %d, last used %v (%v), want step %d", stored.TOTPLastStep, stored.LastUsedAt, err, step+1)
			}
			later := fixedNow.Add(time.Hour)
			if _, err := fx.factor.Verify(ctx, fx.user, wrongCode(fx.secret, later), later); !errors.Is(err, mfa.ErrCodeInvalid) {
				t.Errorf("wrong code: %v, want ErrCodeInvalid", err)
			}
		})
	}
}

func TestTOTPVerifyIgnoresUnconfirmedCredential(t *testing.T) {
	st := stores[0].open(t)
	fx := newTOTPFixture(t, st)
	secret := users.NewTOTPSecret()
	pending := users.NewTOTPCredential(fx.factor.Sealer, fx.user.ID, "Not confirmed", secret, fixedNow, time.Time{})
	if err := st.CreateCredential(context.Background(), pending); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.factor.Verify(context.Background(), fx.user, mfa.TOTPCode(secret, mfa.TOTPStep(fixedNow)), fixedNow); !errors.Is(err, mfa.ErrCodeInvalid) {
		t.Fatalf("code of an unconfirmed authenticator: %v, want ErrCodeInvalid", err)
	}
}

// wrongCode is a 6-digit code that matches no step around now.
func wrongCode(secret []byte, now time.Time) string {
	step := mfa.TOTPStep(now)
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", i)
		if c != mfa.TOTPCode(secret, step-1) && c != mfa.TOTPCode(secret, step) && c != mfa.TOTPCode(secret, step+1) {
			return c
		}
	}
}

// TestTOTPVerifyConcurrent submits one code 50 times at once: exactly one
// submission wins, the others are refused as replays (not failures).
func TestTOTPVerifyConcurrent(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			fx := newTOTPFixture(t, s.open(t))
			code := mfa.TOTPCode(fx.secret, mfa.TOTPStep(fixedNow))
			const n = 50
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				errs  = make([]error, n)
			)
			for i := range n {
				wg.Go(func() {
					<-start
					_, errs[i] = fx.factor.Verify(context.Background(), fx.user, code, fixedNow)
				})
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, err := range errs {
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, mfa.ErrCodeInvalid):
					t.Errorf("unexpected error: %v", err)
				}
			}
			if wins != 1 {
				t.Errorf("%d submissions of one code accepted, want exactly 1", wins)
			}
		})
	}
}
