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
// counter, PEXPIRE in one atomic step, Update a GET then a compare-and-set
// script, Ping PING.
//
// Redis Cluster: every command and every script touches exactly one key,
// so none can span two hash slots (CROSSSLOT) and no hash tag is needed;
// GetMany is a pipeline of single-key GETs, which the Cluster client splits
// by node. Keep it so: a new operation on several keys must put them in one
// slot with a hash tag ({…} around the shared part). TestStoreOnCluster runs
// the shared suite on a three-master Cluster, TestStoreOnSentinel on a
// Sentinel.
//
// It knows the ephemeral contract and package seal, nothing else of the
// project. Errors never contain keys, values or the URL's credentials.
package redis
