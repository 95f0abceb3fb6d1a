// Package faulty wraps the durable and ephemeral stores for tests so that
// chosen operations fail as an unreachable backend does (with
// store.ErrUnavailable or ephemeral.ErrUnavailable, and a driver-like text
// that must never reach a response): each place that could take such a
// failure for a verdict ("not found", "expired", "disabled") has a test.
package faulty
