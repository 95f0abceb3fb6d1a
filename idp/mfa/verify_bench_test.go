//go:build unix

package mfa

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
	eredis "github.com/sesame-idp/sesame/idp/ephemeral/redis"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/internal/softkey"
	"github.com/sesame-idp/sesame/internal/testenv"
	"github.com/sesame-idp/sesame/internal/teststore"
)

// The verification of a second factor at the challenge, on each pair of
// stores, with the process's CPU time per operation (cpu-µs/op: user +
// system time of every thread; PostgreSQL and Redis are other processes,
// not counted):
//
//	go test ./idp/mfa/ -run '^$' -bench 'SMSVerify|WebAuthnAssertionVerify' -benchtime 2000x
//
// The preparation of each round (a code put back, a ceremony begun and
// answered by the software authenticator, which is the browser's share)
// is outside the timed part.

var benchNow = time.Unix(1700000000, 0).UTC()

// benchBackends pairs each durable store with an ephemeral one (the
// PostgreSQL + Redis row when their test variables are set).
var benchBackends = []struct {
	name string
	open func(tb testing.TB) (store.Store, ephemeral.Store)
}{
	{"sqlite+memory", func(tb testing.TB) (store.Store, ephemeral.Store) {
		return teststore.SQLite(tb), memory.New(func() time.Time { return benchNow })
	}},
	{"postgres+redis", func(tb testing.TB) (store.Store, ephemeral.Store) {
		db := teststore.Postgres(tb)
		url := testenv.RedisURL(tb)
		sealer, err := seal.New(seal.GenerateKey())
		if err != nil {
			tb.Fatal(err)
		}
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		prefix := "sesame-bench-" + hex.EncodeToString(b) + ":"
		r, err := eredis.Open(context.Background(), url, prefix, sealer)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { r.Close(); testenv.CleanRedisPrefix(tb, url, prefix) })
		return db, r
	}},
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter adds up the CPU time of the timed part; pause and resume stop
// and start the benchmark's timer too.
type cpuMeter struct {
	b              *testing.B
	total, started time.Duration
}

func newCPUMeter(b *testing.B) *cpuMeter {
	b.ReportAllocs()
	b.ResetTimer()
	return &cpuMeter{b: b, started: processCPU()}
}

func (m *cpuMeter) pause() {
	m.b.StopTimer()
	m.total += processCPU() - m.started
}

func (m *cpuMeter) resume() {
	m.started = processCPU()
	m.b.StartTimer()
}

func (m *cpuMeter) report() {
	m.total += processCPU() - m.started
	if m.b.N > 0 {
		m.b.ReportMetric(float64(m.total.Nanoseconds())/1e3/float64(m.b.N), "cpu-µs/op")
	}
}

func benchUser(b *testing.B, st store.Store) store.User {
	u := store.User{ID: uuid.NewString(), Username: "u-" + uuid.NewString()[:8], Locale: "fr",
		Status: store.StatusActive, AccountType: "person", CreatedAt: benchNow, UpdatedAt: benchNow}
	if err := st.CreateUser(context.Background(), u); err != nil {
		b.Fatal(err)
	}
	return u
}

// BenchmarkSMSVerify is SMS.Verify of a right sign-in code: the atomic
// update that consumes the code (ephemeral store), then the phone's
// credential read and its last use written (durable store).
func BenchmarkSMSVerify(b *testing.B) {
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			st, eph := be.open(b)
			ctx := context.Background()
			u := benchUser(b, st)
			cred := users.NewSMSCredential(u.ID, "Pixel", "+15148721234", benchNow, benchNow)
			if err := st.CreateCredential(ctx, cred); err != nil {
				b.Fatal(err)
			}
			f := SMS{Store: st, Ephemeral: eph}
			salt := []byte("0123456789abcdef")
			rec, _ := json.Marshal(SMSCode{Salt: salt, Hash: codeHash(salt, "493027"), Phone: "+15148721234", Cred: cred.ID,
				SentAt: benchNow, Expires: benchNow.Add(SMSCodeTTL)})
			key := codeKey(u.ID, PurposeChallenge)
			m := newCPUMeter(b)
			for b.Loop() {
				m.pause()
				if err := eph.Put(ctx, key, rec, SMSCodeTTL); err != nil {
					b.Fatal(err)
				}
				m.resume()
				if _, err := f.Verify(ctx, u, "493027", benchNow); err != nil {
					b.Fatal(err)
				}
			}
			m.report()
		})
	}
}

// BenchmarkWebAuthnAssertionVerify is one assertion of a security key
// checked: go-webauthn's ValidateLogin alone (parse, challenge, origin,
// RP ID hash, ECDSA P-256 signature, counter), then WebAuthn.Verify on
// each pair of stores (the ceremony taken from the ephemeral store, the
// keys read, ValidateLogin, the sign count stored under the user's lock).
func BenchmarkWebAuthnAssertionVerify(b *testing.B) {
	const origin = "https://idp.example"
	setup := func(b *testing.B, st store.Store, eph ephemeral.Store) (WebAuthn, store.User, *softkey.Key) {
		ctx := context.Background()
		u := benchUser(b, st)
		f := WebAuthn{Store: st, Ephemeral: eph, Issuer: origin}
		k := softkey.New(origin, "idp.example")
		opts, err := f.BeginRegistration(ctx, u, benchNow)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := k.Create(opts)
		if err != nil {
			b.Fatal(err)
		}
		c, err := f.FinishRegistration(ctx, u, string(resp), "YubiKey", benchNow)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.CreateCredential(ctx, c); err != nil {
			b.Fatal(err)
		}
		return f, u, k
	}

	b.Run("ValidateLogin", func(b *testing.B) {
		st, eph := benchBackends[0].open(b)
		f, u, k := setup(b, st, eph)
		rp, err := f.RP()
		if err != nil {
			b.Fatal(err)
		}
		_, recs, err := f.Credentials(context.Background(), u.ID)
		if err != nil {
			b.Fatal(err)
		}
		user := waUser{u: u, creds: recs}
		m := newCPUMeter(b)
		for b.Loop() {
			m.pause()
			opts, s, err := rp.BeginLogin(user)
			if err != nil {
				b.Fatal(err)
			}
			raw, _ := json.Marshal(opts)
			answer, err := k.Get(raw, []byte(u.ID))
			if err != nil {
				b.Fatal(err)
			}
			m.resume()
			parsed, err := protocol.ParseCredentialRequestResponseBytes(answer)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := rp.ValidateLogin(user, *s, parsed); err != nil {
				b.Fatal(err)
			}
		}
		m.report()
	})
	for _, be := range benchBackends {
		b.Run("Verify/"+be.name, func(b *testing.B) {
			st, eph := be.open(b)
			f, u, k := setup(b, st, eph)
			ctx := context.Background()
			m := newCPUMeter(b)
			for b.Loop() {
				m.pause()
				ch, err := f.Begin(ctx, u, benchNow)
				if err != nil {
					b.Fatal(err)
				}
				answer, err := k.Get(ch.Options, []byte(u.ID))
				if err != nil {
					b.Fatal(err)
				}
				m.resume()
				if _, err := f.Verify(ctx, u, string(answer), benchNow); err != nil {
					b.Fatal(err)
				}
			}
			m.report()
		})
	}
}
