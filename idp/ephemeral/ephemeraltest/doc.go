// Package ephemeraltest is the conformance suite every ephemeral.Store
// implementation passes: Run for behaviour (including expiry and
// concurrency), Bench for figures, and FakeClock for stores with an
// injected clock.
//
// It knows the ephemeral contract only, never a concrete store: each
// implementation's test file hands it a constructor.
package ephemeraltest
