// Package sqlite implements store.Store on an SQLite file with
// modernc.org/sqlite (pure Go, driver "sqlite"), for single-node
// deployments and development.
//
// The file is in WAL mode with foreign keys on. Writes go through one
// connection (BEGIN IMMEDIATE for transactions), so that writers in the
// process queue in Go instead of failing with SQLITE_BUSY; reads go through
// a pool of read-only connections and run concurrently with the writer,
// with their statements prepared once (stmtcache.go).
// busy_timeout covers other processes on the same file (the sesame CLI).
//
// The SQL is hand-written, as constants next to the method that runs it,
// with explicit Scan lists; driver errors become store.ErrNotFound and
// store.ErrConflict in mapErr. Timestamps are INTEGER unix microseconds,
// NULL for the zero time. The schema comes from migrations.SQLite, applied
// by Migrate, one transaction per file.
//
// Conventions beyond store.go are those of the postgres package, held by
// storetest for both backends: usernames stored folded; empty slices, maps
// and byte slices come back nil; limit <= 0 is 100 for ListUsers and
// ListAuditEvents; Delete* and Update* return store.ErrNotFound when nothing
// matched; a foreign key pointing nowhere is store.ErrNotFound; generated
// IDs are UUIDv7; SetPassword replaces the password in place;
// RevokeRefreshToken keeps the first revocation time.
//
// This package must not know about HTTP, flows or policy, nor about the
// other backend; only cmd/ chooses it.
package sqlite
