package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
	"github.com/sesame-idp/sesame/idp/keys"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/internal/teststore"
	"github.com/sesame-idp/sesame/templates"
)

// TestBenchShortRun runs every scenario for a quarter of a second against
// an in-process server (SQLite, memory): each completes operations without
// error, and the report has its throughput, latencies and CPU per
// operation.
func TestBenchShortRun(t *testing.T) {
	st := teststore.SQLite(t)
	sealer, err := seal.New(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	k := keys.New(st, sealer, keys.Options{Logger: logger, Algs: []string{"RS256", "ES256"}})
	if err := k.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	tpl, err := templates.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ts := httptest.NewUnstartedServer(nil)
	limits := regulate.DefaultConfig()
	limits.Requests = 1_000_000
	srv := &idp.Server{
		Issuer: "http://" + ts.Listener.Addr().String(), Store: st, Ephemeral: memory.New(time.Now), Keys: k, Templates: tpl,
		Passwords: users.Passwords{Params: users.DefaultPasswordParams()}, Sealer: sealer, Logger: logger, Registry: reg,
		Regulate: limits,
	}
	h, err := srv.Handler()
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = h
	ts.Start()
	defer ts.Close()

	var out strings.Builder
	results, err := run(t.Context(), st, sealer, options{URL: ts.URL, Users: 40, Concurrency: 2,
		Duration: 250 * time.Millisecond, Scenarios: scenarios, Out: &out, Status: io.Discard})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(results) != len(scenarios) {
		t.Fatalf("%d results, want %d", len(results), len(scenarios))
	}
	for _, r := range results {
		if r.Ops == 0 || r.Errors != 0 || r.P50 <= 0 || r.P99 < r.P50 {
			t.Errorf("%s: %d ops, %d errors (%s), p50 %v, p99 %v", r.Name, r.Ops, r.Errors, r.FirstError, r.P50, r.P99)
		}
	}
	for _, want := range append([]string{"ops", "/s", "p50", "p95", "p99", "errors 0", "cpu/op", "per core", "argon2id m=19456 KiB"}, scenarios...) {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())
}
