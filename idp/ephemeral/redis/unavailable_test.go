package redis_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/ephemeral/redis"
	"github.com/sesame-idp/sesame/idp/seal"
)

// A Redis that does not answer is ephemeral.ErrUnavailable for every
// operation, never ErrNotFound ("expired") or ErrExists.
func TestUnreachableIsUnavailable(t *testing.T) {
	// A loopback port that refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sealer, err := seal.New(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	s := redis.NewFromClient(goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second}), "t:", sealer)
	defer s.Close()
	ctx := context.Background()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, ephemeral.ErrUnavailable) || errors.Is(err, ephemeral.ErrNotFound) || errors.Is(err, ephemeral.ErrExists) {
			t.Errorf("%s: %v, want ErrUnavailable", op, err)
		}
	}
	_, err = s.Get(ctx, "k")
	check("get", err)
	_, err = s.Take(ctx, "k")
	check("take", err)
	_, err = s.GetMany(ctx, "k", "l")
	check("get many", err)
	_, err = s.PutGet(ctx, "k", []byte("v"), time.Minute, "l")
	check("put get", err)
	check("put", s.Put(ctx, "k", []byte("v"), time.Minute))
	check("put new", s.PutNew(ctx, "k", []byte("v"), time.Minute))
	check("delete", s.Delete(ctx, "k"))
	_, err = s.Incr(ctx, "k", time.Minute)
	check("incr", err)
	check("update", s.Update(ctx, "k", time.Minute, func(old []byte) ([]byte, error) { return []byte("v"), nil }))
	check("ping", s.Ping(ctx))
}
