// Package storetest is the conformance suite of store.Store: every backend
// passes the same table of subtests (each method's happy path, not-found
// and conflict cases, zero times, slices and maps, ordering, filters,
// limits, transactions), a concurrency suite for the single-use and
// compare-and-set operations, and the same benchmarks.
//
// A backend's test file is a few lines:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return newDB(t) })
//	}
//
// The suite knows only the store package; it must not know any backend.
package storetest
