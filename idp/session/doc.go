// Package session holds the browser session (per-factor timestamps, the
// networks where a second factor was verified, acr and amr), the browser
// binding cookie with the CSRF tokens derived from it, the long-lived device
// cookie a browser keeps after a successful sign-in, and the reduction
// of client addresses to networks for the step-up policy. A per-user index
// (index.go) lists a user's sessions so that a password change can end
// them all.
//
// Sessions live in the ephemeral store: losing them signs people out and
// never lets anyone in. It knows nothing of pages or of the provider.
package session
