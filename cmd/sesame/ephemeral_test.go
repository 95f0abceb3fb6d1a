package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
)

// Without Redis, the in-process store is capped by ephemeral.max_entries
// and evicts authorization requests ("ar:") only.
func TestMemoryStoreCapped(t *testing.T) {
	ctx := context.Background()
	cfg, err := loadConfig("", env{environ: []string{"SESAME_DATA_DIR=" + t.TempDir(), "SESAME_EPHEMERAL_MAX_ENTRIES=1000"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := a.ephemeral.Put(ctx, "codeuse:x", []byte("used"), time.Hour); err != nil {
		t.Fatal(err)
	}
	for i := range 1100 {
		if err := a.ephemeral.Put(ctx, fmt.Sprintf("ar:%d", i), []byte("{}"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.ephemeral.Get(ctx, "codeuse:x"); err != nil {
		t.Errorf("used-code marker: %v, want kept", err)
	}
	if _, err := a.ephemeral.Get(ctx, "ar:0"); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Errorf("oldest authorization request: %v, want evicted", err)
	}
	if _, err := a.ephemeral.Get(ctx, "ar:1099"); err != nil {
		t.Errorf("newest authorization request: %v, want kept", err)
	}
}
