package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	if cfg.HTTP.Addr != "localhost:8080" || cfg.Database.URL != "" || cfg.Redis.URL != "" {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sesame.yaml")
	write(t, file, "issuer: https://id.example.org\nhttp:\n  addr: 127.0.0.1:9000\n  idle_timeout: 1m\ndatabase:\n  url: postgres://file@db/sesame\ntrusted_proxies: [10.0.0.0/8]\n")
	secret := filepath.Join(dir, "db-url")
	write(t, secret, "postgres://secret@db/sesame\n")

	cfg, err := Load(file, []string{
		"SESAME_HTTP_ADDR=127.0.0.1:9001",
		"SESAME_DATABASE_URL_FILE=" + secret,
		"SESAME_TRUSTED_PROXIES=10.1.0.0/16, 192.168.0.1",
		"SESAME_TEST_POSTGRES_URL=ignored",
		"PATH=/usr/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != "https://id.example.org" {
		t.Errorf("issuer from file: got %q", cfg.Issuer)
	}
	if cfg.HTTP.Addr != "127.0.0.1:9001" {
		t.Errorf("env must override file: got %q", cfg.HTTP.Addr)
	}
	if cfg.HTTP.IdleTimeout != time.Minute {
		t.Errorf("duration from file: got %v", cfg.HTTP.IdleTimeout)
	}
	if cfg.Database.URL != "postgres://secret@db/sesame" {
		t.Errorf("_FILE must override env and file, trimmed: got %q", cfg.Database.URL)
	}
	if got := strings.Join(cfg.TrustedProxies, "|"); got != "10.1.0.0/16|192.168.0.1" {
		t.Errorf("list from env: got %q", got)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		yaml    string
		environ []string
		want    []string
	}{
		{"unknown yaml key", "http:\n  adress: x\n", nil, []string{"adress"}},
		{"unknown env var", "", []string{"SESAME_HTTP_ADRESS=x"}, []string{"SESAME_HTTP_ADRESS", "unknown"}},
		{"bad duration", "", []string{"SESAME_HTTP_IDLE_TIMEOUT=soon"}, []string{"http.idle_timeout", "SESAME_HTTP_IDLE_TIMEOUT"}},
		{"unreadable secret file", "", []string{"SESAME_SEAL_KEY_FILE=" + filepath.Join(dir, "missing")}, []string{"seal.key", "SESAME_SEAL_KEY_FILE", "missing"}},
		{"no _FILE for non-secrets", "", []string{"SESAME_HTTP_ADDR_FILE=/x"}, []string{"SESAME_HTTP_ADDR_FILE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := ""
			if tc.yaml != "" {
				file = filepath.Join(dir, "c.yaml")
				write(t, file, tc.yaml)
			}
			_, err := Load(file, tc.environ)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	cfg := Default()
	cfg.Issuer = "http://id.example.org"
	cfg.HTTP.Addr = "8080"
	cfg.Database.URL = "mysql://db"
	cfg.Redis.URL = "::not a url"
	cfg.Seal.Key = "nokid"
	cfg.TrustedProxies = []string{"10.0.0.0/33"}
	cfg.SMTP.TLS = "maybe"
	cfg.SMS.Provider = "pigeon"
	cfg.Log.Format = "xml"
	cfg.Log.Level = "loud"
	cfg.HTTP.ReadTimeout = 0
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{"issuer", "http.addr", "database.url", "redis.url", "seal.key", "trusted_proxies", "smtp.tls", "sms.provider", "log.format", "log.level", "http.read_timeout"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
	if strings.Contains(err.Error(), "mysql://db") {
		t.Errorf("database URL (a secret) echoed in error: %v", err)
	}
}

func TestKeysDocumentEveryField(t *testing.T) {
	keys := Keys()
	seen := map[string]string{}
	for _, k := range keys {
		seen[k[0]] = k[1]
	}
	for key, env := range map[string]string{
		"issuer": "SESAME_ISSUER", "http.addr": "SESAME_HTTP_ADDR", "data_dir": "SESAME_DATA_DIR",
		"database.url": "SESAME_DATABASE_URL", "redis.url": "SESAME_REDIS_URL", "log.format": "SESAME_LOG_FORMAT",
		"trusted_proxies": "SESAME_TRUSTED_PROXIES",
	} {
		if seen[key] != env {
			t.Errorf("key %s: env %q, want %q", key, seen[key], env)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("postgres://u:hunter2@db/x"); strings.Contains(got, "hunter2") {
		t.Errorf("password not redacted: %s", got)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReadmeListsEveryKey keeps the README's configuration table honest.
func TestSessionDurations(t *testing.T) {
	cfg, err := Load("", []string{"SESAME_SESSION_FACTOR_WINDOW=5m", "SESAME_SESSION_LIFETIME=8h"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Session.FactorWindow != 5*time.Minute || cfg.Session.Lifetime != 8*time.Hour {
		t.Fatalf("session durations from the environment: %+v", cfg.Session)
	}
	if d := Default().Session; d.FactorWindow != 10*time.Minute || d.Lifetime != 12*time.Hour {
		t.Fatalf("session defaults: %+v", d)
	}
	for _, env := range [][]string{
		{"SESAME_SESSION_LIFETIME=0s"},
		{"SESAME_SESSION_FACTOR_WINDOW=-1m"},
		{"SESAME_SESSION_FACTOR_WINDOW=13h"},
	} {
		cfg, err := Load("", env)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "session.") {
			t.Errorf("%v: Validate = %v, want an error naming session.*", env, err)
		}
	}
}

func TestReadmeListsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(b), "`"+k[0]+"` | `"+k[1]+"`") {
			t.Errorf("README.md does not document %s (%s)", k[0], k[1])
		}
	}
}

func TestDemoEnabled(t *testing.T) {
	dir := t.TempDir()
	on, off := filepath.Join(dir, "on.yaml"), filepath.Join(dir, "off.yaml")
	write(t, on, "issuer: https://id.example.org\ndemo:\n  enabled: true\n")
	write(t, off, "demo:\n  enabled: false\n")
	for _, tc := range []struct {
		name string
		file string
		env  []string
		want bool
	}{
		{"default issuer is loopback", "", nil, true},
		{"loopback IPv4", "", []string{"SESAME_ISSUER=http://127.0.0.1:8080"}, true},
		{"loopback IPv6", "", []string{"SESAME_ISSUER=http://[::1]:8080"}, true},
		{"public issuer", "", []string{"SESAME_ISSUER=https://id.example.org"}, false},
		{"localhost over https", "", []string{"SESAME_ISSUER=https://sesame.localhost"}, true},
		{"file turns it on", on, nil, true},
		{"file turns it off", off, nil, false},
		{"env turns it on", "", []string{"SESAME_ISSUER=https://id.example.org", "SESAME_DEMO_ENABLED=true"}, true},
		{"env turns it off", "", []string{"SESAME_DEMO_ENABLED=false"}, false},
		{"env back to auto over the file", on, []string{"SESAME_DEMO_ENABLED=auto"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(tc.file, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.DemoEnabled(); got != tc.want {
				t.Errorf("DemoEnabled() = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := Load("", []string{"SESAME_DEMO_ENABLED=maybe"}); err == nil || !strings.Contains(err.Error(), "demo.enabled") {
		t.Errorf("bad SESAME_DEMO_ENABLED: %v", err)
	}
}

func TestEphemeralMaxEntries(t *testing.T) {
	cfg, err := Load("", []string{"SESAME_EPHEMERAL_MAX_ENTRIES=5000"})
	if err != nil || cfg.Ephemeral.MaxEntries != 5000 {
		t.Fatalf("ephemeral.max_entries from env: %d %v", cfg.Ephemeral.MaxEntries, err)
	}
	if Default().Ephemeral.MaxEntries != 200_000 {
		t.Errorf("default ephemeral.max_entries %d, want 200000", Default().Ephemeral.MaxEntries)
	}
	cfg.Ephemeral.MaxEntries = 10
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "ephemeral.max_entries:") {
		t.Errorf("a cap of 10 accepted: %v", err)
	}
}
