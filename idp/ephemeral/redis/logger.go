package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// SetLogger makes the Redis client's own messages (failed dials, cluster
// changes) records of l, at warn, instead of plain text on standard error.
// go-redis has one logger per process, as slog has a default one: the
// program calls SetLogger once, next to slog.SetDefault. Its messages
// carry addresses, never a password.
func SetLogger(l *slog.Logger) {
	goredis.SetLogger(slogLogger{l})
}

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	s.l.WarnContext(ctx, "redis client: "+msg)
}
