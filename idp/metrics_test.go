package idp_test

import (
	"bufio"
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/store"
)

// scrape reads /metrics into series → value ("name{labels}" as exposed).
func scrape(t *testing.T, u string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// fixedRequests stands for the provisioning store's counts.
type fixedRequests struct{}

func (fixedRequests) CountAccountRequests(context.Context, time.Time) (store.AccountRequestCounts, error) {
	return store.AccountRequestCounts{ByStatus: map[store.AccountRequestStatus]int64{"submitted": 3, "approved": 1}, Overdue: 2}, nil
}

// TestMetricsMove: after sign-ins, wrong passwords and codes, a throttled
// attempt, a step-up, code, refresh and client-credentials grants, a
// refresh reuse and a queued email, every family moves.
func TestMetricsMove(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testMetricsMove(t, b) })
	}
}

func testMetricsMove(t *testing.T, b backend) {
	{
		env := newTestEnvWith(t, b, func(s *idp.Server) {
			cfg := regulate.DefaultConfig()
			cfg.FreeFailures = 2
			s.Regulate = cfg
			s.AccountRequests = fixedRequests{}
		})
		env.srv.Flow.Networks = session.Networks{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
		before := scrape(t, env.issuer+"/metrics")
		r := env.newRP(nil)
		env.user("sophie", pw)
		env.user("marc", pw)

		// Two wrong passwords (free), then a throttled third.
		for range 3 {
			bb := newBrowser(t)
			p, _, _ := r.authorize(bb)
			submitLogin(t, bb, p, "marc", "not the password")
		}
		// A wrong code, then a sign-in.
		br := newBrowser(t)
		br.xff = "192.0.2.10"
		p, state, verifier := r.authorize(br)
		p = submitLogin(t, br, p, "sophie", pw)
		action, vals := p.form(t, "mfa")
		vals.Set("code", "000000")
		if vals.Get("code") == env.nextCode("sophie") {
			vals.Set("code", "111111")
		}
		p = br.post(action, vals)
		p = finishMFA(t, env, br, p, "sophie")
		q := p.redirectParams(t)
		if q.Get("state") != state {
			t.Fatalf("state %q", q.Get("state"))
		}
		tok, _, err := r.exchange(q.Get("code"), verifier)
		if err != nil {
			t.Fatal(err)
		}
		// Rotation, then reuse.
		refresh := func(rt string) (*oauth2.Token, error) {
			return r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
		}
		if _, err := refresh(tok.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if _, err := refresh(tok.RefreshToken); err == nil {
			t.Fatal("a rotated refresh token was accepted")
		}
		if status, body := r.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}); status != http.StatusOK {
			t.Fatalf("client_credentials: %d %s", status, body)
		}
		// A step-up from another network.
		br.xff = "198.51.100.7"
		p, _, _ = r.authorize(br)
		finishMFA(t, env, br, p, "sophie")
		// A sensitive change on /account without a recent factor.
		env.offset.Add(int64(11 * time.Minute))
		if p := br.get(env.issuer + "/account/methods/add"); p.status != http.StatusOK || !p.has("login") {
			t.Fatalf("/account/methods/add without a recent factor: %d, want the sign-in page", p.status)
		}
		// A message waiting for a minute.
		if err := env.store.EnqueueOutbox(context.Background(), store.OutboxMessage{Kind: "email", Payload: []byte(`{}`),
			NextAttemptAt: env.now().Add(time.Hour), CreatedAt: env.now().Add(-time.Minute).UTC()}); err != nil {
			t.Fatal(err)
		}

		after := scrape(t, env.issuer+"/metrics")
		moved := func(series string, by float64) {
			t.Helper()
			if d := after[series] - before[series]; d < by {
				t.Errorf("%s moved by %v, want at least %v (before %v)", series, d, by, before[series])
			}
		}
		moved(`sesame_signins_total{result="succeeded"}`, 2)
		moved(`sesame_signins_total{result="bad_password"}`, 2)
		moved(`sesame_signins_total{result="throttled"}`, 1)
		moved(`sesame_throttled_total{reason="delay",step="password"}`, 1)
		moved(`sesame_second_factor_verifications_total{method="totp",result="ok"}`, 2)
		moved(`sesame_second_factor_verifications_total{method="totp",result="failed"}`, 1)
		moved(`sesame_step_ups_total{reason="new_network"}`, 1)
		moved(`sesame_step_ups_total{reason="factor_window"}`, 1)
		moved(`sesame_tokens_issued_total{grant="authorization_code"}`, 1)
		moved(`sesame_tokens_issued_total{grant="refresh_token"}`, 1)
		moved(`sesame_tokens_issued_total{grant="client_credentials"}`, 1)
		moved(`sesame_refresh_reuse_detected_total`, 1)
		moved(`sesame_outbox_backlog`, 1)
		moved(`sesame_outbox_oldest_age_seconds`, 59)
		moved(`sesame_http_requests_total{route="GET /authorize",status="302"}`, 4)
		moved(`sesame_http_requests_total{route="POST /login",status="429"}`, 1)
		moved(`sesame_http_request_duration_seconds_count{route="GET /authorize"}`, 4)
		if after[`sesame_account_requests{status="submitted"}`] != 3 || after[`sesame_account_requests_overdue`] != 2 {
			t.Errorf("account requests: submitted %v, overdue %v; want 3, 2",
				after[`sesame_account_requests{status="submitted"}`], after[`sesame_account_requests_overdue`])
		}
		if _, ok := before[`sesame_second_factor_challenges_voided_total`]; !ok {
			t.Error("sesame_second_factor_challenges_voided_total not exposed")
		}
		if _, ok := before[`sesame_code_replays_total`]; !ok {
			t.Error("sesame_code_replays_total not exposed")
		}
	}
}
