// Package mfa holds the second factors, one file each (totp.go, sms.go,
// recovery.go, webauthn.go), behind the Factor interface, with their
// enrollment pages (totp_enroll.go, sms_enroll.go, webauthn_enroll.go) and
// the method choice and challenge pages (pages.go).
//
// A factor checks an answer and reports the result to idp/flow, which
// decides the next step; it never calls the password pages or the account
// pages. It knows the stores only through their contracts.
package mfa
