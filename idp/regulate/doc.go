// Package regulate throttles password and code attempts per account and
// per client address, with counters in the ephemeral store (whose clock is
// injected in tests). It knows nothing of HTTP or of the pages.
package regulate
