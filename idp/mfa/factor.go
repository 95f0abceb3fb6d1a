package mfa

import (
	"context"
	"time"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/store"
)

// Factor is one kind of second factor. It fits a code the user reads
// (TOTP, recovery codes), a code sent on demand (SMS: Begin sends it) and
// a challenge/response ceremony (WebAuthn: Begin returns the options, the
// answer is the browser's assertion).
type Factor interface {
	// Method is the form's "method" value and the credential type (totp,
	// sms, webauthn, recovery).
	Method() string
	// AMR is the RFC 8176 method the factor adds (otp, sms, hwk…).
	AMR() flow.Method
	// Enrolled reports whether u can use the factor now.
	Enrolled(ctx context.Context, u store.User) (bool, error)
	// Begin prepares a challenge for u and returns what the page needs
	// (nothing for TOTP).
	Begin(ctx context.Context, u store.User, now time.Time) (Challenge, error)
	// Verify checks the user's answer against u's verified credentials and
	// consumes it (an answer is accepted once, also under concurrency):
	// ErrCodeInvalid otherwise. It returns the credential used.
	Verify(ctx context.Context, u store.User, answer string, now time.Time) (store.Credential, error)
}

// Challenge is what a factor's Begin gives the challenge page.
type Challenge struct {
	// Destination is where a code was sent, masked (SMS).
	Destination string
	// Options are the public-key request options of a ceremony (WebAuthn),
	// JSON.
	Options []byte
}
