package mfa_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
	eredis "github.com/sesame-idp/sesame/idp/ephemeral/redis"
	"github.com/sesame-idp/sesame/idp/mfa"
	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/internal/testenv"
	"github.com/sesame-idp/sesame/internal/teststore"
)

// smsBackends pairs each durable store with an ephemeral one: SQLite and
// memory, PostgreSQL and Redis (when their variables are set). The
// factor's windows follow the clock it is given, on Redis too.
var smsBackends = []struct {
	name string
	open func(t *testing.T) (store.Store, ephemeral.Store)
}{
	{"sqlite+memory", func(t *testing.T) (store.Store, ephemeral.Store) {
		return teststore.SQLite(t), memory.New(func() time.Time { return fixedNow })
	}},
	{"postgres+redis", func(t *testing.T) (store.Store, ephemeral.Store) {
		db := teststore.Postgres(t)
		url := testenv.RedisURL(t)
		sealer, err := seal.New(seal.GenerateKey())
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		prefix := "sesame-test-" + hex.EncodeToString(b) + ":"
		r, err := eredis.Open(t.Context(), url, prefix, sealer)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); testenv.CleanRedisPrefix(t, url, prefix) })
		return db, r
	}},
}

type smsFixture struct {
	st  store.Store
	f   mfa.SMS
	ctx context.Context
}

func eachSMS(t *testing.T, fn func(t *testing.T, fx *smsFixture)) {
	for _, b := range smsBackends {
		t.Run(b.name, func(t *testing.T) {
			st, eph := b.open(t)
			fn(t, &smsFixture{st: st, ctx: t.Context(),
				f: mfa.SMS{Store: st, Ephemeral: eph, Issuer: "https://idp.example", MaxPerHour: 1000}})
		})
	}
}

// user creates a user with a verified phone (when phone is set).
func (fx *smsFixture) user(t *testing.T, locale, phone string) store.User {
	t.Helper()
	u := store.User{ID: uuid.NewString(), Username: "u-" + uuid.NewString()[:8], Email: "u@clinic.example", Locale: locale,
		Status: store.StatusActive, AccountType: "person", CreatedAt: fixedNow, UpdatedAt: fixedNow}
	if err := fx.st.CreateUser(fx.ctx, u); err != nil {
		t.Fatal(err)
	}
	if phone != "" {
		if err := fx.st.CreateCredential(fx.ctx, users.NewSMSCredential(u.ID, "Pixel", phone, fixedNow, fixedNow)); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// texts claims the queued texts (and so empties the outbox).
func (fx *smsFixture) texts(t *testing.T) []notify.SMS {
	t.Helper()
	msgs, err := fx.st.ClaimOutbox(fx.ctx, fixedNow.Add(24*time.Hour), time.Hour, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []notify.SMS
	for _, m := range msgs {
		if m.Kind != notify.KindSMS {
			continue
		}
		var s notify.SMS
		if err := json.Unmarshal(m.Payload, &s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

var frText = regexp.MustCompile(`^Sésame : ([0-9]{6}) est votre code de validation\.\n\n@idp\.example #([0-9]{6})$`)
var enText = regexp.MustCompile(`^Sésame: ([0-9]{6}) is your validation code\.\n\n@idp\.example #([0-9]{6})$`)

// lastCode sends nothing: it reads the code of the only queued text.
func (fx *smsFixture) lastCode(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	texts := fx.texts(t)
	if len(texts) != 1 {
		t.Fatalf("%d texts queued, want 1", len(texts))
	}
	m := re.FindStringSubmatch(texts[0].Body)
	if m == nil || m[1] != m[2] {
		t.Fatalf("text %q: not the expected message", texts[0].Body)
	}
	return m[1]
}

// A sign-in code goes through the outbox to the enrolled phone, in the
// user's language with the origin-bound line, expires with the text; it
// works once, and a wrong one is refused.
func TestSMSCodeSentAndVerified(t *testing.T) {
	eachSMS(t, func(t *testing.T, fx *smsFixture) {
		u := fx.user(t, "fr-CA", "+15148721234")
		ch, err := fx.f.Begin(fx.ctx, u, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Destination != "+1 •••-•••-1234" {
			t.Errorf("destination %q", ch.Destination)
		}
		texts := fx.texts(t)
		if len(texts) != 1 {
			t.Fatalf("outbox: %d texts", len(texts))
		}
		text := texts[0]
		if text.To != "+15148721234" || !text.ExpiresAt.Equal(fixedNow.Add(mfa.SMSCodeTTL)) {
			t.Errorf("text to %s expiring %v", text.To, text.ExpiresAt)
		}
		m := frText.FindStringSubmatch(text.Body)
		if m == nil || m[1] != m[2] {
			t.Fatalf("text %q", text.Body)
		}
		code := m[1]
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		if _, err := fx.f.Verify(fx.ctx, u, wrong, fixedNow); !errors.Is(err, mfa.ErrCodeInvalid) || errors.Is(err, mfa.ErrCodeExpired) {
			t.Fatalf("wrong code: %v", err)
		}
		c, err := fx.f.Verify(fx.ctx, u, code[:3]+" "+code[3:], fixedNow.Add(time.Minute))
		if err != nil || c.Type != store.CredSMS || !c.LastUsedAt.Equal(fixedNow.Add(time.Minute)) {
			t.Fatalf("right code: %+v, %v", c, err)
		}
		if _, err := fx.f.Verify(fx.ctx, u, code, fixedNow.Add(time.Minute)); !errors.Is(err, mfa.ErrCodeExpired) {
			t.Fatalf("code used twice: %v", err)
		}

		en := fx.user(t, "en-CA", "+14186912000")
		if _, err := fx.f.Begin(fx.ctx, en, fixedNow); err != nil {
			t.Fatal(err)
		}
		code = fx.lastCode(t, enText)
		// Five minutes later the code is dead.
		if _, err := fx.f.Verify(fx.ctx, en, code, fixedNow.Add(mfa.SMSCodeTTL)); !errors.Is(err, mfa.ErrCodeExpired) {
			t.Fatalf("expired code: %v", err)
		}
		// A user without a phone gets nothing.
		if _, err := fx.f.Begin(fx.ctx, fx.user(t, "fr-CA", ""), fixedNow); !errors.Is(err, mfa.ErrNoPhone) {
			t.Fatalf("no phone: %v", err)
		}
	})
}

// Five wrong entries void the code: the right one no longer works.
func TestSMSFiveWrongVoid(t *testing.T) {
	eachSMS(t, func(t *testing.T, fx *smsFixture) {
		u := fx.user(t, "fr-CA", "+15148721234")
		if _, err := fx.f.Begin(fx.ctx, u, fixedNow); err != nil {
			t.Fatal(err)
		}
		code := fx.lastCode(t, frText)
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		for i := 1; i <= mfa.SMSMaxWrong; i++ {
			_, err := fx.f.Verify(fx.ctx, u, wrong, fixedNow)
			if i < mfa.SMSMaxWrong && (!errors.Is(err, mfa.ErrCodeInvalid) || errors.Is(err, mfa.ErrCodeExpired)) {
				t.Fatalf("wrong entry %d: %v", i, err)
			}
			if i == mfa.SMSMaxWrong && !errors.Is(err, mfa.ErrCodeExpired) {
				t.Fatalf("fifth wrong entry: %v, want the code voided", err)
			}
		}
		if _, err := fx.f.Verify(fx.ctx, u, code, fixedNow); !errors.Is(err, mfa.ErrCodeExpired) {
			t.Fatalf("right code after five wrong: %v", err)
		}
	})
}

// Of concurrent entries of the right code, one is accepted.
func TestSMSVerifyOnceUnderConcurrency(t *testing.T) {
	eachSMS(t, func(t *testing.T, fx *smsFixture) {
		u := fx.user(t, "fr-CA", "+15148721234")
		if _, err := fx.f.Begin(fx.ctx, u, fixedNow); err != nil {
			t.Fatal(err)
		}
		code := fx.lastCode(t, frText)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := fx.f.Verify(context.Background(), u, code, fixedNow)
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				} else if !errors.Is(err, mfa.ErrCodeInvalid) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("%d of 16 concurrent entries accepted, want 1", ok)
		}
	})
}

// An enrollment code does not sign in, and a sign-in code does not
// confirm a number.
func TestSMSPurposesApart(t *testing.T) {
	eachSMS(t, func(t *testing.T, fx *smsFixture) {
		u := fx.user(t, "fr-CA", "+15148721234")
		if _, err := fx.f.Send(fx.ctx, u, mfa.PurposeEnroll, "+14186912000", "", fixedNow); err != nil {
			t.Fatal(err)
		}
		code := fx.lastCode(t, frText)
		if _, err := fx.f.Verify(fx.ctx, u, code, fixedNow); !errors.Is(err, mfa.ErrCodeExpired) {
			t.Fatalf("enrollment code used to sign in: %v", err)
		}
		if _, err := fx.f.Check(fx.ctx, u.ID, mfa.PurposeEnroll, "+14389331234", code, fixedNow); !errors.Is(err, mfa.ErrCodeExpired) {
			t.Fatalf("code confirmed another number: %v", err)
		}
		if _, err := fx.f.Send(fx.ctx, u, mfa.PurposeEnroll, "+14186912000", "", fixedNow.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		code = fx.lastCode(t, frText)
		rec, err := fx.f.Check(fx.ctx, u.ID, mfa.PurposeEnroll, "+14186912000", code, fixedNow.Add(time.Minute))
		if err != nil || rec.Phone != "+14186912000" {
			t.Fatalf("enrollment code: %+v, %v", rec, err)
		}
	})
}

// The limits, on a fixed clock: a new code after 30 s; the fourth send
// within 15 minutes is refused with the wait; the per-destination limit
// holds across users; the deployment's hourly cap.
func TestSMSSendLimits(t *testing.T) {
	eachSMS(t, func(t *testing.T, fx *smsFixture) {
		u := fx.user(t, "fr-CA", "+15148721234")
		send := func(u store.User, at time.Duration) error {
			_, err := fx.f.Begin(fx.ctx, u, fixedNow.Add(at))
			return err
		}
		wantRefused := func(err error, reason string, wait time.Duration) {
			t.Helper()
			var se *mfa.SendError
			if !errors.As(err, &se) || se.Reason != reason || se.Wait != wait {
				t.Fatalf("send: %v; want refused (%s), wait %v", err, reason, wait)
			}
		}
		if err := send(u, 0); err != nil {
			t.Fatal(err)
		}
		wantRefused(send(u, 10*time.Second), mfa.SendTooSoon, 20*time.Second)
		if err := send(u, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := send(u, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
		wantRefused(send(u, 6*time.Minute), mfa.SendUserLimit, 9*time.Minute)
		if n := len(fx.texts(t)); n != 3 {
			t.Fatalf("%d texts, want 3", n)
		}
		// The refused sends took no place: the first send leaves the window
		// at 15 minutes.
		wantRefused(send(u, 15*time.Minute-time.Second), mfa.SendUserLimit, time.Second)
		if err := send(u, 15*time.Minute); err != nil {
			t.Fatalf("after the window: %v", err)
		}

		// Per destination, across users: three accounts claiming one number
		// use up its sends; a fourth account is refused.
		const victim = "+14186912000"
		for i := range 3 {
			if _, err := fx.f.Send(fx.ctx, fx.user(t, "fr-CA", ""), mfa.PurposeEnroll, victim, "", fixedNow.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := fx.f.Send(fx.ctx, fx.user(t, "fr-CA", ""), mfa.PurposeEnroll, victim, "", fixedNow.Add(3*time.Minute))
		wantRefused(err, mfa.SendDestinationLimit, 12*time.Minute)
		// The refused user's own window is untouched.
		fx.texts(t)

		// The deployment's cap per hour.
		fx.f.MaxPerHour = 2
		hour := fixedNow.Truncate(time.Hour).Add(3 * time.Hour)
		a, b, c := fx.user(t, "fr-CA", "+14389331234"), fx.user(t, "fr-CA", "+14506781234"), fx.user(t, "fr-CA", "+15818881234")
		for _, x := range []store.User{a, b} {
			if _, err := fx.f.Begin(fx.ctx, x, hour.Add(10*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		_, err = fx.f.Begin(fx.ctx, c, hour.Add(20*time.Minute))
		wantRefused(err, mfa.SendGlobalLimit, 40*time.Minute)
		if _, err := fx.f.Begin(fx.ctx, c, hour.Add(time.Hour)); err != nil {
			t.Fatalf("next hour: %v", err)
		}
	})
}

// keyLog records the key names the factor uses.
type keyLog struct {
	ephemeral.Store
	mu   sync.Mutex
	keys []string
}

func (k *keyLog) rec(key string) { k.mu.Lock(); k.keys = append(k.keys, key); k.mu.Unlock() }
func (k *keyLog) Get(ctx context.Context, key string) ([]byte, error) {
	k.rec(key)
	return k.Store.Get(ctx, key)
}
func (k *keyLog) Delete(ctx context.Context, key string) error {
	k.rec(key)
	return k.Store.Delete(ctx, key)
}
func (k *keyLog) Incr(ctx context.Context, key string, w time.Duration) (int64, error) {
	k.rec(key)
	return k.Store.Incr(ctx, key, w)
}
func (k *keyLog) Update(ctx context.Context, key string, ttl time.Duration, fn func([]byte) ([]byte, error)) error {
	k.rec(key)
	return k.Store.Update(ctx, key, ttl, fn)
}

// Key names carry no code, number or user id: they are hashes.
func TestSMSKeyNamesAreHashes(t *testing.T) {
	st := teststore.SQLite(t)
	log := &keyLog{Store: memory.New(func() time.Time { return fixedNow })}
	fx := &smsFixture{st: st, ctx: t.Context(), f: mfa.SMS{Store: st, Ephemeral: log, Issuer: "https://idp.example"}}
	u := fx.user(t, "fr-CA", "+15148721234")
	if _, err := fx.f.Begin(fx.ctx, u, fixedNow); err != nil {
		t.Fatal(err)
	}
	code := fx.lastCode(t, frText)
	if _, err := fx.f.Verify(fx.ctx, u, code, fixedNow); err != nil {
		t.Fatal(err)
	}
	if len(log.keys) < 4 {
		t.Fatalf("keys %v", log.keys)
	}
	for _, k := range log.keys {
		if strings.Contains(k, code) || strings.Contains(k, "5148721234") || strings.Contains(k, u.ID) || strings.Contains(k, u.Username) {
			t.Errorf("key %q carries a secret or an identifier", k)
		}
	}
}
