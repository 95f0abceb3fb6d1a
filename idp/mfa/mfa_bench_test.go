package mfa_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/mfa"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// BenchmarkTOTPVerify: the code comparison alone (three HMAC-SHA1), then
// the factor's Verify on SQLite: list the credentials, open the sealed
// secret, compare, and the AdvanceTOTPStep compare-and-set (one write).
func BenchmarkTOTPVerify(b *testing.B) {
	b.Run("MatchTOTP", func(b *testing.B) {
		b.ReportAllocs()
		secret := users.NewTOTPSecret()
		code := mfa.TOTPCode(secret, mfa.TOTPStep(fixedNow)+1) // the worst case: the last step tried
		for b.Loop() {
			if _, ok := mfa.MatchTOTP(secret, code, fixedNow); !ok {
				b.Fatal("refused")
			}
		}
	})
	for _, s := range stores {
		b.Run("Verify/"+s.name, func(b *testing.B) {
			b.ReportAllocs()
			fx := newTOTPFixture(b, s.open(b))
			ctx := context.Background()
			// Each verification needs a fresh time step: one per iteration.
			nows := make([]time.Time, b.N)
			codes := make([]string, b.N)
			for i := range b.N {
				nows[i] = fixedNow.Add(time.Duration(i) * mfa.TOTPPeriod * time.Second)
				codes[i] = mfa.TOTPCode(fx.secret, mfa.TOTPStep(nows[i]))
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := fx.factor.Verify(ctx, fx.user, codes[i], nows[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecoveryCheck: hashing a typed recovery code, then hashing and
// consuming it in the store (a conditional UPDATE).
func BenchmarkRecoveryCheck(b *testing.B) {
	b.Run("HashRecoveryCode", func(b *testing.B) {
		b.ReportAllocs()
		code := users.NewRecoveryCodes()[0]
		for b.Loop() {
			users.HashRecoveryCode("3f0c8f5e-0000-4000-8000-000000000001", code)
		}
	})
	for _, s := range stores {
		b.Run("Consume/"+s.name, func(b *testing.B) {
			b.ReportAllocs()
			fx := newTOTPFixture(b, s.open(b))
			ctx := context.Background()
			codes := make([]string, 0, b.N)
			for len(codes) < b.N {
				codes = append(codes, users.NewRecoveryCodes()...)
			}
			codes = codes[:b.N]
			hashes := make([]string, b.N)
			for i, c := range codes {
				hashes[i] = users.HashRecoveryCode(fx.user.ID, c)
			}
			if err := fx.st.ReplaceRecoveryCodes(ctx, fx.user.ID, hashes, fixedNow); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				err := fx.st.ConsumeRecoveryCode(ctx, fx.user.ID, users.HashRecoveryCode(fx.user.ID, codes[i]), fixedNow)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			// Each code worked once.
			if err := fx.st.ConsumeRecoveryCode(ctx, fx.user.ID, hashes[0], fixedNow); !errors.Is(err, store.ErrNotFound) {
				b.Errorf("used code consumed again: %v", err)
			}
		})
	}
}
