// Package testdeps starts private PostgreSQL and Redis servers for tests
// that stop and restart them (the fault tests): each on a free loopback
// port, in a temporary directory, removed when the test ends. The shared
// servers of SESAME_TEST_POSTGRES_URL and SESAME_TEST_REDIS_URL are never
// touched. Without the binaries (redis-server; initdb and pg_ctl from
// /usr/lib/postgresql/*/bin or PATH: Debian's redis-server and postgresql
// packages) the test is skipped, or fails under SESAME_TEST_REQUIRE_ALL=1.
package testdeps
