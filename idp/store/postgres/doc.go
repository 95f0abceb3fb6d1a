// Package postgres implements store.Store on PostgreSQL with pgx v5 and a
// connection pool.
//
// The SQL is hand-written, as constants next to the method that runs it,
// with explicit Scan lists; driver errors become store.ErrNotFound and
// store.ErrConflict in mapErr. Single-use values and compare-and-set
// operations (recovery codes, action tokens, TOTP steps, refresh token
// rotation, outbox leases) are one conditional statement each, so that they
// hold under concurrent requests on several nodes.
//
// The schema comes from migrations.Postgres, applied by Migrate under an
// advisory lock, one transaction per file.
//
// Conventions beyond store.go, held by storetest for both backends:
// usernames are stored folded; zero times are NULL; empty slices, maps and
// byte slices come back nil; ListUsers and ListAuditEvents take limit <= 0
// as 100; Delete* and Update* return store.ErrNotFound when nothing
// matched; a foreign key pointing nowhere is store.ErrNotFound; the IDs of
// recovery codes, and of audit events and outbox messages given without
// one, are UUIDv7 made here. SetPassword replaces the password in place
// (same credential ID; CreatedAt and VerifiedAt set to at, LastUsedAt
// cleared). RevokeRefreshToken keeps the first revocation time.
//
// This package must not know about HTTP, flows or policy, nor about the
// other backend; only cmd/ chooses it.
package postgres
