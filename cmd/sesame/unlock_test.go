package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-idp/sesame/config"
	eredis "github.com/sesame-idp/sesame/idp/ephemeral/redis"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/testenv"
)

// cliEnv is cli with more environment.
func cliEnv(t *testing.T, dir string, extra []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "SESAME_LOG_LEVEL=warn"}, extra...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func TestRegulateDefaultsAgree(t *testing.T) {
	if got, want := regulateConfig(config.Default().Regulate), regulate.DefaultConfig(); got != want {
		t.Fatalf("config.Default().Regulate = %+v\nregulate.DefaultConfig() = %+v", got, want)
	}
}

func TestUserUnlock(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	dir := t.TempDir()
	prefix := "sesame-test-" + filepath.Base(dir) + ":"
	t.Cleanup(func() { testenv.CleanRedisPrefix(t, redisURL, prefix) })
	key := seal.GenerateKey()
	withRedis := []string{"SESAME_REDIS_URL=" + redisURL, "SESAME_REDIS_PREFIX=" + prefix, "SESAME_SEAL_KEY=" + seal.FormatKey(key)}

	out, errOut, code := cliEnv(t, dir, withRedis, "user", "create", "--username", "Sophie.Tremblay", "--email", "sophie@clinique.example",
		"--password", "une phrase de passe assez longue")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	id := lastWord(out)

	// The server's throttle, on the same Redis: 100 wrong passwords from
	// unknown browsers and 7 wrong codes lock her out.
	ctx := t.Context()
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	eph, err := eredis.Open(ctx, redisURL, prefix, sealer)
	if err != nil {
		t.Fatal(err)
	}
	defer eph.Close()
	r, err := regulate.New(eph, regulateConfig(config.Default().Regulate), nil)
	if err != nil {
		t.Fatal(err)
	}
	password := func(i int) regulate.Attempt {
		return regulate.Attempt{Kind: regulate.KindPassword, Account: "sophie.tremblay", IP: netip.MustParseAddr(fmt.Sprintf("198.51.%d.1", i))}
	}
	codeAttempt := regulate.Attempt{Kind: regulate.KindCode, Account: id, IP: netip.MustParseAddr("192.0.2.1")}
	for i := range 100 {
		if err := r.Fail(ctx, password(i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 7 {
		if err := r.Fail(ctx, codeAttempt); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []regulate.Attempt{password(200), codeAttempt} {
		if v, err := r.Check(ctx, a); err != nil || v.Allowed {
			t.Fatalf("before unlock, %s: %+v %v", a.Kind, v, err)
		}
	}

	out, errOut, code = cliEnv(t, dir, withRedis, "user", "unlock", "--username", "SOPHIE.Tremblay")
	if code != 0 || !strings.Contains(out, "unlocked sophie.tremblay") {
		t.Fatalf("unlock: %d %s %s", code, out, errOut)
	}
	for _, a := range []regulate.Attempt{password(200), codeAttempt} {
		if v, err := r.Check(ctx, a); err != nil || !v.Allowed {
			t.Fatalf("after unlock, %s: %+v %v", a.Kind, v, err)
		}
	}
	st := openStore(t, dir)
	events, err := st.ListAuditEvents(ctx, store.AuditFilter{Type: "user.unlocked"})
	if err != nil || len(events) != 1 || events[0].UserID != id || events[0].ActorID != "cli" {
		t.Fatalf("audit events: %+v %v", events, err)
	}

	for _, tc := range []struct {
		name  string
		extra []string
		args  []string
		code  int
		want  string
	}{
		{"no username", withRedis, []string{"user", "unlock"}, 2, "--username"},
		{"unknown user", withRedis, []string{"user", "unlock", "--username", "nobody.here"}, 1, "no user"},
		{"in-process store", nil, []string{"user", "unlock", "--username", "sophie.tremblay"}, 1, "redis.url"},
	} {
		_, errOut, code := cliEnv(t, dir, tc.extra, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%s: exit %d, want %d with a one-line reason naming %q:\n%s", tc.name, code, tc.code, tc.want, errOut)
		}
	}
	if events, _ := st.ListAuditEvents(ctx, store.AuditFilter{Type: "user.unlocked"}); len(events) != 1 {
		t.Fatalf("failed unlocks were audited: %+v", events)
	}
}
