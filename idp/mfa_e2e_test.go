package idp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/mfa"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

var recoveryCodeRE = regexp.MustCompile(`class="recovery-code"[^>]*>\s*(?:<code>)?([A-Z0-9-]{19})`)

func recoveryCodes(p page) []string {
	var out []string
	for _, m := range recoveryCodeRE.FindAllStringSubmatch(p.body, -1) {
		out = append(out, m[1])
	}
	return out
}

// amrOf returns the amr claim of a verified ID token exchange.
func amrOf(t *testing.T, r *rp, code, verifier string) []string {
	t.Helper()
	_, idt, err := r.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AMR []string `json:"amr"`
		ACR string   `json:"acr"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c.AMR
}

// outbox returns the queued emails (and leases them, which is fine in tests).
func (e *testEnv) outbox() []map[string]string {
	msgs, err := e.store.ClaimOutbox(context.Background(), time.Now().Add(time.Hour), time.Minute, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []map[string]string
	for _, m := range msgs {
		var p map[string]string
		_ = json.Unmarshal(m.Payload, &p)
		out = append(out, p)
	}
	return out
}

func TestEnrollmentIsForcedAndConfirmed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.passwordOnlyUser("nadia", pw)
		b := newBrowser(t)
		p, _, verifier := r.authorize(b)
		p = submitLogin(t, b, p, "nadia", pw)
		if !strings.Contains(p.url.Path, "/mfa/setup") {
			t.Fatalf("no enrollment after the password: %s", p.url)
		}
		p = b.get(p.link(t, "/mfa/totp?"))
		for _, want := range []string{`id="totp-qr"`, `id="totp-secret"`, "Google Authenticator", "Microsoft Authenticator", "Authy", "data:image/png;base64,"} {
			if !strings.Contains(p.body, want) {
				t.Errorf("setup page lacks %q", want)
			}
		}
		// The print sheet: QR code and the five recovery codes.
		printed := b.get(p.link(t, "/mfa/totp/print"))
		if n := len(recoveryCodes(printed)); n != 5 || !printed.has("totp-qr") || !strings.Contains(printed.body, "print.js") {
			t.Errorf("print page: %d codes", n)
		}
		// A wrong code: the same page, in French, inviting a fresh code.
		confirmURL := p.url.ResolveReference(&url.URL{Path: p.url.Path + "/confirm", RawQuery: p.url.RawQuery}).String()
		cp := b.get(confirmURL)
		action, vals := cp.form(t, "totp-enroll")
		vals.Set("code", "000000")
		vals.Set("device_name", "Cellulaire de Nadia")
		wrong := b.post(action, vals)
		if wrong.status != http.StatusUnprocessableEntity || !strings.Contains(wrong.body, "Ce code n'est pas valide") || !wrong.has("totp-enroll") {
			t.Fatalf("wrong code: %d\n%s", wrong.status, wrong.body)
		}
		// No device name: refused too.
		p = enrollTOTP(t, env, b, p, "nadia", "")
		if p.status != http.StatusUnprocessableEntity {
			t.Fatalf("empty device name accepted: %d", p.status)
		}
		// Right code and a name: five recovery codes, shown once.
		setup := b.get(strings.Replace(confirmURL, "/confirm", "", 1))
		p = enrollTOTP(t, env, b, setup, "nadia", "Cellulaire de Nadia Pixel 7")
		codes := recoveryCodes(p)
		if len(codes) != 5 {
			t.Fatalf("want 5 recovery codes, got %d:\n%s", len(codes), p.body)
		}
		if !strings.Contains(p.body, "/mfa/setup?") {
			t.Error("no 'add a second method' link")
		}
		action, vals = p.formAction(t, "/mfa/continue")
		p = b.post(action, vals)
		q := p.redirectParams(t)
		amr := amrOf(t, r, q.Get("code"), verifier)
		if !slices.Contains(amr, "otp") || !slices.Contains(amr, "mfa") || !slices.Contains(amr, "pwd") {
			t.Errorf("amr %v", amr)
		}
		creds, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredTOTP)
		if len(creds) != 1 || creds[0].Name != "Cellulaire de Nadia Pixel 7" || creds[0].VerifiedAt.IsZero() {
			t.Errorf("credential: %+v", creds)
		}
		stored, _ := env.store.ListRecoveryCodes(context.Background(), u.ID)
		if len(stored) != 5 || stored[0].Hash == codes[0] {
			t.Errorf("recovery codes stored: %d (hashed: %v)", len(stored), stored[0].Hash != codes[0])
		}
		mails := env.outbox()
		if len(mails) != 1 || mails[0]["to"] != u.Email || !strings.Contains(mails[0]["subject"], "méthode") || !strings.Contains(mails[0]["text"], "Cellulaire de Nadia Pixel 7") {
			t.Errorf("confirmation email: %v", mails)
		}
		if ev, _ := env.store.ListAuditEvents(context.Background(), store.AuditFilter{UserID: u.ID, Type: "mfa.enrolled"}); len(ev) != 1 {
			t.Errorf("enrollment not audited: %v", ev)
		}
		// Enrollment at sign-in is closed now that a factor exists.
		b2 := newBrowser(t)
		p, _, _ = r.authorize(b2)
		p = submitLogin(t, b2, p, "nadia", pw)
		if !p.has("mfa") {
			t.Fatalf("enrolled user not challenged: %s", p.url)
		}
		flow := p.url.Query().Get("flow")
		if p := b2.get(env.issuer + "/mfa/totp?flow=" + flow); p.status != http.StatusForbidden {
			t.Errorf("enrollment open to an enrolled account at sign-in: %d", p.status)
		}
	})
}

// challengePage signs in with the password and returns the challenge page.
func challengePage(t *testing.T, env *testEnv, r *rp, b *browser, user string) (page, string) {
	t.Helper()
	p, _, verifier := r.authorize(b)
	p = submitLogin(t, b, p, user, pw)
	if !p.has("mfa") {
		t.Fatalf("no challenge: %s\n%s", p.url, p.body)
	}
	return p, verifier
}

func TestTOTPCodeAcceptedOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		code, _ := r.signIn(newBrowser(t), "sophie", pw)
		if code == "" {
			t.Fatal("first sign-in failed")
		}
		// The same time step again, from another browser: refused.
		env.mu.Lock()
		again := mfa.TOTPCode(env.secrets["sophie"], env.lastSteps["sophie"])
		env.mu.Unlock()
		b := newBrowser(t)
		p, _ := challengePage(t, env, r, b, "sophie")
		action, vals := p.form(t, "mfa")
		vals.Set("code", again)
		p = b.post(action, vals)
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "Ce code n'est pas valide") {
			t.Fatalf("replayed code: %d", p.status)
		}
	})
}

// concurrently posts form to action n times and counts the redirects to
// the relying party.
func concurrently(t *testing.T, b *browser, n int, action string, form url.Values, success func(page) bool) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range n {
		wg.Go(func() {
			p := b.post(action, form)
			if p.status >= 500 {
				t.Errorf("5xx under concurrency: %d", p.status)
			}
			if success(p) {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return wins
}

func redirectedToRP(p page) bool {
	return p.status == http.StatusFound && strings.HasPrefix(p.header.Get("Location"), "http://localhost:9999/callback?code=")
}

func TestConcurrentTOTPSubmissionsOneWins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		b := newBrowser(t)
		p, _ := challengePage(t, env, r, b, "sophie")
		action, vals := p.form(t, "mfa")
		vals.Set("code", env.nextCode("sophie"))
		if wins := concurrently(t, b, 50, action, vals, redirectedToRP); wins != 1 {
			t.Fatalf("%d of 50 concurrent submissions of one code succeeded, want 1", wins)
		}
	})
}

// enrolledWithCodes signs a new user in through enrollment and returns the
// recovery codes.
func enrolledWithCodes(t *testing.T, env *testEnv, r *rp, user string) []string {
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
	return codes
}

func TestConcurrentRecoveryCodeOneWins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		codes := enrolledWithCodes(t, env, r, "marc")
		b := newBrowser(t)
		p, _ := challengePage(t, env, r, b, "marc")
		action, vals := p.form(t, "mfa")
		vals.Set("method", "recovery")
		vals.Set("code", strings.ToLower(codes[2])) // any order, any case
		wins := concurrently(t, b, 50, action, vals, func(p page) bool {
			return p.status == http.StatusOK && strings.Contains(p.body, "/mfa/continue")
		})
		if wins != 1 {
			t.Fatalf("%d of 50 concurrent uses of one recovery code succeeded, want 1", wins)
		}
	})
}

func TestFiveWrongCodesVoidTheChallenge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		b := newBrowser(t)
		p, _ := challengePage(t, env, r, b, "sophie")
		action, vals := p.form(t, "mfa")
		for i := 1; i <= flow.DefaultMaxFailures; i++ {
			vals.Set("code", "000000")
			p = b.post(action, vals)
		}
		if !p.has("login") || p.status != http.StatusUnauthorized {
			t.Fatalf("after five wrong codes: %d %s", p.status, p.url)
		}
		vals.Set("code", env.nextCode("sophie"))
		p = b.post(action, vals)
		if p.status == http.StatusFound || redirectedToRP(p) || p.has("mfa") {
			t.Fatalf("a correct code was accepted on a void challenge: %d %s", p.status, p.url)
		}
		// The password again starts a new challenge.
		p = submitLogin(t, b, p, "sophie", pw)
		p = finishMFA(t, env, b, p, "sophie")
		if q := p.redirectParams(t); q.Get("code") == "" {
			t.Fatalf("no code after signing in again: %v", q)
		}
	})
}

func TestPasswordAloneNeverGetsACode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.passwordOnlyUser("nadia", pw)
		env.user("sophie", pw)
		b := newBrowser(t)
		p, _, _ := r.authorize(b)
		p = submitLogin(t, b, p, "nadia", pw)
		flow := p.url.Query().Get("flow")
		if flow == "" {
			t.Fatalf("no flow after the password: %s", p.url)
		}
		noCode := func(what string, p page) {
			t.Helper()
			if loc := p.header.Get("Location"); strings.Contains(loc, "code=") || p.status >= 500 {
				t.Errorf("%s: %d %q", what, p.status, loc)
			}
		}
		// A forged callback URL for the flow.
		noCode("forged callback", b.get(env.issuer+"/authorize/callback?id="+url.QueryEscape(flow)))
		// Skipping to the end of the MFA pages.
		action := env.issuer + "/mfa/continue?flow=" + url.QueryEscape(flow)
		noCode("continue", b.post(action, url.Values{"csrf_token": {csrfOf(t, p)}}))
		noCode("challenge", b.get(env.issuer+"/mfa/challenge?flow="+url.QueryEscape(flow)))
		// prompt=none, with or without an id_token_hint.
		p, _, _ = r.authorize(b, oauth2.SetAuthURLParam("prompt", "none"))
		if q := p.redirectParams(t); q.Get("error") != "login_required" {
			t.Errorf("prompt=none: %v", q)
		}
		p, _, _ = r.authorize(b, oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("id_token_hint", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."))
		if q := p.redirectParams(t); q.Get("code") != "" {
			t.Errorf("prompt=none with a forged hint: %v", q)
		}
		// Straight to the token endpoint, and with a refresh token made up.
		_, _, err := r.exchange("made-up", "verifier-verifier-verifier-verifier-verifier")
		assertOAuthError(t, err, "invalid_grant")
		_, err = r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "made-up"}).Token()
		assertOAuthError(t, err, "invalid_grant")
		// A callback of another user's finished flow, replayed in this browser.
		other := newBrowser(t)
		op, _, _ := r.authorize(other)
		op = submitLogin(t, other, op, "sophie", pw)
		action2, vals2 := op.form(t, "mfa")
		vals2.Set("code", env.nextCode("sophie"))
		other.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		done := other.post(action2, vals2)
		callback := done.header.Get("Location")
		if !strings.Contains(callback, "/authorize/callback?id=") {
			t.Fatalf("no callback: %d %q", done.status, callback)
		}
		noCode("replayed callback in another browser", b.get(env.issuer+callback))
	})
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t *testing.T, p page) string {
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestRecoveryCodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		codes := enrolledWithCodes(t, env, r, "marc")
		env.outbox() // drop the enrollment email
		for i, c := range codes {
			b := newBrowser(t)
			p, verifier := challengePage(t, env, r, b, "marc")
			action, vals := p.form(t, "mfa")
			vals.Set("method", "recovery")
			vals.Set("code", c)
			p = b.post(action, vals)
			remaining := len(codes) - i - 1
			if p.status != http.StatusOK || !strings.Contains(p.body, "/mfa/recovery/regenerate") {
				t.Fatalf("code %d: %d\n%s", i, p.status, p.body)
			}
			if remaining > 0 {
				action, vals = p.formAction(t, "/mfa/continue")
				p = b.post(action, vals)
				q := p.redirectParams(t)
				if amr := amrOf(t, r, q.Get("code"), verifier); !slices.Contains(amr, "mfa") {
					t.Errorf("amr %v", amr)
				}
				continue
			}
			// None left: new codes first.
			if strings.Contains(p.body, "/mfa/continue") {
				t.Fatal("continuing without recovery codes is offered")
			}
			action, vals = p.formAction(t, "/mfa/recovery/regenerate")
			p = b.post(action, vals)
			fresh := recoveryCodes(p)
			if len(fresh) != 5 || slices.Contains(fresh, codes[0]) {
				t.Fatalf("regenerated: %v", fresh)
			}
			action, vals = p.formAction(t, "/mfa/continue")
			p = b.post(action, vals)
			p.redirectParams(t)
		}
		// Each used once.
		b := newBrowser(t)
		p, _ := challengePage(t, env, r, b, "marc")
		action, vals := p.form(t, "mfa")
		vals.Set("code", codes[0])
		if p = b.post(action, vals); p.status != http.StatusUnprocessableEntity {
			t.Errorf("used code accepted again: %d", p.status)
		}
		if n := len(env.outbox()); n != 5 {
			t.Errorf("%d 'recovery code used' emails, want 5", n)
		}
	})
}

func TestSecurityPage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.user("sophie", pw)
		b := newBrowser(t)
		r.signIn(b, "sophie", pw)
		p := b.get(env.issuer + "/account")
		if p.status != http.StatusOK || !strings.Contains(p.body, "Test phone") {
			t.Fatalf("security page: %d\n%s", p.status, p.body)
		}
		if strings.Contains(p.body, "/account/methods/remove") {
			t.Error("the only method can be removed")
		}
		// Add a second authenticator.
		add := b.get(p.link(t, "/account/methods/add"))
		if !strings.Contains(add.url.Path, "/mfa/setup") {
			t.Fatalf("add method: %d %s", add.status, add.url)
		}
		setup := b.get(add.link(t, "/mfa/totp?"))
		done := enrollTOTP(t, env, b, setup, "sophie", "Tablette")
		if len(recoveryCodes(done)) != 0 {
			t.Error("adding a method replaced the recovery codes")
		}
		action, vals := done.formAction(t, "/mfa/continue")
		p = b.post(action, vals)
		if !strings.HasSuffix(p.url.Path, "/account") || !strings.Contains(p.body, "Tablette") {
			t.Fatalf("back on the security page: %s\n%s", p.url, p.body)
		}
		creds, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredTOTP)
		if len(creds) != 2 {
			t.Fatalf("%d methods", len(creds))
		}
		// Remove one; the other is then the last.
		csrf := csrfOf(t, p)
		p = b.post(env.issuer+"/account/methods/remove", url.Values{"csrf_token": {csrf}, "id": {creds[0].ID}})
		if p.status != http.StatusOK {
			t.Fatalf("remove: %d", p.status)
		}
		p = b.post(env.issuer+"/account/methods/remove", url.Values{"csrf_token": {csrf}, "id": {creds[1].ID}})
		if p.status != http.StatusBadRequest {
			t.Fatalf("removing the last method: %d", p.status)
		}
		// New recovery codes after the recent second factor.
		p = b.post(env.issuer+"/account/recovery", url.Values{"csrf_token": {csrf}})
		if len(recoveryCodes(p)) != 5 {
			t.Fatalf("regenerate: %d\n%s", p.status, p.body)
		}
	})
}

func TestGracePeriod(t *testing.T) {
	env := newTestEnv(t, backends[0])
	r := env.newRP(nil)
	u := env.passwordOnlyUser("lea", pw)
	u.MFAGraceUntil = time.Now().Add(24 * time.Hour)
	if err := env.store.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	p, _, verifier := r.authorize(b)
	p = submitLogin(t, b, p, "lea", pw)
	q := p.redirectParams(t)
	if amr := amrOf(t, r, q.Get("code"), verifier); slices.Contains(amr, "mfa") || !slices.Contains(amr, "pwd") {
		t.Errorf("amr %v", amr)
	}
	if ev, _ := env.store.ListAuditEvents(context.Background(), store.AuditFilter{UserID: u.ID, Type: "mfa.grace_used"}); len(ev) != 1 {
		t.Error("grace not audited")
	}
	// Once it ends, enrollment is forced and the old session is not enough.
	u.MFAGraceUntil = time.Now().Add(-time.Minute)
	if err := env.store.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	p, _, _ = r.authorize(b)
	p = submitLogin(t, b, p, "lea", pw)
	if !strings.Contains(p.url.Path, "/mfa/setup") {
		t.Fatalf("grace over, no enrollment: %s", p.url)
	}
}

func TestActivationLink(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		u := store.User{ID: "00000000-0000-4000-8000-000000000001", Username: "nouvelle", Email: "nouvelle@clinique.example",
			Locale: "fr-CA", Status: store.StatusPendingActivation, AccountType: "person",
			CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
		var token string
		err := env.store.InTx(context.Background(), func(tx store.Tx) error {
			if err := tx.CreateUser(context.Background(), u); err != nil {
				return err
			}
			var err error
			token, err = users.NewActivationToken(context.Background(), tx, u.ID, time.Now().UTC())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		link := env.issuer + "/activate?token=" + url.QueryEscape(token)
		p := b.get(link)
		action, vals := p.form(t, "activate")
		for _, bad := range []struct{ pw, confirm, want string }{
			{"court", "court", "error.password_short"},
			{"motdepasse123", "motdepasse123", "common"},
			{"une longue phrase de passe", "une autre phrase", "mismatch"},
		} {
			vals.Set("password", bad.pw)
			vals.Set("password_confirm", bad.confirm)
			if p := b.post(action, vals); p.status != http.StatusBadRequest || !p.has("activate") {
				t.Errorf("%s: %d", bad.want, p.status)
			}
		}
		// The link survived the refusals; a good password activates.
		vals.Set("password", "une longue phrase de passe")
		vals.Set("password_confirm", "une longue phrase de passe")
		b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		p = b.post(action, vals)
		if p.status != http.StatusSeeOther || !strings.HasSuffix(p.header.Get("Location"), "/account") {
			t.Fatalf("activate: %d %q", p.status, p.header.Get("Location"))
		}
		got, _ := env.store.GetUser(context.Background(), u.ID)
		if got.Status != store.StatusActive {
			t.Fatalf("status %s", got.Status)
		}
		// Single use.
		if p := b.post(action, vals); p.status != http.StatusBadRequest {
			t.Errorf("link used twice: %d", p.status)
		}
		// On to signing in: /account sends to the sign-in page, then enrollment.
		b2 := newBrowser(t)
		p = b2.get(env.issuer + "/account")
		p = submitLogin(t, b2, p, "nouvelle", "une longue phrase de passe")
		if !strings.Contains(p.url.Path, "/mfa/setup") {
			t.Fatalf("after activation, sign-in did not lead to enrollment: %s", p.url)
		}
	})
}

func TestSessionCookieRotatesAtSignIn(t *testing.T) {
	env := newTestEnv(t, backends[0])
	r := env.newRP(nil)
	env.user("sophie", pw)
	b := newBrowser(t)
	u, _ := url.Parse(env.issuer)
	r.signIn(b, "sophie", pw)
	first := cookieValue(b, u, "sesame_session")
	r.signIn(b, "sophie", pw, oauth2.SetAuthURLParam("prompt", "login"))
	second := cookieValue(b, u, "sesame_session")
	if first == "" || second == "" || first == second {
		t.Fatalf("session cookie not rotated: %q → %q", first, second)
	}
	for _, c := range b.c.Jar.Cookies(u) {
		if strings.Contains(c.Value, "sophie") {
			t.Errorf("cookie %s carries the username", c.Name)
		}
	}
}

func cookieValue(b *browser, u *url.URL, name string) string {
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func TestStepUpOnNewNetwork(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		env.srv.Flow.Networks = session.Networks{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
		r := env.newRP(nil)
		u := env.user("sophie", pw)
		b := newBrowser(t)
		b.xff = "192.0.2.10" // the clinic
		r.signIn(b, "sophie", pw)

		// Same network: the session answers.
		p, _, _ := r.authorize(b)
		if q := p.redirectParams(t); q.Get("code") == "" {
			t.Fatalf("same network: %v", q)
		}
		// Another network (home): a second factor again, no password.
		b.xff = "198.51.100.7"
		p, _, _ = r.authorize(b, oauth2.SetAuthURLParam("prompt", "none"))
		if q := p.redirectParams(t); q.Get("error") != "interaction_required" {
			t.Fatalf("prompt=none from a new network: %v", q)
		}
		p, _, verifier := r.authorize(b)
		if !p.has("mfa") {
			t.Fatalf("new network: no challenge at %s", p.url)
		}
		p = finishMFA(t, env, b, p, "sophie")
		q := p.redirectParams(t)
		if amr := amrOf(t, r, q.Get("code"), verifier); !slices.Contains(amr, "otp") {
			t.Errorf("amr after step-up: %v", amr)
		}
		if ev, _ := env.store.ListAuditEvents(context.Background(), store.AuditFilter{UserID: u.ID, Type: "session.step_up"}); len(ev) != 1 {
			t.Errorf("step-up not audited: %d", len(ev))
		}
		// Both networks are now verified for this session.
		for _, ip := range []string{"192.0.2.77", "198.51.100.8"} {
			b.xff = ip
			p, _, _ = r.authorize(b)
			if q := p.redirectParams(t); q.Get("code") == "" {
				t.Fatalf("verified network %s: %v", ip, q)
			}
		}
	})
}

func TestConcurrentEnrollmentConfirmationsOneWins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.passwordOnlyUser("nadia", pw)
		b := newBrowser(t)
		p, _, _ := r.authorize(b)
		p = submitLogin(t, b, p, "nadia", pw)
		setup := b.get(p.link(t, "/mfa/totp?"))
		secret, err := users.ParseSecret(dataSecretRE.FindStringSubmatch(setup.body)[1])
		if err != nil {
			t.Fatal(err)
		}
		next, q := setup.formAction(t, "/mfa/totp/confirm")
		confirm := b.get(strings.SplitN(next, "?", 2)[0] + "?" + q.Encode())
		action, vals := confirm.form(t, "totp-enroll")
		vals.Set("code", mfa.TOTPCode(secret, mfa.TOTPStep(env.now())))
		vals.Set("device_name", "Phone")
		wins := concurrently(t, b, 20, action, vals, func(p page) bool { return len(recoveryCodes(p)) == 5 })
		creds, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredTOTP)
		if wins != 1 || len(creds) != 1 {
			t.Fatalf("%d confirmations succeeded, %d credentials stored; want 1 and 1", wins, len(creds))
		}
	})
}
