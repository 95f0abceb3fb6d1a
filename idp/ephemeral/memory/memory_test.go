package memory_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/ephemeral/ephemeraltest"
	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
)

func newStore(tb testing.TB) (ephemeral.Store, ephemeraltest.Clock) {
	clock := ephemeraltest.NewFakeClock(time.Unix(1700000000, 0))
	s := memory.New(clock.Now)
	tb.Cleanup(func() { s.Close() })
	return s, clock.Advance
}

func TestStore(t *testing.T)      { ephemeraltest.Run(t, newStore) }
func BenchmarkStore(b *testing.B) { ephemeraltest.Bench(b, newStore) }

func TestExpiresExactlyAtTTL(t *testing.T) {
	clock := ephemeraltest.NewFakeClock(time.Unix(1700000000, 0))
	s := memory.New(clock.Now)
	if err := s.Put(t.Context(), "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute - time.Nanosecond)
	if _, err := s.Get(t.Context(), "k"); err != nil {
		t.Fatalf("Get just before the TTL: %v", err)
	}
	clock.Advance(time.Nanosecond)
	if _, err := s.Get(t.Context(), "k"); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Fatalf("Get at the TTL: %v, want ErrNotFound", err)
	}
}

func TestClosed(t *testing.T) {
	s := memory.New(nil)
	if err := s.Put(t.Context(), "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get(t.Context(), "k"); !errors.Is(err, memory.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, memory.ErrClosed) {
		t.Fatalf("Ping after Close: %v, want ErrClosed", err)
	}
}
