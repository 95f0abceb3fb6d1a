package idp_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/session"
)

// Acceptance of defect 3: a clinic behind one address signs in all at
// once; no sign-in is refused (successes are never counted).
func TestSignInLoadFromOneAddress(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		const n = 1000
		for i := range n {
			b := newBrowser(t)
			p, _, _ := r.authorize(b)
			p = submitLogin(t, b, p, "sophie", pw)
			if p.status == http.StatusTooManyRequests {
				t.Fatalf("sign-in %d of %d from one address refused: %d", i+1, n, p.status)
			}
			p = finishMFA(t, env, b, p, "sophie")
			if q := p.redirectParams(t); q.Get("code") == "" {
				t.Fatalf("sign-in %d of %d: no code (%d %s)", i+1, n, p.status, p.url)
			}
		}
	})
}

// Acceptance of defect 3: 120 wrong passwords from rotating networks
// throttle the account for unknown browsers; its owner's browser, which
// signed in before, still signs in — and the page says when to retry.
func TestStrangersCannotLockOutAKnownBrowser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		env.srv.Flow.Networks = session.Networks{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
		r := env.newRP(nil)
		env.user("sophie", pw)
		owner := newBrowser(t)
		owner.xff = "192.0.2.10"
		r.signIn(owner, "sophie", pw)

		refused := 0
		for i := range 120 {
			b := newBrowser(t)
			b.xff = fmt.Sprintf("203.0.%d.%d", i/4, 1+i%4) // a new /24 every four tries
			p, _, _ := r.authorize(b)
			p = submitLogin(t, b, p, "sophie", "wrong password "+fmt.Sprint(i))
			switch p.status {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				refused++
			default:
				t.Fatalf("wrong password %d: %d", i, p.status)
			}
		}
		if refused == 0 {
			t.Fatal("120 wrong passwords from rotating networks: none throttled")
		}
		// An unknown browser with the right password: refused, told when.
		b := newBrowser(t)
		b.xff = "198.51.100.7"
		p, _, _ := r.authorize(b)
		p = submitLogin(t, b, p, "sophie", pw)
		if p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "réessayez dans") {
			t.Fatalf("unknown browser after 120 failures: %d\n%s", p.status, p.body)
		}
		// Her own browser, from home (another network), with her password
		// again (prompt=login): signs in.
		owner.xff = "198.51.100.8"
		p, _, _ = r.authorize(owner, oauth2.SetAuthURLParam("prompt", "login"))
		if !p.has("login") {
			t.Fatalf("prompt=login: no password page: %s", p.url)
		}
		p = submitLogin(t, owner, p, "sophie", pw)
		if p.status == http.StatusTooManyRequests {
			t.Fatalf("the owner's known browser was locked out by strangers")
		}
		p = finishMFA(t, env, owner, p, "sophie")
		if q := p.redirectParams(t); q.Get("code") == "" {
			t.Fatalf("the owner's known browser: %v", q)
		}
	})
}

// Defect 8: unauthenticated requests that store an auth request are
// limited per client network (/authorize and the account pages alike).
func TestAuthRequestsLimitedPerNetwork(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		cfg := regulate.DefaultConfig()
		cfg.Requests = 10
		reg, err := regulate.New(env.eph, cfg, env.now)
		if err != nil {
			t.Fatal(err)
		}
		env.srv.Flow.Regulator = reg
		r := env.newRP(nil)
		b := newBrowser(t)
		for i := range cfg.Requests - 1 {
			if p, _, _ := r.authorize(b); !p.has("login") {
				t.Fatalf("authorization request %d: %d", i+1, p.status)
			}
		}
		if p := b.get(env.issuer + "/account"); !p.has("login") {
			t.Fatalf("account sign-in within the limit: %d", p.status)
		}
		for _, p := range []page{first(r.authorize(b)), b.get(env.issuer + "/account")} {
			if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "réessayez dans") {
				t.Fatalf("past the limit: %d %q", p.status, p.header.Get("Retry-After"))
			}
		}
	})
}

func first(p page, _, _ string) page { return p }
