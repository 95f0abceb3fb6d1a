// Package store is the durable data contract of Sésame: users, credentials,
// recovery codes, action tokens, clients, refresh tokens, signing keys, audit
// events and the outbox, with value types, sentinel errors and transactions.
//
// ErrUnavailable marks a failure of the database itself (unreachable,
// timed out, shutting down), wrapped once by each implementation where the
// driver's errors come out: callers answer 503, never "not found".
//
// It imports nothing of the project. The implementations live in
// store/postgres (pgx v5) and store/sqlite (modernc.org/sqlite); both pass the
// conformance suite in store/storetest.
package store
