//go:build unix

package idp_test

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/oauth2"

	zexampleop "github.com/zitadel/oidc/v3/example/server/exampleop"
	zstorage "github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// The Speed benchmarks put each figure of the README's Speed table beside
// its reference, in the same run:
//
//	go test ./idp/ -run '^$' -bench 'Speed' -cpu 1 -count 5
//
// Each has three sub-benchmarks: "sesame" and "reference" alone, and
// "interleaved", which alternates blocks of 8 operations of each and
// reports both CPU figures and their ratio (sesame ÷ reference), so that
// the load of other processes falls on both alike. cpu-µs/op is process
// CPU (user + system, every thread: the server's and the client's). The
// HTTP client is a bare keep-alive connection that writes prepared request
// bytes and reads the response (rawClient), the same for both sides, so
// that its share is small and equal. Only the sqlite+memory backend runs
// here: the PostgreSQL and Redis servers' CPU is another process's.

// speedOp is one operation; it may pause the meter for preparation.
type speedOp func(m pauser)

type pauser interface {
	pause()
	resume()
}

// benchVersus runs sesame and reference alone and interleaved; the
// interleaved report has both CPU figures, their ratio and their
// difference (extra-cpu-µs/op, sesame − reference).
func benchVersus(b *testing.B, sesame, reference speedOp) {
	benchVersusBlock(b, 8, sesame, reference)
}

// benchVersusBlock is benchVersus alternating blocks of block operations.
func benchVersusBlock(b *testing.B, block int, sesame, reference speedOp) {
	b.Run("sesame", func(b *testing.B) {
		m := newCPUMeter(b)
		for b.Loop() {
			sesame(m)
		}
		m.report()
	})
	b.Run("reference", func(b *testing.B) {
		m := newCPUMeter(b)
		for b.Loop() {
			reference(m)
		}
		m.report()
	})
	b.Run("interleaved", func(b *testing.B) {
		b.ReportAllocs()
		v := &versus{b: b}
		ops := [2]speedOp{sesame, reference}
		v.start = processCPU()
		i := 0
		for b.Loop() {
			side := (i / block) % 2
			if side != v.side {
				now := processCPU()
				v.total[v.side] += now - v.start
				v.start, v.side = now, side
			}
			ops[side](v)
			v.n[side]++
			i++
		}
		v.total[v.side] += processCPU() - v.start
		if v.n[0] == 0 || v.n[1] == 0 {
			return
		}
		s := float64(v.total[0].Nanoseconds()) / 1e3 / float64(v.n[0])
		r := float64(v.total[1].Nanoseconds()) / 1e3 / float64(v.n[1])
		b.ReportMetric(s, "sesame-cpu-µs/op")
		b.ReportMetric(r, "ref-cpu-µs/op")
		b.ReportMetric(s/r, "ratio")
		b.ReportMetric(s-r, "extra-cpu-µs/op")
	})
}

// versus is the interleaved meter: CPU is added to the side running.
type versus struct {
	b     *testing.B
	side  int
	start time.Duration
	total [2]time.Duration
	n     [2]int
}

func (v *versus) pause() {
	v.b.StopTimer()
	v.total[v.side] += processCPU() - v.start
}

func (v *versus) resume() {
	v.start = processCPU()
	v.b.StartTimer()
}

// rawClient is a minimal HTTP/1.1 client on one keep-alive connection.
type rawClient struct {
	tb   testing.TB
	host string
	conn net.Conn
	br   *bufio.Reader
	buf  []byte
}

func dialRaw(tb testing.TB, baseURL string) *rawClient {
	tb.Helper()
	u, err := url.Parse(baseURL)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &rawClient{tb: tb, host: u.Host, conn: conn, br: bufio.NewReaderSize(conn, 16<<10)}
}

// do sends one request; header lines are "Name: value". It fails the
// benchmark unless the status is want.
func (c *rawClient) do(want int, method, path string, body string, header ...string) []byte {
	c.buf = append(c.buf[:0], method...)
	c.buf = append(c.buf, ' ')
	c.buf = append(c.buf, path...)
	c.buf = append(c.buf, " HTTP/1.1\r\nHost: "...)
	c.buf = append(c.buf, c.host...)
	c.buf = append(c.buf, "\r\n"...)
	for _, h := range header {
		c.buf = append(c.buf, h...)
		c.buf = append(c.buf, "\r\n"...)
	}
	if body != "" {
		c.buf = append(c.buf, "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "...)
		c.buf = fmt.Appendf(c.buf, "%d", len(body))
		c.buf = append(c.buf, "\r\n"...)
	}
	c.buf = append(c.buf, "\r\n"...)
	c.buf = append(c.buf, body...)
	if _, err := c.conn.Write(c.buf); err != nil {
		c.tb.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.tb.Fatal(err)
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.tb.Fatal(err)
	}
	if resp.StatusCode != want {
		c.tb.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, out)
	}
	return out
}

func basicHeader(id, secret string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// jsonField returns a string member of a JSON object.
func jsonField(tb testing.TB, b []byte, name string) string {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("%v: %s", err, b)
	}
	s, _ := m[name].(string)
	if s == "" {
		tb.Fatalf("no %s in %s", name, b)
	}
	return s
}

// ---- the zitadel/oidc example server, in process ----

// zitadelEnv is zitadel/oidc's example OpenID provider (example/server:
// its in-memory storage and its op setup) with logging at warn, as
// "zitadel-quiet" in the issue.
type zitadelEnv struct {
	issuer string
	ts     *httptest.Server
}

const (
	zServiceID, zServiceSecret = "sid1", "verysecret" // the example's service user
	zWebID, zWebSecret         = "web", "secret"
	zRedirect                  = "http://localhost:9999/auth/callback"
)

func newZitadelEnv(tb testing.TB) *zitadelEnv {
	tb.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String() + "/"
	// The example's service user sid1 gets its tokens by client
	// credentials (its serviceUsers) and introspects them as a client.
	zstorage.RegisterClients(
		zstorage.WebClient(zWebID, zWebSecret, zRedirect),
		zstorage.WebClient(zServiceID, zServiceSecret, zRedirect),
	)
	st := zstorage.NewStorage(zstorage.NewUserStore(issuer))
	// SetupServer makes its logger the process's default: keep the one of
	// the process.
	def := slog.Default()
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ts.Config.Handler = zexampleop.SetupServer(issuer, st, quiet, false)
	slog.SetDefault(def)
	ts.Start()
	tb.Cleanup(ts.Close)
	return &zitadelEnv{issuer: strings.TrimSuffix(issuer, "/"), ts: ts}
}

// code runs the example's sign-in (authorize, its username/password
// form, the callback) and returns a code and its PKCE verifier.
func (z *zitadelEnv) code(tb testing.TB, c *http.Client) (string, string) {
	verifier := oauth2.GenerateVerifier()
	q := url.Values{
		"client_id": {zWebID}, "redirect_uri": {zRedirect}, "response_type": {"code"},
		"scope": {"openid profile email offline_access"}, "state": {"s"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
		"prompt": {"consent"},
	}
	resp, err := c.Get(z.issuer + "/auth?" + q.Encode())
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	id := loc.Query().Get("authRequestID")
	if id == "" {
		tb.Fatalf("zitadel authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	host := strings.TrimPrefix(z.issuer, "http://")
	resp, err = c.PostForm(z.issuer+"/login/username", url.Values{"id": {id}, "username": {"test-user@" + strings.Split(host, ":")[0]}, "password": {"verysecure"}})
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	next := resp.Header.Get("Location")
	if !strings.HasPrefix(next, "http") {
		next = z.issuer + next
	}
	resp, err = c.Get(next)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	loc, _ = url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		tb.Fatalf("zitadel callback: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	return code, verifier
}

// tokens signs in and exchanges the code: the token response.
func (z *zitadelEnv) tokens(tb testing.TB, zc *rawClient) []byte {
	code, verifier := z.code(tb, noRedirects())
	return zc.do(http.StatusOK, http.MethodPost, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {zRedirect}}.Encode(), basicHeader(zWebID, zWebSecret))
}

func (z *zitadelEnv) accessToken(tb testing.TB, zc *rawClient) string {
	return jsonField(tb, z.tokens(tb, zc), "access_token")
}

func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// ---- Sésame's side ----

// speedEnv is a Sésame server on sqlite+memory with one confidential
// client (opaque access tokens) and a user signed in by a browser.
func speedEnv(b *testing.B) *testEnv {
	return newTestEnvWith(b, backends[0], productionCache)
}

func (r *rp) basic() string { return basicHeader(r.client.ID, r.secret) }

// ---- the figures ----

func BenchmarkSpeedDiscovery(b *testing.B) {
	benchSpeedDocument(b, "/.well-known/openid-configuration")
}
func BenchmarkSpeedJWKS(b *testing.B) { benchSpeedDocument(b, "/keys") }

// benchSpeedDocument: Sésame's document beside a bare net/http handler
// writing the same bytes with the same content type.
func benchSpeedDocument(b *testing.B, path string) {
	env := speedEnv(b)
	w := httptest.NewRecorder()
	env.ts.Config.Handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	body := w.Body.Bytes()
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	b.Cleanup(bare.Close)
	sc, rc := dialRaw(b, env.issuer), dialRaw(b, bare.URL)
	benchVersus(b,
		func(pauser) { sc.do(http.StatusOK, http.MethodGet, path, "") },
		func(pauser) { rc.do(http.StatusOK, http.MethodGet, path, "") })
}

// BenchmarkSpeedClientCredentialsOpaque: an opaque access token by client
// credentials (HTTP Basic), beside zitadel's example server issuing one to
// its service user.
func BenchmarkSpeedClientCredentialsOpaque(b *testing.B) {
	env := speedEnv(b)
	r := env.newRP(nil)
	z := newZitadelEnv(b)
	sc, zc := dialRaw(b, env.issuer), dialRaw(b, z.issuer)
	form := "grant_type=client_credentials"
	benchVersus(b,
		func(pauser) { sc.do(http.StatusOK, http.MethodPost, "/oauth/token", form, r.basic()) },
		func(pauser) {
			zc.do(http.StatusOK, http.MethodPost, "/oauth/token", form, basicHeader(zServiceID, zServiceSecret))
		})
}

// BenchmarkSpeedIntrospection: RFC 7662 introspection of a user's opaque
// access token (code flow, scopes openid profile email offline_access) by
// the client it was issued to, beside zitadel's example server. (The
// example cannot introspect its service user's tokens as active: it looks
// their subject up among its users.)
func BenchmarkSpeedIntrospection(b *testing.B) {
	env := speedEnv(b)
	env.user("sophie", pw)
	r := env.newRP(nil)
	code, verifier := r.signIn(newBrowser(b), "sophie", pw)
	tok, _, err := r.exchange(code, verifier)
	if err != nil {
		b.Fatal(err)
	}
	z := newZitadelEnv(b)
	sc, zc := dialRaw(b, env.issuer), dialRaw(b, z.issuer)
	zt := z.accessToken(b, zc)
	sForm, zForm := "token="+url.QueryEscape(tok.AccessToken), "token="+url.QueryEscape(zt)
	for _, c := range []struct {
		rc         *rawClient
		form, auth string
	}{{sc, sForm, r.basic()}, {zc, zForm, basicHeader(zWebID, zWebSecret)}} {
		if got := c.rc.do(http.StatusOK, http.MethodPost, "/oauth/introspect", c.form, c.auth); !strings.Contains(string(got), `"active":true`) {
			b.Fatalf("token not active at %s: %s", c.rc.host, got)
		}
	}
	benchVersus(b,
		func(pauser) { sc.do(http.StatusOK, http.MethodPost, "/oauth/introspect", sForm, r.basic()) },
		func(pauser) {
			zc.do(http.StatusOK, http.MethodPost, "/oauth/introspect", zForm, basicHeader(zWebID, zWebSecret))
		})
}

// BenchmarkSpeedClientCredentialsJWT: a JWT access token signed with
// RS256, beside one RSA-2048 PKCS #1 v1.5 SHA-256 signature.
func BenchmarkSpeedClientCredentialsJWT(b *testing.B) {
	env := speedEnv(b)
	r := env.newRP(func(c *store.Client) { c.TokenFormat, c.IDTokenAlg = "jwt", "RS256" })
	sc := dialRaw(b, env.issuer)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"iss":"` + env.issuer + `","sub":"x","aud":["x"],"exp":1,"iat":1,"jti":"x"}`)
	benchVersus(b,
		func(pauser) {
			sc.do(http.StatusOK, http.MethodPost, "/oauth/token", "grant_type=client_credentials", r.basic())
		},
		func(pauser) {
			sum := sha256.Sum256(payload)
			if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:]); err != nil {
				b.Fatal(err)
			}
		})
}

// BenchmarkSpeedClientCredentialsJWTFloor: the same JWT access token
// beside the issue's floor for it, "a bare net/http server doing the least
// work the figure needs": the same request (form and HTTP Basic, from the
// same client) to a handler that parses the form, checks the secret, signs
// a JWT of the same size with one RSA-2048 signature and writes the token
// response. BenchmarkSpeedClientCredentialsJWT is the stricter comparison
// with the signature alone.
func BenchmarkSpeedClientCredentialsJWTFloor(b *testing.B) {
	env := speedEnv(b)
	r := env.newRP(func(c *store.Client) { c.TokenFormat, c.IDTokenAlg = "jwt", "RS256" })
	sc := dialRaw(b, env.issuer)
	sample := jsonField(b, sc.do(http.StatusOK, http.MethodPost, "/oauth/token", "grant_type=client_credentials", r.basic()), "access_token")
	header, payload, _ := strings.Cut(sample, ".")
	payload, _, _ = strings.Cut(payload, ".")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	floor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id, secret, ok := req.BasicAuth()
		if err := req.ParseForm(); err != nil || !ok || req.PostForm.Get("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if id != r.client.ID || subtle.ConstantTimeCompare([]byte(secret), []byte(r.secret)) != 1 {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		input := header + "." + payload
		sum := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, `{"access_token":"`+input+"."+base64.RawURLEncoding.EncodeToString(sig)+`","token_type":"Bearer","expires_in":300}`)
	}))
	b.Cleanup(floor.Close)
	fc := dialRaw(b, floor.URL)
	benchVersus(b,
		func(pauser) {
			sc.do(http.StatusOK, http.MethodPost, "/oauth/token", "grant_type=client_credentials", r.basic())
		},
		func(pauser) {
			fc.do(http.StatusOK, http.MethodPost, "/oauth/token", "grant_type=client_credentials", r.basic())
		})
}

// BenchmarkSpeedCodeExchange: code + PKCE verifier + client secret →
// opaque access token, refresh token and RS256 ID token, beside zitadel's
// example server. Codes are made outside the timer, 32 at a time.
func BenchmarkSpeedCodeExchange(b *testing.B) {
	env := speedEnv(b)
	env.user("sophie", pw)
	r := env.newRP(nil)
	br := newBrowser(b)
	r.signIn(br, "sophie", pw)
	z := newZitadelEnv(b)
	zb := noRedirects()
	sc, zc := dialRaw(b, env.issuer), dialRaw(b, z.issuer)
	type pending struct{ code, verifier string }
	var sPool, zPool []pending
	benchVersus(b,
		func(m pauser) {
			if len(sPool) == 0 {
				m.pause()
				for range 32 {
					p, _, verifier := r.authorize(br)
					sPool = append(sPool, pending{p.redirectParams(b).Get("code"), verifier})
				}
				m.resume()
			}
			c := sPool[len(sPool)-1]
			sPool = sPool[:len(sPool)-1]
			sc.do(http.StatusOK, http.MethodPost, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {c.code},
				"code_verifier": {c.verifier}, "redirect_uri": {rpRedirect}}.Encode(), r.basic())
		},
		func(m pauser) {
			if len(zPool) == 0 {
				m.pause()
				for range 32 {
					code, verifier := z.code(b, zb)
					zPool = append(zPool, pending{code, verifier})
				}
				m.resume()
			}
			c := zPool[len(zPool)-1]
			zPool = zPool[:len(zPool)-1]
			zc.do(http.StatusOK, http.MethodPost, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {c.code},
				"code_verifier": {c.verifier}, "redirect_uri": {zRedirect}}.Encode(), basicHeader(zWebID, zWebSecret))
		})
}

// BenchmarkSpeedRefresh rotates a refresh token (each use takes the one
// the previous returned), beside zitadel's example server.
func BenchmarkSpeedRefresh(b *testing.B) {
	env := speedEnv(b)
	env.user("sophie", pw)
	r := env.newRP(nil)
	code, verifier := r.signIn(newBrowser(b), "sophie", pw)
	tok, _, err := r.exchange(code, verifier)
	if err != nil {
		b.Fatal(err)
	}
	z := newZitadelEnv(b)
	sc, zc := dialRaw(b, env.issuer), dialRaw(b, z.issuer)
	zrt := jsonField(b, z.tokens(b, zc), "refresh_token")
	srt := tok.RefreshToken
	benchVersus(b,
		func(pauser) {
			srt = jsonField(b, sc.do(http.StatusOK, http.MethodPost, "/oauth/token", "grant_type=refresh_token&refresh_token="+url.QueryEscape(srt), r.basic()), "refresh_token")
		},
		func(pauser) {
			zrt = jsonField(b, zc.do(http.StatusOK, http.MethodPost, "/oauth/token", "grant_type=refresh_token&refresh_token="+url.QueryEscape(zrt), basicHeader(zWebID, zWebSecret)), "refresh_token")
		})
}

// BenchmarkSpeedUserinfo: GET /userinfo with a bearer token of the code
// flow (scopes openid profile email), beside zitadel's example server.
func BenchmarkSpeedUserinfo(b *testing.B) {
	env := speedEnv(b)
	env.user("sophie", pw)
	r := env.newRP(nil)
	code, verifier := r.signIn(newBrowser(b), "sophie", pw)
	tok, _, err := r.exchange(code, verifier)
	if err != nil {
		b.Fatal(err)
	}
	z := newZitadelEnv(b)
	sc, zc := dialRaw(b, env.issuer), dialRaw(b, z.issuer)
	zat := z.accessToken(b, zc)
	sAuth, zAuth := "Authorization: Bearer "+tok.AccessToken, "Authorization: Bearer "+zat
	benchVersus(b,
		func(pauser) { sc.do(http.StatusOK, http.MethodGet, "/userinfo", "", sAuth) },
		func(pauser) { zc.do(http.StatusOK, http.MethodGet, "/userinfo", "", zAuth) })
}

// BenchmarkSpeedSignIn is one whole sign-in by a new browser with the
// production password parameters (argon2id, 19 MiB, 2 passes): authorize,
// the password page and form, the TOTP challenge page and form, the
// callback, the code exchange and userinfo; beside argon2id alone with the
// same parameters. The goal is extra-cpu-µs/op ≤ 4000.
func BenchmarkSpeedSignIn(b *testing.B) {
	env := speedEnv(b)
	env.srv.Passwords = users.Passwords{Params: users.DefaultPasswordParams()}
	env.srv.Login.Passwords = env.srv.Passwords
	r := env.newRP(nil)
	env.user("sophie", pw)
	env.srv.Flow.Networks.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	p := users.DefaultPasswordParams()
	salt := make([]byte, p.SaltLen)
	ctx := context.Background()
	i := 0
	benchVersusBlock(b, 1, // a sign-in is long: alternate each
		func(pauser) {
			i++
			signInOnce(b, r, ctx, i)
		},
		func(pauser) {
			_ = argon2.IDKey([]byte(pw), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
		})
}

// signInOnce is the i-th sign-in of sophie by a new browser from its own
// address (the per-address limit would stop a long run), with the code
// exchange and a userinfo request.
func signInOnce(tb testing.TB, r *rp, ctx context.Context, i int) {
	br := newBrowser(tb)
	br.c.Transport = forwardedFor{addr: fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff), next: http.DefaultTransport}
	code, verifier := r.signIn(br, "sophie", pw)
	tok, err := r.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		tb.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, r.env.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("userinfo: %d", resp.StatusCode)
	}
}

// BenchmarkSpeedRSS is the resident memory of this process (the server,
// and the benchmark's client, in one process: an upper bound of the
// server's) after 500 sign-ins with the production password parameters,
// one after another. It reports VmRSS before the first sign-in
// (idle-rss-MB) and after the last (rss-MB), and the peak (hwm-rss-MB),
// from /proc/self/status; the goal is rss-MB ≤ 80. RSS counts pages the
// process has touched and still holds: the Go runtime gives freed heap
// back to the system only gradually, so RSS is above the live heap
// (heap-inuse-MB).
func BenchmarkSpeedRSS(b *testing.B) {
	env := speedEnv(b)
	env.srv.Passwords = users.Passwords{Params: users.DefaultPasswordParams()}
	env.srv.Login.Passwords = env.srv.Passwords
	r := env.newRP(nil)
	env.user("sophie", pw)
	env.srv.Flow.Networks.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	ctx := context.Background()
	idle := procStatusMB(b, "VmRSS")
	i := 0
	for b.Loop() {
		for range 500 {
			i++
			signInOnce(b, r, ctx, i)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(idle, "idle-rss-MB")
	b.ReportMetric(procStatusMB(b, "VmRSS"), "rss-MB")
	b.ReportMetric(procStatusMB(b, "VmHWM"), "hwm-rss-MB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MB")
}

// procStatusMB reads a kB field of /proc/self/status, in MB (2^20 bytes).
func procStatusMB(tb testing.TB, field string) float64 {
	return procFileMB(tb, "/proc/self/status", field)
}

// procFileMB reads a kB field of a /proc/…/status file, in MB.
func procFileMB(tb testing.TB, file, field string) float64 {
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Skipf("no %s: %v", file, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb / 1024
		}
	}
	tb.Fatalf("no %s in %s", field, file)
	return 0
}

// BenchmarkSpeedServeRSS measures a real `sesame serve` process (built
// with `go build`, SQLite and memory in a temporary directory, its own
// port): its VmRSS idle and after 500 password checks with the production
// parameters, each by a new browser from its own address (X-Forwarded-For
// from a trusted loopback proxy): open the demo's sign-in, post the form.
// The usernames are unknown, so each check is the dummy argon2id hash of
// the same cost as a real one; the password is the memory-heavy step of a
// sign-in. rss-MB is the process's resident set: pages it touched and
// still holds (the binary's, the heap's, the hash buffer's).
func BenchmarkSpeedServeRSS(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and runs sesame")
	}
	dir := b.TempDir()
	bin := dir + "/sesame"
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/sesame").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SESAME_HTTP_ADDR="+addr, "SESAME_ISSUER=http://"+addr, "SESAME_TRUSTED_PROXIES=127.0.0.0/8")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 600 {
			b.Fatal("sesame serve did not start")
		}
		time.Sleep(50 * time.Millisecond) // waiting for another process to listen, not for time
	}
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	idle := procFileMB(b, status, "VmRSS")
	csrfRE := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	flowRE := regexp.MustCompile(`name="flow" value="([^"]+)"`)
	i := 0
	for b.Loop() {
		for range 500 {
			i++
			br := newBrowser(b)
			br.c.Transport = forwardedFor{addr: fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff), next: http.DefaultTransport}
			resp, err := br.c.Get(base + "/demo/login")
			if err != nil {
				b.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			csrf, flow := csrfRE.FindSubmatch(page), flowRE.FindSubmatch(page)
			if csrf == nil || flow == nil {
				b.Fatalf("no sign-in form: %d", resp.StatusCode)
			}
			resp, err = br.c.PostForm(base+"/login", url.Values{"csrf_token": {string(csrf[1])}, "flow": {string(flow[1])},
				"username": {fmt.Sprintf("nobody%d", i)}, "password": {"wrong password"}})
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				b.Fatalf("wrong password: %d", resp.StatusCode)
			}
		}
	}
	b.ReportMetric(idle, "idle-rss-MB")
	b.ReportMetric(procFileMB(b, status, "VmRSS"), "rss-MB")
	b.ReportMetric(procFileMB(b, status, "VmHWM"), "hwm-rss-MB")
}
