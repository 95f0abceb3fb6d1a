// Package mfa holds the second factors, one file each (totp.go,
// recovery.go, and next sms and webauthn), behind the Factor interface,
// with their enrollment and challenge pages (pages.go).
//
// A factor checks an answer and reports the result to idp/flow, which
// decides the next step; it never calls the password pages or the account
// pages. It knows the stores only through their contracts.
package mfa
