// Package argon2id is golang.org/x/crypto/argon2's argon2id (RFC 9106),
// with its block memory reused from one hash to the next.
//
// x/crypto/argon2 allocates its m KiB of blocks at each call (19 MiB for
// the parameters Sésame uses) and zeroes them: each sign-in faulted and
// cleared those pages again and made the garbage collector run. Here a
// hash takes a buffer from a free list (last in, first out: one-at-a-time
// sign-ins keep using one buffer) and gives it back; at most GOMAXPROCS
// hashes run at once (the others wait, as they would for a core), so the
// resident memory they use is bounded by GOMAXPROCS × m, and no page is
// faulted or cleared twice. The
// first pass writes each block (instead of XOR-ing it into zeroed memory),
// so a reused buffer needs no clearing. The key is the same as
// x/crypto/argon2.IDKey's: argon2id_test.go checks RFC 9106's vector and
// x/crypto's output.
//
// blake2b.go, blamka_*.go and blamka_amd64.s are x/crypto's files as they
// are (BSD licence, LICENSE); argon2.go is x/crypto's with the buffer
// handling changed and argon2d and argon2i removed.
package argon2id
