package regulate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/ephemeral/ephemeraltest"
	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
	eredis "github.com/sesame-idp/sesame/idp/ephemeral/redis"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/internal/testenv"
)

var start = time.Unix(1700000000, 0)

// env is one regulator on one backend, with its fixed clock and a record
// of the key names it used.
type env struct {
	r     *regulate.Regulator
	clock *ephemeraltest.FakeClock
	keys  *keyLog
}

// keyLog is the ephemeral store under test, noting every key name used.
type keyLog struct {
	ephemeral.Store
	mu   sync.Mutex
	seen map[string]bool
}

func (k *keyLog) note(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.seen[key] = true
}

func (k *keyLog) Get(ctx context.Context, key string) ([]byte, error) {
	k.note(key)
	return k.Store.Get(ctx, key)
}

func (k *keyLog) Delete(ctx context.Context, key string) error {
	k.note(key)
	return k.Store.Delete(ctx, key)
}

func (k *keyLog) Incr(ctx context.Context, key string, w time.Duration) (int64, error) {
	k.note(key)
	return k.Store.Incr(ctx, key, w)
}

func (k *keyLog) Update(ctx context.Context, key string, ttl time.Duration, fn func([]byte) ([]byte, error)) error {
	k.note(key)
	return k.Store.Update(ctx, key, ttl, fn)
}

type backend struct {
	name string
	open func(t *testing.T, clock *ephemeraltest.FakeClock) ephemeral.Store
}

var backends = []backend{
	{"memory", func(t *testing.T, clock *ephemeraltest.FakeClock) ephemeral.Store {
		return memory.New(clock.Now)
	}},
	{"redis", func(t *testing.T, _ *ephemeraltest.FakeClock) ephemeral.Store {
		url := testenv.RedisURL(t)
		sealer, err := seal.New(seal.GenerateKey())
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 8)
		rand.Read(b)
		prefix := "sesame-test-" + hex.EncodeToString(b) + ":"
		s, err := eredis.Open(t.Context(), url, prefix, sealer)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			s.Close()
			testenv.CleanRedisPrefix(t, url, prefix)
		})
		return s
	}},
}

// forEach runs f on every backend with cfg (zero: the defaults). The
// regulator's windows follow the fixed clock on Redis too: the times are
// in the values, and TTLs only collect garbage.
func forEach(t *testing.T, cfg regulate.Config, f func(t *testing.T, e env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			clock := ephemeraltest.NewFakeClock(start)
			keys := &keyLog{Store: b.open(t, clock), seen: map[string]bool{}}
			r, err := regulate.New(keys, cfg, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			f(t, env{r: r, clock: clock, keys: keys})
		})
	}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func pw(account, addr, device string) regulate.Attempt {
	return regulate.Attempt{Kind: regulate.KindPassword, Account: account, IP: ip(addr), Device: device}
}

func (e env) check(t *testing.T, a regulate.Attempt) regulate.Verdict {
	t.Helper()
	v, err := e.r.Check(t.Context(), a)
	if err != nil {
		t.Fatalf("Check(%+v): %v", a, err)
	}
	return v
}

func (e env) fail(t *testing.T, a regulate.Attempt) {
	t.Helper()
	if err := e.r.Fail(t.Context(), a); err != nil {
		t.Fatalf("Fail(%+v): %v", a, err)
	}
}

func (e env) succeed(t *testing.T, a regulate.Attempt) {
	t.Helper()
	if err := e.r.Succeed(t.Context(), a); err != nil {
		t.Fatalf("Succeed(%+v): %v", a, err)
	}
}

func (e env) wantAllowed(t *testing.T, a regulate.Attempt, what string) {
	t.Helper()
	if v := e.check(t, a); !v.Allowed {
		t.Fatalf("%s: refused (%s, retry after %v)", what, v.Reason, v.RetryAfter)
	}
}

func (e env) wantRefused(t *testing.T, a regulate.Attempt, why regulate.Reason, retry time.Duration, what string) {
	t.Helper()
	v := e.check(t, a)
	if v.Allowed || v.Reason != why || (retry > 0 && v.RetryAfter != retry) {
		t.Fatalf("%s: %+v, want refused for %s, retry after %v", what, v, why, retry)
	}
}

// guess is an attacker's round: wrong guesses for account from addr
// through Check, waiting out each refusal; it returns how long it took.
func (e env) guess(t *testing.T, a regulate.Attempt, n int) time.Duration {
	t.Helper()
	began := e.clock.Now()
	for i := 0; i < n; {
		v := e.check(t, a)
		if !v.Allowed {
			if v.RetryAfter <= 0 {
				t.Fatalf("refused without a time to retry: %+v", v)
			}
			e.clock.Advance(v.RetryAfter)
			continue
		}
		e.fail(t, a)
		i++
	}
	return e.clock.Now().Sub(began)
}

func TestSuccessesAreNotCounted(t *testing.T) {
	// A hospital behind one address at 7 a.m.: 1,000 sign-ins, some of
	// them the same people twice, none refused.
	forEach(t, regulate.Config{}, func(t *testing.T, e env) {
		for i := range 1000 {
			a := pw(fmt.Sprintf("clinician%d", i%400), "192.0.2.17", "")
			e.wantAllowed(t, a, fmt.Sprintf("sign-in %d", i))
			e.succeed(t, a)
		}
		// And successes did not use up anyone's free failures.
		a := pw("clinician1", "192.0.2.17", "")
		for i := range 5 {
			e.wantAllowed(t, a, fmt.Sprintf("failure %d after successes", i+1))
			e.fail(t, a)
		}
	})
}

func TestRightPasswordAfterElevenWrongFromElsewhere(t *testing.T) {
	forEach(t, regulate.Config{}, func(t *testing.T, e env) {
		e.guess(t, pw("sophie", "203.0.113.7", ""), 11)
		e.wantRefused(t, pw("sophie", "203.0.113.7", ""), regulate.ReasonDelay, 0, "the attacker's network")
		// Sophie, in a new browser at the clinic: not refused.
		a := pw("sophie", "192.0.2.10", "")
		e.wantAllowed(t, a, "the owner on another network")
		e.succeed(t, a)
	})
}

func TestDelaysGrowAndSayWhen(t *testing.T) {
	forEach(t, regulate.Config{}, func(t *testing.T, e env) {
		a := pw("marc", "198.51.100.4", "")
		for i := range 5 {
			e.wantAllowed(t, a, fmt.Sprintf("free failure %d", i+1))
			e.fail(t, a)
		}
		for _, want := range []time.Duration{
			30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
			15 * time.Minute, 15 * time.Minute,
		} {
			e.wantRefused(t, a, regulate.ReasonDelay, want, "after a failure")
			e.clock.Advance(want - time.Millisecond)
			e.wantRefused(t, a, regulate.ReasonDelay, time.Millisecond, "a millisecond early")
			e.clock.Advance(time.Millisecond)
			e.wantAllowed(t, a, "when RetryAfter said")
			e.fail(t, a)
		}
		// An hour (window) without a failure: forgotten, free failures again.
		e.clock.Advance(time.Hour)
		for i := range 5 {
			e.wantAllowed(t, a, fmt.Sprintf("free failure %d after the window", i+1))
			e.fail(t, a)
		}
		e.wantRefused(t, a, regulate.ReasonDelay, 30*time.Second, "after the window's free failures")
	})
}

func TestUnknownDevicesCappedKnownDeviceAllowed(t *testing.T) {
	forEach(t, regulate.Config{}, func(t *testing.T, e env) {
		// Sophie signed in from her workstation yesterday.
		home := pw("sophie", "192.0.2.10", "workstation-device-cookie-value-0123456789a")
		e.succeed(t, home)
		e.clock.Advance(24 * time.Hour)

		// 120 wrong passwords from rotating networks, each with its free
		// failures: the 101st is refused.
		refused := 0
		for i := range 120 {
			a := pw("sophie", fmt.Sprintf("198.51.%d.%d", i, i%250+1), "")
			if v := e.check(t, a); !v.Allowed {
				if v.Reason != regulate.ReasonAccount || v.RetryAfter != 24*time.Hour {
					t.Fatalf("attempt %d: %+v, want refused for the account for 24h", i+1, v)
				}
				refused++
				continue
			}
			e.fail(t, a)
		}
		if refused != 20 {
			t.Fatalf("%d of 120 refused, want 20 (100 consecutive failures allowed)", refused)
		}
		e.wantRefused(t, pw("sophie", "203.0.113.99", ""), regulate.ReasonAccount, 24*time.Hour, "an unknown browser")
		e.wantRefused(t, pw("sophie", "192.0.2.10", "a-stranger's-cookie"), regulate.ReasonAccount, 0, "a device cookie the account never succeeded with")
		e.wantRefused(t, pw("sophie", "192.0.2.10", ""), regulate.ReasonAccount, 0, "her network without her device")
		// Her workstation still signs in, from any network.
		e.wantAllowed(t, home, "the known device")
		e.wantAllowed(t, pw("sophie", "203.0.113.99", home.Device), "the known device elsewhere")
		// Another account is not concerned.
		e.wantAllowed(t, pw("marc", "203.0.113.99", ""), "another account")

		// The lock ends with the window after the last failure…
		e.clock.Advance(24*time.Hour - time.Second)
		e.wantRefused(t, pw("sophie", "203.0.113.99", ""), regulate.ReasonAccount, time.Second, "a second before the window ends")
		e.clock.Advance(time.Second)
		e.wantAllowed(t, pw("sophie", "203.0.113.99", ""), "once the window ended")
	})
	forEach(t, regulate.Config{}, func(t *testing.T, e env) {
		// … or with a success.
		home := pw("sophie", "192.0.2.10", "workstation-device-cookie-value-0123456789a")
		e.succeed(t, home)
		for i := range 100 {
			e.fail(t, pw("sophie", fmt.Sprintf("198.51.%d.1", i), ""))
		}
		e.wantRefused(t, pw("sophie", "203.0.113.99", ""), regulate.ReasonAccount, 0, "after 100")
		e.succeed(t, home)
		e.wantAllowed(t, pw("sophie", "203.0.113.99", ""), "after the owner's success")
	})
}

func TestKnownDeviceJudgedOnItsOwnFailures(t *testing.T) {
	forEach(t, regulate.Config{}, func(t *testing.T, e env) {
		mine := pw("nadia", "192.0.2.10", "nadia-laptop")
		other := pw("nadia", "192.0.2.10", "nadia-phone")
		e.succeed(t, mine)
		e.succeed(t, other)
		e.guess(t, mine, 5)
		e.wantRefused(t, mine, regulate.ReasonDelay, 30*time.Second, "the device's own failures")
		e.wantAllowed(t, other, "another known device")
		e.wantAllowed(t, pw("nadia", "192.0.2.10", ""), "an unknown device on the same network")

		// Known for passwords is not known for codes: a code success makes it so.
		code := regulate.Attempt{Kind: regulate.KindCode, Account: "user-id-nadia", IP: ip("192.0.2.10"), Device: "nadia-laptop"}
		for range 100 {
			e.fail(t, regulate.Attempt{Kind: regulate.KindCode, Account: "user-id-nadia", IP: ip("203.0.113.1")})
			e.clock.Advance(time.Minute)
		}
		e.wantRefused(t, code, regulate.ReasonAccount, 0, "a device never used for a code")
		e.wantAllowed(t, mine, "its password counts are apart")
	})
}

func TestSuccessResetsOnlyItsNetwork(t *testing.T) {
	forEach(t, regulate.Config{}, func(t *testing.T, e env) {
		cafe := pw("lea", "203.0.113.50", "")
		clinic := pw("lea", "192.0.2.10", "")
		if took := e.guess(t, cafe, 7); took != 90*time.Second {
			t.Fatalf("7 guesses took %v, want 1m30s (waits of 30s and 1m)", took)
		}
		e.guess(t, clinic, 5)
		e.wantRefused(t, clinic, regulate.ReasonDelay, 30*time.Second, "the clinic")
		e.clock.Advance(30 * time.Second)
		e.wantAllowed(t, clinic, "the clinic, 30s later")
		e.succeed(t, clinic)
		e.wantRefused(t, cafe, regulate.ReasonDelay, 90*time.Second, "the café, after a success at the clinic")
		// The clinic starts afresh: five free failures.
		for i := range 5 {
			e.wantAllowed(t, clinic, fmt.Sprintf("clinic failure %d", i+1))
			e.fail(t, clinic)
		}
		e.wantRefused(t, clinic, regulate.ReasonDelay, 30*time.Second, "the clinic after five more")
	})
}

func TestNetworks(t *testing.T) {
	for _, tc := range []struct {
		name         string
		first, other string
		shared       bool
	}{
		{"IPv6 by /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff:ee:dd:cc", true},
		{"IPv6 next /64", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"IPv4 by /24", "192.0.2.1", "192.0.2.254", true},
		{"IPv4 next /24", "192.0.2.1", "192.0.3.1", false},
		{"IPv4-mapped IPv6 is IPv4", "192.0.2.1", "::ffff:192.0.2.77", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEach(t, regulate.Config{}, func(t *testing.T, e env) {
				e.guess(t, pw("marc", tc.first, ""), 5)
				v := e.check(t, pw("marc", tc.other, ""))
				if v.Allowed == tc.shared {
					t.Fatalf("%s after five failures from %s: %+v, shared network %v", tc.other, tc.first, v, tc.shared)
				}
			})
		})
	}
	r, _ := regulate.New(memory.New(time.Now), regulate.Config{}, nil)
	for in, want := range map[string]string{
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64", "192.0.2.200": "192.0.2.0/24", "fe80::1%eth0": "fe80::/64",
	} {
		if got := r.Network(ip(in)); got != want {
			t.Errorf("Network(%s) = %s, want %s", in, got, want)
		}
	}
	if got := r.Network(netip.Addr{}); got != "invalid" {
		t.Errorf("Network(no address) = %q", got)
	}
}

func TestNetworkFailuresCapped(t *testing.T) {
	cfg := regulate.DefaultConfig()
	cfg.NetworkFailures = 10
	forEach(t, cfg, func(t *testing.T, e env) {
		e.succeed(t, pw("owner", "192.0.2.10", "owner-device"))
		// Spraying: one guess per account.
		for i := range 10 {
			a := pw(fmt.Sprintf("user%d", i), "203.0.113.5", "")
			e.wantAllowed(t, a, fmt.Sprintf("guess %d", i+1))
			e.fail(t, a)
			e.clock.Advance(time.Minute)
		}
		// The window started with the first failure, ten minutes ago.
		e.wantRefused(t, pw("user99", "203.0.113.200", ""), regulate.ReasonNetwork, 5*time.Minute, "the network after 10 failures")
		e.wantAllowed(t, pw("owner", "203.0.113.200", "owner-device"), "a known device on that network")
		e.wantAllowed(t, pw("user99", "198.51.100.1", ""), "another network")
		e.clock.Advance(5 * time.Minute)
		e.wantAllowed(t, pw("user99", "203.0.113.200", ""), "once the window ended")
	})
}

func TestUnlock(t *testing.T) {
	forEach(t, regulate.Config{}, func(t *testing.T, e env) {
		home := pw("sophie", "192.0.2.10", "sophie-device")
		e.succeed(t, home)
		e.guess(t, home, 8)
		for i := range 100 {
			e.fail(t, pw("sophie", fmt.Sprintf("198.51.%d.1", i), ""))
		}
		net := pw("sophie", "198.51.0.1", "")
		code := regulate.Attempt{Kind: regulate.KindCode, Account: "sophie", IP: ip("198.51.0.1")}
		e.guess(t, code, 7)
		e.wantRefused(t, home, regulate.ReasonDelay, 0, "the device before Unlock")
		e.wantRefused(t, net, regulate.ReasonAccount, 0, "an unknown device before Unlock")
		e.wantRefused(t, code, regulate.ReasonDelay, 0, "codes before Unlock")

		if err := e.r.Unlock(t.Context(), "sophie"); err != nil {
			t.Fatal(err)
		}
		e.wantAllowed(t, home, "the device after Unlock")
		e.wantAllowed(t, code, "codes after Unlock")
		// The network's own count is gone too: five free failures.
		for i := range 5 {
			e.wantAllowed(t, net, fmt.Sprintf("failure %d after Unlock", i+1))
			e.fail(t, net)
		}
		// The device is still known: 100 strangers later it signs in.
		for i := range 100 {
			e.fail(t, pw("sophie", fmt.Sprintf("198.52.%d.1", i), ""))
		}
		e.wantAllowed(t, home, "the device, still known after Unlock")
	})
}

func TestDeviceForgottenAfterTTL(t *testing.T) {
	cfg := regulate.DefaultConfig()
	cfg.DeviceTTL = 48 * time.Hour
	cfg.MaxUnknown = 3
	forEach(t, cfg, func(t *testing.T, e env) {
		home := pw("marc", "192.0.2.10", "marc-device")
		e.succeed(t, home)
		e.clock.Advance(47 * time.Hour)
		for i := range 3 {
			e.fail(t, pw("marc", fmt.Sprintf("198.51.%d.1", i), ""))
		}
		e.wantAllowed(t, home, "known a little under device_ttl after its success")
		e.clock.Advance(time.Hour)
		e.wantRefused(t, home, regulate.ReasonAccount, 0, "device_ttl after its last success")
	})
}

func TestConcurrentFailuresAllCount(t *testing.T) {
	cfg := regulate.DefaultConfig()
	cfg.MaxUnknown = 50
	forEach(t, cfg, func(t *testing.T, e env) {
		var wg sync.WaitGroup
		errs := make(chan error, 49)
		for i := range 49 {
			wg.Go(func() {
				errs <- e.r.Fail(context.Background(), pw("zoe", fmt.Sprintf("198.51.%d.1", i), ""))
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		e.wantAllowed(t, pw("zoe", "203.0.113.1", ""), "after 49 of 50")
		e.fail(t, pw("zoe", "203.0.113.1", ""))
		e.wantRefused(t, pw("zoe", "203.0.113.2", ""), regulate.ReasonAccount, 0, "after 50 of 50")
	})
}

func TestAllowRequest(t *testing.T) {
	forEach(t, regulate.Config{}, func(t *testing.T, e env) {
		for i := range 1000 {
			if v, err := e.r.AllowRequest(t.Context(), ip("192.0.2.17")); err != nil || !v.Allowed {
				t.Fatalf("request %d from one address: %+v, %v", i+1, v, err)
			}
			e.clock.Advance(100 * time.Millisecond)
		}
	})
	cfg := regulate.DefaultConfig()
	cfg.Requests = 10
	cfg.RequestWindow = time.Minute
	forEach(t, cfg, func(t *testing.T, e env) {
		ctx := t.Context()
		// The clock starts 20 s into a minute.
		for i := range 10 {
			if v, err := e.r.AllowRequest(ctx, ip(fmt.Sprintf("2001:db8:5:6::%x", i+1))); err != nil || !v.Allowed {
				t.Fatalf("request %d: %+v, %v", i+1, v, err)
			}
		}
		v, err := e.r.AllowRequest(ctx, ip("2001:db8:5:6::ffff"))
		if err != nil || v.Allowed || v.Reason != regulate.ReasonRequests || v.RetryAfter != 40*time.Second || v.RetryAfterSeconds() != 40 {
			t.Fatalf("11th request from one /64: %+v, %v; want refused, retry after 40s", v, err)
		}
		if v, _ := e.r.AllowRequest(ctx, ip("2001:db8:5:7::1")); !v.Allowed {
			t.Fatal("another network refused")
		}
		e.clock.Advance(40 * time.Second)
		if v, _ := e.r.AllowRequest(ctx, ip("2001:db8:5:6::ffff")); !v.Allowed {
			t.Fatal("refused in the next window")
		}
	})
}

func TestKeysCarryNoAccountOrDevice(t *testing.T) {
	forEach(t, regulate.Config{}, func(t *testing.T, e env) {
		const device = "Zk9vYmFyLWRldmljZS1jb29raWUtdmFsdWUtMTIzNDU"
		a := pw("sophie.tremblay", "192.0.2.10", device)
		e.succeed(t, a)
		e.check(t, a)
		e.fail(t, a)
		e.fail(t, pw("sophie.tremblay", "192.0.2.10", "other"))
		if err := e.r.Unlock(t.Context(), "sophie.tremblay"); err != nil {
			t.Fatal(err)
		}
		if len(e.keys.seen) < 4 {
			t.Fatalf("only %d keys used", len(e.keys.seen))
		}
		for k := range e.keys.seen {
			if strings.Contains(k, "sophie") || strings.Contains(k, device[:12]) || !strings.HasPrefix(k, "rl:") {
				t.Errorf("key %q", k)
			}
		}
	})
}

func TestConfig(t *testing.T) {
	if err := regulate.DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	r, err := regulate.New(memory.New(time.Now), regulate.Config{}, nil)
	if err != nil || r.Config() != regulate.DefaultConfig() {
		t.Fatalf("zero config: %+v, %v; want the defaults", r, err)
	}
	bad := regulate.DefaultConfig()
	bad.MaxDelay = time.Second
	bad.IPv6Prefix = 200
	bad.Requests = 0
	_, err = regulate.New(memory.New(time.Now), bad, nil)
	if !errors.Is(err, regulate.ErrConfig) {
		t.Fatalf("New with bad limits: %v", err)
	}
	for _, field := range []string{"MaxDelay", "IPv6Prefix", "Requests"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s: %v", field, err)
		}
	}
	for _, a := range []regulate.Attempt{{Kind: "sms", Account: "x"}, {Account: "x"}} {
		if _, err := r.Check(t.Context(), a); !errors.Is(err, regulate.ErrKind) {
			t.Errorf("Check(%+v): %v, want ErrKind", a, err)
		}
		if err := r.Fail(t.Context(), a); !errors.Is(err, regulate.ErrKind) {
			t.Errorf("Fail(%+v): %v, want ErrKind", a, err)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 0, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, time.Minute: 60} {
		if got := (regulate.Verdict{RetryAfter: d}).RetryAfterSeconds(); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
