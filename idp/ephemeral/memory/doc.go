// Package memory is the in-process ephemeral.Store: a map under a mutex,
// with expiry read from an injected clock. It serves a single process (the
// default when no Redis URL is configured) and tests; state is lost on
// restart, which logs people out and nothing more.
//
// Expired entries are dropped when read, and swept from the whole map at
// most once a minute of clock time, during a write: there is no goroutine.
//
// NewWithOptions caps the number of entries: a full store evicts its least
// recently written evictable entries (the caller says which keys are, e.g.
// authorization requests that unauthenticated requests create), never the
// others (single-use markers, codes, counters, sessions), and never refuses
// a write.
//
// It knows the ephemeral contract and nothing else of the project.
package memory
