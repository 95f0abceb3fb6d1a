// Package softkey is a software WebAuthn authenticator for tests: an ECDSA
// P-256 key that answers creation and request options with "none"
// attestation, building clientDataJSON and authenticatorData itself.
package softkey
