package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/mfa"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/internal/signin"
)

// Scenarios, in the order "all" runs them.
var scenarios = []string{"discovery", "jwks", "client_credentials", "client_credentials_jwt", "introspect",
	"refresh", "code", "full"}

// options is what a run does.
type options struct {
	URL         string        // the server, e.g. http://127.0.0.1:8080
	Issuer      string        // the configured issuer (URL when empty)
	MetricsURL  string        // its /metrics (URL + "/metrics" when empty)
	Users       int           // test users to provision
	Concurrency int           // requests in flight
	Duration    time.Duration // per scenario
	Scenarios   []string
	// CPUPids are processes (the database, Redis) whose CPU, with their
	// descendants', is counted with the server's.
	CPUPids []int
	// SigningAlg signs the clients' ID tokens and JWT access tokens
	// (RS256 when empty).
	SigningAlg string
	Out        io.Writer // results
	Status     io.Writer // progress line (nil: none)
}

// result is one scenario's figures.
type result struct {
	Name          string
	Ops, Errors   int64
	Elapsed       time.Duration
	P50, P95, P99 time.Duration
	ServerCPU     float64 // seconds, from process_cpu_seconds_total
	OtherCPU      float64 // seconds, CPUPids
	FirstError    string
}

func (r result) perSecond() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// bench is a run's shared state.
type bench struct {
	opts    options
	http    *http.Client
	opaque  *signin.Client
	jwt     *signin.Client
	users   []benchUser
	next    atomic.Int64
	mu      sync.Mutex
	lastUse map[int]int64 // user index → TOTP step last used
}

type benchUser struct {
	name   string
	secret []byte
}

const benchPassword = "Bench-correct-horse-battery-9"

// provision creates the test users (password, authenticator app, as
// `sesame user create --totp-secret` does) and two clients, opaque and JWT
// access tokens, directly in the store the server uses. The password is
// hashed once (argon2id, the server's default parameters) for all users.
func provision(ctx context.Context, st store.Store, sealer *seal.Sealer, n int, alg string) (*bench, error) {
	run := uuid.NewString()[:8]
	svc := &users.Service{Store: st, Sealer: sealer, Passwords: users.Passwords{Params: users.DefaultPasswordParams()}}
	b := &bench{lastUse: map[int]int64{}}
	var clients []*signin.Client
	for _, format := range []string{"opaque", "jwt"} {
		c, secret, err := svc.CreateClient(ctx, users.NewClient{
			ID: "bench-" + run + "-" + format, Name: "sesame-bench", RedirectURIs: []string{"http://localhost:9999/bench"},
			GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"},
			Scopes:     []string{"openid", "profile", "email", "offline_access"}, TokenFormat: format, SigningAlg: alg,
		}, store.AuditEvent{ActorID: "sesame-bench"})
		if err != nil {
			return nil, fmt.Errorf("create client: %w", err)
		}
		clients = append(clients, &signin.Client{ClientID: c.ID, ClientSecret: secret, RedirectURI: "http://localhost:9999/bench",
			Scopes: []string{"openid", "profile", "email", "offline_access"}})
	}
	b.opaque, b.jwt = clients[0], clients[1]
	phc, err := svc.Passwords.Hash(benchPassword)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	for i := range n {
		u := store.User{ID: uuid.NewString(), Username: fmt.Sprintf("bench-%s-%d", run, i), Email: fmt.Sprintf("bench-%s-%d@bench.invalid", run, i),
			GivenName: "Bench", FamilyName: strconv.Itoa(i), Locale: "fr-CA", Status: store.StatusActive, AccountType: "person",
			CreatedAt: now, UpdatedAt: now}
		secret := users.NewTOTPSecret()
		err := st.InTx(ctx, func(tx store.Tx) error {
			if err := tx.CreateUser(ctx, u); err != nil {
				return err
			}
			if err := tx.SetPassword(ctx, u.ID, phc, now); err != nil {
				return err
			}
			return tx.CreateCredential(ctx, users.NewTOTPCredential(sealer, u.ID, "sesame-bench", secret, now, now))
		})
		if err != nil {
			return nil, fmt.Errorf("create user %d: %w", i, err)
		}
		b.users = append(b.users, benchUser{name: u.Username, secret: secret})
	}
	return b, nil
}

// pickUser returns a user whose current TOTP time step is still unused
// (each step is accepted once per user).
func (b *bench) pickUser() (benchUser, func() (string, error), error) {
	step := mfa.TOTPStep(time.Now())
	b.mu.Lock()
	defer b.mu.Unlock()
	for range len(b.users) {
		i := int(b.next.Add(1)-1) % len(b.users)
		if b.lastUse[i] >= step {
			continue
		}
		b.lastUse[i] = step
		u := b.users[i]
		return u, func() (string, error) { return mfa.TOTPCode(u.secret, step), nil }, nil
	}
	return benchUser{}, nil, errors.New("every user signed in during this TOTP step (30 s): provision more with -users")
}

// signIn runs a full sign-in and code exchange with the opaque client.
func (b *bench) signIn(ctx context.Context) (*signin.Browser, signin.Tokens, error) {
	u, code, err := b.pickUser()
	if err != nil {
		return nil, signin.Tokens{}, err
	}
	br := b.opaque.NewBrowser()
	c, err := br.SignIn(ctx, nil, u.name, benchPassword, code)
	if err != nil {
		return nil, signin.Tokens{}, err
	}
	tok, err := b.opaque.Exchange(ctx, b.opts.URL, c)
	return br, tok, err
}

// op is one operation of a scenario, by a worker whose state it keeps.
type op func(ctx context.Context) error

// newOp prepares a worker's operation for a scenario.
func (b *bench) newOp(ctx context.Context, name string) (op, error) {
	u := b.opts.URL
	switch name {
	case "discovery":
		return func(ctx context.Context) error {
			_, err := b.opaque.Get(ctx, u, "/.well-known/openid-configuration")
			return err
		}, nil
	case "jwks":
		return func(ctx context.Context) error { _, err := b.opaque.Get(ctx, u, "/keys"); return err }, nil
	case "client_credentials":
		return func(ctx context.Context) error { _, err := b.opaque.ClientCredentials(ctx, u, "openid"); return err }, nil
	case "client_credentials_jwt":
		return func(ctx context.Context) error { _, err := b.jwt.ClientCredentials(ctx, u, "openid"); return err }, nil
	case "introspect":
		tok, err := b.opaque.ClientCredentials(ctx, u, "openid")
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error {
			active, err := b.opaque.Introspect(ctx, u, tok.AccessToken)
			if err == nil && !active {
				err = errors.New("token not active")
			}
			return err
		}, nil
	case "refresh":
		_, tok, err := b.signIn(ctx)
		if err != nil {
			return nil, err
		}
		rt := tok.RefreshToken
		return func(ctx context.Context) error {
			t, err := b.opaque.Refresh(ctx, u, rt)
			if err == nil {
				rt = t.RefreshToken
			}
			return err
		}, nil
	case "code":
		// A signed-in browser: each authorization request gets a code at
		// once (session reuse), which is exchanged.
		br, _, err := b.signIn(ctx)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error {
			c, err := br.Reauthorize(ctx, u)
			if err != nil {
				return err
			}
			_, err = b.opaque.Exchange(ctx, u, c)
			return err
		}, nil
	case "full":
		return func(ctx context.Context) error {
			_, tok, err := b.signIn(ctx)
			if err != nil {
				return err
			}
			_, err = b.opaque.UserInfo(ctx, u, tok.AccessToken)
			return err
		}, nil
	}
	return nil, fmt.Errorf("unknown scenario %q (want %s)", name, strings.Join(scenarios, ", "))
}

// runScenario drives one scenario at the chosen concurrency for the
// chosen time.
func (b *bench) runScenario(ctx context.Context, name string) (result, error) {
	ops := make([]op, b.opts.Concurrency)
	for i := range ops {
		o, err := b.newOp(ctx, name)
		if err != nil {
			return result{}, fmt.Errorf("%s: prepare: %w", name, err)
		}
		ops[i] = o
	}
	cpu0, err := b.serverCPU(ctx)
	if err != nil {
		return result{}, err
	}
	other0 := treeCPU(b.opts.CPUPids)
	var count, errs atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, len(ops))
	start := time.Now()
	deadline := start.Add(b.opts.Duration)
	stop := make(chan struct{})
	var progress sync.WaitGroup
	if b.opts.Status != nil {
		progress.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					fmt.Fprintf(b.opts.Status, "\r\033[K")
					return
				case <-t.C:
					el := time.Since(start).Seconds()
					fmt.Fprintf(b.opts.Status, "\r\033[K%s: %.0f s, %d ops, %.0f/s, %d errors", name, el, count.Load(), float64(count.Load())/el, errs.Load())
				}
			}
		})
	}
	var wg sync.WaitGroup
	for i, o := range ops {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				err := o(ctx)
				d := time.Since(t0)
				count.Add(1)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat[i] = append(lat[i], d)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	progress.Wait()
	cpu1, err := b.serverCPU(ctx)
	if err != nil {
		return result{}, err
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := result{Name: name, Ops: count.Load(), Errors: errs.Load(), Elapsed: elapsed,
		P50: quantile(all, .50), P95: quantile(all, .95), P99: quantile(all, .99),
		ServerCPU: cpu1 - cpu0, OtherCPU: treeCPU(b.opts.CPUPids) - other0}
	if e, ok := firstErr.Load().(string); ok {
		r.FirstError = e
	}
	return r, nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(math.Ceil(q*float64(len(sorted))))-1)]
}

// serverCPU reads process_cpu_seconds_total from the server's /metrics.
func (b *bench) serverCPU(ctx context.Context) (float64, error) {
	u := b.opts.MetricsURL
	if u == "" {
		u = b.opts.URL + "/metrics"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", u, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s has no process_cpu_seconds_total (%d)", u, resp.StatusCode)
}

// treeCPU returns the CPU seconds (user + system, with the children
// already waited for) of the processes pids and of their live
// descendants, from /proc (Linux).
func treeCPU(pids []int) float64 {
	if len(pids) == 0 {
		return 0
	}
	type proc struct {
		ppid int
		cpu  float64
	}
	procs := map[int]proc{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// After "(comm)": state ppid … utime(14) stime(15) cutime(16) cstime(17).
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		var ticks float64
		for _, i := range []int{11, 12, 13, 14} {
			v, _ := strconv.ParseFloat(f[i], 64)
			ticks += v
		}
		procs[pid] = proc{ppid: ppid, cpu: ticks / 100} // USER_HZ is 100 on Linux
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	for changed := true; changed; {
		changed = false
		for pid, p := range procs {
			if !in[pid] && in[p.ppid] {
				in[pid], changed = true, true
			}
		}
	}
	total := 0.0
	for pid := range in {
		total += procs[pid].cpu
	}
	return total
}

// report prints a scenario's line.
func report(w io.Writer, r result, withOther bool) {
	perOp := func(cpu float64) string {
		ok := r.Ops - r.Errors
		if ok <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f ms", cpu/float64(ok)*1000)
	}
	line := fmt.Sprintf("%-24s %8d ops %9.1f/s  p50 %8s  p95 %8s  p99 %8s  errors %d  cpu/op %s",
		r.Name, r.Ops, r.perSecond(), round(r.P50), round(r.P95), round(r.P99), r.Errors, perOp(r.ServerCPU))
	total := r.ServerCPU
	if withOther {
		total += r.OtherCPU
		line += fmt.Sprintf(" (+ db/redis %s = %s)", perOp(r.OtherCPU), perOp(total))
	}
	// What one core carries of this operation (the server's CPU, with the
	// database's and Redis's when counted): the figure to size with, apart
	// from this tool's own share of the machine.
	if ok := r.Ops - r.Errors; ok > 0 && total > 0 {
		line += fmt.Sprintf("  capacity %.0f/s per core", float64(ok)/total)
	}
	fmt.Fprintln(w, line)
	if r.FirstError != "" {
		fmt.Fprintf(w, "%-24s first error: %.200s\n", "", r.FirstError)
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// run provisions, then runs each scenario and reports it.
func run(ctx context.Context, st store.Store, sealer *seal.Sealer, o options) ([]result, error) {
	if o.Issuer == "" {
		o.Issuer = o.URL
	}
	o.URL = strings.TrimSuffix(o.URL, "/")
	fmt.Fprintf(o.Out, "provisioning %d users with an authenticator app (argon2id m=%d KiB, t=%d, p=%d)…\n",
		o.Users, users.DefaultPasswordParams().Memory, users.DefaultPasswordParams().Iterations, users.DefaultPasswordParams().Parallelism)
	b, err := provision(ctx, st, sealer, o.Users, o.SigningAlg)
	if err != nil {
		return nil, err
	}
	b.opts = o
	tr := &http.Transport{MaxIdleConns: 4 * o.Concurrency, MaxIdleConnsPerHost: 4 * o.Concurrency, IdleConnTimeout: time.Minute}
	b.http = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for _, c := range []*signin.Client{b.opaque, b.jwt} {
		c.Issuer, c.HTTP = o.Issuer, b.http
	}
	alg := o.SigningAlg
	if alg == "" {
		alg = "RS256"
	}
	fmt.Fprintf(o.Out, "%d workers, %v per scenario, against %s, tokens signed %s\n", o.Concurrency, o.Duration, o.URL, alg)
	var results []result
	for _, name := range o.Scenarios {
		r, err := b.runScenario(ctx, name)
		if err != nil {
			return results, err
		}
		report(o.Out, r, len(o.CPUPids) > 0)
		results = append(results, r)
	}
	return results, nil
}
