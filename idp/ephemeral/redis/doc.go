// Package redis is the ephemeral.Store on Redis (go-redis v9), for several
// Sésame processes sharing state. A single server, Sentinel and Cluster are
// chosen by the URL given to Open; see Open for the forms.
//
// Every key is prefix+key, so instances and test runs can share a server.
// Every value is sealed (seal.Sealer, AES-256-GCM) with the full key as
// additional data before it is sent, so Redis, its backups and its
// replication stream never see a plaintext value, and a value copied to
// another key does not open. Counters (Incr) are plain integers: Redis must
// do the arithmetic, and a count reveals nothing a key does not.
//
// The commands: Put is SET PX, PutNew SET NX PX, Get GET, Take GETDEL (Redis
// 6.2 or later), Delete DEL, Incr a Lua script running INCR and, for a new
// counter, PEXPIRE in one atomic step, Ping PING.
//
// It knows the ephemeral contract and package seal, nothing else of the
// project. Errors never contain keys, values or the URL's credentials.
package redis
