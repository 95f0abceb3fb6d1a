package redis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/ephemeral/ephemeraltest"
	"github.com/sesame-idp/sesame/idp/ephemeral/redis"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/internal/testenv"
)

func TestStore(t *testing.T) {
	testenv.RedisURL(t)
	ephemeraltest.Run(t, newStore)
}

func BenchmarkStore(b *testing.B) {
	testenv.RedisURL(b)
	ephemeraltest.Bench(b, newStore)
}

func newStore(tb testing.TB) (ephemeral.Store, ephemeraltest.Clock) {
	_, prefix := rawClient(tb)
	s, err := redis.Open(tb.Context(), testenv.RedisURL(tb), prefix, testSealer(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, time.Sleep
}

// rawClient returns a client on the test server and a fresh key prefix
// whose keys are deleted when the test ends, so packages and tests can
// share one server.
func rawClient(tb testing.TB) (*goredis.Client, string) {
	tb.Helper()
	opts, err := goredis.ParseURL(testenv.RedisURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	c := goredis.NewClient(opts)
	prefix := "sesame-test-" + randomHex(8) + ":"
	tb.Cleanup(func() {
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("scan %s*: %v", prefix, err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				tb.Errorf("delete %s*: %v", prefix, err)
			}
		}
	})
	return c, prefix
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func testSealer(tb testing.TB) *seal.Sealer {
	s, err := seal.New(seal.GenerateKey())
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// newRaw returns a store on a fresh prefix and a client seeing its keys.
func newRaw(t *testing.T, sealer *seal.Sealer) (*redis.Store, *goredis.Client, string) {
	raw, prefix := rawClient(t)
	opts, _ := goredis.ParseURL(testenv.RedisURL(t))
	s := redis.NewFromClient(goredis.NewClient(opts), prefix, sealer)
	t.Cleanup(func() { s.Close() })
	return s, raw, prefix
}

func TestValuesSealedAtRest(t *testing.T) {
	s, raw, prefix := newRaw(t, testSealer(t))
	ctx := t.Context()
	plaintext := []byte("patient-session-marker-0123456789")
	if err := s.Put(ctx, "k", plaintext, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.PutNew(ctx, "n", plaintext, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k", "n"} {
		stored, err := raw.Get(ctx, prefix+k).Bytes()
		if err != nil {
			t.Fatalf("raw GET %s: %v (keys not under the prefix?)", prefix+k, err)
		}
		if bytes.Contains(stored, plaintext) || bytes.Contains(stored, plaintext[:8]) {
			t.Fatalf("Redis holds the plaintext at %s", k)
		}
		if stored[0] != 1 {
			t.Fatalf("stored value does not start with the seal version: %x", stored[:4])
		}
	}
	if n, _ := raw.Exists(ctx, "k").Result(); n != 0 {
		t.Fatal("a key was written without the prefix")
	}
	ttl, err := raw.PTTL(ctx, prefix+"k").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("PTTL = %v, %v; want (0, 1m]", ttl, err)
	}
}

func TestValueBoundToItsKey(t *testing.T) {
	s, raw, prefix := newRaw(t, testSealer(t))
	ctx := t.Context()
	if err := s.Put(ctx, "session:alice", []byte("alice's session"), time.Minute); err != nil {
		t.Fatal(err)
	}
	stored, err := raw.Get(ctx, prefix+"session:alice").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Set(ctx, prefix+"session:mallory", stored, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "session:mallory"); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("Get of a value moved to another key = %q, %v; want seal.ErrOpen", v, err)
	}
	if v, err := s.Take(ctx, "session:mallory"); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("Take of a value moved to another key = %q, %v; want seal.ErrOpen", v, err)
	}
}

func TestOtherSealerCannotOpen(t *testing.T) {
	s, _, prefix := newRaw(t, testSealer(t))
	if err := s.Put(t.Context(), "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	opts, _ := goredis.ParseURL(testenv.RedisURL(t))
	other := redis.NewFromClient(goredis.NewClient(opts), prefix, testSealer(t))
	defer other.Close()
	if v, err := other.Get(t.Context(), "k"); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("Get with another sealing key = %q, %v; want seal.ErrOpen", v, err)
	}
}

func TestIncrSetsAndRepairsTTL(t *testing.T) {
	s, raw, prefix := newRaw(t, testSealer(t))
	ctx := t.Context()
	if _, err := s.Incr(ctx, "fresh", time.Minute); err != nil {
		t.Fatal(err)
	}
	if ttl := raw.PTTL(ctx, prefix+"fresh").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("new counter PTTL = %v, want (0, 1m]", ttl)
	}
	// A counter left without a TTL (by hand, or by an older version) must
	// not block an account for ever.
	if err := raw.Set(ctx, prefix+"stuck", "7", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Incr(ctx, "stuck", time.Minute); err != nil || n != 8 {
		t.Fatalf("Incr = %d, %v; want 8", n, err)
	}
	if ttl := raw.PTTL(ctx, prefix+"stuck").Val(); ttl <= 0 {
		t.Fatalf("counter without TTL not repaired: PTTL = %v", ttl)
	}
}

func TestOpenErrorsHideCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	sealer := testSealer(t)
	for _, u := range []string{
		"redis://user:s3cretpw@127.0.0.1:1/0?max_retries=-1", // nothing listens on port 1
		"redis://user:s3cretpw@127.0.0.1:badport/0",
		"redis://user:s3cretpw@127.0.0.1:6379/0?no_such_option=1",
		"http://user:s3cretpw@127.0.0.1:6379/0",
		"redis://user:s3cretpw@host name:6379",
		"redis://user:s3cretpw@h:6379?master_name=m&password=s3cretpw&dial_timeout=x",
	} {
		s, err := redis.Open(ctx, u, "p:", sealer)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
	if _, err := redis.Open(ctx, "redis://127.0.0.1:1", "p:", nil); err == nil {
		t.Error("Open with a nil sealer succeeded")
	}
}
