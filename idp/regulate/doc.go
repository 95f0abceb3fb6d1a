// Package regulate throttles guessing: passwords and second-factor codes,
// and the unauthenticated requests that create stored state.
//
// It counts failures, never successes, per account × network and per
// account × device, with waits that grow with each failure rather than a
// hard lock. A browser on which the account signed in before carries a
// device cookie (session.Manager.RememberDevice) and is judged on its own
// failures alone, so a stranger's failures never lock it out; unknown
// devices share a cap of MaxUnknown consecutive failures per account (NIST
// SP 800-63B §5.2.2), and a network's failures across accounts are capped
// too. Support voids an account's counts with Unlock (`sesame user unlock`).
// AllowRequest counts requests per network, generously: a hospital behind
// one address signs in hundreds of people at 7 a.m. A Quota (quota.go)
// limits actions that cost something whether they succeed or not (a reset
// email), per subject or per network.
//
// State lives in the ephemeral store through the narrow Store interface,
// changed by atomic read-modify-writes; the windows follow the injected
// clock. Key names carry hashes of accounts and device cookies, never the
// values. It knows nothing of HTTP, of the pages, or of the durable store.
package regulate
