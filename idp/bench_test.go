//go:build unix

package idp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sesame-idp/sesame/config"
	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// The benchmarks drive the real server in process, on each backend, and
// report besides ns/op the process's CPU time per operation (cpu-µs/op:
// user + system time of every thread, so the client's share and the
// server's together; the PostgreSQL and Redis servers are other processes
// and not counted). Allocations are the client's and the server's too.
//
//	go test ./idp/ -run '^$' -bench . -benchtime 200x
//
// with SESAME_TEST_POSTGRES_URL and SESAME_TEST_REDIS_URL set for the
// postgres+redis rows.

// processCPU is the CPU time this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter adds up the process CPU time of the timed part of a benchmark;
// pause and resume also stop and start the benchmark's timer.
type cpuMeter struct {
	b       *testing.B
	total   time.Duration
	started time.Duration
}

// newCPUMeter starts measuring; call it just before the b.Loop loop.
func newCPUMeter(b *testing.B) *cpuMeter {
	b.ReportAllocs()
	return &cpuMeter{b: b, started: processCPU()}
}

func (m *cpuMeter) pause() {
	m.b.StopTimer()
	m.total += processCPU() - m.started
}

func (m *cpuMeter) resume() {
	m.started = processCPU()
	m.b.StartTimer()
}

// report ends the measure; call it after the loop.
func (m *cpuMeter) report() {
	m.total += processCPU() - m.started
	if m.b.N > 0 {
		m.b.ReportMetric(float64(m.total.Nanoseconds())/1e3/float64(m.b.N), "cpu-µs/op")
	}
}

// benchEachBackend runs f on a fresh environment of each backend.
func benchEachBackend(b *testing.B, f func(b *testing.B, env *testEnv)) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) { f(b, newTestEnvWith(b, be, productionCache)) })
	}
}

// productionCache sets the cache of clients and users as sesame serve does
// by default (config database.cache_ttl).
func productionCache(s *idp.Server) { s.CacheTTL = config.Default().Database.CacheTTL }

// benchGET measures GET path on h called directly with a recorder (the
// handler's own cost), then over loopback HTTP with keep-alive.
func benchGET(b *testing.B, h http.Handler, baseURL, path string) {
	b.Run("handler", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		m := newCPUMeter(b)
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
		m.report()
	})
	b.Run("http", func(b *testing.B) {
		c := &http.Client{Transport: &http.Transport{}}
		defer c.CloseIdleConnections()
		m := newCPUMeter(b)
		for b.Loop() {
			resp, err := c.Get(baseURL + path)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		m.report()
	})
}

func BenchmarkDiscovery(b *testing.B) {
	benchEachBackend(b, func(b *testing.B, env *testEnv) {
		benchGET(b, env.ts.Config.Handler, env.issuer, "/.well-known/openid-configuration")
	})
}

func BenchmarkJWKS(b *testing.B) {
	benchEachBackend(b, func(b *testing.B, env *testEnv) {
		benchGET(b, env.ts.Config.Handler, env.issuer, "/keys")
	})
}

// BenchmarkBareHandler is the floor for the two above: a plain net/http
// handler writing the same bytes with the same content type.
func BenchmarkBareHandler(b *testing.B) {
	env := newTestEnv(b, backends[0])
	for _, doc := range []struct{ name, path string }{
		{"discovery", "/.well-known/openid-configuration"},
		{"jwks", "/keys"},
	} {
		w := httptest.NewRecorder()
		env.ts.Config.Handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, doc.path, nil))
		body := w.Body.Bytes()
		bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		})
		ts := httptest.NewServer(bare)
		b.Run(doc.name, func(b *testing.B) { benchGET(b, bare, ts.URL, doc.path) })
		ts.Close()
	}
}

func BenchmarkClientCredentials(b *testing.B) {
	benchEachBackend(b, func(b *testing.B, env *testEnv) {
		for _, v := range []struct{ name, format, alg string }{
			{"opaque", "opaque", "RS256"},
			{"jwt", "jwt", "RS256"},
			{"jwt-ES256", "jwt", "ES256"},
		} {
			r := env.newRP(func(c *store.Client) { c.TokenFormat, c.IDTokenAlg = v.format, v.alg })
			b.Run(v.name, func(b *testing.B) {
				cc := clientcredentials.Config{ClientID: r.client.ID, ClientSecret: r.secret, TokenURL: r.provider.Endpoint().TokenURL, AuthStyle: oauth2.AuthStyleInHeader}
				ctx := context.Background()
				m := newCPUMeter(b)
				for b.Loop() {
					if _, err := cc.Token(ctx); err != nil {
						b.Fatal(err)
					}
				}
				m.report()
			})
		}
	})
}

// BenchmarkCodeExchange measures the token request of the code flow
// (code + PKCE verifier + client secret → opaque access token, refresh
// token and an ID token signed with RS256 or ES256). Codes are made
// outside the timer, in batches, from a signed-in browser's session.
func BenchmarkCodeExchange(b *testing.B) {
	benchEachBackend(b, func(b *testing.B, env *testEnv) {
		env.user("sophie", pw)
		for _, alg := range []string{"RS256", "ES256"} {
			r := env.newRP(func(c *store.Client) { c.IDTokenAlg = alg })
			br := newBrowser(b)
			r.signIn(br, "sophie", pw)
			b.Run(alg, func(b *testing.B) {
				br.t = b
				type pending struct{ code, verifier string }
				var pool []pending
				ctx := context.Background()
				m := newCPUMeter(b)
				for b.Loop() {
					if len(pool) == 0 {
						m.pause()
						for range 50 {
							p, _, verifier := r.authorize(br)
							pool = append(pool, pending{p.redirectParams(b).Get("code"), verifier})
						}
						m.resume()
					}
					c := pool[len(pool)-1]
					pool = pool[:len(pool)-1]
					if _, err := r.conf.Exchange(ctx, c.code, oauth2.VerifierOption(c.verifier)); err != nil {
						b.Fatal(err)
					}
				}
				m.report()
			})
		}
	})
}

// BenchmarkRefresh rotates a refresh token: each operation uses the one
// the previous returned.
func BenchmarkRefresh(b *testing.B) {
	benchEachBackend(b, func(b *testing.B, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		code, verifier := r.signIn(newBrowser(b), "sophie", pw)
		tok, _, err := r.exchange(code, verifier)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		rt := tok.RefreshToken
		m := newCPUMeter(b)
		for b.Loop() {
			t, err := r.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
			if err != nil {
				b.Fatal(err)
			}
			rt = t.RefreshToken
		}
		m.report()
	})
}

func BenchmarkUserinfo(b *testing.B) {
	benchEachBackend(b, func(b *testing.B, env *testEnv) {
		r := env.newRP(nil)
		env.user("sophie", pw)
		code, verifier := r.signIn(newBrowser(b), "sophie", pw)
		tok, _, err := r.exchange(code, verifier)
		if err != nil {
			b.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, env.issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		m := newCPUMeter(b)
		for b.Loop() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		m.report()
	})
}

// BenchmarkFullFlow is one whole sign-in by a new browser: authorize, the
// password page and form, the TOTP challenge page and form, the callback,
// and the code exchange. The password hash uses the harness's cheap
// argon2id parameters; BenchmarkFullFlowOWASP uses the production ones.
func BenchmarkFullFlow(b *testing.B) {
	benchEachBackend(b, func(b *testing.B, env *testEnv) { benchFullFlow(b, env) })
}

// BenchmarkFullFlowOWASP is BenchmarkFullFlow with
// users.DefaultPasswordParams (argon2id, 19 MiB, 2 passes).
func BenchmarkFullFlowOWASP(b *testing.B) {
	benchEachBackend(b, func(b *testing.B, env *testEnv) {
		// Server.Handler copied Passwords into the login handler: set both,
		// before the user's password is hashed.
		env.srv.Passwords = users.Passwords{Params: users.DefaultPasswordParams()}
		env.srv.Login.Passwords = env.srv.Passwords
		benchFullFlow(b, env)
	})
}

func benchFullFlow(b *testing.B, env *testEnv) {
	r := env.newRP(nil)
	env.user("sophie", pw)
	// Each sign-in comes from its own address (X-Forwarded-For, believed
	// from loopback here), as different people's would: otherwise the
	// per-address limit on attempts (300 per 15 minutes) would stop a long
	// run.
	env.srv.Flow.Networks.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	ctx := context.Background()
	i := 0
	m := newCPUMeter(b)
	for b.Loop() {
		i++
		br := newBrowser(b)
		br.c.Transport = forwardedFor{addr: fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff), next: http.DefaultTransport}
		code, verifier := r.signIn(br, "sophie", pw)
		if _, err := r.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
			b.Fatal(err)
		}
	}
	m.report()
}

// forwardedFor sends requests as if from addr, through a trusted proxy.
type forwardedFor struct {
	addr string
	next http.RoundTripper
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return f.next.RoundTrip(r)
}
