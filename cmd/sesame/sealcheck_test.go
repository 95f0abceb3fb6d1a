package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/seal"
)

// TestSealKeyMismatchRefusesToStart: a node given another sealing key than
// the one the database was sealed with exits 2 at start, naming seal.key,
// on SQLite and on PostgreSQL (a second node's data directory).
func TestSealKeyMismatchRefusesToStart(t *testing.T) {
	for name, backend := range demoBackends() {
		t.Run(name, func(t *testing.T) {
			b := backend(t)
			first, second := t.TempDir(), t.TempDir()
			if name == "sqlite" {
				second = first // the same database file
			}
			keyA, keyB := seal.FormatKey(seal.GenerateKey()), seal.FormatKey(seal.GenerateKey())
			s := startServe(t, first, append(b.env, "SESAME_SEAL_KEY="+keyA)...)
			s.stop(t)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "serve")
			cmd.Dir = second
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + second, "SESAME_HTTP_ADDR=127.0.0.1:0", "SESAME_SEAL_KEY=" + keyB}, b.env...)
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Fatalf("serve with another sealing key: exit %d, want 2\n%s", code, out)
			}
			if !strings.Contains(string(out), "seal.key") || !strings.Contains(string(out), "does not open") {
				t.Errorf("the error does not name seal.key:\n%s", out)
			}
			if strings.Contains(string(out), strings.SplitN(keyB, ":", 2)[1]) {
				t.Error("the error shows the key")
			}
			// The right key still starts.
			startServe(t, second, append(b.env, "SESAME_SEAL_KEY="+keyA)...)
		})
	}
}
