package mfa

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
)

// BenchmarkSMSCheck is one right SMS code checked and consumed (the
// atomic update that deletes it), on the in-process store; each round
// first puts a live code back.
func BenchmarkSMSCheck(b *testing.B) {
	now := time.Unix(1700000000, 0)
	eph := memory.New(func() time.Time { return now })
	f := SMS{Ephemeral: eph}
	salt := []byte("0123456789abcdef")
	rec, _ := json.Marshal(SMSCode{Salt: salt, Hash: codeHash(salt, "493027"), Phone: "+15148721234", SentAt: now, Expires: now.Add(SMSCodeTTL)})
	key := codeKey("user-1", PurposeChallenge)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := eph.Put(ctx, key, rec, SMSCodeTTL); err != nil {
			b.Fatal(err)
		}
		if _, err := f.Check(ctx, "user-1", PurposeChallenge, "", "493027", now); err != nil {
			b.Fatal(err)
		}
	}
}
