package idp_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp"
)

// TestGrantsNotOfferedRefused: the token endpoint takes only the grants
// discovery advertises; any other is unsupported_grant_type before
// zitadel/oidc reads it (a jwt-bearer assertion whose payload is a JSON
// array was a 500 carrying Go's unmarshal message).
func TestGrantsNotOfferedRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		var d struct {
			Grants []string `json:"grant_types_supported"`
		}
		if err := json.Unmarshal([]byte(newBrowser(t).get(env.issuer+"/.well-known/openid-configuration").body), &d); err != nil {
			t.Fatal(err)
		}
		for _, g := range []string{"authorization_code", "refresh_token", "client_credentials"} {
			if !slices.Contains(d.Grants, g) {
				t.Errorf("grant_types_supported %v lacks %s", d.Grants, g)
			}
		}
		b64 := base64.RawURLEncoding.EncodeToString
		arrayAssertion := b64([]byte(`{"alg":"RS256"}`)) + "." + b64([]byte(`["a",1]`)) + ".c2ln"
		for _, tt := range []struct {
			grant string
			form  url.Values
		}{
			{"urn:ietf:params:oauth:grant-type:jwt-bearer", url.Values{"assertion": {arrayAssertion}}},
			{"urn:ietf:params:oauth:grant-type:jwt-bearer", url.Values{"assertion": {b64([]byte(`{"alg":"none"}`)) + ".e30."}}},
			{"urn:ietf:params:oauth:grant-type:token-exchange", url.Values{"subject_token": {"x"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}},
			{"urn:ietf:params:oauth:grant-type:device_code", url.Values{"device_code": {"x"}}},
			{"password", url.Values{"username": {"sophie"}, "password": {pw}}},
			{"implicit", nil},
			{"AUTHORIZATION_CODE", nil},
		} {
			if slices.Contains(d.Grants, tt.grant) && tt.grant != "implicit" {
				t.Errorf("discovery advertises %s", tt.grant)
			}
			form := url.Values{"grant_type": {tt.grant}}
			for k, v := range tt.form {
				form[k] = v
			}
			status, body := r.postForm("/oauth/token", form)
			if status != http.StatusBadRequest || !strings.Contains(body, `"error":"unsupported_grant_type"`) || strings.Contains(body, "json") {
				t.Errorf("%s: %d %s", tt.grant, status, body)
			}
		}
		// A grant offered gets past the check.
		status, body := r.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}})
		if status != http.StatusOK {
			t.Errorf("client_credentials: %d %s", status, body)
		}
	})
}

// TestBadTextRefused: text a store cannot hold (NUL and other control
// characters, invalid UTF-8, too long) is refused with a 4xx on every
// endpoint before it reaches a store, the same on both backends
// (PostgreSQL refuses 0x00 in text: a NUL in the username was a 503).
func TestBadTextRefused(t *testing.T) {
	answers := map[string][]string{}
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		answer := func(name string, status int, body string) {
			answers[name] = append(answers[name], fmt.Sprint(status, " ", errorText(body)))
		}

		// The login form, in the page's language.
		for _, lang := range []string{"fr", "en"} {
			for _, username := range []string{"sophie\x00", "so\xffphie", "sophie\x1b", strings.Repeat("s", 5000)} {
				b := newBrowser(t)
				b.lang = lang
				p, _, _ := r.authorize(b)
				p = submitLogin(t, b, p, username, pw)
				want := map[string]string{"fr": "caractères non permis", "en": "characters that are not allowed"}[lang]
				if p.status != http.StatusBadRequest || !strings.Contains(errorText(p.body), want) {
					t.Errorf("login %.20q (%s): %d %q", username, lang, p.status, errorText(p.body))
				}
				answer("login "+lang+" "+username, p.status, p.body)
			}
		}
		// The password still works after those.
		b := newBrowser(t)
		p, _, _ := r.authorize(b)
		if p = submitLogin(t, b, p, "sophie", pw); p.status != http.StatusOK {
			t.Errorf("login after bad input: %d", p.status)
		}

		// Pages' query parameters.
		for _, target := range []string{"/activate?token=%00", "/login?flow=%FF", "/end_session?client_id=" + url.QueryEscape(r.client.ID+"\x00"), "/mfa/challenge?method=%07"} {
			p := newBrowser(t).get(env.issuer + target)
			if p.status != http.StatusBadRequest || !strings.Contains(errorText(p.body), "caractères non permis") {
				t.Errorf("GET %s: %d %q", target, p.status, errorText(p.body))
			}
			answer(target, p.status, p.body)
		}

		// The authorization endpoint: its error page.
		for _, param := range []string{"client_id", "login_hint", "state", "nonce", "ui_locales", "redirect_uri"} {
			u, _ := url.Parse(r.conf.AuthCodeURL("state-1"))
			q := u.Query()
			q.Set(param, q.Get(param)+"\x00")
			u.RawQuery = q.Encode()
			p := newBrowser(t).get(u.String())
			if p.status != http.StatusBadRequest || !strings.Contains(p.body, `class="error`) {
				t.Errorf("authorize, %s with NUL: %d at %s", param, p.status, p.url)
			}
			answer("authorize "+param, p.status, p.body)
		}

		// The OAuth endpoints: invalid_request.
		basic := func(id, secret string) string {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
		}
		for _, tt := range []struct {
			name, path, auth string
			form             url.Values
		}{
			{"basic client id with NUL", "/oauth/token", basic(r.client.ID+"%00", r.secret), url.Values{"grant_type": {"client_credentials"}}},
			{"basic client id invalid UTF-8", "/oauth/token", basic("\xff\xfe", r.secret), url.Values{"grant_type": {"client_credentials"}}},
			{"body client id with NUL", "/oauth/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {r.client.ID + "\x00"}, "client_secret": {r.secret}}},
			{"scope invalid UTF-8", "/oauth/token", basic(r.client.ID, r.secret), url.Values{"grant_type": {"client_credentials"}, "scope": {"openid \xc3("}}},
			{"code with NUL", "/oauth/token", basic(r.client.ID, r.secret), url.Values{"grant_type": {"authorization_code"}, "code": {"a\x00"}, "redirect_uri": {rpRedirect}}},
			{"refresh token too long", "/oauth/token", basic(r.client.ID, r.secret), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {strings.Repeat("r", 5000)}}},
			{"introspect token with NUL", "/oauth/introspect", basic(r.client.ID, r.secret), url.Values{"token": {"\x00"}}},
			{"revoke token invalid UTF-8", "/revoke", basic(r.client.ID, r.secret), url.Values{"token": {"\xff"}}},
			{"userinfo access_token with NUL", "/userinfo", "", url.Values{"access_token": {"x\x00"}}},
		} {
			req, _ := http.NewRequest(http.MethodPost, env.issuer+tt.path, strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"error":"invalid_request"`) {
				t.Errorf("%s: %d %s", tt.name, resp.StatusCode, body)
			}
			answer(tt.name, resp.StatusCode, string(body))
		}
	})
	for name, got := range answers {
		if len(got) > 1 && got[0] != got[1] {
			t.Errorf("%.40q: the backends answer differently: %q", name, got)
		}
	}
}

// TestBodyDeadline: a request that announces more body than it sends is
// answered (408 or 400) or closed once the body deadline passes, on every
// small-body endpoint, instead of holding its connection until the read
// timeout. The test server has no read timeout at all: without the
// deadline each of these would hang until the client gives up.
func TestBodyDeadline(t *testing.T) {
	env := newTestEnvWith(t, backends[0], func(s *idp.Server) { s.BodyTimeout = 50 * time.Millisecond })
	addr := env.ts.Listener.Addr().String()
	for _, path := range []string{"/oauth/token", "/oauth/introspect", "/revoke", "/userinfo", "/login", "/mfa/challenge", "/mfa/totp/confirm", "/activate", "/authorize", "/end_session", "/no-such-page"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// The client's own limit only turns a hang into a failure.
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=client_credentials&", path, addr)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				t.Fatalf("no answer: the connection is held")
			case err != nil:
				// Closed without an answer: fine.
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if path == "/no-such-page" {
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("status %d", resp.StatusCode)
				}
			} else if resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 408 or 400", resp.StatusCode)
			}
			// And the connection is closed, not kept for another request.
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("the connection is held after the answer")
				}
			}
		})
	}
}
