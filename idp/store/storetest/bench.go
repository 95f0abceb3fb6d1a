package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// benchRun makes IDs unique across the runs of a benchmark on one store.
var benchRun atomic.Int64

// Bench measures the calls on the hot paths of sign-in and token refresh,
// on s, a migrated store (empty or not).
func Bench(b *testing.B, s store.Store) {
	ctx := b.Context()
	prefix := fmt.Sprintf("bench-%d-", benchRun.Add(1))
	u := newUser(prefix+"user", prefix+"alice")
	c := newClient(prefix + "client")
	if err := s.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateClient(ctx, c); err != nil {
		b.Fatal(err)
	}

	// tokens returns n refresh tokens of one family, each the child of the
	// previous, ready before the timer starts.
	tokens := func(n int) []store.RefreshToken {
		run := fmt.Sprintf("%s%d-", prefix, benchRun.Add(1))
		out := make([]store.RefreshToken, n)
		for i := range out {
			parent := ""
			if i > 0 {
				parent = out[i-1].ID
			}
			out[i] = newRefreshToken(fmt.Sprintf("%srt-%d", run, i), run+"fam", parent, u.ID, c.ID,
				at(time.Duration(i)*time.Second))
		}
		return out
	}

	b.Run("GetUserByUsername", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.GetUserByUsername(ctx, u.Username); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetClient", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.GetClient(ctx, c.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CreateRefreshToken", func(b *testing.B) {
		rts := tokens(b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := s.CreateRefreshToken(ctx, rts[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RotateRefreshToken", func(b *testing.B) {
		rts := tokens(b.N + 1)
		if err := s.CreateRefreshToken(ctx, rts[0]); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := s.RotateRefreshToken(ctx, rts[i].ID, rts[i+1]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
