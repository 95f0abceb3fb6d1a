package mfa

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"image/png"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

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
	code = NormalizeCode(code)
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

// NormalizeCode drops the spaces and dashes people type in codes.
func NormalizeCode(code string) string {
	return strings.NewReplacer(" ", "", "-", "", "\u00a0", "").Replace(strings.TrimSpace(code))
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
