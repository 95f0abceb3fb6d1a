// Package store is the durable data contract of Sésame: users, credentials,
// recovery codes, action tokens, clients, refresh tokens, signing keys, audit
// events and the outbox, with value types, sentinel errors and transactions.
//
// It imports nothing of the project. The implementations live in
// store/postgres (pgx v5) and store/sqlite (modernc.org/sqlite); both pass the
// conformance suite in store/storetest.
package store
