package main

import (
	"context"
	"errors"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/store/postgres"
	"github.com/sesame-idp/sesame/internal/testenv"
)

// stop interrupts the server and waits for it to exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGINT")
	}
}

// demoBackend is where `sesame serve` keeps its clients in a test: the
// environment that selects it and a store opened on it.
type demoBackend struct {
	env  []string
	open func(t *testing.T, dir string) store.Store
}

func demoBackends() map[string]func(t *testing.T) demoBackend {
	return map[string]func(t *testing.T) demoBackend{
		"sqlite": func(t *testing.T) demoBackend {
			return demoBackend{open: openStore}
		},
		"postgres": func(t *testing.T) demoBackend {
			url := testenv.PostgresSchema(t)
			return demoBackend{env: []string{"SESAME_DATABASE_URL=" + url}, open: func(t *testing.T, _ string) store.Store {
				db, err := postgres.Open(context.Background(), url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			}}
		},
	}
}

// TestDemoOnlyForLoopbackIssuerOrEnabled: the demo relying party and its
// public client exist only for a loopback issuer or with demo.enabled:
// true, and demo.enabled: false deletes a client registered earlier.
func TestDemoOnlyForLoopbackIssuerOrEnabled(t *testing.T) {
	const public = "SESAME_ISSUER=https://id.example.org"
	for name, backend := range demoBackends() {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				before []string // a start before, with this environment
				env    []string
				want   bool
			}{
				{name: "loopback issuer", want: true},
				{name: "public issuer", env: []string{public}, want: false},
				{name: "public issuer, enabled", env: []string{public, "SESAME_DEMO_ENABLED=true"}, want: true},
				{name: "loopback issuer, disabled", env: []string{"SESAME_DEMO_ENABLED=false"}, want: false},
				{name: "registered, then public issuer", before: []string{}, env: []string{public}, want: false},
				{name: "registered, then disabled", before: []string{}, env: []string{"SESAME_DEMO_ENABLED=false"}, want: false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					b := backend(t)
					dir := t.TempDir()
					if tc.before != nil {
						s := startServe(t, dir, append(b.env, tc.before...)...)
						if _, err := b.open(t, dir).GetClient(context.Background(), idp.DemoClientID); err != nil {
							t.Fatalf("first start: demo client not registered: %v", err)
						}
						s.stop(t)
					}
					s := startServe(t, dir, append(b.env, tc.env...)...)
					_, err := b.open(t, dir).GetClient(context.Background(), idp.DemoClientID)
					switch {
					case tc.want && err != nil:
						t.Errorf("demo client not registered: %v", err)
					case !tc.want && !errors.Is(err, store.ErrNotFound):
						t.Errorf("demo client: %v, want ErrNotFound", err)
					}
					code, _ := get(t, s.url+"/demo")
					if want := map[bool]int{true: http.StatusOK, false: http.StatusNotFound}[tc.want]; code != want {
						t.Errorf("GET /demo: %d, want %d", code, want)
					}
				})
			}
		})
	}
}
