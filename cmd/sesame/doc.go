// Command sesame is the one binary of Sésame: serve, migrate, version, and
// the administration commands. It is the only place that knows concrete
// types: it picks the store (PostgreSQL or SQLite), the ephemeral store
// (Redis or in-process), the senders and the metrics registry, and hands
// them down.
package main
