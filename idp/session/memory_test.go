package session_test

import (
	"context"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
	"github.com/sesame-idp/sesame/idp/session"
)

// rssBytes reads the process's resident set (Linux), 0 elsewhere.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkLiveSessions100k creates 100,000 live browser sessions (as many
// sign-ins leave them: a user, its methods, a network) in the in-process
// store `sesame serve` uses without Redis, and reports what they take:
// Go heap and resident set growth, in total and per session (README
// "Capacity").
//
//	go test ./idp/session -run '^$' -bench LiveSessions -benchtime 1x
func BenchmarkLiveSessions100k(b *testing.B) {
	const n = 100_000
	for range b.N {
		eph := memory.NewWithOptions(time.Now, memory.Options{MaxEntries: 200_000})
		m := &session.Manager{Ephemeral: eph, TTL: 12 * time.Hour, Path: "/"}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rss0 := rssBytes()
		now := time.Now()
		for range n {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/login", nil)
			if _, err := m.Start(w, r, session.Session{UserID: uuid.NewString(), AuthTime: now, FactorAt: now,
				AMR: []string{"pwd", "otp", "mfa"}, ACR: "urn:sesame:acr:mfa", Networks: []string{"192.0.2.0/24"}}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		rss1 := rssBytes()
		heap := float64(after.HeapInuse) - float64(before.HeapInuse)
		b.ReportMetric(heap/(1<<20), "heap-MB")
		b.ReportMetric(heap/n, "heap-B/session")
		b.ReportMetric((float64(rss1)-float64(rss0))/(1<<20), "rss-growth-MB")
		if _, err := eph.Get(context.Background(), "nothing"); err == nil {
			b.Fatal("unexpected entry")
		}
	}
}
