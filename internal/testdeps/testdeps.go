package testdeps

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sesame-idp/sesame/internal/testenv"
)

// missing skips t, or fails it under SESAME_TEST_REQUIRE_ALL=1.
func missing(t testing.TB, what string) {
	t.Helper()
	msg := what + " not found: fault suite skipped (install Debian's redis-server and postgresql)"
	if os.Getenv(testenv.RequireAll) == "1" {
		t.Fatalf("%s, but %s=1 requires it", msg, testenv.RequireAll)
	}
	t.Skip(msg)
}

// freePort returns a loopback port nobody listens on.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls ready until it succeeds or the deadline passes.
func waitFor(t testing.TB, what string, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a readiness condition
	}
}

// Redis is a private redis-server without persistence: a restart loses
// every key, as a crashed Redis without AOF does.
type Redis struct {
	t    testing.TB
	bin  string
	dir  string
	Port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts a private redis-server; it is killed when t ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing(t, "redis-server")
	}
	r := &Redis{t: t, bin: bin, dir: t.TempDir(), Port: freePort(t)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// URL is the server's redis:// URL.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Start starts the server (again) on its port and waits until it answers.
func (r *Redis) Start() {
	t := r.t
	t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", r.dir, "--protected-mode", "no")
	r.cmd.Stdout, r.cmd.Stderr = nil, nil
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	r.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(r.cmd, r.done)
	c := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.Port), MaxRetries: -1})
	defer c.Close()
	waitFor(t, "redis-server", func() error { return c.Ping(context.Background()).Err() })
}

// Stop kills the server (no persistence: its keys are gone) and waits for
// it to exit.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// Postgres is a private PostgreSQL cluster.
type Postgres struct {
	t       testing.TB
	bin     string
	dir     string
	Port    int
	cred    *syscall.Credential
	logf    string
	running bool
}

// pgBin finds the directory of initdb and pg_ctl: the newest
// /usr/lib/postgresql/*/bin, or PATH.
func pgBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i]
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// StartPostgres initializes a cluster in a temporary directory (trust
// authentication, user postgres, loopback only, fsync off) and starts it;
// it is stopped when t ends. As root, the server runs as the postgres
// system user (PostgreSQL refuses to run as root).
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := pgBin()
	if bin == "" {
		missing(t, "initdb and pg_ctl")
	}
	base, err := os.MkdirTemp("", "sesame-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	p := &Postgres{t: t, bin: bin, dir: filepath.Join(base, "data"), Port: freePort(t), logf: filepath.Join(base, "log")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs the postgres system user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	p.run("initdb", "-D", p.dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

func (p *Postgres) run(name string, args ...string) {
	p.t.Helper()
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = filepath.Dir(p.dir)
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(p.logf)
		p.t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, log)
	}
}

// URL is the cluster's postgres:// URL (database postgres).
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
}

// Start starts the server (again) and waits until it accepts queries.
func (p *Postgres) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", p.Port, filepath.Dir(p.dir))
	p.run("pg_ctl", "-D", p.dir, "-o", opts, "-l", p.logf, "-w", "-t", "60", "start")
	p.running = true
	waitFor(p.t, "PostgreSQL", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, p.URL())
		if err != nil {
			return err
		}
		return c.Close(ctx)
	})
}

// Stop stops the server at once (immediate mode: like a crash, committed
// data is recovered from the WAL at the next start).
func (p *Postgres) Stop() {
	if !p.running {
		return
	}
	p.run("pg_ctl", "-D", p.dir, "-m", "immediate", "-w", "stop")
	p.running = false
}
