package idp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/faulty"
)

// faultEnv is a test environment whose server reaches its stores through
// faulty wrappers: a test takes one dependency operation down at a time.
type faultEnv struct {
	*testEnv
	st  *faulty.Store
	eph *faulty.Ephemeral
	rp  *rp
}

func newFaultEnv(t *testing.T, b backend) *faultEnv {
	fe := &faultEnv{}
	fe.testEnv = newTestEnvWith(t, b, func(s *idp.Server) {
		fe.st = faulty.NewStore(s.Store)
		fe.eph = faulty.NewEphemeral(s.Ephemeral)
		s.Store, s.Ephemeral = fe.st, fe.eph
	})
	fe.rp = fe.newRP(nil)
	return fe
}

func (fe *faultEnv) up() {
	fe.st.Up()
	fe.eph.Up()
}

// wantUnavailablePage checks a page answer is the 503 page, without the
// dependency's text.
func wantUnavailablePage(t *testing.T, p page, what string) {
	t.Helper()
	if p.status != http.StatusServiceUnavailable {
		t.Errorf("%s: %d, want 503 (a dependency failure is no verdict):\n%.600s", what, p.status, p.body)
	}
	if strings.Contains(p.body, faulty.Detail) || strings.Contains(p.body, "unavailable:") {
		t.Errorf("%s: the page shows the dependency's error", what)
	}
	if p.status == http.StatusServiceUnavailable && !strings.Contains(p.body, `class="error"`) {
		t.Errorf("%s: 503 without the error page", what)
	}
}

// wantUnavailableJSON checks an OAuth answer is 503 temporarily_unavailable
// with the generic description only.
func wantUnavailableJSON(t *testing.T, status int, body, what string) {
	t.Helper()
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	if status != http.StatusServiceUnavailable || e.Error != "temporarily_unavailable" {
		t.Errorf("%s: %d %s, want 503 temporarily_unavailable", what, status, body)
	}
	if strings.Contains(body, faulty.Detail) || strings.Contains(body, "unavailable:") {
		t.Errorf("%s: the answer carries the dependency's error: %s", what, body)
	}
}

// Each place where a failing store could be taken for a verdict answers
// 503 instead, on both backends; once the dependency is back the same
// request succeeds.
func TestDependencyErrorIsNoVerdict(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			fe := newFaultEnv(t, b)
			fe.user("nurse", "correct horse battery")
			r := fe.rp

			t.Run("authorize: client lookup", func(t *testing.T) {
				defer fe.up()
				fe.st.Down("GetClient")
				p, _, _ := r.authorize(newBrowser(t))
				wantUnavailablePage(t, p, "GET /authorize")
			})
			t.Run("authorize: auth request not stored", func(t *testing.T) {
				defer fe.up()
				fe.eph.Down("ar:")
				p, _, _ := r.authorize(newBrowser(t))
				wantUnavailablePage(t, p, "GET /authorize")
			})
			t.Run("login: flow state", func(t *testing.T) {
				defer fe.up()
				b := newBrowser(t)
				p, _, _ := r.authorize(b)
				fe.eph.Down("ar:")
				wantUnavailablePage(t, submitLogin(t, b, p, "nurse", "correct horse battery"), "POST /login")
			})
			t.Run("login: throttle counters", func(t *testing.T) {
				defer fe.up()
				b := newBrowser(t)
				p, _, _ := r.authorize(b)
				fe.eph.Down("rl:")
				wantUnavailablePage(t, submitLogin(t, b, p, "nurse", "correct horse battery"), "POST /login")
			})
			t.Run("login: user lookup", func(t *testing.T) {
				defer fe.up()
				b := newBrowser(t)
				p, _, _ := r.authorize(b)
				fe.st.Down("GetUserByUsername")
				wantUnavailablePage(t, submitLogin(t, b, p, "nurse", "correct horse battery"), "POST /login")
			})
			t.Run("login: audit event not written", func(t *testing.T) {
				defer fe.up()
				b := newBrowser(t)
				p, _, _ := r.authorize(b)
				fe.st.Down("AppendAuditEvent")
				p = submitLogin(t, b, p, "nurse", "correct horse battery")
				wantUnavailablePage(t, p, "POST /login without its audit event")
			})
			t.Run("challenge: user load", func(t *testing.T) {
				defer fe.up()
				b := newBrowser(t)
				p, _, _ := r.authorize(b)
				p = submitLogin(t, b, p, "nurse", "correct horse battery")
				if !p.has("mfa") {
					t.Fatalf("no challenge: %d %s", p.status, p.url)
				}
				fe.st.Down("GetUser")
				wantUnavailablePage(t, b.get(p.url.String()), "GET /mfa/challenge")
			})
			t.Run("challenge: flow state", func(t *testing.T) {
				defer fe.up()
				b := newBrowser(t)
				p, _, _ := r.authorize(b)
				p = submitLogin(t, b, p, "nurse", "correct horse battery")
				action, vals := p.form(t, "mfa")
				vals.Set("code", fe.nextCode("nurse"))
				fe.eph.Down("ar:")
				wantUnavailablePage(t, b.get(p.url.String()), "GET /mfa/challenge")
				wantUnavailablePage(t, b.post(action, vals), "POST the TOTP code")
			})
			t.Run("challenge: totp step", func(t *testing.T) {
				defer fe.up()
				b := newBrowser(t)
				p, _, _ := r.authorize(b)
				p = submitLogin(t, b, p, "nurse", "correct horse battery")
				action, vals := p.form(t, "mfa")
				vals.Set("code", fe.nextCode("nurse"))
				fe.st.Down("AdvanceTOTPStep")
				wantUnavailablePage(t, b.post(action, vals), "POST the TOTP code")
			})
			t.Run("authorize: signed-in session", func(t *testing.T) {
				defer fe.up()
				b := newBrowser(t)
				r.signIn(b, "nurse", "correct horse battery")
				fe.eph.Down("sess:")
				p, _, _ := r.authorize(b)
				wantUnavailablePage(t, p, "GET /authorize with a session")
			})

			t.Run("end_session: client lookup", func(t *testing.T) {
				defer fe.up()
				b := newBrowser(t)
				r.signIn(b, "nurse", "correct horse battery")
				fe.st.Down("GetClient")
				p := b.get(fe.issuer + "/end_session?" + url.Values{"client_id": {r.client.ID},
					"post_logout_redirect_uri": {"http://localhost:9999/bye"}}.Encode())
				wantUnavailablePage(t, p, "GET /end_session")
			})

			// Token endpoints.
			b := newBrowser(t)
			code, verifier := r.signIn(b, "nurse", "correct horse battery")
			t.Run("token: code", func(t *testing.T) {
				defer fe.up()
				fe.eph.Down("code:")
				status, body := r.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"},
					"code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {verifier}})
				wantUnavailableJSON(t, status, body, "code exchange")
			})
			t.Run("token: client", func(t *testing.T) {
				defer fe.up()
				fe.st.Down("GetClient")
				status, body := r.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}})
				wantUnavailableJSON(t, status, body, "client credentials")
			})
			for _, down := range []string{"GetClient", "CreateRefreshToken"} {
				t.Run("token: code kept through a failed exchange ("+down+")", func(t *testing.T) {
					defer fe.up()
					code, verifier := r.signIn(newBrowser(t), "nurse", "correct horse battery")
					fe.st.Down(down)
					status, body := r.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"},
						"code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {verifier}})
					wantUnavailableJSON(t, status, body, "code exchange")
					fe.up()
					if _, _, err := r.exchange(code, verifier); err != nil {
						t.Fatalf("the code after the outage: %v", err)
					}
					if _, _, err := r.exchange(code, verifier); err == nil {
						t.Fatal("the code was accepted twice")
					}
				})
			}
			t.Run("refresh: token kept through a failed rotation", func(t *testing.T) {
				defer fe.up()
				code, verifier := r.signIn(newBrowser(t), "nurse", "correct horse battery")
				tok, _, err := r.exchange(code, verifier)
				if err != nil {
					t.Fatal(err)
				}
				fe.eph.Down("at:")
				status, body := r.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
				wantUnavailableJSON(t, status, body, "refresh")
				fe.up()
				status, body = r.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
				if status != http.StatusOK {
					t.Fatalf("the refresh token after the outage: %d %s (taken for a reuse?)", status, body)
				}
			})

			t.Run("token: a bug is a 500 without its text", func(t *testing.T) {
				defer fe.up()
				code, verifier := r.signIn(newBrowser(t), "nurse", "correct horse battery")
				fe.st.Break("CreateRefreshToken")
				status, body := r.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"},
					"code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {verifier}})
				if status != http.StatusInternalServerError || strings.Contains(body, faulty.Detail) || strings.Contains(body, "bug") {
					t.Errorf("code exchange on a broken store: %d %s, want 500 without the error's text", status, body)
				}
			})

			// A fresh code (the one above may have been taken).
			code, verifier = r.signIn(newBrowser(t), "nurse", "correct horse battery")
			tok, _, err := r.exchange(code, verifier)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("userinfo: access token", func(t *testing.T) {
				defer fe.up()
				fe.eph.Down("at:")
				status, body := r.userinfo(tok.AccessToken, http.MethodGet)
				wantUnavailableJSON(t, status, body, "userinfo")
			})
			t.Run("userinfo: user", func(t *testing.T) {
				defer fe.up()
				fe.st.Down("GetUser")
				status, body := r.userinfo(tok.AccessToken, http.MethodGet)
				wantUnavailableJSON(t, status, body, "userinfo")
			})
			t.Run("introspection", func(t *testing.T) {
				defer fe.up()
				fe.eph.Down("at:")
				status, body := r.postForm("/oauth/introspect", url.Values{"token": {tok.AccessToken}})
				wantUnavailableJSON(t, status, body, "introspection")
			})
			// A refresh that asks for no scope claims its token in one
			// statement; one that asks for a scope reads it, then rotates it.
			t.Run("refresh: claim", func(t *testing.T) {
				defer fe.up()
				fe.st.Down("ClaimRefreshToken")
				status, body := r.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
				wantUnavailableJSON(t, status, body, "refresh")
			})
			t.Run("refresh: lookup", func(t *testing.T) {
				defer fe.up()
				fe.st.Down("GetRefreshTokenByHash")
				status, body := r.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"openid"}})
				wantUnavailableJSON(t, status, body, "refresh")
			})
			t.Run("refresh: user", func(t *testing.T) {
				defer fe.up()
				fe.st.Down("GetUser")
				status, body := r.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
				wantUnavailableJSON(t, status, body, "refresh")
			})
			t.Run("refresh: rotation", func(t *testing.T) {
				defer fe.up()
				fe.st.Down("RotateRefreshToken")
				status, body := r.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"openid"}})
				wantUnavailableJSON(t, status, body, "refresh")
			})
			t.Run("revoke: access token", func(t *testing.T) {
				defer fe.up()
				fe.eph.Down("at:")
				status, body := r.postForm("/revoke", url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}})
				wantUnavailableJSON(t, status, body, "revoke")
			})
			t.Run("revoke: refresh token", func(t *testing.T) {
				defer fe.up()
				fe.st.Down("GetRefreshToken", "GetRefreshTokenByHash")
				status, body := r.postForm("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}})
				wantUnavailableJSON(t, status, body, "revoke")
			})

			// Back up: the same token works, nothing was refused for good.
			if status, body := r.userinfo(tok.AccessToken, http.MethodGet); status != http.StatusOK {
				t.Errorf("userinfo after the faults: %d %s", status, body)
			}
			status, body := r.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
			if status != http.StatusOK {
				t.Errorf("refresh after the faults: %d %s", status, body)
			}
			ev, err := fe.store.ListAuditEvents(context.Background(), store.AuditFilter{Type: "token.refresh_reused"})
			if err != nil || len(ev) != 0 {
				t.Errorf("a failed refresh was taken for a reuse: %v %v", ev, err)
			}
		})
	}
}

// When the sessions cannot be ended after a disable, the answer is a 503
// that says the change is saved (the account is disabled), with the
// request id, never the dependency's text; enabling the account first
// ends what the disable could not, or refuses (still disabled); once the
// session store is back, enable succeeds and the old browser signs in
// again.
func TestDisableWhenSessionsCannotEnd(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			fe := newFaultEnv(t, b)
			u := fe.user("nurse", pw)
			admin := fe.apiClientFor(oidcstore.ScopeAdmin)
			base := "/users/" + u.ID
			br := newBrowser(t)
			fe.rp.signIn(br, "nurse", pw)
			status := func() store.UserStatus {
				t.Helper()
				got, err := fe.store.GetUser(context.Background(), u.ID)
				if err != nil {
					t.Fatal(err)
				}
				return got.Status
			}

			fe.eph.Down("usess:")
			res := admin.do("POST", base+"/disable", nil).want(t, http.StatusServiceUnavailable)
			if d := res.str("detail"); !strings.Contains(d, "enregistré") || res.str("request_id") == "" ||
				strings.Contains(string(res.raw), faulty.Detail) || res.header.Get("Retry-After") == "" {
				t.Errorf("disable with the session store down: %s (Retry-After %q)", res.raw, res.header.Get("Retry-After"))
			}
			if s := status(); s != store.StatusDisabled {
				t.Fatalf("after the 503: %s, want disabled", s)
			}
			admin.do("POST", base+"/enable", nil).want(t, http.StatusServiceUnavailable)
			if s := status(); s != store.StatusDisabled {
				t.Fatalf("enable with the session store down: %s, want still disabled", s)
			}

			fe.up()
			admin.do("POST", base+"/enable", nil).want(t, http.StatusOK)
			p, _, _ := fe.rp.authorize(br, oauth2.SetAuthURLParam("prompt", "none"))
			if q := p.redirectParams(t); q.Get("error") != "login_required" {
				t.Errorf("prompt=none in the old browser after enable: %v, want login_required", q)
			}
		})
	}
}
