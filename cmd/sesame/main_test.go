package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sesame-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "sesame")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `sesame serve`.
type server struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenRE = regexp.MustCompile(`"?addr"?[=:]"?(127\.0\.0\.1:\d+)`)

// startServe runs the binary in dir with a minimal environment and waits
// for it to listen on a free loopback port.
func startServe(t *testing.T, dir string, env ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, "serve")
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "SESAME_HTTP_ADDR=127.0.0.1:0"}, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.logs.Write([]byte(line + "\n"))
			if m := listenRE.FindStringSubmatch(line); m != nil && strings.Contains(line, "listening") {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
	})
	select {
	case a := <-addr:
		s.url = "http://" + a
	case err := <-s.done:
		s.done <- err
		t.Fatalf("sesame exited before listening (%v):\n%s", err, s.logs)
	case <-time.After(20 * time.Second):
		t.Fatalf("sesame did not listen within 20s:\n%s", s.logs)
	}
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeFreshStartAndInterrupt(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, s.url+path); code != http.StatusOK {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	if code, body := get(t, s.url+"/metrics"); code != http.StatusOK || !strings.Contains(body, "sesame_http_requests_total") {
		t.Errorf("/metrics: %d", code)
	}
	for _, f := range []string{"data/sesame.db", "data/seal.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("first start did not create %s: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "data/seal.key")); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("seal.key mode %v, want 0600", fi.Mode().Perm())
	}
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Fatalf("after SIGINT: %v (want exit 0)\n%s", err, s.logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGINT")
	}

	// A second start reuses the database and the key.
	s2 := startServe(t, dir)
	if code, _ := get(t, s2.url+"/readyz"); code != http.StatusOK {
		t.Errorf("second start /readyz: %d", code)
	}
}

func TestBadConfigurationExits2AndWritesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"unknown key", nil, []string{"SESAME_HTTP_ADRESS=x"}, []string{"SESAME_HTTP_ADRESS"}},
		{"unknown yaml key", []string{"--config", "bad.yaml"}, nil, []string{"adress"}},
		{"missing config file", []string{"--config", "nope.yaml"}, nil, []string{"nope.yaml"}},
		{"malformed database url", nil, []string{"SESAME_DATABASE_URL=mysql://db/x"}, []string{"database.url"}},
		{"malformed redis url", nil, []string{"SESAME_REDIS_URL=http://x"}, []string{"redis.url"}},
		{"unreadable key file", nil, []string{"SESAME_SEAL_KEY_FILE=/nonexistent/seal.key"}, []string{"seal.key", "/nonexistent/seal.key"}},
		{"port in use", nil, []string{"SESAME_HTTP_ADDR=" + busy.Addr().String()}, []string{"http.addr", busy.Addr().String(), "in use"}},
		{"database unreachable", nil, []string{"SESAME_DATABASE_URL=postgres://postgres:secret@" + closedAddr + "/x?connect_timeout=2"}, []string{"database.url", closedAddr}},
		{"redis unreachable", nil, []string{"SESAME_REDIS_URL=redis://" + closedAddr + "/0"}, []string{"redis.url", closedAddr}},
		{"unknown command", []string{"frobnicate"}, nil, []string{"frobnicate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("http:\n  adress: x\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			args := tc.args
			if len(args) == 0 || args[0] != "frobnicate" {
				args = append([]string{"serve"}, args...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, args...)
			cmd.Dir = dir
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "SESAME_HTTP_ADDR=127.0.0.1:0"}, tc.env...)
			out, err := cmd.CombinedOutput()
			code := cmd.ProcessState.ExitCode()
			if code != exitUsage {
				t.Fatalf("exit %d (%v), want 2; output:\n%s", code, err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("message does not name %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), "secret") {
				t.Errorf("a password reached the output:\n%s", out)
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
				t.Errorf("data directory written despite the error")
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "sesame ") {
		t.Fatalf("version: %q %v", out, err)
	}
	out, err = exec.Command(binary, "help").Output()
	if err != nil || !strings.Contains(string(out), "sesame migrate") {
		t.Fatalf("help: %q %v", out, err)
	}
}

func TestMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary, "migrate")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data/sesame.db")); err != nil {
		t.Fatal("migrate did not create the database")
	}
	// serve without auto-migration now finds the schema ready.
	s := startServe(t, dir, "SESAME_DATABASE_AUTO_MIGRATE=false")
	if code, _ := get(t, s.url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz %d", code)
	}
}

// proxy forwards TCP connections to target until it is stopped; it can be
// started again on the same address, like a database coming back.
type proxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restart(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("relisten %s: %v", p.addr, err)
	}
	p.serve(ln)
}

func TestReadyzFollowsPostgresAndRedis(t *testing.T) {
	pgURL := testenv.PostgresSchema(t)
	redisURL := testenv.RedisURL(t)

	pgTarget := hostPort(t, pgURL, "5432")
	redisTarget := hostPort(t, redisURL, "6379")
	pgProxy := newProxy(t, pgTarget)
	redisProxy := newProxy(t, redisTarget)

	dir := t.TempDir()
	s := startServe(t, dir,
		"SESAME_DATABASE_URL="+strings.Replace(pgURL, pgTarget, pgProxy.addr, 1),
		"SESAME_REDIS_URL="+strings.Replace(redisURL, redisTarget, redisProxy.addr, 1),
		"SESAME_REDIS_PREFIX="+"sesame-test-"+filepath.Base(dir)+":",
		"SESAME_LOG_FORMAT=json",
	)
	if code, body := get(t, s.url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with both up: %d %s\n%s", code, body, s.logs)
	}
	for _, tc := range []struct {
		name string
		p    *proxy
	}{{"database", pgProxy}, {"ephemeral", redisProxy}} {
		tc.p.stop()
		start := time.Now()
		code, body := get(t, s.url+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, `"`+tc.name+`":"unavailable"`) {
			t.Errorf("%s down: /readyz %d %s", tc.name, code, body)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s down: /readyz took %v, want < 2s", tc.name, d)
		}
		if code, _ := get(t, s.url+"/healthz"); code != http.StatusOK {
			t.Errorf("%s down: /healthz %d, want 200 (the process is up)", tc.name, code)
		}
		tc.p.restart(t)
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body = get(t, s.url+"/readyz")
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s back: /readyz still %d %s", tc.name, code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Every line the server wrote through the outages is one JSON record
	// (log.format json), the Redis client's own messages included.
	for line := range strings.Lines(s.logs.String()) {
		if !json.Valid([]byte(line)) {
			t.Errorf("a log line that is not JSON: %q", line)
		}
	}
}

func hostPort(t *testing.T, rawURL, defPort string) string {
	t.Helper()
	m := regexp.MustCompile(`@?([0-9a-zA-Z.\-]+:\d+)`).FindStringSubmatch(strings.SplitN(rawURL, "://", 2)[1])
	if m == nil {
		t.Fatalf("no host:port in %s (write it explicitly, e.g. 127.0.0.1:%s)", rawURL, defPort)
	}
	return m[1]
}
