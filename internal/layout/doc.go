// Package layout holds the test that keeps the package house of DESIGN §2:
// it reads the import graph with `go list` and fails on an arrow the
// design forbids.
package layout
