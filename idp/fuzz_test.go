package idp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/mfa"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/internal/testenv"
)

// The fuzz tests send requests to the handler of a running test server, in
// process (no socket): each input is written as HTTP/1.1 bytes and read
// back with http.ReadRequest, so that what reaches the handler is what
// net/http's server would hand it; bytes it would refuse are skipped. The
// seeds are in testdata/fuzz/<FuzzName>/, so `go test` runs them as
// regression cases; `go test -run '^$' -fuzz '^FuzzAuthorize$' -fuzztime
// 60s -fuzzminimizetime 5x ./idp/` explores further (.ci/run does, 10 s
// per target). Every input goes to one server per backend (PostgreSQL +
// Redis when the test variables are set).
//
// Fixed registrations, so that seeds can name them:
const (
	fuzzClient       = "fuzz-rp"     // confidential, client_secret_basic, opaque tokens
	fuzzSecret       = "fuzz-secret" // its secret, and that of fuzzJWTClient
	fuzzJWTClient    = "fuzz-jwt"    // confidential, client_secret_post, ES256 JWT access tokens
	fuzzPublicClient = "fuzz-public" // public (native): loopback redirects on any port
	fuzzNativeURI    = "http://127.0.0.1:9998/native"
	fuzzUser         = "sophie"
)

// fuzzEnv is one test server shared by every input of a fuzz target.
type fuzzEnv struct {
	name    string // the backend
	env     *testEnv
	handler http.Handler
	host    string
	errs    *errorLog

	conf   *rp      // fuzzClient
	signed *browser // signed in as fuzzUser
	user   store.User

	ips       atomic.Uint32
	enrollees atomic.Uint32
}

// newFuzzEnvs starts one test server per backend: SQLite + memory, and
// PostgreSQL + Redis when the test variables are set (required under
// SESAME_TEST_REQUIRE_ALL). Every input goes to each in turn, so that the
// corpus holds on both (PostgreSQL refuses text SQLite keeps).
func newFuzzEnvs(f *testing.F) []*fuzzEnv {
	// Record what the servers log at error level (a handled panic among
	// others) while still passing it on (SESAME_TEST_LOG).
	next := slog.Handler(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("SESAME_TEST_LOG") != "" {
		next = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	list := &errorList{}
	// zitadel/oidc logs to the default logger: record that too.
	prev := slog.Default()
	slog.SetDefault(slog.New(&errorLog{next: next, name: "zitadel/oidc", list: list}))
	f.Cleanup(func() { slog.SetDefault(prev) })

	bs := backends[:1]
	if os.Getenv("SESAME_TEST_POSTGRES_URL") != "" && os.Getenv("SESAME_TEST_REDIS_URL") != "" || os.Getenv(testenv.RequireAll) == "1" {
		bs = backends
	}
	var out []*fuzzEnv
	for _, b := range bs {
		out = append(out, newFuzzEnv(f, b, next, list))
	}
	return out
}

func newFuzzEnv(f *testing.F, b backend, next slog.Handler, list *errorList) *fuzzEnv {
	// Inputs come by the thousand from the same networks: the limits on
	// authorization requests and on failures per network would soon answer
	// every one with a 429, which tells nothing. The per-account limits
	// stay (each input starts with fuzzUser unlocked).
	env := newTestEnvWith(f, b, func(s *idp.Server) {
		s.Regulate = regulate.DefaultConfig()
		s.Regulate.Requests, s.Regulate.NetworkFailures = 1<<30, 1<<30
	})
	// The harness's logger is shared by pointer by every handler: replace
	// its value, before the first request.
	errs := &errorLog{next: next, name: "sesame", list: list}
	*env.srv.Logger = *slog.New(errs)

	fe := &fuzzEnv{name: b.name, env: env, handler: env.ts.Config.Handler, host: env.ts.Listener.Addr().String(), errs: errs}
	fe.conf = env.newRP(func(c *store.Client) {
		c.ID, c.SecretHash = fuzzClient, oidcstore.HashSecret(fuzzSecret)
		c.Scopes = append(c.Scopes, "sesame:admin")
	})
	fe.conf.secret, fe.conf.conf.ClientSecret = fuzzSecret, fuzzSecret
	env.newRP(func(c *store.Client) {
		c.ID, c.SecretHash, c.AuthMethod, c.TokenFormat = fuzzJWTClient, oidcstore.HashSecret(fuzzSecret), "client_secret_post", "jwt"
		c.IDTokenAlg = "ES256"
	})
	env.newRP(func(c *store.Client) {
		c.ID, c.Public, c.AuthMethod, c.RedirectURIs = fuzzPublicClient, true, "none", []string{fuzzNativeURI}
	})
	fe.user = env.user(fuzzUser, pw)
	fe.signed = newBrowser(f)
	fe.conf.signIn(fe.signed, fuzzUser, pw)
	fe.errs.take()
	return fe
}

// signedIn is the signed-in browser, reporting to t.
func (fe *fuzzEnv) signedIn(t testing.TB) *browser {
	b := *fe.signed
	b.t = t
	return &b
}

// sessionCode returns a fresh code of fuzzClient from the signed-in
// browser's session, and its PKCE verifier.
func (fe *fuzzEnv) sessionCode(t testing.TB) (code, verifier string) {
	t.Helper()
	p, _, verifier := fe.conf.authorize(fe.signedIn(t))
	return p.redirectParams(t).Get("code"), verifier
}

// errorLog is a slog handler that keeps the error records (message and
// attributes) of one logger, in a list shared with its derived handlers.
type errorLog struct {
	next slog.Handler
	name string
	list *errorList
}

type errorList struct {
	mu   sync.Mutex
	msgs []string
}

func (h *errorLog) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h *errorLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %s", h.name, r.Message)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		h.list.mu.Lock()
		h.list.msgs = append(h.list.msgs, b.String())
		h.list.mu.Unlock()
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *errorLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &errorLog{next: h.next.WithAttrs(as), name: h.name, list: h.list}
}

func (h *errorLog) WithGroup(name string) slog.Handler {
	return &errorLog{next: h.next.WithGroup(name), name: h.name, list: h.list}
}

// take returns and forgets the records kept so far.
func (h *errorLog) take() []string {
	h.list.mu.Lock()
	defer h.list.mu.Unlock()
	out := h.list.msgs
	h.list.msgs = nil
	return out
}

// serve sends one request, given as its parts, to the handler. ok is false
// when net/http would not have accepted the bytes.
func (fe *fuzzEnv) serve(method, target string, header http.Header, body, remoteAddr string) (*httptest.ResponseRecorder, bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, fe.host)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if method != http.MethodGet {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	if method != http.MethodGet {
		b.WriteString(body)
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(b.String())))
	if err != nil {
		return nil, false
	}
	req.RemoteAddr = remoteAddr
	w := httptest.NewRecorder()
	fe.handler.ServeHTTP(w, req)
	return w, true
}

// escapeRequestTarget percent-encodes the bytes a request line cannot carry
// (a browser does the same), so that inputs reach the handler.
func escapeRequestTarget(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// validHeaderValue: what a header line can carry.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// cookieHeader is the Cookie header the browser would send to the server.
func (fe *fuzzEnv) cookieHeader(b *browser) string {
	u, _ := url.Parse(fe.env.issuer + "/")
	var parts []string
	for _, c := range b.c.Jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// checkResponse holds for every answer: no 5xx and nothing logged as an
// error.
func (fe *fuzzEnv) checkResponse(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 {
		t.Errorf("%s: status %d\n%s", what, w.Code, truncate(w.Body.String(), 2000))
	}
	if msgs := fe.errs.take(); len(msgs) > 0 {
		t.Errorf("%s: logged errors (status %d):\n%s", what, w.Code, strings.Join(msgs, "\n"))
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Where the provider may send a browser: the redirect URIs registered for
// the fixed clients (loopback ones on any port for the public ones, RFC
// 8252, as zitadel/oidc allows) and, as next steps, our own pages.
var (
	registeredRedirectRE = regexp.MustCompile(`^(?:http://localhost:9999/callback|https?://(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?/(?:native|account/callback))(?:[?#]|$)`)
	loginPageRE          = regexp.MustCompile(`^/login\?flow=[A-Za-z0-9_%-]+$`)
	callbackRE           = regexp.MustCompile(`^/authorize/callback\?id=[A-Za-z0-9_%-]+$`)
	formActionRE         = regexp.MustCompile(`<form[^>]*\saction="([^"]*)"`)
)

// FuzzAuthorize sends arbitrary authorization requests, as a query (GET) or
// a form (POST), from a browser without a session or with a signed-in one,
// and follows the redirects to our own pages. Whatever the input: no 5xx,
// no error logged, and a redirect goes only to a registered redirect URI
// or to the next page of our own flow.
//
// Placeholders in seeds: {{hint}} is a valid id_token_hint of the signed-in
// user.
func FuzzAuthorize(f *testing.F) {
	type prepared struct {
		fe                   *fuzzEnv
		hint, sessionCookies string
	}
	var envs []prepared
	for _, fe := range newFuzzEnvs(f) {
		code, verifier := fe.sessionCode(f)
		tok, _, err := fe.conf.exchange(code, verifier)
		if err != nil {
			f.Fatal(err)
		}
		hint, _ := tok.Extra("id_token").(string)
		envs = append(envs, prepared{fe, hint, fe.cookieHeader(fe.signed)})
		fe.errs.take()
	}

	f.Fuzz(func(t *testing.T, post, withSession bool, params string) {
		for _, p := range envs {
			p.fe.authorize(t, post, withSession, strings.ReplaceAll(params, "{{hint}}", p.hint), p.sessionCookies)
		}
	})
}

// authorize is one input of FuzzAuthorize on one server.
func (fe *fuzzEnv) authorize(t *testing.T, post, withSession bool, params, sessionCookies string) {
	cookies := map[string]string{}
	if withSession {
		for _, kv := range strings.Split(sessionCookies, "; ") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				cookies[k] = v
			}
		}
	}
	method, target, body := http.MethodGet, "/authorize?"+escapeRequestTarget(params), ""
	header := http.Header{}
	if post {
		method, target, body = http.MethodPost, "/authorize", params
		header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	// /authorize, then our pages it leads to: each hop may redirect
	// only to the next one or to the relying party.
	next := []*regexp.Regexp{loginPageRE, callbackRE, nil}
	for hop := 0; hop < len(next); hop++ {
		h := header.Clone()
		if c := joinCookies(cookies); c != "" {
			h.Set("Cookie", c)
		}
		w, ok := fe.serve(method, target, h, body, "127.0.0.1:40000")
		if !ok {
			return
		}
		what := fmt.Sprintf("%s: %s %s", fe.name, method, truncate(target, 300))
		fe.checkResponse(t, what, w)
		for _, c := range w.Result().Cookies() {
			if c.MaxAge < 0 {
				delete(cookies, c.Name)
			} else {
				cookies[c.Name] = c.Value
			}
		}
		if w.Code >= 300 && w.Code < 400 {
			loc := w.Header().Get("Location")
			if w.Code != http.StatusFound && w.Code != http.StatusSeeOther {
				t.Errorf("%s: redirect with status %d to %q", what, w.Code, loc)
			}
			if registeredRedirectRE.MatchString(loc) {
				return
			}
			if next[hop] == nil || !next[hop].MatchString(loc) {
				t.Fatalf("%s: redirect (hop %d) to %q", what, hop, loc)
			}
			method, target, body, header = http.MethodGet, loc, "", http.Header{}
			continue
		}
		// A 200 may be response_mode=form_post: its form goes to the
		// relying party; forms of our pages post to our own paths.
		for _, m := range formActionRE.FindAllStringSubmatch(w.Body.String(), -1) {
			action := html.UnescapeString(m[1])
			own := strings.HasPrefix(action, "/") && !strings.HasPrefix(action, "//") && !strings.HasPrefix(action, `/\`)
			if !own && !registeredRedirectRE.MatchString(action) {
				t.Errorf("%s: a form posts to %q", what, action)
			}
		}
		return
	}
}

func joinCookies(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, "; ")
}

// fuzzEndpoints are the endpoints FuzzToken picks from (by index modulo).
var fuzzEndpoints = []struct {
	method, path string
	oauth        bool // answers errors as OAuth JSON
}{
	{http.MethodPost, "/oauth/token", true},
	{http.MethodPost, "/oauth/introspect", true},
	{http.MethodPost, "/revoke", true},
	{http.MethodGet, "/userinfo", false},
	{http.MethodPost, "/userinfo", false},
	{http.MethodGet, "/end_session", false},
	{http.MethodPost, "/end_session", false},
	{http.MethodPost, "/login", false},
	{http.MethodPost, "/mfa/challenge", false},
	{http.MethodPost, "/activate", false},
}

// FuzzToken sends arbitrary form bodies and Authorization headers to the
// token, introspection, revocation, userinfo and logout endpoints and to
// the password and second-factor forms. Whatever the input: no 5xx, no
// error logged, and the OAuth endpoints answer a 4xx with a JSON error
// object carrying an error code.
//
// Placeholders in seeds, in the body and the header, each fresh for the
// input that uses it: {{code}} and {{verifier}} (an unused code of
// fuzz-rp), {{access}}, {{refresh}}, {{idtoken}} (tokens of fuzz-rp),
// {{flow}} (a sign-in at the password step), {{mfaflow}} (one at the
// second-factor step), {{csrf}} (the CSRF token of the browser holding the
// flows; withCookies sends its cookies), {{totp}} (a valid code of the
// user), {{pad}} (pad×64 bytes of "A", for huge values); FuzzForms adds
// its own.
func FuzzToken(f *testing.F) {
	envs := newFuzzEnvs(f)
	f.Fuzz(func(t *testing.T, endpoint uint8, withCookies bool, auth, body string, pad uint16) {
		ep := fuzzEndpoints[int(endpoint)%len(fuzzEndpoints)]
		for _, fe := range envs {
			fe.send(t, ep.method, ep.path, ep.oauth, withCookies, auth, body, pad)
		}
	})
}

// send is one input of FuzzToken or FuzzForms on one server: the
// placeholders replaced, the request sent from a fresh address, the answer
// checked.
func (fe *fuzzEnv) send(t *testing.T, method, path string, oauth, withCookies bool, auth, body string, pad uint16) {
	// Each input starts with the users' attempt counters at zero.
	_ = fe.env.srv.Login.Regulator.Unlock(context.Background(), fuzzUser)
	_ = fe.env.srv.Login.Regulator.Unlock(context.Background(), fe.user.ID)
	ph := fe.placeholders(t, auth+body, pad)
	auth, body = ph.Replace(auth), ph.Replace(body)

	header := http.Header{}
	if auth != "" {
		if !validHeaderValue(auth) {
			return
		}
		header.Set("Authorization", auth)
	}
	target := path
	if method == http.MethodGet {
		target += "?" + escapeRequestTarget(body)
	} else {
		header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if withCookies && ph.browser != nil {
		header.Set("Cookie", fe.cookieHeader(ph.browser))
	}
	// Addresses change from input to input so that the per-address
	// limits on sign-in attempts do not turn every later input into a
	// 429.
	n := fe.ips.Add(1)
	remote := fmt.Sprintf("10.%d.%d.%d:40000", n>>16&0xff, n>>8&0xff, n&0xff)
	w, ok := fe.serve(method, target, header, body, remote)
	if !ok {
		return
	}
	what := fmt.Sprintf("%s: %s %s (Authorization %q, body %q)", fe.name, method, path, truncate(auth, 200), truncate(body, 300))
	fe.checkResponse(t, what, w)
	if oauth && w.Code >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		ct, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type"))
		if ct != "application/json" {
			t.Errorf("%s: status %d with Content-Type %q:\n%s", what, w.Code, w.Header().Get("Content-Type"), truncate(w.Body.String(), 500))
		} else if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !oauthErrorRE.MatchString(e.Error) {
			t.Errorf("%s: status %d without an OAuth error code: %s", what, w.Code, truncate(w.Body.String(), 500))
		}
	}
}

// passwordOnlyUser creates an active user with the password pw only,
// reporting to t (the harness's reports to the fuzz target's F).
func (fe *fuzzEnv) passwordOnlyUser(t *testing.T, username string) {
	t.Helper()
	now := time.Now().UTC()
	u := store.User{ID: uuid.NewString(), Username: username, Email: username + "@clinic.example",
		Locale: "fr-CA", Status: store.StatusActive, AccountType: "person", Occupation: "nurse", CreatedAt: now, UpdatedAt: now}
	phc, err := fe.env.srv.Passwords.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	err = fe.env.store.InTx(context.Background(), func(tx store.Tx) error {
		if err := tx.CreateUser(context.Background(), u); err != nil {
			return err
		}
		return tx.SetPassword(context.Background(), u.ID, phc, now)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// formEndpoints are the pages FuzzForms picks from (by index modulo).
var formEndpoints = []struct{ method, path string }{
	{http.MethodPost, "/login"},
	{http.MethodPost, "/mfa/totp/confirm"},
	{http.MethodPost, "/activate"},
	{http.MethodGet, "/mfa/totp/confirm"},
	{http.MethodGet, "/activate"},
}

// FuzzForms sends arbitrary forms (and, for GET, queries) to the password
// page, the confirmation of an authenticator app's enrollment and the
// account activation. Whatever the input: no 5xx and no error logged, on
// each backend.
//
// Placeholders, as FuzzToken's ({{flow}}, {{csrf}}, {{pad}}…) and:
// {{enrollflow}} (a new user's sign-in at the enrollment's confirmation,
// on the browser of {{csrf}}), {{enrollcode}} (a valid code of the key
// being enrolled), {{activation}} (a fresh activation token).
func FuzzForms(f *testing.F) {
	envs := newFuzzEnvs(f)
	f.Fuzz(func(t *testing.T, form uint8, withCookies bool, body string, pad uint16) {
		ep := formEndpoints[int(form)%len(formEndpoints)]
		for _, fe := range envs {
			fe.send(t, ep.method, ep.path, false, withCookies, "", body, pad)
		}
	})
}

// oauthErrorRE: an error code is printable ASCII without quote or
// backslash (RFC 6749 §5.2), here also non-empty.
var oauthErrorRE = regexp.MustCompile(`^[\x20-\x21\x23-\x5B\x5D-\x7E]+$`)

// placeholderSet replaces the placeholders of one input.
type placeholderSet struct {
	*strings.Replacer
	browser *browser // the browser of {{flow}}, {{mfaflow}} and {{csrf}}
}

// placeholders prepares the values the input refers to, fresh.
func (fe *fuzzEnv) placeholders(t *testing.T, in string, pad uint16) placeholderSet {
	t.Helper()
	if !strings.Contains(in, "{{") {
		return placeholderSet{Replacer: strings.NewReplacer()}
	}
	var kv []string
	has := func(name string) bool { return strings.Contains(in, "{{"+name+"}}") }
	if has("code") || has("verifier") || has("access") || has("refresh") || has("idtoken") {
		code, verifier := fe.sessionCode(t)
		kv = append(kv, "{{code}}", code, "{{verifier}}", verifier)
		if has("access") || has("refresh") || has("idtoken") {
			if has("code") {
				// Both a code and tokens: the tokens come from another one.
				code, verifier = fe.sessionCode(t)
			}
			tok, err := fe.conf.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			idt, _ := tok.Extra("id_token").(string)
			kv = append(kv, "{{access}}", tok.AccessToken, "{{refresh}}", tok.RefreshToken, "{{idtoken}}", idt)
		}
	}
	var b *browser
	if has("flow") || has("mfaflow") || has("csrf") || has("enrollflow") || has("enrollcode") {
		b = newBrowser(t)
		p, _, _ := fe.conf.authorize(b)
		_, vals := p.form(t, "login")
		kv = append(kv, "{{flow}}", vals.Get("flow"), "{{csrf}}", vals.Get("csrf_token"))
		if has("mfaflow") {
			p, _, _ := fe.conf.authorize(b, oauth2.SetAuthURLParam("prompt", "login"))
			p = submitLogin(t, b, p, fuzzUser, pw)
			action, _ := p.form(t, "mfa")
			u, err := url.Parse(action)
			if err != nil || u.Query().Get("flow") == "" {
				t.Fatalf("no flow in the challenge form's action %q", action)
			}
			kv = append(kv, "{{mfaflow}}", u.Query().Get("flow"))
		}
	}
	if has("enrollflow") || has("enrollcode") {
		// A new user without a second factor, on the same browser, at the
		// confirmation of an authenticator app's enrollment.
		name := fmt.Sprintf("enrollee%d", fe.enrollees.Add(1))
		fe.passwordOnlyUser(t, name)
		p, _, _ := fe.conf.authorize(b, oauth2.SetAuthURLParam("prompt", "login"))
		p = submitLogin(t, b, p, name, pw)
		p = b.get(p.link(t, "/mfa/totp?"))
		m := dataSecretRE.FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no key on %s", p.url)
		}
		secret, err := users.ParseSecret(m[1])
		if err != nil {
			t.Fatal(err)
		}
		next, q := p.formAction(t, "/mfa/totp/confirm")
		confirm := b.get(strings.SplitN(next, "?", 2)[0] + "?" + q.Encode())
		action, _ := confirm.form(t, "totp-enroll")
		u, err := url.Parse(action)
		if err != nil || u.Query().Get("flow") == "" {
			t.Fatalf("no flow in the confirmation form's action %q", action)
		}
		kv = append(kv, "{{enrollflow}}", u.Query().Get("flow"), "{{enrollcode}}", mfa.TOTPCode(secret, mfa.TOTPStep(fe.env.now())))
	}
	if has("activation") {
		// A fresh activation link's token, of a new pending user.
		u := store.User{ID: uuid.NewString(), Username: fmt.Sprintf("pending%d", fe.enrollees.Add(1)), Email: "pending@clinic.example",
			Locale: "fr-CA", Status: store.StatusPendingActivation, AccountType: "person",
			CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
		var token string
		err := fe.env.store.InTx(context.Background(), func(tx store.Tx) error {
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
		kv = append(kv, "{{activation}}", token)
	}
	if has("totp") {
		kv = append(kv, "{{totp}}", fe.env.nextCode(fuzzUser))
	}
	kv = append(kv, "{{pad}}", strings.Repeat("A", int(pad)*64))
	// Preparing went through the server: what it logged is not the input's.
	fe.errs.take()
	return placeholderSet{Replacer: strings.NewReplacer(kv...), browser: b}
}
