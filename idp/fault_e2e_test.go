package idp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/ephemeral"
	eredis "github.com/sesame-idp/sesame/idp/ephemeral/redis"
	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/store/postgres"
	"github.com/sesame-idp/sesame/internal/testdeps"
)

// faultRun drives a Sésame on a private PostgreSQL and Redis that the test
// stops and starts.
type faultRun struct {
	t     *testing.T
	env   *testEnv
	rp    *rp
	pg    *testdeps.Postgres
	redis *testdeps.Redis
	users int
	// refresh holds, per family, the refresh token value last handed out.
	refresh map[string]string
	// outbox holds the ids of the messages committed so far.
	outbox []string
	// codes holds the codes exchanged so far, with their verifiers.
	codes [][2]string
}

const faultPassword = "correct horse battery"

// nextUser creates a user with an authenticator for one sign-in (each
// sign-in has its own user: the clock never jumps for a new TOTP step).
func (f *faultRun) nextUser() string {
	f.users++
	name := fmt.Sprintf("nurse%d", f.users)
	f.env.user(name, faultPassword)
	return name
}

// verdict classifies an answer: "ok" (2xx, 3xx), "unavailable" (503, and
// temporarily_unavailable when JSON, with nothing of the dependency's
// error in it), or what else it was.
func verdict(status int, body string) string {
	switch {
	case status < 400:
		return "ok"
	case status == http.StatusServiceUnavailable:
		for _, leak := range []string{"dial tcp", "connection refused", "unavailable:", "127.0.0.1:"} {
			if strings.Contains(body, leak) {
				return "503 leaking " + leak
			}
		}
		if strings.HasPrefix(strings.TrimSpace(body), "{") {
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal([]byte(body), &e) != nil || e.Error != oidcstore.TemporarilyUnavailable {
				return "503 without temporarily_unavailable: " + body
			}
		}
		return "unavailable"
	}
	if len(body) > 300 {
		body = body[:300]
	}
	return fmt.Sprintf("%d %s", status, body)
}

// expect fails unless the answer is one of want ("refused": any 4xx, for
// what a Redis restart lost).
func (f *faultRun) expect(what string, status int, body string, want ...string) {
	f.t.Helper()
	v := verdict(status, body)
	for _, w := range want {
		if v == w || w == "refused" && status >= 400 && status < 500 {
			return
		}
	}
	f.t.Errorf("%s: %s, want %v", what, v, want)
}

// signIn runs a whole sign-in and exchange; it fails the test on any
// error.
func (f *faultRun) signIn(b *browser) (tok tokens) {
	f.t.Helper()
	code, verifier := f.rp.signIn(b, f.nextUser(), faultPassword)
	return f.exchange(code, verifier, "ok")
}

type tokens struct{ access, refresh string }

// exchange trades a code; want is the expected verdict.
func (f *faultRun) exchange(code, verifier string, want ...string) tokens {
	f.t.Helper()
	status, body := f.rp.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {verifier}})
	f.expect("code exchange", status, body, want...)
	return f.tokens(status, body, code, verifier)
}

func (f *faultRun) tokens(status int, body, code, verifier string) tokens {
	if status != http.StatusOK {
		return tokens{}
	}
	var r struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		f.t.Fatal(err)
	}
	if code != "" {
		f.codes = append(f.codes, [2]string{code, verifier})
	}
	rt, err := f.env.store.GetRefreshTokenByHash(context.Background(), oidcstore.HashToken(r.Refresh))
	if err != nil {
		f.t.Fatalf("refresh token just issued: %v", err)
	}
	f.refresh[rt.Family] = r.Refresh
	return tokens{access: r.Access, refresh: r.Refresh}
}

// refreshToken rotates tok; want is the expected verdict.
func (f *faultRun) refreshToken(tok tokens, want ...string) tokens {
	f.t.Helper()
	status, body := f.rp.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.refresh}})
	f.expect("refresh", status, body, want...)
	if status != http.StatusOK {
		return tok
	}
	return f.tokens(status, body, "", "")
}

func (f *faultRun) userinfo(tok tokens, want ...string) {
	f.t.Helper()
	status, body := f.rp.userinfo(tok.access, http.MethodGet)
	f.expect("userinfo", status, body, want...)
}

// readyz is the status of /readyz (0 when it could not be asked; safe
// from any goroutine).
func (f *faultRun) readyz() int {
	resp, err := http.Get(f.env.issuer + "/readyz")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// waitReady polls /readyz until it answers 200: recovery without a
// restart of Sésame.
func (f *faultRun) waitReady(what string) {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for f.readyz() != http.StatusOK {
		if time.Now().After(deadline) {
			f.t.Fatalf("/readyz not 200 within 30 s of %s coming back", what)
		}
		time.Sleep(50 * time.Millisecond) // polling a readiness condition
	}
}

// commitOutbox commits n outbox messages.
func (f *faultRun) commitOutbox(n int) {
	f.t.Helper()
	for range n {
		key := fmt.Sprintf("fault-test:%d", len(f.outbox))
		err := f.env.store.InTx(context.Background(), func(tx store.Tx) error {
			return notify.EnqueueEmail(context.Background(), tx, key, notify.Email{
				To: "nurse@clinic.example", Subject: "Test", Text: "Bonjour", Lang: "fr-CA"}, time.Now())
		})
		if err != nil {
			f.t.Fatalf("commit an outbox message: %v", err)
		}
		id := notify.OutboxID(key)
		f.outbox = append(f.outbox, id)
	}
}

// durable checks that every refresh token handed out and every outbox
// message committed is still there, and usable.
func (f *faultRun) durable(when string) {
	f.t.Helper()
	ctx := context.Background()
	for family, value := range f.refresh {
		rt, err := f.env.store.GetRefreshTokenByHash(ctx, oidcstore.HashToken(value))
		if err != nil || rt.Family != family || !rt.RevokedAt.IsZero() || !rt.RotatedAt.IsZero() {
			f.t.Errorf("%s: refresh token of family %s: %+v %v, want it live", when, family, rt, err)
		}
	}
	for _, id := range f.outbox {
		if _, err := f.env.store.GetOutboxMessage(ctx, id); err != nil {
			f.t.Errorf("%s: outbox message %s: %v", when, id, err)
		}
	}
}

// singleUse checks that no code exchanged so far is accepted again.
func (f *faultRun) singleUse(when string) {
	f.t.Helper()
	for _, c := range f.codes {
		status, body := f.rp.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"},
			"code": {c[0]}, "redirect_uri": {rpRedirect}, "code_verifier": {c[1]}})
		if status == http.StatusOK || status >= 500 {
			f.t.Errorf("%s: a used code came back: %d %s", when, status, body)
		}
	}
	f.codes = nil
}

// The acceptance test of the faults (issue 12): Redis, then PostgreSQL,
// stop under a run of sign-ins, token exchanges, userinfo and refreshes.
// During each outage every answer is a success or a 503 /
// temporarily_unavailable (never a 400, 403 or 500, never the
// dependency's text) and /readyz says 503; after it, without restarting
// Sésame, everything works again; nothing committed is lost; no code, TOTP
// step or refresh token is accepted twice. A Redis restart logs people
// out at most: a code or a sign-in in progress is lost, the refresh
// tokens (PostgreSQL) are not.
func TestFaultsRestartRedisThenPostgres(t *testing.T) {
	pg := testdeps.StartPostgres(t)
	rd := testdeps.StartRedis(t)
	private := backend{"private", func(t testing.TB, sealer *seal.Sealer) (store.Store, ephemeral.Store) {
		ctx := context.Background()
		db, err := postgres.OpenWith(ctx, pg.URL(), postgres.Options{Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		r, err := eredis.OpenWith(ctx, rd.URL(), "sesame:", sealer, eredis.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return db, r
	}}
	env := newTestEnvWith(t, private, func(s *idp.Server) {
		s.Checks = []idp.Check{{Name: "database", Ping: s.Store.Ping}, {Name: "ephemeral", Ping: s.Ephemeral.Ping}}
		s.ReadyTimeout = time.Second
	})
	f := &faultRun{t: t, env: env, rp: env.newRP(nil), pg: pg, redis: rd, refresh: map[string]string{}}

	// Before: everything works.
	var held []tokens
	var firstRefresh tokens
	for range 3 {
		tok := f.signIn(newBrowser(t))
		f.userinfo(tok, "ok")
		firstRefresh = tok
		held = append(held, f.refreshToken(tok, "ok"))
	}
	f.commitOutbox(5)
	if s := f.readyz(); s != http.StatusOK {
		t.Fatalf("/readyz before the outages: %d", s)
	}

	t.Run("redis", func(t *testing.T) {
		f.t = t
		// Prepared before the outage: a code not yet exchanged, a sign-in
		// at the password page, a TOTP code accepted (its step is used).
		pendingCode, pendingVerifier := f.rp.signIn(newBrowser(t), f.nextUser(), faultPassword)
		midFlow := newBrowser(t)
		loginPage, _, _ := f.rp.authorize(midFlow)
		totpUser := f.nextUser()
		tb := newBrowser(t)
		p, _, _ := f.rp.authorize(tb)
		p = submitLogin(t, tb, p, totpUser, faultPassword)
		action, vals := p.form(t, "mfa")
		usedTOTP := f.env.nextCode(totpUser)
		vals.Set("code", usedTOTP)
		if q := tb.post(action, vals).redirectParams(t); q.Get("code") == "" {
			t.Fatal("no code after the TOTP")
		}

		load, stop, results := f.startLoad(30)
		rd.Stop()
		if s := f.readyz(); s != http.StatusServiceUnavailable {
			t.Errorf("/readyz with Redis down: %d, want 503", s)
		}
		for i, tok := range held {
			f.userinfo(tok, "unavailable")
			held[i] = f.refreshToken(tok, "unavailable")
		}
		p, _, _ = f.rp.authorize(newBrowser(t))
		f.expect("authorize", p.status, p.body, "unavailable")
		p = submitLogin(t, midFlow, loginPage, f.nextUser(), faultPassword)
		f.expect("password", p.status, p.body, "unavailable")
		f.exchange(pendingCode, pendingVerifier, "unavailable")
		status, body := f.rp.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}})
		f.expect("client credentials", status, body, "unavailable")
		status, body = f.rp.postForm("/oauth/introspect", url.Values{"token": {held[0].access}})
		f.expect("introspection", status, body, "unavailable")
		f.durable("Redis down")

		rd.Start() // empty: what Redis held is gone
		f.waitReady("Redis")
		upAt := time.Now()
		// Logged out at most: the code and the sign-in in progress are
		// gone, and so are the access tokens.
		f.exchange(pendingCode, pendingVerifier, "refused")
		f.userinfo(held[0], "refused")
		f.singleUse("after the Redis restart")
		// The refresh tokens are durable: every family goes on.
		for i, tok := range held {
			held[i] = f.refreshToken(tok, "ok")
			f.userinfo(held[i], "ok")
		}
		f.durable("Redis back")
		// The TOTP step used before the restart stays used (PostgreSQL).
		tb = newBrowser(t)
		p, _, _ = f.rp.authorize(tb)
		p = submitLogin(t, tb, p, totpUser, faultPassword)
		action, vals = p.form(t, "mfa")
		vals.Set("code", usedTOTP)
		if p = tb.post(action, vals); p.status < 400 || p.status >= 500 {
			t.Errorf("a TOTP code used before the Redis restart: %d, want it refused", p.status)
		}
		for range 3 {
			tok := f.signIn(newBrowser(t))
			f.userinfo(tok, "ok")
			held = append(held, f.refreshToken(tok, "ok"))
		}
		f.judgeLoad(f.stopLoad(load, stop, results, upAt), upAt, true)
	})

	t.Run("postgres", func(t *testing.T) {
		f.t = t
		f.commitOutbox(5)
		pendingCode, pendingVerifier := f.rp.signIn(newBrowser(t), f.nextUser(), faultPassword)
		challengeUser := f.nextUser()
		cb := newBrowser(t)
		p, _, _ := f.rp.authorize(cb)
		challenge := submitLogin(t, cb, p, challengeUser, faultPassword)
		if !challenge.has("mfa") {
			t.Fatalf("no challenge: %d", challenge.status)
		}
		signedIn := newBrowser(t)
		f.signIn(signedIn)

		load, stop, results := f.startLoad(30)
		pg.Stop()
		if s := f.readyz(); s != http.StatusServiceUnavailable {
			t.Errorf("/readyz with PostgreSQL down: %d, want 503", s)
		}
		for i, tok := range held {
			f.userinfo(tok, "unavailable")
			held[i] = f.refreshToken(tok, "unavailable")
		}
		p, _, _ = f.rp.authorize(newBrowser(t))
		f.expect("authorize", p.status, p.body, "unavailable")
		p, _, _ = f.rp.authorize(signedIn)
		f.expect("authorize, signed in", p.status, p.body, "unavailable")
		action, vals := challenge.form(t, "mfa")
		vals.Set("code", f.env.nextCode(challengeUser))
		p = cb.post(action, vals)
		f.expect("TOTP", p.status, p.body, "unavailable")
		f.exchange(pendingCode, pendingVerifier, "unavailable")
		status, body := f.rp.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}})
		f.expect("client credentials", status, body, "unavailable")

		pg.Start()
		f.waitReady("PostgreSQL")
		upAt := time.Now()
		// Nothing was refused for good: the code, the challenge, the
		// tokens work now.
		f.exchange(pendingCode, pendingVerifier, "ok")
		vals.Set("code", f.env.nextCode(challengeUser))
		if q := cb.post(action, vals).redirectParams(t); q.Get("code") == "" {
			t.Error("the challenge after the outage gave no code")
		}
		for i, tok := range held {
			f.userinfo(tok, "ok")
			held[i] = f.refreshToken(tok, "ok")
		}
		f.durable("PostgreSQL back")
		f.judgeLoad(f.stopLoad(load, stop, results, upAt), upAt, false)
		for range 3 {
			tok := f.signIn(newBrowser(t))
			f.userinfo(tok, "ok")
			f.refreshToken(tok, "ok")
		}
		// Last (a replayed code revokes what it issued): no code, and no
		// rotated refresh token, is accepted twice.
		f.singleUse("after the PostgreSQL restart")
		f.refreshToken(firstRefresh, "refused")
	})
}

// startLoad creates n users and starts the background flows on them.
func (f *faultRun) startLoad(n int) (load chan flowResult, stop chan struct{}, results *[]flowResult) {
	users := make([]string, n)
	for i := range users {
		users[i] = f.nextUser()
	}
	load, stop, results = make(chan flowResult, n), make(chan struct{}), &[]flowResult{}
	go f.loadFlows(users, stop, load)
	return load, stop, results
}

// stopLoad lets the background flows go on until two of them have begun
// after upAt (or the users ran out), stops them and returns every result.
func (f *faultRun) stopLoad(load chan flowResult, stop chan struct{}, results *[]flowResult, upAt time.Time) []flowResult {
	after := 0
	for r := range load {
		*results = append(*results, r)
		if r.start.After(upAt) {
			if after++; after == 2 {
				close(stop)
				for r := range load {
					*results = append(*results, r)
				}
				return *results
			}
		}
	}
	close(stop)
	return *results
}

// flowResult is one sign-in of the background load: when it began, and
// the step at which it stopped with its verdict ("ok" when it went
// through).
type flowResult struct {
	start   time.Time
	step    string
	verdict string
}

// loadFlows runs whole flows (authorize, password, TOTP, exchange,
// userinfo, refresh) one after the other, each with one of users, until
// stop is closed or the users run out; after a failed flow it waits for
// /readyz before the next. It never fails the test itself:
// the results are judged by judgeLoad.
func (f *faultRun) loadFlows(users []string, stop <-chan struct{}, out chan<- flowResult) {
	defer close(out)
	for _, u := range users {
		select {
		case <-stop:
			return
		default:
		}
		start := time.Now()
		step, v := f.oneFlow(u)
		out <- flowResult{start: start, step: step, verdict: v}
		if v != "ok" {
			// One flow per outage is enough: the next begins once Sésame
			// is ready again (or when told to stop).
			for f.readyz() != http.StatusOK {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond): // polling a readiness condition
				}
			}
		}
	}
}

// oneFlow runs one whole flow without failing the test.
func (f *faultRun) oneFlow(username string) (step, v string) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), "http://localhost:9999/") {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	do := func(req *http.Request) (page, error) {
		resp, err := c.Do(req)
		if err != nil {
			return page{}, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body), header: resp.Header}, nil
	}
	post := func(u string, form url.Values, basic bool) (page, error) {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(url.QueryEscape(f.rp.client.ID), url.QueryEscape(f.rp.secret))
		}
		return do(req)
	}
	// check judges one step: "" to go on.
	check := func(name string, p page, err error, ok func(page) bool) string {
		step = name
		switch {
		case err != nil:
			return "transport: " + err.Error()
		case p.status >= 400:
			return verdict(p.status, p.body)
		case !ok(p):
			return fmt.Sprintf("unexpected %d at %s", p.status, p.url)
		}
		return ""
	}
	state, verifier := uuid.NewString(), oauth2.GenerateVerifier()
	req, _ := http.NewRequest(http.MethodGet, f.rp.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), gooidc.Nonce("n-"+state)), nil)
	p, err := do(req)
	if v := check("authorize", p, err, func(p page) bool { return p.has("login") }); v != "" {
		return step, v
	}
	action, vals := p.form(f.t, "login")
	vals.Set("username", username)
	vals.Set("password", faultPassword)
	p, err = post(action, vals, false)
	if v := check("password", p, err, func(p page) bool { return p.has("mfa") }); v != "" {
		return step, v
	}
	action, vals = p.form(f.t, "mfa")
	vals.Set("code", f.env.nextCode(username))
	p, err = post(action, vals, false)
	var code string
	if v := check("totp", p, err, func(p page) bool {
		loc, _ := url.Parse(p.header.Get("Location"))
		code = loc.Query().Get("code")
		return code != ""
	}); v != "" {
		return step, v
	}
	p, err = post(f.env.issuer+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {rpRedirect}, "code_verifier": {verifier}}, true)
	var tok struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if v := check("exchange", p, err, func(p page) bool { return json.Unmarshal([]byte(p.body), &tok) == nil && tok.Refresh != "" }); v != "" {
		return step, v
	}
	req, _ = http.NewRequest(http.MethodGet, f.env.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Access)
	p, err = do(req)
	if v := check("userinfo", p, err, func(p page) bool { return strings.Contains(p.body, `"sub"`) }); v != "" {
		return step, v
	}
	p, err = post(f.env.issuer+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.Refresh}}, true)
	if v := check("refresh", p, err, func(p page) bool { return strings.Contains(p.body, "refresh_token") }); v != "" {
		return step, v
	}
	return "done", "ok"
}

// judgeLoad checks the background flows of one outage: every answer a
// success or a 503 (a refusal only for a flow that began before Redis came
// back empty, when lostOnRestart), and every flow begun once Sésame was
// ready again went through.
func (f *faultRun) judgeLoad(results []flowResult, upAt time.Time, lostOnRestart bool) {
	f.t.Helper()
	var during, after, refusedBefore int
	for _, r := range results {
		began := "during the outage"
		if r.start.After(upAt) {
			began = "after the recovery"
		}
		switch {
		case r.start.After(upAt) && r.verdict != "ok":
			f.t.Errorf("a flow begun after the recovery failed at %s: %s", r.step, r.verdict)
		case r.verdict == "ok", r.verdict == "unavailable":
		case lostOnRestart && strings.HasPrefix(r.verdict, "4"):
			refusedBefore++ // its sign-in, code or token was in the Redis that restarted empty
		default:
			f.t.Errorf("a flow begun %s failed at %s: %s", began, r.step, r.verdict)
		}
		if r.start.After(upAt) {
			after++
		} else if r.verdict == "unavailable" {
			during++
		}
	}
	f.t.Logf("background flows: %d in all, %d met the outage (503), %d lost with Redis, %d begun after the recovery",
		len(results), during, refusedBefore, after)
	if after == 0 {
		f.t.Error("no background flow ran after the recovery")
	}
}
