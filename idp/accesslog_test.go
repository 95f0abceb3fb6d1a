package idp_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/sesame-idp/sesame/idp"
)

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

// The access log at info leaves out the successes of the machine
// endpoints (discovery, JWKS, token, introspection, userinfo, health),
// which are called at every token use, and keeps their errors, with the
// request id, and every page request.
func TestAccessLogQuietOnHotSuccesses(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testAccessLog(t, b) })
	}
}

func testAccessLog(t *testing.T, b backend) {
	{
		var logs lockedBuffer
		env := newTestEnvWith(t, b, func(s *idp.Server) {
			s.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		})
		r := env.newRP(nil)
		logs.take()
		get := func(path string, header ...string) int {
			req, _ := http.NewRequest(http.MethodGet, env.issuer+path, nil)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for _, path := range []string{"/.well-known/openid-configuration", "/keys", "/healthz"} {
			if got := get(path); got != http.StatusOK {
				t.Fatalf("%s: %d", path, got)
			}
		}
		if status, _ := r.postForm("/oauth/token", map[string][]string{"grant_type": {"client_credentials"}}); status != http.StatusOK {
			t.Fatalf("client credentials: %d", status)
		}
		if got := logs.take(); strings.Contains(got, "http request") {
			t.Errorf("successes of hot endpoints logged at info:\n%s", got)
		}

		if got := get("/userinfo", "Authorization", "Bearer nope", "X-Request-Id", "req-userinfo-1"); got != http.StatusUnauthorized {
			t.Fatalf("userinfo with a bad token: %d", got)
		}
		if got := logs.take(); !strings.Contains(got, "http request") || !strings.Contains(got, "request_id=req-userinfo-1") || !strings.Contains(got, "status=401") {
			t.Errorf("an error of a hot endpoint is not logged with its request id:\n%s", got)
		}
		if got := get("/login?id=x", "X-Request-Id", "req-page-1"); got >= 500 {
			t.Fatalf("login page: %d", got)
		}
		if got := logs.take(); !strings.Contains(got, "request_id=req-page-1") {
			t.Errorf("a page request is not logged at info:\n%s", got)
		}
	}
}
