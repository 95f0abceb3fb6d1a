package redis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sesame-idp/sesame/idp/ephemeral/redis"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The Redis client's own messages (here: a failed dial) are records of
// the program's logger, not plain text on standard error.
func TestClientMessagesAreLogRecords(t *testing.T) {
	var buf lockedBuffer
	redis.SetLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
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
	out := buf.String()
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
