package idp_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"

	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
	eredis "github.com/sesame-idp/sesame/idp/ephemeral/redis"
	"github.com/sesame-idp/sesame/idp/keys"
	"github.com/sesame-idp/sesame/idp/mfa"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/internal/testenv"
	"github.com/sesame-idp/sesame/internal/teststore"
	"github.com/sesame-idp/sesame/templates"
)

// backend is one pair of durable and ephemeral stores.
type backend struct {
	name string
	open func(t testing.TB, sealer *seal.Sealer) (store.Store, ephemeral.Store)
}

var backends = []backend{
	{"sqlite+memory", func(t testing.TB, _ *seal.Sealer) (store.Store, ephemeral.Store) {
		return teststore.SQLite(t), memory.New(time.Now)
	}},
	{"postgres+redis", func(t testing.TB, sealer *seal.Sealer) (store.Store, ephemeral.Store) {
		db := teststore.Postgres(t)
		redisURL := testenv.RedisURL(t)
		prefix := "sesame-test-" + uuid.NewString()[:8] + ":"
		r, err := eredis.Open(context.Background(), redisURL, prefix, sealer)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			testenv.CleanRedisPrefix(t, redisURL, prefix)
			r.Close()
		})
		return db, r
	}},
}

// forEachBackend runs f on every backend (the PostgreSQL + Redis one when
// the test variables are set).
func forEachBackend(t *testing.T, f func(t *testing.T, env *testEnv)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f(t, newTestEnv(t, b))
		})
	}
}

// forEachBackendWith is forEachBackend with the server changed by mod.
func forEachBackendWith(t *testing.T, mod func(s *idp.Server), f func(t *testing.T, env *testEnv)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f(t, newTestEnvWith(t, b, mod))
		})
	}
}

// testEnv is a running Sésame with its stores.
type testEnv struct {
	t      testing.TB
	srv    *idp.Server
	ts     *httptest.Server
	store  store.Store
	eph    ephemeral.Store
	sealer *seal.Sealer
	issuer string

	// offset moves the server's clock forward, so that each sign-in of a
	// user can use a fresh TOTP time step.
	offset    atomic.Int64
	mu        sync.Mutex
	secrets   map[string][]byte // username → TOTP secret
	lastSteps map[string]int64  // username → last TOTP step used
}

func (e *testEnv) now() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) }

var sharedTemplates *templates.Engine

func newTestEnv(t testing.TB, b backend) *testEnv {
	t.Helper()
	return newTestEnvWith(t, b, nil)
}

// newTestEnvWith is newTestEnv with mod adjusting the server before it
// starts.
func newTestEnvWith(t testing.TB, b backend, mod func(s *idp.Server)) *testEnv {
	t.Helper()
	return newTestEnvAt(t, b, false, mod)
}

// newLocalhostTestEnv is newTestEnvWith with the issuer
// http://localhost:PORT, the server still listening on 127.0.0.1:0:
// passkeys need a host name as RP ID (browsers refuse IP addresses), and
// Chrome treats localhost as a secure context.
func newLocalhostTestEnv(t testing.TB, b backend, mod func(s *idp.Server)) *testEnv {
	t.Helper()
	return newTestEnvAt(t, b, true, mod)
}

func newTestEnvAt(t testing.TB, b backend, localhost bool, mod func(s *idp.Server)) *testEnv {
	t.Helper()
	sealer, err := seal.New(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	st, eph := b.open(t, sealer)
	if sharedTemplates == nil {
		if sharedTemplates, err = templates.New(nil); err != nil {
			t.Fatal(err)
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("SESAME_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	signingKeys := keys.New(st, sealer, keys.Options{Logger: logger, Algs: []string{"RS256", "ES256"}})
	if err := signingKeys.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	if localhost {
		issuer = "http://localhost:" + strconv.Itoa(ts.Listener.Addr().(*net.TCPAddr).Port)
	}
	env := &testEnv{t: t, ts: ts, store: st, eph: eph, sealer: sealer, issuer: issuer,
		secrets: map[string][]byte{}, lastSteps: map[string]int64{}}
	srv := &idp.Server{
		Now:       env.now,
		Sealer:    sealer,
		Issuer:    issuer,
		Store:     st,
		Ephemeral: eph,
		Keys:      signingKeys,
		Templates: sharedTemplates,
		// Cheap hashing keeps the tests fast; the parameters are tested in users.
		Passwords: users.Passwords{Params: users.PasswordParams{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}},
		Demo:      true,
		Logger:    logger,
		Registry:  prometheus.NewRegistry(),
	}
	if mod != nil {
		mod(srv)
	}
	h, err := srv.Handler()
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = h
	ts.Start()
	t.Cleanup(ts.Close)
	env.srv = srv
	return env
}

// rp is a relying party registered in the test environment.
type rp struct {
	env      *testEnv
	client   store.Client
	secret   string
	conf     *oauth2.Config
	verifier *gooidc.IDTokenVerifier
	provider *gooidc.Provider
}

const rpRedirect = "http://localhost:9999/callback"

// newRP registers a client; mod may adjust it before it is stored.
func (e *testEnv) newRP(mod func(c *store.Client)) *rp {
	t := e.t
	t.Helper()
	secret := "secret-" + uuid.NewString()
	c := store.Client{
		ID: "rp-" + uuid.NewString()[:8], Name: "Test EMR", SecretHash: oidcstore.HashSecret(secret),
		RedirectURIs: []string{rpRedirect}, PostLogoutURIs: []string{"http://localhost:9999/bye"},
		GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"},
		Scopes:     []string{"openid", "profile", "email", "offline_access", "sesame:institutions"},
		AuthMethod: "client_secret_basic", TokenFormat: "opaque", IDTokenAlg: "RS256",
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
	}
	if mod != nil {
		mod(&c)
	}
	if c.Public {
		c.SecretHash, secret = "", ""
	}
	if err := e.store.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	p, err := gooidc.NewProvider(context.Background(), e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader // no retry with other credentials: a retry would reuse the code
	if c.Public {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &rp{
		env: e, client: c, secret: secret, provider: p,
		conf: &oauth2.Config{
			ClientID: c.ID, ClientSecret: secret, Endpoint: ep, RedirectURL: rpRedirect,
			Scopes: []string{gooidc.ScopeOpenID, "profile", "email", "offline_access"},
		},
		verifier: p.Verifier(&gooidc.Config{ClientID: c.ID}),
	}
}

// user creates an active user with a password and an authenticator app
// already enrolled (as `sesame user create --totp-secret` does).
func (e *testEnv) user(username, password string) store.User {
	u := e.passwordOnlyUser(username, password)
	secret := users.NewTOTPSecret()
	now := time.Now().UTC()
	c := users.NewTOTPCredential(e.sealer, u.ID, "Test phone", secret, now, now)
	if err := e.store.CreateCredential(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.secrets[username] = secret
	e.mu.Unlock()
	return u
}

// nextCode returns a valid code of a TOTP time step not used yet for the
// user, moving the server's clock forward when needed.
func (e *testEnv) nextCode(username string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	secret := e.secrets[username]
	if secret == nil {
		e.t.Fatalf("no authenticator for %s", username)
	}
	step := mfa.TOTPStep(e.now())
	if step <= e.lastSteps[username] {
		e.offset.Add(int64(time.Duration(e.lastSteps[username]-step+1) * mfa.TOTPPeriod * time.Second))
		step = mfa.TOTPStep(e.now())
	}
	e.lastSteps[username] = step
	return mfa.TOTPCode(secret, step)
}

// passwordOnlyUser creates an active user with a password only.
func (e *testEnv) passwordOnlyUser(username, password string) store.User {
	t := e.t
	t.Helper()
	u := store.User{
		ID: uuid.NewString(), Username: username, Email: username + "@clinic.example",
		GivenName: "Sophie", FamilyName: "Tremblay", Locale: "fr-CA", Status: store.StatusActive,
		AccountType: "person", Occupation: "nurse", CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
	}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	phc, err := e.srv.Passwords.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetPassword(context.Background(), u.ID, phc, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	return u
}

// browser is a cookie-keeping HTTP client that stops at the relying
// party's redirect URI.
type browser struct {
	t    testing.TB
	c    *http.Client
	lang string
	// xff, when set, is sent as X-Forwarded-For (a client address behind a
	// trusted proxy).
	xff string
}

func newBrowser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t}
	b.c = &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), "http://localhost:9999/") {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return b
}

// page is a fetched response.
type page struct {
	status int
	url    *url.URL
	body   string
	header http.Header
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	if b.xff != "" {
		req.Header.Set("X-Forwarded-For", b.xff)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body), header: resp.Header}
}

func (b *browser) get(u string) page {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	formRE   = regexp.MustCompile(`(?s)<form[^>]*id="([^"]+)"[^>]*>.*?</form>`)
	actionRE = regexp.MustCompile(`action="([^"]*)"`)
	inputRE  = regexp.MustCompile(`<input[^>]*>`)
	attrRE   = regexp.MustCompile(`(\w[\w-]*)="([^"]*)"`)
)

// form finds form#id on the page and returns its action URL and the
// values of its inputs.
func (p page) form(t testing.TB, id string) (string, url.Values) {
	t.Helper()
	for _, m := range formRE.FindAllStringSubmatch(p.body, -1) {
		if m[1] != id {
			continue
		}
		action := p.url.String()
		if a := actionRE.FindStringSubmatch(m[0]); a != nil && a[1] != "" {
			ref, _ := url.Parse(html.UnescapeString(a[1]))
			action = p.url.ResolveReference(ref).String()
		}
		vals := url.Values{}
		for _, in := range inputRE.FindAllString(m[0], -1) {
			attrs := map[string]string{}
			for _, a := range attrRE.FindAllStringSubmatch(in, -1) {
				attrs[a[1]] = html.UnescapeString(a[2])
			}
			if attrs["name"] != "" {
				vals.Set(attrs["name"], attrs["value"])
			}
		}
		return action, vals
	}
	t.Fatalf("no form#%s on %s (status %d):\n%s", id, p.url, p.status, p.body)
	return "", nil
}

func (p page) has(id string) bool { return strings.Contains(p.body, `id="`+id+`"`) }

// formAction finds the POST form whose action contains path and returns
// its absolute action and values.
func (p page) formAction(t testing.TB, path string) (string, url.Values) {
	t.Helper()
	for _, m := range regexp.MustCompile(`(?s)<form[^>]*>.*?</form>`).FindAllString(p.body, -1) {
		a := actionRE.FindStringSubmatch(m)
		if a == nil || !strings.Contains(html.UnescapeString(a[1]), path) {
			continue
		}
		ref, _ := url.Parse(html.UnescapeString(a[1]))
		vals := url.Values{}
		for _, in := range inputRE.FindAllString(m, -1) {
			attrs := map[string]string{}
			for _, at := range attrRE.FindAllStringSubmatch(in, -1) {
				attrs[at[1]] = html.UnescapeString(at[2])
			}
			if attrs["name"] != "" {
				vals.Set(attrs["name"], attrs["value"])
			}
		}
		return p.url.ResolveReference(ref).String(), vals
	}
	t.Fatalf("no form posting to %s on %s (status %d):\n%s", path, p.url, p.status, p.body)
	return "", nil
}

// link returns the absolute URL of the first link whose href contains path.
func (p page) link(t testing.TB, path string) string {
	t.Helper()
	for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(p.body, -1) {
		if h := html.UnescapeString(m[1]); strings.Contains(h, path) {
			ref, _ := url.Parse(h)
			return p.url.ResolveReference(ref).String()
		}
	}
	t.Fatalf("no link to %s on %s:\n%s", path, p.url, p.body)
	return ""
}

// redirectParams returns the query of a redirect to the relying party.
func (p page) redirectParams(t testing.TB) url.Values {
	t.Helper()
	loc := p.header.Get("Location")
	if p.status != http.StatusFound && p.status != http.StatusSeeOther || !strings.HasPrefix(loc, "http://localhost:9999/") {
		t.Fatalf("expected a redirect to the relying party, got %d at %s (Location %q):\n%s", p.status, p.url, loc, p.body)
	}
	u, _ := url.Parse(loc)
	return u.Query()
}

// authorize starts a code + PKCE request and returns the first page, the
// state and the verifier.
func (r *rp) authorize(b *browser, extra ...oauth2.AuthCodeOption) (page, string, string) {
	state, verifier := uuid.NewString(), oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), gooidc.Nonce("n-" + state)}, extra...)
	return b.get(r.conf.AuthCodeURL(state, opts...)), state, verifier
}

// signIn completes the sign-in pages with username and password (and the
// second factor, through finishMFA) and returns the code.
func (r *rp) signIn(b *browser, username, password string, extra ...oauth2.AuthCodeOption) (code, verifier string) {
	t := r.env.t
	t.Helper()
	p, state, verifier := r.authorize(b, extra...)
	p = submitLogin(t, b, p, username, password)
	p = finishMFA(t, r.env, b, p, username)
	q := p.redirectParams(t)
	if q.Get("state") != state {
		t.Fatalf("state %q, want %q", q.Get("state"), state)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	return q.Get("code"), verifier
}

func submitLogin(t testing.TB, b *browser, p page, username, password string) page {
	t.Helper()
	action, vals := p.form(t, "login")
	vals.Set("username", username)
	vals.Set("password", password)
	return b.post(action, vals)
}

// exchange trades a code for tokens and verifies the ID token.
func (r *rp) exchange(code, verifier string) (*oauth2.Token, *gooidc.IDToken, error) {
	tok, err := r.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, nil, err
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(context.Background(), raw)
	if err != nil {
		return tok, nil, fmt.Errorf("verify id token: %w", err)
	}
	return tok, idt, nil
}

// postForm calls a provider endpoint with the client's basic credentials.
func (r *rp) postForm(path string, form url.Values) (int, string) {
	t := r.env.t
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.env.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r.secret != "" {
		req.SetBasicAuth(url.QueryEscape(r.client.ID), url.QueryEscape(r.secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
