package idp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Each test here cites the rule it holds the provider to (issue 9,
// "Conformance").

// answer is a raw HTTP response.
type answer struct {
	status int
	header http.Header
	body   string
}

// oauthError is the error code of an RFC 6749 §5.2 error body, or "".
func (a answer) oauthError() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal([]byte(a.body), &e)
	return e.Error
}

func send(t testing.TB, req *http.Request) answer {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// tokenRequest posts a form to the token endpoint with the client's HTTP
// Basic credentials; mod may change the request before it is sent.
func (r *rp) tokenRequest(form url.Values, mod func(req *http.Request)) answer {
	t := r.env.t
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.env.issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(r.client.ID), url.QueryEscape(r.secret))
	if mod != nil {
		mod(req)
	}
	return send(t, req)
}

func (r *rp) codeForm(code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {verifier}}
}

func assertNoStore(t *testing.T, what string, h http.Header) {
	t.Helper()
	if h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" {
		t.Errorf("%s: Cache-Control %q, Pragma %q; want no-store and no-cache (RFC 6749 §5.1)", what, h.Get("Cache-Control"), h.Get("Pragma"))
	}
}

// RFC 6749 §5.1: token responses are not stored; nor is any response that
// carries a token or a code.
func TestNoStoreOnTokensAndCodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		b := newBrowser(t)
		p, _, verifier := r.authorize(b)
		p = finishMFA(t, env, b, submitLogin(t, b, p, "sophie", pw), "sophie")
		code := p.redirectParams(t).Get("code")
		tok := r.tokenRequest(r.codeForm(code, verifier), nil)
		var tokens struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.Unmarshal([]byte(tok.body), &tokens); err != nil || tok.status != http.StatusOK {
			t.Fatalf("code exchange: %d %s", tok.status, tok.body)
		}
		refresh := r.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken}}, nil)
		if refresh.status != http.StatusOK {
			t.Fatalf("refresh: %d %s", refresh.status, refresh.body)
		}
		bearer := func(method, path string, body url.Values) answer {
			req, _ := http.NewRequest(method, env.issuer+path, strings.NewReader(body.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if path == "/userinfo" {
				req.Header.Set("Authorization", "Bearer "+tokens.AccessToken)
			} else {
				req.SetBasicAuth(url.QueryEscape(r.client.ID), url.QueryEscape(r.secret))
			}
			return send(t, req)
		}
		for _, c := range []struct {
			what string
			a    answer
		}{
			{"authorization callback (a code in Location)", answer{status: p.status, header: p.header}},
			{"code exchange", tok},
			{"refresh", refresh},
			{"client credentials", r.tokenRequest(url.Values{"grant_type": {"client_credentials"}}, nil)},
			{"token error", r.tokenRequest(r.codeForm(code, verifier), nil)}, // the code is used
			{"introspection", bearer(http.MethodPost, "/oauth/introspect", url.Values{"token": {tokens.AccessToken}})},
			{"userinfo", bearer(http.MethodGet, "/userinfo", nil)},
		} {
			if c.a.status >= 500 {
				t.Errorf("%s: %d", c.what, c.a.status)
			}
			assertNoStore(t, c.what, c.a.header)
		}
	})
}

// RFC 6749 §5.1 for the demo relying party: its callback page shows the ID
// token's claims and a logout link carrying the ID token.
func TestNoStoreOnDemoCallback(t *testing.T) {
	env := newTestEnv(t, backends[0])
	registerDemoClient(t, env)
	env.user("sophie", pw)
	b := newBrowser(t)
	p := submitLogin(t, b, b.get(env.issuer+"/demo/login"), "sophie", pw)
	action, vals := p.form(t, "mfa")
	vals.Set("code", env.nextCode("sophie"))
	p = b.post(action, vals)
	if p.status != http.StatusOK || p.url.Path != "/demo/callback" || !p.has("demo-signed-in") {
		t.Fatalf("demo sign-in: %d %s\n%s", p.status, p.url, p.body)
	}
	assertNoStore(t, "demo callback", p.header)
}

// RFC 6749 §5.2: a client that authenticated with HTTP Basic and failed
// gets 401 with WWW-Authenticate.
func TestTokenEndpointBasicChallenge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		r.secret = "wrong"
		a := r.tokenRequest(url.Values{"grant_type": {"client_credentials"}}, nil)
		if a.status != http.StatusUnauthorized || a.oauthError() != "invalid_client" || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic ") {
			t.Fatalf("bad Basic secret: %d %q %s", a.status, a.header.Get("WWW-Authenticate"), a.body)
		}
	})
}

// RFC 6749 §3.2 (POST, form body, no parameter twice) and §2.3 (one client
// authentication method) at the token endpoint.
func TestTokenEndpointRequestRules(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}
		if a := r.tokenRequest(form, nil); a.status != http.StatusOK {
			t.Fatalf("the well-formed request fails: %d %s", a.status, a.body)
		}
		with := func(name string, values ...string) url.Values {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f[name] = values
			return f
		}
		var multipartBody bytes.Buffer
		mw := multipart.NewWriter(&multipartBody)
		_ = mw.WriteField("grant_type", "client_credentials")
		_ = mw.Close()
		for _, c := range []struct {
			rule   string
			form   url.Values
			mod    func(req *http.Request)
			status int
			code   string
		}{
			{"§3.2 GET", form, func(req *http.Request) {
				req.Method = http.MethodGet
				req.URL.RawQuery = form.Encode()
				req.Body, req.ContentLength = http.NoBody, 0
			}, http.StatusMethodNotAllowed, "invalid_request"},
			{"§3.2 multipart body", nil, func(req *http.Request) {
				req.Header.Set("Content-Type", mw.FormDataContentType())
				req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(multipartBody.Bytes())), int64(multipartBody.Len())
			}, http.StatusBadRequest, "invalid_request"},
			{"§3.2 JSON body", nil, func(req *http.Request) {
				req.Header.Set("Content-Type", "application/json")
				req.Body, req.ContentLength = io.NopCloser(strings.NewReader(`{"grant_type":"client_credentials"}`)), 35
			}, http.StatusBadRequest, "invalid_request"},
			{"§3.2 grant_type twice", with("grant_type", "client_credentials", "client_credentials"), nil, http.StatusBadRequest, "invalid_request"},
			{"§3.2 scope twice", with("scope", "openid", "openid"), nil, http.StatusBadRequest, "invalid_request"},
			{"§3.2 scope in the query and the body", form, func(req *http.Request) { req.URL.RawQuery = "scope=openid" }, http.StatusBadRequest, "invalid_request"},
			{"§2.3 Basic and client_secret in the body", with("client_secret", r.secret), nil, http.StatusBadRequest, "invalid_request"},
			{"§2.3 Basic and client_id+client_secret in the body", func() url.Values {
				f := with("client_secret", r.secret)
				f.Set("client_id", r.client.ID)
				return f
			}(), nil, http.StatusBadRequest, "invalid_request"},
			{"§2.3 Basic client_id differs from the body's", with("client_id", "someone-else"), nil, http.StatusUnauthorized, "invalid_client"},
		} {
			a := r.tokenRequest(c.form, c.mod)
			if a.status != c.status || a.oauthError() != c.code {
				t.Errorf("RFC 6749 %s: %d %s, want %d %s", c.rule, a.status, a.body, c.status, c.code)
			}
			if c.status == http.StatusMethodNotAllowed && a.header.Get("Allow") != http.MethodPost {
				t.Errorf("RFC 6749 %s: Allow %q", c.rule, a.header.Get("Allow"))
			}
		}
		// The body's client_id alone, equal to Basic's, is allowed.
		if a := r.tokenRequest(with("client_id", r.client.ID), nil); a.status != http.StatusOK {
			t.Errorf("Basic with the same client_id in the body: %d %s", a.status, a.body)
		}
	})
}

// idClaims decodes an ID token's payload (its signature is checked by
// rp.exchange).
func idClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// OIDC Core §5.4: beside an access token, the profile and email claims go
// to userinfo, not the ID token; §5.5: the claims parameter asks for them
// in the ID token; §2: azp names the client (no client_id claim).
func TestIDTokenClaims(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.user("sophie", pw)
		profile := []string{"name", "given_name", "family_name", "preferred_username", "locale", "updated_at", "email", "email_verified"}
		for _, c := range []struct {
			name   string
			claims string // the claims parameter
			want   []string
		}{
			{"scopes only (§5.4)", "", nil},
			{"claims parameter (§5.5)", `{"id_token":{"email":null,"name":{"essential":true}},"userinfo":{"locale":null}}`, []string{"email", "name"}},
		} {
			var extra []oauth2.AuthCodeOption
			if c.claims != "" {
				extra = append(extra, oauth2.SetAuthURLParam("claims", c.claims))
			}
			code, v := r.signIn(newBrowser(t), "sophie", pw, extra...)
			tok, _, err := r.exchange(code, v)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			raw, _ := tok.Extra("id_token").(string)
			got := idClaims(t, raw)
			if got["azp"] != r.client.ID {
				t.Errorf("%s: azp %v", c.name, got["azp"])
			}
			if _, ok := got["client_id"]; ok {
				t.Errorf("%s: non-standard client_id claim in the ID token", c.name)
			}
			for _, claim := range profile {
				_, has := got[claim]
				if want := strings.Contains(strings.Join(c.want, " "), claim); has != want {
					t.Errorf("%s: claim %s in the ID token: %v, want %v (%v)", c.name, claim, has, want, got)
				}
			}
			if c.want != nil && (got["email"] != u.Email || got["name"] != "Sophie Tremblay") {
				t.Errorf("%s: requested claims %v %v", c.name, got["email"], got["name"])
			}
			// Userinfo gives them all.
			if status, body := r.userinfo(tok.AccessToken, http.MethodGet); status != http.StatusOK || !strings.Contains(body, u.Email) || !strings.Contains(body, `"preferred_username":"sophie"`) {
				t.Errorf("%s: userinfo %d %s", c.name, status, body)
			}
			// A refreshed ID token: no client_id, no profile claims.
			t2, err := r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatalf("%s: refresh: %v", c.name, err)
			}
			raw2, _ := t2.Extra("id_token").(string)
			if _, err := r.verifier.Verify(context.Background(), raw2); err != nil {
				t.Fatalf("%s: refreshed ID token: %v", c.name, err)
			}
			got = idClaims(t, raw2)
			if _, ok := got["client_id"]; ok || got["azp"] != r.client.ID || got["email"] != nil && c.want == nil {
				t.Errorf("%s: refreshed ID token claims %v", c.name, got)
			}
		}
		// A malformed claims parameter is refused (§5.5, RFC 6749 §4.1.2.1).
		p, state, _ := r.authorize(newBrowser(t), oauth2.SetAuthURLParam("claims", `{"id_token":["email"]}`))
		if q := p.redirectParams(t); q.Get("error") != "invalid_request" || q.Get("state") != state {
			t.Errorf("malformed claims parameter: %v", q)
		}
		var d map[string]any
		_ = json.Unmarshal([]byte(newBrowser(t).get(env.issuer+"/.well-known/openid-configuration").body), &d)
		if d["claims_parameter_supported"] != true {
			t.Errorf("discovery: claims_parameter_supported %v", d["claims_parameter_supported"])
		}
	})
}

// authorizeURL is the relying party's authorization URL (code + PKCE)
// with the query changed by mod.
func (r *rp) authorizeURL(mod func(q url.Values)) string {
	u, _ := url.Parse(r.conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), gooidc.Nonce("n-1")))
	q := u.Query()
	mod(q)
	u.RawQuery = q.Encode()
	return u.String()
}

// RFC 6749 §3.1 (no parameter twice), RFC 7636 §4.2 and §4.4.1 (a
// well-formed code_challenge, no method without one), OIDC Core §6.2
// (request_uri_not_supported): refused at the authorization endpoint,
// with the error sent to the redirect URI.
func TestAuthorizationRequestRules(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil) // confidential: PKCE is optional
		twice := func(name string) func(q url.Values) {
			return func(q url.Values) { q[name] = []string{q.Get(name), q.Get(name)} }
		}
		set := func(name, value string) func(q url.Values) {
			return func(q url.Values) { q.Set(name, value) }
		}
		for _, c := range []struct {
			rule string
			mod  func(q url.Values)
			code string
		}{
			{"RFC 6749 §3.1 scope twice", twice("scope"), "invalid_request"},
			{"RFC 6749 §3.1 state twice", twice("state"), "invalid_request"},
			{"RFC 6749 §3.1 nonce twice", twice("nonce"), "invalid_request"},
			{"RFC 6749 §3.1 code_challenge twice", twice("code_challenge"), "invalid_request"},
			{"RFC 6749 §3.1 response_type twice", twice("response_type"), "invalid_request"},
			{"RFC 7636 §4.2 empty code_challenge", set("code_challenge", ""), "invalid_request"},
			{"RFC 7636 §4.2 code_challenge outside the character set", set("code_challenge", strings.Repeat("a", 42)+"+/="), "invalid_request"},
			{"RFC 7636 §4.2 code_challenge too short", set("code_challenge", strings.Repeat("a", 42)), "invalid_request"},
			{"RFC 7636 §4.4.1 code_challenge_method without code_challenge", func(q url.Values) { q.Del("code_challenge") }, "invalid_request"},
			{"OIDC Core §6.2 request_uri", set("request_uri", "https://rp.example/request.jwt"), "request_uri_not_supported"},
		} {
			p := newBrowser(t).get(r.authorizeURL(c.mod))
			q := p.redirectParams(t)
			if q.Get("error") != c.code || q.Get("state") != "st-1" || q.Get("code") != "" {
				t.Errorf("%s: %v, want %s with the state", c.rule, q, c.code)
			}
		}
		// The well-formed request and a 128-character challenge go on to the login page.
		for _, mod := range []func(q url.Values){func(url.Values) {}, set("code_challenge", strings.Repeat("A-._~9", 21)+"zz")} {
			if p := newBrowser(t).get(r.authorizeURL(mod)); p.status != http.StatusOK || !p.has("login") {
				t.Errorf("a well-formed request: %d %s", p.status, p.url)
			}
		}
		// A repeated redirect_uri is never redirected to.
		p := newBrowser(t).get(r.authorizeURL(twice("redirect_uri")))
		if p.status != http.StatusBadRequest || p.header.Get("Location") != "" || !strings.Contains(p.body, `class="error`) {
			t.Errorf("RFC 6749 §3.1 redirect_uri twice: %d %q", p.status, p.header.Get("Location"))
		}
		// Nor an unregistered one, whatever else is wrong.
		p = newBrowser(t).get(r.authorizeURL(func(q url.Values) {
			q.Set("redirect_uri", "https://evil.example/")
			q.Set("request_uri", "https://rp.example/request.jwt")
		}))
		if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
			t.Errorf("request_uri with an unregistered redirect_uri: %d %q", p.status, p.header.Get("Location"))
		}
		// Discovery says request_uri is not supported (its default is true).
		var d map[string]any
		_ = json.Unmarshal([]byte(newBrowser(t).get(env.issuer+"/.well-known/openid-configuration").body), &d)
		if v, ok := d["request_uri_parameter_supported"]; !ok || v != false {
			t.Errorf("discovery: request_uri_parameter_supported %v (present %v)", v, ok)
		}
	})
}

// RFC 9110 §15.5.6: a method an endpoint does not take gets 405 with
// Allow.
func TestMethodNotAllowed(t *testing.T) {
	env := newTestEnv(t, backends[0])
	for _, c := range []struct {
		path, allow string
	}{
		{"/.well-known/openid-configuration", "GET, HEAD"},
		{"/keys", "GET, HEAD"},
		{"/healthz", "GET, HEAD"},
		{"/readyz", "GET, HEAD"},
		{"/authorize", "GET, HEAD, POST"},
		{"/end_session", "GET, HEAD, POST"},
	} {
		for _, method := range []string{http.MethodDelete, http.MethodTrace, http.MethodPut, "FROB"} {
			req, _ := http.NewRequest(method, env.issuer+c.path, nil)
			a := send(t, req)
			if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != c.allow {
				t.Errorf("%s %s: %d, Allow %q; want 405, Allow %q", method, c.path, a.status, a.header.Get("Allow"), c.allow)
			}
		}
		req, _ := http.NewRequest(http.MethodOptions, env.issuer+c.path, nil)
		if a := send(t, req); a.status != http.StatusNoContent || a.header.Get("Allow") != c.allow {
			t.Errorf("OPTIONS %s: %d, Allow %q", c.path, a.status, a.header.Get("Allow"))
		}
	}
	// The methods they take still work.
	for _, path := range []string{"/.well-known/openid-configuration", "/keys", "/healthz"} {
		if p := newBrowser(t).get(env.issuer + path); p.status != http.StatusOK {
			t.Errorf("GET %s: %d", path, p.status)
		}
	}
}
