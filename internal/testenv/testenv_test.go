package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// fakeTB records a Skip or a Fatal and stops the goroutine, as testing does.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// call runs fn with a fakeTB in its own goroutine, so that Goexit ends only it.
func call(fn func(testing.TB) string) (got string, tb *fakeTB) {
	tb = &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		got = fn(tb)
	}()
	<-done
	return got, tb
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name       string
		fn         func(testing.TB) string
		variable   string
		value      string
		requireAll string
		wantSkip   bool
		wantFail   bool
	}{
		{name: "postgres set", fn: PostgresURL, variable: "SESAME_TEST_POSTGRES_URL", value: "postgres://x"},
		{name: "postgres unset skips", fn: PostgresURL, variable: "SESAME_TEST_POSTGRES_URL", wantSkip: true},
		{name: "postgres unset fails in CI", fn: PostgresURL, variable: "SESAME_TEST_POSTGRES_URL", requireAll: "1", wantFail: true},
		{name: "redis set", fn: RedisURL, variable: "SESAME_TEST_REDIS_URL", value: "redis://x", requireAll: "1"},
		{name: "redis unset skips", fn: RedisURL, variable: "SESAME_TEST_REDIS_URL", requireAll: "0", wantSkip: true},
		{name: "redis unset fails in CI", fn: RedisURL, variable: "SESAME_TEST_REDIS_URL", requireAll: "1", wantFail: true},
		{name: "chromium unset skips", fn: Chromium, variable: "SESAME_TEST_CHROMIUM", wantSkip: true},
		{name: "chromium unset fails in CI", fn: Chromium, variable: "SESAME_TEST_CHROMIUM", requireAll: "1", wantFail: true},
		{name: "chromium not found fails", fn: Chromium, variable: "SESAME_TEST_CHROMIUM", value: "/nonexistent/chromium", wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tt.variable, tt.value)
			t.Setenv(RequireAll, tt.requireAll)
			got, tb := call(tt.fn)
			if tb.skipped != tt.wantSkip || tb.failed != tt.wantFail {
				t.Fatalf("skipped %v, failed %v (%q); want skipped %v, failed %v",
					tb.skipped, tb.failed, tb.msg, tt.wantSkip, tt.wantFail)
			}
			if (tt.wantSkip || tt.wantFail) && !strings.Contains(tb.msg, tt.variable) {
				t.Errorf("message %q does not name %s", tb.msg, tt.variable)
			}
			if !tt.wantSkip && !tt.wantFail && got != tt.value {
				t.Errorf("got %q, want %q", got, tt.value)
			}
		})
	}
}

func TestSkipMessage(t *testing.T) {
	t.Setenv("SESAME_TEST_POSTGRES_URL", "")
	t.Setenv(RequireAll, "")
	_, tb := call(PostgresURL)
	if want := "SESAME_TEST_POSTGRES_URL not set: PostgreSQL suite skipped"; tb.msg != want {
		t.Errorf("message %q, want %q", tb.msg, want)
	}
}

func TestWithSearchPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?search_path=test_x&sslmode=disable"},
		{"postgresql://u@h/db", "postgresql://u@h/db?search_path=test_x"},
		{"host=h dbname=db", "host=h dbname=db search_path=test_x"},
	} {
		got, err := withSearchPath(tt.in, "test_x")
		if err != nil || got != tt.want {
			t.Errorf("withSearchPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	_, err := withSearchPath("postgres://u:secret@h:bad port/db", "test_x")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad URL: error %v, want one without the password", err)
	}
}

func TestPostgresSchema(t *testing.T) {
	base := PostgresURL(t)
	ctx := t.Context()
	var schema string
	t.Run("inside", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, PostgresSchema(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(schema, "test_") {
			t.Fatalf("current_schema() = %q, want test_…", schema)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
	})
	if schema == "" {
		t.Fatal("no schema")
	}
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("schema %s still exists after the test", schema)
	}
}
