// Command sesame-bench measures a running Sésame: it provisions test users
// with an authenticator app (directly in the server's database, with its
// sealing key, as `sesame user create --totp-secret` does) and two clients
// (opaque and JWT access tokens), then drives each scenario at a chosen
// concurrency for a chosen time — discovery, JWKS, client credentials
// (opaque, JWT), introspection, refresh with rotation, code exchange (a
// signed-in browser's authorization request and its exchange), and the
// full flow (authorize → password → TOTP → token → userinfo) — with a
// progress line, and prints throughput, p50/p95/p99 latency, errors, and
// CPU per operation: the server's process_cpu_seconds_total from /metrics
// before and after, plus, with -cpu-pids, the database's and Redis's —
// and from it what one core carries of each operation.
//
//	sesame-bench -config sesame.yaml -url http://127.0.0.1:8080 -users 500 -concurrency 16 -duration 20s
//
// The server should run with a high regulate.requests (every authorization
// request from the one bench address counts against it).
package main
