package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/ephemeral/ephemeraltest"
	"github.com/sesame-idp/sesame/idp/ephemeral/redis"
	"github.com/sesame-idp/sesame/internal/testenv"
)

// TestStoreOnCluster runs the shared suite on a private Redis Cluster of
// three masters: no command may span two hash slots (CROSSSLOT).
func TestStoreOnCluster(t *testing.T) {
	url := testenv.RedisCluster(t)
	ephemeraltest.Run(t, func(tb testing.TB) (ephemeral.Store, ephemeraltest.Clock) {
		s, err := redis.Open(tb.Context(), url, "sesame-test-"+randomHex(8)+":", testSealer(tb))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
		return s, time.Sleep
	})
}

// TestStoreOnSentinel: a Sentinel URL (master_name) parses, finds the
// master through the sentinel and runs the shared suite.
func TestStoreOnSentinel(t *testing.T) {
	url := testenv.RedisSentinel(t)
	s, err := redis.Open(context.Background(), url, "sesame-test:", testSealer(t))
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	s.Close()
	ephemeraltest.Run(t, func(tb testing.TB) (ephemeral.Store, ephemeraltest.Clock) {
		s, err := redis.Open(tb.Context(), url, "sesame-test-"+randomHex(8)+":", testSealer(tb))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
		return s, time.Sleep
	})
}
