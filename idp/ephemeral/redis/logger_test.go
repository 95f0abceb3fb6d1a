package redis_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sesame-idp/sesame/idp/ephemeral/redis"
)

// The Redis client's own messages (here: a failed dial) are records of
// the program's logger, not plain text on standard error.
func TestClientMessagesAreLogRecords(t *testing.T) {
	// A file: safe for the client's goroutines to write to.
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	redis.SetLogger(slog.New(slog.NewJSONHandler(f, nil)))
	t.Cleanup(func() { redis.SetLogger(slog.Default()) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING to a closed port succeeded")
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if out == "" {
		t.Fatal("nothing logged for the failed dial")
	}
	for line := range strings.Lines(out) {
		var rec struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON record: %q", line)
		}
		if rec.Level != "WARN" || !strings.HasPrefix(rec.Msg, "redis client: ") || !strings.Contains(rec.Msg, "dial") {
			t.Errorf("record %+v, want a warning about the dial", rec)
		}
	}
}
