package oidcstore

import "strings"

// IsAuthRequestKey reports whether an ephemeral key holds an authorization
// request: state that any unauthenticated GET /authorize creates, which a
// bounded store may evict (that browser then starts its sign-in over).
// Codes, their markers and tokens are not: evicting them would let a code
// be used twice or a revoked token back in.
func IsAuthRequestKey(key string) bool { return strings.HasPrefix(key, keyAuthRequest) }
