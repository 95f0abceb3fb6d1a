package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireAll is the variable that turns a skip for a missing service into a
// failure.
const RequireAll = "SESAME_TEST_REQUIRE_ALL"

// lookup returns the value of the variable name, or skips the test (fails
// it under SESAME_TEST_REQUIRE_ALL=1) when it is unset.
func lookup(t testing.TB, name, suite string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	msg := fmt.Sprintf("%s not set: %s suite skipped", name, suite)
	if os.Getenv(RequireAll) == "1" {
		t.Fatalf("%s, but %s=1 requires it", msg, RequireAll)
	}
	t.Skip(msg)
	return ""
}

// PostgresURL returns SESAME_TEST_POSTGRES_URL, e.g.
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
// Tests that write should use PostgresSchema instead.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return lookup(t, "SESAME_TEST_POSTGRES_URL", "PostgreSQL")
}

// RedisURL returns SESAME_TEST_REDIS_URL, e.g. redis://127.0.0.1:6379/0.
func RedisURL(t testing.TB) string {
	t.Helper()
	return lookup(t, "SESAME_TEST_REDIS_URL", "Redis")
}

// Chromium returns the path of the browser named by SESAME_TEST_CHROMIUM (a
// path, or a name looked up in PATH). It fails the test when the variable is
// set but names no executable.
func Chromium(t testing.TB) string {
	t.Helper()
	v := lookup(t, "SESAME_TEST_CHROMIUM", "browser")
	path, err := exec.LookPath(v)
	if err != nil {
		t.Fatalf("SESAME_TEST_CHROMIUM: %v", err)
	}
	return path
}

// PostgresSchema creates a schema test_<random hex> on the server of
// SESAME_TEST_POSTGRES_URL and returns a connection string whose sessions
// use it (search_path). The schema and everything in it are dropped when
// the test ends; close the connections opened on it before, with a
// t.Cleanup registered after this call.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)

	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails
	schema := "test_" + hex.EncodeToString(b[:])

	run := func(ctx context.Context, sql string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, err = conn.Exec(ctx, sql)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// schema is made of [a-z0-9_] only: no quoting needed.
	if err := run(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("SESAME_TEST_POSTGRES_URL: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := run(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("SESAME_TEST_POSTGRES_URL: drop schema %s: %v", schema, err)
		}
	})

	withSchema, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("SESAME_TEST_POSTGRES_URL: %v", err)
	}
	return withSchema
}

// withSearchPath adds search_path=schema to a connection string, in URL or
// keyword/value form.
func withSearchPath(connString, schema string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			// url.Error would echo the URL, which may hold a password.
			return "", errors.New("connection string is not a valid URL")
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return connString + " search_path=" + schema, nil
}
