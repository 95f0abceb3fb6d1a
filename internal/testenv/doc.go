// Package testenv gives tests the external services they need, from the
// test environment variables: SESAME_TEST_POSTGRES_URL,
// SESAME_TEST_REDIS_URL and SESAME_TEST_CHROMIUM. A test whose variable is
// unset is skipped, unless SESAME_TEST_REQUIRE_ALL=1 (CI), where it fails.
//
// PostgresSchema isolates a test in a fresh schema so that packages can run
// in parallel against one server.
//
// It is for tests only and must not know about the store or any other
// package of the project; it never logs connection strings (they may hold a
// password).
package testenv
