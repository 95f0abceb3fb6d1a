//go:build goexperiment.boringcrypto

package main

import "crypto/boring"

// cryptoModule names the cryptography the binary was built with:
// "boringcrypto" for the release build (scripts/build-release), "go" for a
// plain go build.
func cryptoModule() string {
	if boring.Enabled() {
		return "boringcrypto"
	}
	return "go"
}
