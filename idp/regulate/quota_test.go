package regulate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/regulate"
)

func TestQuotaPerSubjectAndWindow(t *testing.T) {
	q := regulate.Quota{Name: "pwreset", Limit: 3, Window: 15 * time.Minute}
	forEach(t, regulate.Config{}, func(t *testing.T, e env) {
		allow := func(subject string) regulate.Verdict {
			t.Helper()
			v, err := e.r.Allow(t.Context(), q, subject)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		for i := range 3 {
			if v := allow("nadia"); !v.Allowed {
				t.Fatalf("action %d refused: %+v", i+1, v)
			}
		}
		v := allow("nadia")
		if v.Allowed || v.RetryAfter <= 0 || v.RetryAfter > 15*time.Minute {
			t.Fatalf("fourth action: %+v", v)
		}
		if v := allow("marc"); !v.Allowed {
			t.Fatalf("another subject refused: %+v", v)
		}
		e.clock.Advance(v.RetryAfter)
		if v := allow("nadia"); !v.Allowed {
			t.Fatalf("refused in the next window: %+v", v)
		}
		// Per network: two addresses of one /24 share the count.
		nq := regulate.Quota{Name: "pwreset-net", Limit: 1, Window: time.Hour}
		if v, _ := e.r.AllowFromNetwork(t.Context(), nq, ip("192.0.2.1")); !v.Allowed {
			t.Fatal("first from the network refused")
		}
		if v, _ := e.r.AllowFromNetwork(t.Context(), nq, ip("192.0.2.200")); v.Allowed {
			t.Fatal("second from the same network allowed")
		}
		// The subject never appears in a key.
		for k := range e.keys.seen {
			if strings.Contains(k, "nadia") {
				t.Errorf("key %q carries the subject", k)
			}
		}
	})
}
