package idp_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/store"
)

// newPassword passes the policy of activation.
const newPassword = "trois pommes vertes sur la table"

// refresh uses a refresh token once.
func (r *rp) refresh(refreshToken string) (*oauth2.Token, error) {
	return r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// signedInWithTokens signs b in through r and returns its tokens.
func signedInWithTokens(t *testing.T, r *rp, b *browser, user, password string) *oauth2.Token {
	t.Helper()
	code, verifier := r.signIn(b, user, password)
	tok, _, err := r.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	return tok
}

// signedOut reports whether b's Security page asks for a sign-in.
func signedOut(b *browser, env *testEnv) bool {
	p := b.get(env.issuer + "/account")
	return p.has("login") && !strings.Contains(p.body, "/account/password")
}

func auditCount(t *testing.T, env *testEnv, userID, typ string) int {
	t.Helper()
	ev, err := env.store.ListAuditEvents(context.Background(), store.AuditFilter{UserID: userID, Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	return len(ev)
}

func TestChangePassword(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.user("sophie", pw)
		here, other := newBrowser(t), newBrowser(t)
		hereTok := signedInWithTokens(t, r, here, "sophie", pw)
		otherTok := signedInWithTokens(t, r, other, "sophie", pw)
		// A third browser is half-way: the old password given, not yet
		// the second factor.
		halfway := newBrowser(t)
		half, _ := challengePage(t, env, r, halfway, "sophie")
		env.outbox() // nothing queued so far; drop anything

		// The Security page links to the form; the factor is fresh.
		sec := here.get(env.issuer + "/account")
		p := here.get(sec.link(t, "/account/password"))
		action, vals := p.form(t, "password-change")

		// A wrong current password: refused, audited, nothing changed.
		vals.Set("current_password", "not the password")
		vals.Set("password", newPassword)
		vals.Set("password_confirm", newPassword)
		if p = here.post(action, vals); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "mot de passe actuel") {
			t.Fatalf("wrong current password: %d %s", p.status, errorText(p.body))
		}
		if n := auditCount(t, env, u.ID, "password.change_failed"); n != 1 {
			t.Errorf("%d password.change_failed events", n)
		}
		// The policy of activation.
		vals.Set("current_password", pw)
		vals.Set("password", "password")
		vals.Set("password_confirm", "password")
		if p = here.post(action, vals); p.status != http.StatusBadRequest || !strings.Contains(p.body, "trop courant") {
			t.Fatalf("common password: %d %s", p.status, errorText(p.body))
		}
		vals.Set("password", "sophie")
		vals.Set("password_confirm", "sophie")
		if p = here.post(action, vals); p.status != http.StatusBadRequest {
			t.Fatalf("short password: %d", p.status)
		}
		vals.Set("password", newPassword)
		vals.Set("password_confirm", newPassword+"x")
		if p = here.post(action, vals); p.status != http.StatusBadRequest {
			t.Fatalf("mismatch: %d", p.status)
		}
		// No CSRF token: refused.
		noCSRF := url.Values{}
		for k, v := range vals {
			if k != "csrf_token" {
				noCSRF[k] = v
			}
		}
		noCSRF.Set("password_confirm", newPassword)
		if p = here.post(action, noCSRF); p.status != http.StatusForbidden && p.status != http.StatusBadRequest {
			t.Fatalf("without CSRF token: %d", p.status)
		}
		if _, err := r.refresh(otherTok.RefreshToken); err != nil {
			t.Fatalf("refresh before the change: %v", err)
		}

		// The change.
		vals.Set("password_confirm", newPassword)
		p = here.post(action, vals)
		if p.status != http.StatusOK || !strings.Contains(p.body, "Votre mot de passe a été changé") {
			t.Fatalf("change: %d %s\n%s", p.status, p.url, p.body)
		}
		if n := auditCount(t, env, u.ID, "password.changed"); n != 1 {
			t.Errorf("%d password.changed events", n)
		}
		mails := env.outbox()
		if len(mails) != 1 || mails[0]["to"] != u.Email || !strings.Contains(mails[0]["subject"], "mot de passe") {
			t.Errorf("emails: %v", mails)
		}
		// The other browser is signed out, and its tokens refused; this
		// one goes on.
		if !signedOut(other, env) {
			t.Error("the other session survived the change")
		}
		_, err := r.refresh(otherTok.RefreshToken)
		assertOAuthError(t, err, "invalid_grant")
		if status, _ := r.userinfo(otherTok.AccessToken, http.MethodGet); status == http.StatusOK {
			t.Error("the other session's access token still works")
		}
		if signedOut(here, env) {
			t.Error("this session ended")
		}
		if _, err := r.refresh(hereTok.RefreshToken); err != nil {
			t.Errorf("this session's refresh token: %v", err)
		}
		// The half-way sign-in cannot finish with the old password.
		action, vals = half.form(t, "mfa")
		vals.Set("code", env.nextCode("sophie"))
		if p := halfway.post(action, vals); p.status != http.StatusBadRequest && p.status != http.StatusGone || p.header.Get("Location") != "" {
			t.Errorf("half-way sign-in after the change: %d %s", p.status, p.header.Get("Location"))
		}
		// The new password signs in; the old one no longer.
		b := newBrowser(t)
		p, _, _ = r.authorize(b)
		if p = submitLogin(t, b, p, "sophie", pw); p.status != http.StatusUnauthorized {
			t.Errorf("old password: %d", p.status)
		}
		r.signIn(newBrowser(t), "sophie", newPassword)
	})
}

func TestChangePasswordNeedsAFreshFactor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		b := newBrowser(t)
		r.signIn(b, "sophie", pw)
		if p := b.get(env.issuer + "/account/password"); !p.has("password-change") {
			t.Fatalf("fresh factor: no form (%d %s)", p.status, p.url)
		}
		// Six minutes later (the factor window is ten): the password and a
		// second factor again, then back to the form.
		env.offset.Add(int64(6 * time.Minute))
		p := b.get(env.issuer + "/account/password")
		if !p.has("login") || p.has("password-change") {
			t.Fatalf("stale factor: %d %s\n%s", p.status, p.url, p.body)
		}
		p = submitLogin(t, b, p, "sophie", pw)
		if !p.has("mfa") {
			t.Fatalf("step-up without a second factor: %s", p.url)
		}
		action, vals := p.form(t, "mfa")
		vals.Set("code", env.nextCode("sophie"))
		p = b.post(action, vals)
		if !p.has("password-change") || !strings.HasSuffix(p.url.Path, "/account/password") {
			t.Fatalf("not back on the form: %d %s", p.status, p.url)
		}
		// A POST with a stale factor changes nothing either.
		action, vals = p.form(t, "password-change")
		env.offset.Add(int64(6 * time.Minute))
		vals.Set("current_password", pw)
		vals.Set("password", newPassword)
		vals.Set("password_confirm", newPassword)
		p = b.post(action, vals)
		if !p.has("login") {
			t.Fatalf("stale POST: %d %s", p.status, p.url)
		}
		r.signIn(newBrowser(t), "sophie", pw)
	})
}

func TestChangePasswordThrottled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		b := newBrowser(t)
		r.signIn(b, "sophie", pw)
		p := b.get(env.issuer + "/account/password")
		action, vals := p.form(t, "password-change")
		vals.Set("password", newPassword)
		vals.Set("password_confirm", newPassword)
		for i := range 12 {
			vals.Set("current_password", "guess "+string(rune('a'+i)))
			p = b.post(action, vals)
			if p.status == http.StatusTooManyRequests {
				if p.header.Get("Retry-After") == "" || !p.has("password-change") {
					t.Errorf("throttled answer: %v\n%s", p.header, p.body)
				}
				// Even the right password waits.
				vals.Set("current_password", pw)
				if p = b.post(action, vals); p.status != http.StatusTooManyRequests {
					t.Errorf("right password while throttled: %d", p.status)
				}
				return
			}
			if p.status != http.StatusUnauthorized {
				t.Fatalf("guess %d: %d", i, p.status)
			}
		}
		t.Fatal("twelve wrong current passwords, never throttled")
	})
}

var resetLinkRE = regexp.MustCompile(`/password/reset\?token=([A-Za-z0-9_-]+)`)

// padLog records the time budget of each forgotten-password answer.
type padLog struct {
	mu      sync.Mutex
	budgets []time.Duration
}

func (l *padLog) pad(_ context.Context, _ time.Time, budget time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.budgets = append(l.budgets, budget)
}

func (l *padLog) all() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.budgets...)
}

func withPadLog(env *testEnv) *padLog {
	l := &padLog{}
	env.srv.Login.Pad = l.pad
	return l
}

// forgot asks for a link for name from the login page's link.
func forgot(t *testing.T, env *testEnv, b *browser, name string) page {
	t.Helper()
	p := b.get(env.issuer + "/password/forgot")
	action, vals := p.form(t, "password-forgot")
	vals.Set("username", name)
	return b.post(action, vals)
}

// resetLinkFromOutbox returns the link of the one queued email to email.
func resetLinkFromOutbox(t *testing.T, env *testEnv, email string) string {
	t.Helper()
	var links []string
	for _, m := range env.outbox() {
		if m["to"] == email {
			if l := resetLinkRE.FindString(m["text"]); l != "" {
				links = append(links, l)
			}
		}
	}
	if len(links) != 1 {
		t.Fatalf("%d reset links to %s", len(links), email)
	}
	return env.issuer + links[0]
}

// useLink opens the emailed link and presses Continue.
func useLink(t *testing.T, b *browser, link string) page {
	t.Helper()
	p := b.get(link)
	action, vals := p.form(t, "password-reset-link")
	return b.post(action, vals)
}

func TestForgottenPassword(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		pads := withPadLog(env)
		r := env.newRP(nil)
		u := env.user("sophie", pw)
		signedIn := newBrowser(t)
		tok := signedInWithTokens(t, r, signedIn, "sophie", pw)
		env.outbox()
		mails := startSMTPWorker(t, env)

		// From the login page.
		b := newBrowser(t)
		p, _, _ := r.authorize(b)
		p = b.get(p.link(t, "/password/forgot"))
		if !p.has("password-forgot") {
			t.Fatalf("no form#password-forgot: %s", p.url)
		}
		// An unknown name and a real one: the same page, the same budget;
		// an email only for the real one.
		unknown := forgot(t, env, b, "personne")
		known := forgot(t, env, b, "Sophie")
		if unknown.status != http.StatusOK || known.status != unknown.status || known.body != unknown.body || !known.has("password-forgot-sent") {
			t.Fatalf("answers differ: %d / %d\n%s\n----\n%s", unknown.status, known.status, unknown.body, known.body)
		}
		if b := pads.all(); len(b) != 2 || b[0] != b[1] || b[0] <= 0 {
			t.Errorf("time budgets %v, want two equal ones", b)
		}
		got := mails.wait(t, 1, 10*time.Second)
		if len(got) != 1 || got[0].rcpt[0] != u.Email {
			t.Fatalf("emails: %+v", got)
		}
		subject, text := parseEmail(t, got[0].data)
		link := resetLinkRE.FindString(text)
		if link == "" || !strings.Contains(subject, "mot de passe") || !strings.Contains(text, "30 minutes") {
			t.Fatalf("reset email %q:\n%s", subject, text)
		}
		link = env.issuer + link

		// The link needs a second factor, then the new password.
		p = useLink(t, b, link)
		if !p.has("mfa") {
			t.Fatalf("no second factor after the link: %d %s", p.status, p.url)
		}
		action, vals := p.form(t, "mfa")
		vals.Set("code", env.nextCode("sophie"))
		p = b.post(action, vals)
		if !p.has("password-reset") {
			t.Fatalf("no new-password form after the factor: %d %s\n%s", p.status, p.url, p.body)
		}
		// The link works once.
		if again := useLink(t, newBrowser(t), link); again.status != http.StatusBadRequest || !strings.Contains(again.body, "déjà servi") {
			t.Errorf("link reused: %d %s", again.status, errorText(again.body))
		}
		// The reset flow enrolls nothing and issues no code.
		flowID := p.url.Query().Get("flow")
		if e := b.get(env.issuer + "/mfa/setup?flow=" + flowID); e.status != http.StatusForbidden {
			t.Errorf("enrollment from a reset flow: %d", e.status)
		}
		if c := b.get(env.issuer + "/authorize/callback?id=" + flowID); c.status < 400 || c.status >= 500 {
			t.Errorf("callback of a reset flow: %d", c.status)
		}
		action, vals = p.form(t, "password-reset")
		vals.Set("password", "123456789")
		vals.Set("password_confirm", "123456789")
		if p := b.post(action, vals); p.status != http.StatusBadRequest || !p.has("password-reset") {
			t.Fatalf("common password: %d", p.status)
		}
		vals.Set("password", newPassword)
		vals.Set("password_confirm", newPassword)
		p = b.post(action, vals)
		if p.status != http.StatusOK || !p.has("password-reset-done") {
			t.Fatalf("reset: %d %s\n%s", p.status, p.url, p.body)
		}
		if again := b.post(action, vals); again.status < 400 || again.status >= 500 {
			t.Errorf("second POST of the form: %d", again.status)
		}
		// Every session and refresh token revoked; a confirmation email.
		if !signedOut(signedIn, env) {
			t.Error("a session survived the reset")
		}
		_, err := r.refresh(tok.RefreshToken)
		assertOAuthError(t, err, "invalid_grant")
		got = mails.wait(t, 2, 10*time.Second)
		if subject, _ := parseEmail(t, got[1].data); got[1].rcpt[0] != u.Email || !strings.Contains(subject, "changé") {
			t.Errorf("confirmation %q to %v", subject, got[1].rcpt)
		}
		if auditCount(t, env, u.ID, "password.reset") != 1 || auditCount(t, env, u.ID, "password.reset_link_sent") != 1 {
			t.Error("reset not audited")
		}
		r.signIn(newBrowser(t), "sophie", newPassword)
		if n := len(mails.all()); n != 2 {
			t.Errorf("%d emails, want 2", n)
		}
	})
}

func TestForgottenPasswordByEmailAndExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		withPadLog(env)
		u := env.user("sophie", pw)
		b := newBrowser(t)
		if p := forgot(t, env, b, strings.ToUpper(u.Email)); !p.has("password-forgot-sent") {
			t.Fatalf("by email: %d", p.status)
		}
		link := resetLinkFromOutbox(t, env, u.Email)
		// 31 minutes later the link no longer works.
		env.offset.Add(int64(31 * time.Minute))
		if p := useLink(t, b, link); p.status != http.StatusBadRequest || !strings.Contains(p.body, "expiré") {
			t.Fatalf("expired link: %d %s", p.status, errorText(p.body))
		}
	})
}

func TestForgottenPasswordOnlyTheLatestLinkWorks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		withPadLog(env)
		u := env.user("sophie", pw)
		b := newBrowser(t)
		forgot(t, env, b, "sophie")
		first := resetLinkFromOutbox(t, env, u.Email)
		forgot(t, env, b, "sophie")
		second := resetLinkFromOutbox(t, env, u.Email)
		// A second request ends the first link: the page of a used or
		// expired link.
		if p := useLink(t, b, first); p.status != http.StatusBadRequest || !strings.Contains(p.body, "déjà servi") {
			t.Fatalf("the first link after a second request: %d %s", p.status, errorText(p.body))
		}
		if p := useLink(t, b, second); !p.has("mfa") {
			t.Fatalf("the latest link: %d %s", p.status, p.url)
		}
	})
}

func TestForgottenPasswordLinkUsedOnceConcurrently(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		withPadLog(env)
		u := env.user("sophie", pw)
		b := newBrowser(t)
		forgot(t, env, b, "sophie")
		link := resetLinkFromOutbox(t, env, u.Email)
		action, vals := b.get(link).form(t, "password-reset-link")
		wins := concurrently(t, b, 20, action, vals, func(p page) bool { return p.has("mfa") })
		if wins != 1 {
			t.Fatalf("%d of 20 concurrent uses of one link succeeded, want 1", wins)
		}
	})
}

func TestForgottenPasswordWithoutFactor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		withPadLog(env)
		u := env.passwordOnlyUser("lea", pw)
		b := newBrowser(t)
		forgot(t, env, b, "lea")
		link := resetLinkFromOutbox(t, env, u.Email)
		p := useLink(t, b, link)
		if !p.has("password-no-factor") || p.status != http.StatusConflict || !strings.Contains(p.body, "communiquez avec le soutien technique") {
			t.Fatalf("no factor: %d\n%s", p.status, p.body)
		}
		if p.has("password-reset") {
			t.Error("a new password offered without a factor")
		}
		r := env.newRP(nil)
		bb := newBrowser(t)
		p, _, _ = r.authorize(bb)
		if p = submitLogin(t, bb, p, "lea", pw); p.status == http.StatusUnauthorized {
			t.Error("the password changed")
		}
	})
}

func TestForgottenPasswordWithRecoveryCode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		withPadLog(env)
		r := env.newRP(nil)
		codes := enrolledWithCodes(t, env, r, "marc")
		other := newBrowser(t)
		tok := signedInWithTokens(t, r, other, "marc", pw)
		env.outbox()
		b := newBrowser(t)
		forgot(t, env, b, "marc")
		link := resetLinkFromOutbox(t, env, "marc@clinic.example")
		p := useLink(t, b, link)
		action, vals := p.form(t, "mfa")
		vals.Set("method", "recovery")
		vals.Set("code", codes[0])
		p = b.post(action, vals)
		action, vals = p.formAction(t, "/mfa/continue")
		p = b.post(action, vals)
		action, vals = p.form(t, "password-reset")
		vals.Set("password", newPassword)
		vals.Set("password_confirm", newPassword)
		if p = b.post(action, vals); !p.has("password-reset-done") {
			t.Fatalf("reset with a recovery code: %d\n%s", p.status, p.body)
		}
		if !signedOut(other, env) {
			t.Error("a session survived the reset")
		}
		_, err := r.refresh(tok.RefreshToken)
		assertOAuthError(t, err, "invalid_grant")
	})
}

// alignClock moves env's clock just past the start of an hour, so that
// the quotas' windows (15 minutes, an hour) do not end during the test.
func alignClock(env *testEnv) {
	now := env.now()
	env.offset.Add(int64(now.Truncate(time.Hour).Add(time.Hour).Sub(now) + time.Second))
}

func TestForgottenPasswordThrottled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		withPadLog(env)
		alignClock(env)
		u := env.user("sophie", pw)
		b := newBrowser(t)
		for i := range 3 {
			if p := forgot(t, env, b, "sophie"); p.status != http.StatusOK {
				t.Fatalf("request %d: %d", i+1, p.status)
			}
		}
		known := forgot(t, env, b, "sophie")
		if known.status != http.StatusTooManyRequests || known.header.Get("Retry-After") == "" {
			t.Fatalf("fourth request: %d", known.status)
		}
		// An unknown name is throttled the same way.
		for range 3 {
			forgot(t, env, b, "personne")
		}
		if p := forgot(t, env, b, "personne"); p.status != http.StatusTooManyRequests {
			t.Errorf("unknown name, fourth request: %d", p.status)
		}
		mails := 0
		for _, m := range env.outbox() {
			if m["to"] == u.Email {
				mails++
			}
		}
		if mails != 3 {
			t.Errorf("%d emails, want 3", mails)
		}
		// Per network: 20 requests an hour, whatever the names.
		for i := 8; i < 20; i++ {
			if p := forgot(t, env, b, "name"+string(rune('a'+i))); p.status != http.StatusOK {
				t.Fatalf("request %d from the network: %d", i+1, p.status)
			}
		}
		if p := forgot(t, env, b, "another"); p.status != http.StatusTooManyRequests {
			t.Errorf("21st request from the network: %d", p.status)
		}
		env.offset.Add(int64(time.Hour))
		if p := forgot(t, env, b, "sophie"); p.status != http.StatusOK {
			t.Errorf("an hour later: %d", p.status)
		}
	})
}

// BenchmarkForgotPassword measures the work of a forgotten-password
// request without its time budget: for an account that exists (a token,
// an email rendered and queued, in one transaction) and for one that does
// not (a lookup). The budget (login.DefaultResetBudget) must exceed the
// first for both answers to take the same time.
func BenchmarkForgotPassword(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			env := newTestEnv(b, be)
			env.srv.Login.Pad = func(context.Context, time.Time, time.Duration) {}
			many := regulate.Quota{Name: "bench", Limit: 1 << 30, Window: time.Hour}
			env.srv.Login.ResetPerAccount, env.srv.Login.ResetPerNetwork = many, many
			env.passwordOnlyUser("sophie", pw)
			br := newBrowser(b)
			p := br.get(env.issuer + "/password/forgot")
			action, vals := p.form(b, "password-forgot")
			for _, name := range []string{"sophie", "personne"} {
				b.Run(map[string]string{"sophie": "known", "personne": "unknown"}[name], func(b *testing.B) {
					vals.Set("username", name)
					for b.Loop() {
						if p := br.post(action, vals); p.status != http.StatusOK {
							b.Fatalf("%d", p.status)
						}
					}
				})
			}
		})
	}
}
