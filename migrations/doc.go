// Package migrations holds the SQL schema of the durable store, one
// directory per dialect (postgres/, sqlite/), as numbered files
// NNNN_name.sql embedded in the binary, and the small runner logic the
// backends share: Load reads and checks a directory, Pending says what is
// left to apply.
//
// Both directories carry the same versions with the same names; a test holds
// them to it. Applying the files (one transaction each, the
// schema_migrations table, locking) is the job of each backend
// (idp/store/postgres, idp/store/sqlite), which knows its driver.
//
// This package must not know about drivers, connections or the store
// contract: it only reads files.
package migrations
