package mfa

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"image/png"
	"net/url"
	"slices"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// TOTP parameters (RFC 6238): SHA-1, 6 digits, 30-second steps, one step
// of drift either way.
const (
	TOTPPeriod = 30
	TOTPDigits = 6
	TOTPSkew   = 1
)

// ErrCodeInvalid: the code matches no accepted time step (or recovery
// code), or its step was already used.
var ErrCodeInvalid = errors.New("mfa: code not valid")

var hotpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPStep is the RFC 6238 time step of t.
func TOTPStep(t time.Time) int64 { return t.Unix() / TOTPPeriod }

// TOTPCode computes the code of a step (tests, benchmarks and the print
// sheet never show it; the server only compares).
func TOTPCode(secret []byte, step int64) string {
	code, _ := hotp.GenerateCodeCustom(users.EncodeSecret(secret), uint64(step), hotpOpts)
	return code
}

// MatchTOTP returns the time step within ±TOTPSkew of now whose code is
// code, comparing in constant time. Replay protection is the caller's: the
// step must then be recorded with store.AdvanceTOTPStep.
func MatchTOTP(secret []byte, code string, now time.Time) (int64, bool) {
	code = users.NormalizeCode(code)
	if len(code) != TOTPDigits {
		return 0, false
	}
	step := TOTPStep(now)
	var found int64
	ok := 0
	for d := int64(-TOTPSkew); d <= TOTPSkew; d++ {
		if subtle.ConstantTimeCompare([]byte(TOTPCode(secret, step+d)), []byte(code)) == 1 {
			found, ok = step+d, 1
		}
	}
	return found, ok == 1
}

// OTPAuthURL is the otpauth:// URI of a new authenticator:
// otpauth://totp/Issuer:username?secret=…&issuer=Issuer.
func OTPAuthURL(issuer, username string, secret []byte) string {
	q := url.Values{}
	q.Set("secret", users.EncodeSecret(secret))
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(TOTPDigits))
	q.Set("period", fmt.Sprint(TOTPPeriod))
	label := url.PathEscape(issuer + ":" + username)
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// QRDataURI renders the otpauth URI as a PNG QR code in a data: URI, so the
// page needs no extra request and the secret never sits in a URL.
func QRDataURI(otpauthURL string) (template.URL, error) {
	key, err := otp.NewKeyFromURL(otpauthURL)
	if err != nil {
		return "", err
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())), nil
}

// GroupSecret splits a base32 key in groups of four for typing.
func GroupSecret(b32 string) []string {
	var out []string
	for len(b32) > 4 {
		out = append(out, b32[:4])
		b32 = b32[4:]
	}
	if b32 != "" {
		out = append(out, b32)
	}
	return out
}

// TOTP is the authenticator-app factor; a time step is accepted once per
// credential, atomically in the durable store.
type TOTP struct {
	Store  store.Store
	Sealer *seal.Sealer
}

var _ Factor = TOTP{}

func (TOTP) Method() string   { return string(store.CredTOTP) }
func (TOTP) AMR() flow.Method { return flow.OTP }

// Enrolled: a confirmed authenticator.
func (f TOTP) Enrolled(ctx context.Context, u store.User) (bool, error) {
	creds, err := f.Store.ListCredentials(ctx, u.ID, store.CredTOTP)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(creds, func(c store.Credential) bool { return !c.VerifiedAt.IsZero() }), nil
}

// Begin: the app shows codes by itself.
func (TOTP) Begin(context.Context, store.User, time.Time) (Challenge, error) { return Challenge{}, nil }

func (f TOTP) Verify(ctx context.Context, u store.User, code string, now time.Time) (store.Credential, error) {
	creds, err := f.Store.ListCredentials(ctx, u.ID, store.CredTOTP)
	if err != nil {
		return store.Credential{}, err
	}
	for _, c := range creds {
		if c.VerifiedAt.IsZero() {
			continue
		}
		secret, err := users.OpenSecret(f.Sealer, c)
		if err != nil {
			return store.Credential{}, fmt.Errorf("open totp secret of %s: %w", c.ID, err)
		}
		step, ok := MatchTOTP(secret, code, now)
		if !ok {
			continue
		}
		// Compare-and-set: of two submissions of one code, one wins.
		if err := f.Store.AdvanceTOTPStep(ctx, c.ID, step, now); err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				return store.Credential{}, ErrCodeInvalid
			}
			return store.Credential{}, err
		}
		c.TOTPLastStep, c.LastUsedAt = step, now
		return c, nil
	}
	return store.Credential{}, ErrCodeInvalid
}
