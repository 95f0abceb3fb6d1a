//go:build !goexperiment.boringcrypto

package main

// cryptoModule names the cryptography the binary was built with: "go" for
// a plain go build, "boringcrypto" for the release build
// (scripts/build-release).
func cryptoModule() string { return "go" }
