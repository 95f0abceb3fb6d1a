package main

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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
		`sesame_build_info{ephemeral="redis",go_version=`, `store="postgres"`,
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
}
