package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sesame-idp/sesame/internal/testenv"
)

var metricsAddrRE = regexp.MustCompile(`metrics_addr=(127\.0\.0\.1:\d+)`)

// TestMetricsListenerAndPools: with metrics.addr, /metrics is served there
// only, with build info and the PostgreSQL and Redis pool statistics.
func TestMetricsListenerAndPools(t *testing.T) {
	pgURL := testenv.PostgresSchema(t)
	redisURL := testenv.RedisURL(t)
	dir := t.TempDir()
	prefix := "sesame-test-" + filepath.Base(dir) + ":"
	t.Cleanup(func() { testenv.CleanRedisPrefix(t, redisURL, prefix) })
	s := startServe(t, dir, "SESAME_DATABASE_URL="+pgURL, "SESAME_REDIS_URL="+redisURL,
		"SESAME_REDIS_PREFIX="+prefix, "SESAME_METRICS_ADDR=127.0.0.1:0")
	m := metricsAddrRE.FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("no metrics_addr in the logs:\n%s", s.logs)
	}
	if code, _ := get(t, s.url+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on http.addr: %d, want 404 when metrics.addr is set", code)
	}
	get(t, s.url+"/readyz")
	code, body := get(t, "http://"+m[1]+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics on metrics.addr: %d", code)
	}
	for _, want := range []string{
		`sesame_build_info{crypto="` + cryptoModule() + `",ephemeral="redis",go_version=`, `store="postgres"`,
		"sesame_db_pool_connections ", "sesame_db_pool_acquires_total ", "sesame_db_pool_max_connections ",
		"sesame_redis_pool_connections ", "sesame_redis_pool_hits_total ",
		"sesame_outbox_backlog ", "sesame_outbox_oldest_age_seconds ",
		"process_cpu_seconds_total ", "process_resident_memory_bytes ",
		`sesame_http_requests_total{route="GET /readyz",status="200"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	checkRulesAndReadme(t, body)
}

// exposedLater are the series that exist only once the store offers them
// (the provisioning store's account-request counts).
var exposedLater = []string{"sesame_account_requests", "sesame_account_requests_overdue"}

var familyRE = regexp.MustCompile(`(?m)^# TYPE (sesame_\w+) (\w+)`)

// checkRulesAndReadme: the README documents every sesame_ family exposed;
// deploy/prometheus-rules.yml is valid YAML with the expected alerts (and
// passes promtool when it is installed), and uses only series Sésame
// exposes.
func checkRulesAndReadme(t *testing.T, metrics string) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	exposed := slices.Clone(exposedLater)
	for _, m := range familyRE.FindAllStringSubmatch(metrics, -1) {
		exposed = append(exposed, m[1])
	}
	for _, name := range exposed {
		if !strings.Contains(string(readme), "`"+name) {
			t.Errorf("README does not document %s", name)
		}
	}

	const rulesFile = "../../deploy/prometheus-rules.yml"
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert  string            `yaml:"alert"`
				Expr   string            `yaml:"expr"`
				For    string            `yaml:"for"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var alerts []string
	seriesRE := regexp.MustCompile(`sesame_\w+`)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Expr == "" || r.Labels["severity"] == "" {
				t.Errorf("alert %s: no expr or no severity", r.Alert)
			}
			for _, s := range seriesRE.FindAllString(r.Expr, -1) {
				family := strings.TrimSuffix(s, "_bucket")
				if !slices.Contains(exposed, family) {
					t.Errorf("alert %s uses %s, which Sésame does not expose", r.Alert, s)
				}
			}
		}
	}
	for _, want := range []string{"SesameNotReady", "SesameOutboxStuck", "SesameHighErrorRate", "SesameAccountRequestsOverdue", "SesameRefreshReuseSpike"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("%s lacks the alert %s (has %v)", rulesFile, want, alerts)
		}
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules: %v\n%s", err, out)
		}
	}
}
