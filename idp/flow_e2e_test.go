package idp_test

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// Defect 1: "add a method" then "continue" verified nothing: the factor
// time and the session's end stay where the real sign-in put them.
func TestFlowWithoutFactorKeepsSessionTimes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		b := newBrowser(t)
		r.signIn(b, "sophie", pw)

		// Nine minutes later: within the factor window, add a method, then
		// continue without setting one up.
		env.offset.Add(int64(9 * time.Minute))
		add := b.get(env.issuer + "/account/methods/add")
		if !strings.Contains(add.url.Path, "/mfa/setup") {
			t.Fatalf("add a method within the window: %d %s", add.status, add.url)
		}
		flowID := add.url.Query().Get("flow")
		csrf := csrfOf(t, b.get(env.issuer+"/account"))
		p := b.post(env.issuer+"/mfa/continue?flow="+url.QueryEscape(flowID), url.Values{"csrf_token": {csrf}})
		if !strings.HasSuffix(p.url.Path, "/account") {
			t.Fatalf("continue: %d %s", p.status, p.url)
		}
		// Eighteen minutes after the factor: a sensitive action asks again.
		env.offset.Add(int64(9 * time.Minute))
		again := b.get(env.issuer + "/account/methods/add")
		if strings.Contains(again.url.Path, "/mfa/setup") || !again.has("login") {
			t.Fatalf("18 minutes after the last factor, add a method did not ask again: %d %s", again.status, again.url)
		}
		// The session ends 12 hours after its sign-in, not after the flow
		// that verified nothing.
		env.offset.Add(int64(12*time.Hour - 18*time.Minute + time.Minute))
		p, _, _ = r.authorize(b, oauth2.SetAuthURLParam("prompt", "none"))
		if q := p.redirectParams(t); q.Get("error") != "login_required" {
			t.Fatalf("session alive 12 h after its sign-in: %v", q)
		}
	})
}

// A step-up keeps the session's end (absolute from the first sign-in).
func TestStepUpKeepsSessionEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		env.srv.Flow.Networks = session.Networks{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
		r := env.newRP(nil)
		env.user("sophie", pw)
		b := newBrowser(t)
		b.xff = "192.0.2.10"
		r.signIn(b, "sophie", pw)
		env.offset.Add(int64(11 * time.Hour))
		b.xff = "198.51.100.7"
		p, _, _ := r.authorize(b)
		p = finishMFA(t, env, b, p, "sophie")
		if q := p.redirectParams(t); q.Get("code") == "" {
			t.Fatalf("step-up: %v", q)
		}
		env.offset.Add(int64(time.Hour + time.Minute))
		p, _, _ = r.authorize(b, oauth2.SetAuthURLParam("prompt", "none"))
		if q := p.redirectParams(t); q.Get("error") != "login_required" {
			t.Fatalf("a step-up renewed the session past 12 h: %v", q)
		}
	})
}

// Defect 2: five wrong codes in a step-up end the browser session; a
// reload or a new authorization request does not start a new round.
func TestStepUpVoidEndsSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		env.srv.Flow.Networks = session.Networks{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
		r := env.newRP(nil)
		u := env.user("sophie", pw)
		b := newBrowser(t)
		b.xff = "192.0.2.10"
		r.signIn(b, "sophie", pw)

		b.xff = "198.51.100.7" // someone else, at home, with her browser
		evaluated := 0
		for round := 0; round < 4; round++ {
			p, _, _ := r.authorize(b)
			if !p.has("mfa") {
				if round == 0 {
					t.Fatalf("no step-up challenge: %s", p.url)
				}
				break
			}
			action, vals := p.form(t, "mfa")
			for range flow.DefaultMaxFailures {
				vals.Set("code", "000000")
				if p = b.post(action, vals); !p.has("mfa") {
					break
				}
			}
			// Reload the same flow's login URL.
			flowID := p.url.Query().Get("flow")
			if again := b.get(env.issuer + "/login?flow=" + url.QueryEscape(flowID)); again.has("mfa") {
				t.Errorf("round %d: reloading the login URL shows a challenge again", round)
			}
		}
		ev, _ := env.store.ListAuditEvents(context.Background(), store.AuditFilter{UserID: u.ID, Type: "mfa.failed"})
		evaluated = len(ev)
		if evaluated != flow.DefaultMaxFailures {
			t.Errorf("%d wrong codes evaluated without the password, want %d", evaluated, flow.DefaultMaxFailures)
		}
		p, _, _ := r.authorize(b)
		if !p.has("login") || p.has("mfa") {
			t.Fatalf("after a voided step-up: %d %s, want the password page", p.status, p.url)
		}
		// The owner, with her password, signs in again.
		p = submitLogin(t, b, p, "sophie", pw)
		p = finishMFA(t, env, b, p, "sophie")
		if q := p.redirectParams(t); q.Get("code") == "" {
			t.Fatalf("password and code after the void: %v", q)
		}
	})
}

// Concurrent wrong codes cannot check more than five: an attempt takes
// its place before its code is checked.
func TestConcurrentWrongCodesCheckAtMostFive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.user("sophie", pw)
		b := newBrowser(t)
		p, _ := challengePage(t, env, r, b, "sophie")
		action, vals := p.form(t, "mfa")
		vals.Set("code", "000000")
		concurrently(t, b, 20, action, vals, redirectedToRP)
		ev, _ := env.store.ListAuditEvents(context.Background(), store.AuditFilter{UserID: u.ID, Type: "mfa.failed"})
		if len(ev) > flow.DefaultMaxFailures {
			t.Errorf("%d wrong codes checked by 20 concurrent submissions, want at most %d", len(ev), flow.DefaultMaxFailures)
		}
		// The challenge is void: a right code is not taken.
		vals.Set("code", env.nextCode("sophie"))
		if p = b.post(action, vals); redirectedToRP(p) || p.has("mfa") {
			t.Fatalf("a right code was taken after the void: %d %s", p.status, p.url)
		}
	})
}

// Defect 10: during a grace period, acr_values asking for a second factor
// get unmet_authentication_requirements, not a code with an empty acr.
func TestGracePeriodRefusesACRMFA(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.passwordOnlyUser("lea", pw)
		u.MFAGraceUntil = env.now().Add(24 * time.Hour)
		if err := env.store.UpdateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		for _, acr := range []string{"urn:sesame:acr:mfa", "urn:sesame:acr:phishing-resistant", "urn:example:other urn:sesame:acr:mfa"} {
			b := newBrowser(t)
			p, _, _ := r.authorize(b, oauth2.SetAuthURLParam("acr_values", acr))
			p = submitLogin(t, b, p, "lea", pw)
			q := p.redirectParams(t)
			if q.Get("error") != "unmet_authentication_requirements" || q.Get("code") != "" {
				t.Errorf("acr_values=%q during a grace period: %v", acr, q)
			}
		}
		// Without acr_values the grace period still works.
		b := newBrowser(t)
		p, _, _ := r.authorize(b)
		p = submitLogin(t, b, p, "lea", pw)
		if q := p.redirectParams(t); q.Get("code") == "" {
			t.Errorf("grace period without acr_values: %v", q)
		}
	})
}

// Defect 6: a logout without a valid id_token_hint asks first; logging out
// revokes the tokens of that browser session, and only those.
func TestLogoutConfirmsAndRevokesSessionTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		env.user("marc", pw)
		b := newBrowser(t)
		code, v := r.signIn(b, "sophie", pw)
		tok, _, err := r.exchange(code, v)
		if err != nil {
			t.Fatal(err)
		}
		other := newBrowser(t)
		code2, v2 := r.signIn(other, "marc", pw)
		tok2, _, err := r.exchange(code2, v2)
		if err != nil {
			t.Fatal(err)
		}

		// A cross-site GET without a hint: a question, not a logout.
		p := b.get(env.issuer + "/end_session?" + url.Values{"client_id": {r.client.ID}, "post_logout_redirect_uri": {"http://localhost:9999/bye"}, "state": {"s2"}}.Encode())
		if p.status != http.StatusOK || !p.has("logout") {
			t.Fatalf("logout without a hint: %d %s", p.status, p.url)
		}
		if q := mustAuthorize(t, r, b); q.Get("code") == "" {
			t.Fatalf("a GET without a hint signed the browser out: %v", q)
		}
		// A POST without the CSRF token: refused.
		action, vals := p.form(t, "logout")
		forged := url.Values{}
		for k, vs := range vals {
			if k != "csrf_token" {
				forged[k] = vs
			}
		}
		if f := b.post(action, forged); f.status != http.StatusForbidden {
			t.Fatalf("logout POST without CSRF: %d", f.status)
		}
		// The user confirms.
		p = b.post(action, vals)
		if loc := p.header.Get("Location"); p.status != http.StatusFound || !strings.HasPrefix(loc, "http://localhost:9999/bye") || !strings.Contains(loc, "state=s2") {
			t.Fatalf("confirmed logout: %d %q", p.status, loc)
		}
		if q := mustAuthorize(t, r, b); q.Get("error") != "login_required" {
			t.Fatalf("session survived the confirmed logout: %v", q)
		}
		// The session's tokens are revoked; the other session's are not.
		if status, _ := userinfo(t, env, tok.AccessToken); status == http.StatusOK {
			t.Errorf("access token of the ended session: userinfo %d", status)
		}
		if _, err := r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Error("refresh token of the ended session still works")
		}
		if status, _ := userinfo(t, env, tok2.AccessToken); status != http.StatusOK {
			t.Errorf("access token of another session: userinfo %d", status)
		}
		if _, err := r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token(); err != nil {
			t.Errorf("refresh token of another session: %v", err)
		}
	})
}

func mustAuthorize(t *testing.T, r *rp, b *browser) url.Values {
	t.Helper()
	p, _, _ := r.authorize(b, oauth2.SetAuthURLParam("prompt", "none"))
	return p.redirectParams(t)
}

func userinfo(t *testing.T, env *testEnv, accessToken string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, env.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

// Defect 4: concurrent removals of a user's two methods leave one.
func TestConcurrentRemovalsLeaveAMethod(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.user("sophie", pw)
		// A second authenticator, as `sesame user create --totp-secret`.
		second := users.NewTOTPCredential(env.sealer, u.ID, "Tablette", users.NewTOTPSecret(), env.now(), env.now())
		if err := env.store.CreateCredential(context.Background(), second); err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		r.signIn(b, "sophie", pw)
		p := b.get(env.issuer + "/account")
		creds, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredTOTP)
		if len(creds) != 2 {
			t.Fatalf("%d methods", len(creds))
		}
		csrf := csrfOf(t, p)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				p := b.post(env.issuer+"/account/methods/remove", url.Values{"csrf_token": {csrf}, "id": {creds[i%2].ID}})
				if p.status >= 500 {
					t.Errorf("removal: %d", p.status)
				}
			})
		}
		wg.Wait()
		left, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredTOTP)
		if len(left) != 1 {
			t.Fatalf("%d methods left after 20 concurrent removals, want 1", len(left))
		}
	})
}

// keyRecorder is an ephemeral store that remembers every key it is asked
// for, to check what key names carry.
type keyRecorder struct {
	ephemeral.Store
	mu   sync.Mutex
	keys []string
}

func (k *keyRecorder) rec(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, key)
}

func (k *keyRecorder) Put(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	k.rec(key)
	return k.Store.Put(ctx, key, v, ttl)
}

func (k *keyRecorder) PutNew(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	k.rec(key)
	return k.Store.PutNew(ctx, key, v, ttl)
}

func (k *keyRecorder) Get(ctx context.Context, key string) ([]byte, error) {
	k.rec(key)
	return k.Store.Get(ctx, key)
}

func (k *keyRecorder) Take(ctx context.Context, key string) ([]byte, error) {
	k.rec(key)
	return k.Store.Take(ctx, key)
}

func (k *keyRecorder) Delete(ctx context.Context, key string) error {
	k.rec(key)
	return k.Store.Delete(ctx, key)
}

func (k *keyRecorder) Incr(ctx context.Context, key string, window time.Duration) (int64, error) {
	k.rec(key)
	return k.Store.Incr(ctx, key, window)
}

func (k *keyRecorder) Update(ctx context.Context, key string, ttl time.Duration, fn func([]byte) ([]byte, error)) error {
	k.rec(key)
	return k.Store.Update(ctx, key, ttl, fn)
}

// Defect 5: no ephemeral key name carries part of a secret (the new TOTP
// key, recovery codes, cookies, the username).
func TestKeyNamesCarryNoSecret(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			var rec *keyRecorder
			env := newTestEnv(t, backend{b.name, func(t testing.TB, s *seal.Sealer) (store.Store, ephemeral.Store) {
				st, eph := b.open(t, s)
				rec = &keyRecorder{Store: eph}
				return st, rec
			}})
			r := env.newRP(nil)
			_, codes := enrollAndShowCodes(t, env, r, "nadia")
			secret := users.EncodeSecret(env.secrets["nadia"])
			rec.mu.Lock()
			defer rec.mu.Unlock()
			for _, k := range rec.keys {
				low := strings.ToLower(k)
				for i := 0; i+8 <= len(secret); i += 4 {
					if strings.Contains(strings.ToUpper(k), secret[i:i+8]) {
						t.Errorf("key %q carries 40 bits of the TOTP secret", k)
					}
				}
				for _, c := range codes {
					if strings.Contains(strings.ToUpper(k), strings.ReplaceAll(c, "-", "")[:8]) || strings.Contains(strings.ToUpper(k), c[:9]) {
						t.Errorf("key %q carries part of a recovery code", k)
					}
				}
				if strings.Contains(low, "nadia") {
					t.Errorf("key %q carries the username", k)
				}
			}
			if len(rec.keys) == 0 {
				t.Fatal("no key recorded")
			}
		})
	}
}

// enrollAndShowCodes signs a new user in through enrollment and returns
// the recovery-codes page and its codes.
func enrollAndShowCodes(t *testing.T, env *testEnv, r *rp, user string) (page, []string) {
	t.Helper()
	env.passwordOnlyUser(user, pw)
	b := newBrowser(t)
	p, _, _ := r.authorize(b)
	p = submitLogin(t, b, p, user, pw)
	p = b.get(p.link(t, "/mfa/totp?"))
	p = enrollTOTP(t, env, b, p, user, "Phone")
	codes := recoveryCodes(p)
	if len(codes) != 5 {
		t.Fatalf("%d recovery codes", len(codes))
	}
	return p, codes
}
