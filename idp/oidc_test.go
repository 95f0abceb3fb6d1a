package idp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

const pw = "correct horse battery staple"

func TestCodeFlowWithPKCE(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.user("sophie", pw)
		b := newBrowser(t)
		code, verifier := r.signIn(b, "sophie", pw)
		tok, idt, err := r.exchange(code, verifier)
		if err != nil {
			t.Fatal(err)
		}
		if idt.Subject != u.ID {
			t.Errorf("sub %q, want the user's id %q", idt.Subject, u.ID)
		}
		var claims struct {
			AuthTime int64    `json:"auth_time"`
			AMR      []string `json:"amr"`
			ACR      string   `json:"acr"`
			AZP      string   `json:"azp"`
			AtHash   string   `json:"at_hash"`
			SID      string   `json:"sid"`
			Nonce    string   `json:"nonce"`
			Email    string   `json:"email"`
			Username string   `json:"preferred_username"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if claims.AuthTime == 0 || claims.AZP != r.client.ID || claims.AtHash == "" || claims.SID == "" || len(claims.AMR) == 0 {
			t.Errorf("missing claims: %+v", claims)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}
		// Beside an access token, the profile and email claims are given at
		// userinfo (OIDC Core §5.4; TestIDTokenClaims).
		if claims.Email != "" || claims.Username != "" {
			t.Errorf("profile/email claims in the ID token: %+v", claims)
		}
		if tok.RefreshToken == "" {
			t.Error("no refresh token for offline_access")
		}
	})
}

func TestWrongPKCEVerifier(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		code, _ := r.signIn(newBrowser(t), "sophie", pw)
		_, _, err := r.exchange(code, oauth2.GenerateVerifier())
		assertOAuthError(t, err, "invalid_grant")
	})
}

func TestPlainPKCERefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(func(c *store.Client) { c.Public = true; c.AuthMethod = "none" })
		b := newBrowser(t)
		p := b.get(r.conf.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain")))
		if q := p.redirectParams(t); q.Get("error") != "invalid_request" {
			t.Errorf("plain PKCE: %v", q)
		}
		// A public client without PKCE at all.
		p = b.get(r.conf.AuthCodeURL("st"))
		if q := p.redirectParams(t); q.Get("error") != "invalid_request" {
			t.Errorf("public client without PKCE: %v", q)
		}
	})
}

func TestCodeReuseRevokesFirstTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		code, verifier := r.signIn(newBrowser(t), "sophie", pw)
		tok, _, err := r.exchange(code, verifier)
		if err != nil {
			t.Fatal(err)
		}
		if status, _ := r.userinfo(tok.AccessToken, http.MethodGet); status != http.StatusOK {
			t.Fatalf("userinfo before reuse: %d", status)
		}
		_, _, err = r.exchange(code, verifier)
		assertOAuthError(t, err, "invalid_grant")
		if status, _ := r.userinfo(tok.AccessToken, http.MethodGet); status == http.StatusOK {
			t.Error("access token of a reused code still works")
		}
		_, err = r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		assertOAuthError(t, err, "invalid_grant")
	})
}

func TestUnregisteredRedirectURIShowsErrorPage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		for _, lang := range []string{"fr", "en"} {
			b := newBrowser(t)
			b.lang = lang
			conf := *r.conf
			conf.RedirectURL = "https://evil.example/steal"
			p := b.get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
				t.Fatalf("%s: status %d, Location %q", lang, p.status, p.header.Get("Location"))
			}
			if !strings.Contains(p.body, `class="error`) || !strings.Contains(p.body, `lang="`+lang+`"`) {
				t.Errorf("%s: not our error page:\n%s", lang, p.body)
			}
		}
		// Unknown client too.
		p := newBrowser(t).get(env.issuer + "/authorize?client_id=nope&redirect_uri=https://evil.example/&response_type=code&scope=openid")
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, `class="error`) {
			t.Errorf("unknown client: %d\n%s", p.status, p.body)
		}
	})
}

func TestPromptNone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		b := newBrowser(t)
		p, state, _ := r.authorize(b, oauth2.SetAuthURLParam("prompt", "none"))
		q := p.redirectParams(t)
		if q.Get("error") != "login_required" || q.Get("state") != state {
			t.Fatalf("prompt=none without session: %v", q)
		}
		r.signIn(b, "sophie", pw)
		p, _, verifier := r.authorize(b, oauth2.SetAuthURLParam("prompt", "none"))
		q = p.redirectParams(t)
		if q.Get("code") == "" {
			t.Fatalf("prompt=none with a session: %v", q)
		}
		if _, _, err := r.exchange(q.Get("code"), verifier); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPromptLoginAndMaxAgeAskAgain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		b := newBrowser(t)
		code, v := r.signIn(b, "sophie", pw)
		_, first, err := r.exchange(code, v)
		if err != nil {
			t.Fatal(err)
		}
		// Without prompt, the session answers: no password page.
		p, _, _ := r.authorize(b)
		if q := p.redirectParams(t); q.Get("code") == "" {
			t.Fatalf("session not reused: %v", q)
		}
		time.Sleep(1100 * time.Millisecond) // auth_time has a one-second resolution
		for _, opt := range []oauth2.AuthCodeOption{
			oauth2.SetAuthURLParam("prompt", "login"),
			oauth2.SetAuthURLParam("max_age", "0"),
		} {
			p, _, _ := r.authorize(b, opt)
			if !p.has("login") {
				t.Fatalf("password not asked again:\n%d %s", p.status, p.body)
			}
		}
		code, v = r.signIn(b, "sophie", pw, oauth2.SetAuthURLParam("prompt", "login"))
		_, second, err := r.exchange(code, v)
		if err != nil {
			t.Fatal(err)
		}
		if !authTime(t, second).After(authTime(t, first)) {
			t.Errorf("auth_time did not advance: %v then %v", authTime(t, first), authTime(t, second))
		}
	})
}

func authTime(t *testing.T, idt *gooidc.IDToken) time.Time {
	var c struct {
		AuthTime int64 `json:"auth_time"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return time.Unix(c.AuthTime, 0)
}

func TestRefreshRotationAndReuse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		code, v := r.signIn(newBrowser(t), "sophie", pw)
		tok, _, err := r.exchange(code, v)
		if err != nil {
			t.Fatal(err)
		}
		refresh := func(rt string) (*oauth2.Token, error) {
			return r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
		}
		t2, err := refresh(tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if t2.RefreshToken == "" || t2.RefreshToken == tok.RefreshToken {
			t.Fatal("refresh token not rotated")
		}
		t3, err := refresh(t2.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		// Reusing a rotated token revokes the whole family, the newest too.
		_, err = refresh(tok.RefreshToken)
		assertOAuthError(t, err, "invalid_grant")
		_, err = refresh(t3.RefreshToken)
		assertOAuthError(t, err, "invalid_grant")
		if status, _ := r.userinfo(t3.AccessToken, http.MethodGet); status == http.StatusOK {
			t.Error("access token of a revoked family still works")
		}
		events, err := env.store.ListAuditEvents(context.Background(), store.AuditFilter{Type: "token.refresh_reused"})
		if err != nil || len(events) == 0 {
			t.Errorf("reuse not audited: %v %v", events, err)
		}
	})
}

func TestClientCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		for _, format := range []string{"opaque", "jwt"} {
			r := env.newRP(func(c *store.Client) { c.TokenFormat = format; c.Scopes = append(c.Scopes, "sesame:admin") })
			cc := clientcredentials.Config{ClientID: r.client.ID, ClientSecret: r.secret, TokenURL: r.provider.Endpoint().TokenURL, Scopes: []string{"sesame:admin"}}
			tok, err := cc.Token(context.Background())
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if format == "jwt" && strings.Count(tok.AccessToken, ".") != 2 {
				t.Errorf("jwt format: %q", tok.AccessToken)
			}
			active := r.introspect(tok.AccessToken)
			if active["active"] != true || active["client_id"] != r.client.ID {
				t.Errorf("%s introspection: %v", format, active)
			}
			// A scope the client may not have.
			cc.Scopes = []string{"sesame:root"}
			_, err = cc.Token(context.Background())
			assertOAuthError(t, err, "invalid_scope")
		}
		// A client without the grant.
		r := env.newRP(func(c *store.Client) { c.GrantTypes = []string{"authorization_code"} })
		cc := clientcredentials.Config{ClientID: r.client.ID, ClientSecret: r.secret, TokenURL: r.provider.Endpoint().TokenURL}
		_, err := cc.Token(context.Background())
		assertOAuthError(t, err, "unauthorized_client")
	})
}

func TestIntrospectionAndRevocation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.user("sophie", pw)
		code, v := r.signIn(newBrowser(t), "sophie", pw)
		tok, _, err := r.exchange(code, v)
		if err != nil {
			t.Fatal(err)
		}
		got := r.introspect(tok.AccessToken)
		if got["active"] != true || got["sub"] != u.ID {
			t.Fatalf("before revocation: %v", got)
		}
		if status, body := r.postForm("/revoke", url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}); status != http.StatusOK {
			t.Fatalf("revoke: %d %s", status, body)
		}
		if got := r.introspect(tok.AccessToken); got["active"] != false {
			t.Errorf("after revocation: %v", got)
		}
		// Revoking the refresh token ends the family.
		if status, body := r.postForm("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}); status != http.StatusOK {
			t.Fatalf("revoke refresh: %d %s", status, body)
		}
		_, err = r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		assertOAuthError(t, err, "invalid_grant")
		// Garbage is simply inactive.
		if got := r.introspect("not-a-token"); got["active"] != false {
			t.Errorf("garbage: %v", got)
		}
	})
}

func TestLogout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		b := newBrowser(t)
		code, v := r.signIn(b, "sophie", pw)
		tok, _, err := r.exchange(code, v)
		if err != nil {
			t.Fatal(err)
		}
		idToken, _ := tok.Extra("id_token").(string)

		// Unregistered post-logout URI: an error page, no redirect.
		p := b.get(env.issuer + "/end_session?" + url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
		if p.status != http.StatusBadRequest || p.header.Get("Location") != "" || !strings.Contains(p.body, `class="error`) {
			t.Fatalf("unregistered post-logout URI: %d %q", p.status, p.header.Get("Location"))
		}
		// Registered: redirect with state, and the session is over.
		p = b.get(env.issuer + "/end_session?" + url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"http://localhost:9999/bye"}, "state": {"s1"}}.Encode())
		loc := p.header.Get("Location")
		if p.status != http.StatusFound || !strings.HasPrefix(loc, "http://localhost:9999/bye") || !strings.Contains(loc, "state=s1") {
			t.Fatalf("registered post-logout URI: %d %q", p.status, loc)
		}
		p, _, _ = r.authorize(b, oauth2.SetAuthURLParam("prompt", "none"))
		if q := p.redirectParams(t); q.Get("error") != "login_required" {
			t.Errorf("session survived logout: %v", q)
		}
		// Without a post-logout URI: our signed-out page.
		p = b.get(env.issuer + "/end_session")
		if p.status != http.StatusOK || !strings.HasSuffix(p.url.Path, "/signed-out") {
			t.Errorf("plain logout: %d %s", p.status, p.url)
		}
	})
}

func TestUserinfoGetAndPost(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.user("sophie", pw)
		code, v := r.signIn(newBrowser(t), "sophie", pw)
		tok, _, err := r.exchange(code, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, method := range []string{http.MethodGet, http.MethodPost, "POST-body"} {
			status, body := r.userinfo(tok.AccessToken, method)
			if status != http.StatusOK || !strings.Contains(body, u.ID) || !strings.Contains(body, u.Email) {
				t.Errorf("%s: %d %s", method, status, body)
			}
		}
		if status, _ := r.userinfo("bogus", http.MethodGet); status < 400 || status >= 500 {
			t.Errorf("bogus token: %d", status)
		}
		// go-oidc's own client works too.
		if _, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err != nil {
			t.Error(err)
		}
	})
}

func TestBadClientSecret(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		code, v := r.signIn(newBrowser(t), "sophie", pw)
		bad := *r.conf
		bad.ClientSecret = "wrong"
		_, err := bad.Exchange(context.Background(), code, oauth2.VerifierOption(v))
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != "invalid_client" {
			t.Fatalf("bad secret: %v", err)
		}
		cc := clientcredentials.Config{ClientID: r.client.ID, ClientSecret: "wrong", TokenURL: r.provider.Endpoint().TokenURL}
		_, err = cc.Token(context.Background())
		if !errors.As(err, &re) || re.Response.StatusCode != http.StatusUnauthorized {
			t.Fatalf("client credentials with a bad secret: %v", err)
		}
		// Introspection: an OAuth JSON error, not the library's text.
		r.secret = "wrong"
		status, body := r.postForm("/oauth/introspect", url.Values{"token": {"x"}})
		if status != http.StatusUnauthorized || strings.TrimSpace(body) != `{"error":"invalid_client"}` {
			t.Fatalf("introspect with a bad secret: %d %s", status, body)
		}
	})
}

func TestWrongPasswordSameAnswerAsUnknownUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		var bodies []string
		for _, user := range []string{"sophie", "nobody"} {
			b := newBrowser(t)
			p, _, _ := r.authorize(b)
			p = submitLogin(t, b, p, user, "wrong password!")
			if p.status != http.StatusUnauthorized || !p.has("login") {
				t.Fatalf("%s: %d", user, p.status)
			}
			bodies = append(bodies, errorText(p.body))
		}
		if bodies[0] != bodies[1] || bodies[0] == "" {
			t.Errorf("messages differ: %q vs %q", bodies[0], bodies[1])
		}
	})
}

func TestLoginHintAndLanguage(t *testing.T) {
	env := newTestEnv(t, backends[0])
	r := env.newRP(nil)
	b := newBrowser(t)
	p, _, _ := r.authorize(b, oauth2.SetAuthURLParam("login_hint", "sophie"), oauth2.SetAuthURLParam("ui_locales", "en-CA"))
	_, vals := p.form(t, "login")
	if vals.Get("username") != "sophie" {
		t.Errorf("login_hint not prefilled: %q", vals.Get("username"))
	}
	if !strings.Contains(p.body, `lang="en"`) {
		t.Error("ui_locales=en-CA did not give English")
	}
	p, _, _ = r.authorize(newBrowser(t))
	if !strings.Contains(p.body, `lang="fr"`) {
		t.Error("French is not the default")
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP: %q", csp)
	}
}

func TestLoginCSRFRequired(t *testing.T) {
	env := newTestEnv(t, backends[0])
	r := env.newRP(nil)
	env.user("sophie", pw)
	b := newBrowser(t)
	p, _, _ := r.authorize(b)
	action, vals := p.form(t, "login")
	vals.Set("username", "sophie")
	vals.Set("password", pw)
	vals.Set("csrf_token", "forged")
	if p := b.post(action, vals); p.status != http.StatusForbidden {
		t.Fatalf("forged CSRF token: %d", p.status)
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	env := newTestEnv(t, backends[0])
	p := newBrowser(t).get(env.issuer + "/.well-known/openid-configuration")
	var d map[string]any
	if err := json.Unmarshal([]byte(p.body), &d); err != nil {
		t.Fatal(err)
	}
	if d["issuer"] != env.issuer || d["end_session_endpoint"] == nil || d["introspection_endpoint"] == nil || d["revocation_endpoint"] == nil {
		t.Errorf("discovery: %v", d)
	}
	methods, _ := d["code_challenge_methods_supported"].([]any)
	if len(methods) != 1 || methods[0] != "S256" {
		t.Errorf("code_challenge_methods_supported: %v", methods)
	}
	p = newBrowser(t).get(env.issuer + "/keys")
	if !strings.Contains(p.body, `"RS256"`) {
		t.Errorf("jwks: %s", p.body)
	}
}

func (r *rp) userinfo(token, method string) (int, string) {
	var req *http.Request
	switch method {
	case http.MethodGet:
		req, _ = http.NewRequest(http.MethodGet, r.env.issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+token)
	case http.MethodPost:
		req, _ = http.NewRequest(http.MethodPost, r.env.issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+token)
	default: // token in the body
		req, _ = http.NewRequest(http.MethodPost, r.env.issuer+"/userinfo", strings.NewReader(url.Values{"access_token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.env.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}

func (r *rp) introspect(token string) map[string]any {
	status, body := r.postForm("/oauth/introspect", url.Values{"token": {token}})
	if status != http.StatusOK {
		r.env.t.Fatalf("introspect: %d %s", status, body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		r.env.t.Fatal(err)
	}
	return out
}

func assertOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want OAuth error %s, got %v", code, err)
	}
	if re.ErrorCode != code {
		t.Fatalf("want OAuth error %s, got %s (%s)", code, re.ErrorCode, re.ErrorDescription)
	}
	if re.Response.StatusCode >= 500 {
		t.Fatalf("OAuth error %s with status %d", code, re.Response.StatusCode)
	}
}

var errorRE = strings.NewReplacer("\n", " ")

func errorText(body string) string {
	i := strings.Index(body, `class="error`)
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], "</")
	if j < 0 {
		return ""
	}
	return errorRE.Replace(body[i : i+j])
}

// finishMFA completes the second-factor pages (challenge, or a first
// enrollment of an authenticator app) up to the redirect to the relying
// party.
func finishMFA(t testing.TB, env *testEnv, b *browser, p page, username string) page {
	t.Helper()
	for range 6 {
		switch {
		case p.status == http.StatusFound || p.status == http.StatusSeeOther:
			return p
		case p.has("mfa"):
			action, vals := p.form(t, "mfa")
			vals.Set("code", env.nextCode(username))
			p = b.post(action, vals)
		case strings.Contains(p.url.Path, "/mfa/setup"):
			p = b.get(p.link(t, "/mfa/totp?"))
		case p.has("totp-secret"):
			p = enrollTOTP(t, env, b, p, username, "Test phone")
		case strings.Contains(p.body, "recovery-code"):
			action, vals := p.formAction(t, "/mfa/continue")
			p = b.post(action, vals)
		default:
			t.Fatalf("unexpected page %s (%d):\n%s", p.url, p.status, p.body)
		}
	}
	t.Fatalf("sign-in did not finish: %s", p.url)
	return p
}

var dataSecretRE = regexp.MustCompile(`data-secret="([A-Z2-7]+)"`)

// enrollTOTP reads the key from the setup page, confirms it with a code and
// a device name, and returns the recovery-codes page.
func enrollTOTP(t testing.TB, env *testEnv, b *browser, p page, username, device string) page {
	t.Helper()
	m := dataSecretRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no key on %s", p.url)
	}
	secret, err := users.ParseSecret(m[1])
	if err != nil {
		t.Fatal(err)
	}
	env.mu.Lock()
	env.secrets[username] = secret
	env.mu.Unlock()
	// The page's Confirm button: a GET form carrying the flow.
	next, q := p.formAction(t, "/mfa/totp/confirm")
	confirm := b.get(strings.SplitN(next, "?", 2)[0] + "?" + q.Encode())
	action, vals := confirm.form(t, "totp-enroll")
	vals.Set("code", env.nextCode(username))
	vals.Set("device_name", device)
	return b.post(action, vals)
}

func TestES256Client(t *testing.T) {
	env := newTestEnv(t, backends[0])
	r := env.newRP(func(c *store.Client) { c.IDTokenAlg = "ES256"; c.TokenFormat = "jwt" })
	r.verifier = r.provider.Verifier(&gooidc.Config{ClientID: r.client.ID, SupportedSigningAlgs: []string{"ES256"}})
	env.user("sophie", pw)
	code, v := r.signIn(newBrowser(t), "sophie", pw)
	tok, _, err := r.exchange(code, v)
	if err != nil {
		t.Fatalf("ES256 ID token: %v", err)
	}
	if status, _ := r.userinfo(tok.AccessToken, http.MethodGet); status != http.StatusOK {
		t.Errorf("userinfo with an ES256 JWT access token: %d", status)
	}
	// RS256 clients are unaffected.
	r2 := env.newRP(nil)
	code, v = r2.signIn(newBrowser(t), "sophie", pw)
	if _, _, err := r2.exchange(code, v); err != nil {
		t.Fatalf("RS256 next to ES256: %v", err)
	}
}
