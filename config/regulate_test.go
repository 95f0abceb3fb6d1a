package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRegulateFromFileAndEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sesame.yaml")
	write(t, file, "regulate:\n  base_delay: 10s\n  max_unknown: 50\n")
	cfg, err := Load(file, []string{"SESAME_REGULATE_MAX_UNKNOWN=80", "SESAME_REGULATE_IPV6_PREFIX=56", "SESAME_REGULATE_DEVICE_TTL=720h"})
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Regulate
	if r.BaseDelay != 10*time.Second || r.MaxUnknown != 80 || r.IPv6Prefix != 56 || r.DeviceTTL != 30*24*time.Hour {
		t.Fatalf("regulate from file and env: %+v", r)
	}
	if r.FreeFailures != 5 || r.Requests != 3000 || r.IPv4Prefix != 24 {
		t.Fatalf("defaults lost: %+v", r)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Load("", []string{"SESAME_REGULATE_REQUESTS=many"}); err == nil || !strings.Contains(err.Error(), "regulate.requests") {
		t.Fatalf("bad number: %v", err)
	}
}

func TestRegulateValidate(t *testing.T) {
	cfg := Default()
	cfg.Regulate = Regulate{FreeFailures: -1, BaseDelay: time.Minute, MaxDelay: time.Second, Window: time.Millisecond, IPv4Prefix: 33, IPv6Prefix: 16}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{
		"free_failures", "max_delay", "window", "max_unknown", "unknown_window", "network_failures", "network_window",
		"ipv4_prefix", "ipv6_prefix", "device_ttl", "requests", "request_window",
	} {
		if !strings.Contains(err.Error(), "regulate."+key+":") {
			t.Errorf("error does not name regulate.%s:\n%v", key, err)
		}
	}
}
