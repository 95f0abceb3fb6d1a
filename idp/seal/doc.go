// Package seal encrypts small secrets at rest with AES-256-GCM: TOTP secrets,
// signing keys, and values written to Redis.
//
// Every sealed value names the key that sealed it, so keys rotate without a
// migration: a Sealer seals with its current key and opens with the current
// key or any older one it was given. A sealed value is
//
//	version (1 byte, 1) | key id length (1 byte) | key id | nonce (12 bytes) | ciphertext and tag
//
// and the header (version, key id length, key id) is authenticated together
// with the caller's additional data, so a value cannot be moved to another
// record (bind it with aad) or relabelled with another key id.
//
// Keys are stored as one line "<kid>:<base64 of 32 bytes>", either in a file
// (LoadOrCreateKeyFile) or in configuration (ParseKey).
//
// The package knows nothing of the project: no store, no configuration, no
// logging. It never puts key material or plaintext in an error or a string.
package seal
