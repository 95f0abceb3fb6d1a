package testenv

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// CleanRedisPrefix deletes every key under prefix, for test cleanup.
func CleanRedisPrefix(t testing.TB, redisURL, prefix string) {
	opts, err := goredis.ParseURL(redisURL)
	if err != nil {
		t.Errorf("clean redis: %v", err)
		return
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		c.Del(ctx, keys...)
	}
}
