package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// redisServer returns the path of redis-server, or skips the test (fails
// it under SESAME_TEST_REQUIRE_ALL=1) when it is not installed.
func redisServer(t testing.TB, suite string) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("redis-server not in PATH: %s suite skipped", suite)
	if os.Getenv(RequireAll) == "1" {
		t.Fatalf("%s, but %s=1 requires it", msg, RequireAll)
	}
	t.Skip(msg)
	return ""
}

// freePort returns a loopback port that is free, and whose Cluster bus
// port (port + 10000) is free too.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(30000)
		a, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p
	}
	t.Fatal("no free loopback port pair")
	return 0
}

// startRedis runs a private redis-server with args in a temporary
// directory, waits until it answers PING, and stops it when the test ends.
func startRedis(t testing.TB, bin string, port int, args ...string) {
	t.Helper()
	dir := t.TempDir()
	startRedisIn(t, bin, dir, port, append([]string{"--save", "", "--appendonly", "no"}, args...))
}

// startRedisIn is startRedis in dir, with args after the common ones
// (args may start with a configuration file).
func startRedisIn(t testing.TB, bin, dir string, port int, args []string) {
	t.Helper()
	var all []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "--") {
		all, args = append(all, args[0]), args[1:]
	}
	all = append(all, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--daemonize", "no", "--protected-mode", "no", "--logfile", filepath.Join(dir, "redis.log"))
	cmd := exec.Command(bin, append(all, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	defer c.Close()
	waitFor(t, 10*time.Second, "redis-server on port "+strconv.Itoa(port), func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RedisCluster starts a Redis Cluster of three masters (private
// redis-server processes on free loopback ports, in temporary directories,
// joined with redis-cli --cluster create) and returns its go-redis URL,
// redis://127.0.0.1:P1?addr=127.0.0.1:P2&addr=127.0.0.1:P3. Everything is
// stopped and removed when the test ends; the shared Redis is not touched.
// Skipped (failed under SESAME_TEST_REQUIRE_ALL=1) without redis-server.
func RedisCluster(t testing.TB) string {
	t.Helper()
	bin := redisServer(t, "Redis Cluster")
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-server is installed but not redis-cli: %v", err)
	}
	var addrs []string
	for range 3 {
		p := freePort(t)
		startRedis(t, bin, p, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(p))
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: a})
		waitFor(t, 15*time.Second, "cluster node "+a, func() bool {
			info, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		c.Close()
	}
	return "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
}

// RedisSentinel starts a private Redis master and one Sentinel watching it
// (as master "sesame") on free loopback ports and returns the go-redis
// Sentinel URL, redis://127.0.0.1:S/0?master_name=sesame. Stopped and
// removed when the test ends. Skipped (failed under
// SESAME_TEST_REQUIRE_ALL=1) without redis-server.
func RedisSentinel(t testing.TB) string {
	t.Helper()
	bin := redisServer(t, "Redis Sentinel")
	master := freePort(t)
	startRedis(t, bin, master)
	sentinel := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("sentinel monitor sesame 127.0.0.1 %d 1\nsentinel down-after-milliseconds sesame 5000\n", master)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	startRedisIn(t, bin, dir, sentinel, []string{conf, "--sentinel"})
	c := goredis.NewSentinelClient(&goredis.Options{Addr: "127.0.0.1:" + strconv.Itoa(sentinel)})
	defer c.Close()
	waitFor(t, 10*time.Second, "sentinel", func() bool {
		addr, err := c.GetMasterAddrByName(context.Background(), "sesame").Result()
		return err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(master)
	})
	return fmt.Sprintf("redis://127.0.0.1:%d/0?master_name=sesame", sentinel)
}
