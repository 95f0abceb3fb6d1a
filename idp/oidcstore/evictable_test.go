package oidcstore

import "testing"

// Only authorization requests may be evicted from a bounded store: never
// a code, its markers or tokens.
func TestIsAuthRequestKey(t *testing.T) {
	if !IsAuthRequestKey(keyAuthRequest + "0b7a5e9c-1f7e-4a43-9d3e-6f1c2b8a4d10") {
		t.Error("an authorization request key is not evictable")
	}
	for _, prefix := range []string{keyCode, keyCodeIssued, keyAccessToken, keyRevokedFamily, "codeuse:", "codereplay:", "revsess:", "sess:", "rl:", "mfafail:", "a", ""} {
		if IsAuthRequestKey(prefix + "x") {
			t.Errorf("%q keys taken for authorization requests", prefix)
		}
	}
}
