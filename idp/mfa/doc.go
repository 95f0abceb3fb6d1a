// Package mfa holds the second factors: the Factor interface, TOTP
// (authenticator apps), recovery codes and, later, SMS and passkeys, with
// their enrollment and challenge pages and the gate that makes a second
// factor mandatory between the password and the authorization code.
//
// It knows the durable and ephemeral stores only through their contracts.
package mfa
