package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sesame-idp/sesame/config"
	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
	eredis "github.com/sesame-idp/sesame/idp/ephemeral/redis"
	"github.com/sesame-idp/sesame/idp/keys"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/store/postgres"
	"github.com/sesame-idp/sesame/idp/store/sqlite"
)

// app holds the concrete dependencies built from the configuration.
type app struct {
	cfg       config.Config
	log       *slog.Logger
	store     store.Store
	migrate   func(context.Context) error
	ephemeral ephemeral.Store
	sealer    *seal.Sealer
	sealKey   seal.Key
	keys      *keys.Manager
}

// loadConfig reads and validates the configuration: any problem is a
// usageError, before anything is written.
func loadConfig(file string, e env) (config.Config, error) {
	cfg, err := config.Load(file, e.environ)
	if err != nil {
		return cfg, usageError{fmt.Errorf("configuration: %w", err)}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{fmt.Errorf("configuration: %w", err)}
	}
	return cfg, nil
}

func newLogger(cfg config.Log, e env) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

const connectTimeout = 5 * time.Second

// openApp connects to the database and Redis and loads the sealing key.
// Remote services are reached before anything is written locally, so a
// wrong URL leaves no trace; an unreachable one is a usageError naming the
// key and the (redacted) address.
func openApp(ctx context.Context, cfg config.Config, log *slog.Logger) (a *app, err error) {
	a = &app{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			a.close()
		}
	}()

	if cfg.Database.URL != "" {
		pctx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		db, err := postgres.OpenWith(pctx, cfg.Database.URL, postgres.Options{Timeout: cfg.Database.Timeout})
		if err == nil {
			a.store = db
			err = db.Ping(pctx)
		}
		if err != nil {
			return a, usagef("database.url: cannot reach %s: %v", config.Redact(cfg.Database.URL), err)
		}
		a.migrate = db.Migrate
	}

	// The sealing key is needed by Redis; read it (without creating it) now.
	var key seal.Key
	keyFile := filepath.Join(cfg.DataDir, "seal.key")
	if cfg.Seal.Key != "" {
		if key, err = seal.ParseKey(cfg.Seal.Key); err != nil {
			return a, usagef("seal.key: %v", err)
		}
	}

	if cfg.Redis.URL != "" {
		// Values reaching Redis are sealed: the key must exist first. Create
		// it only after Redis answered, with a throw-away sealer for the ping.
		rctx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		throwaway, _ := seal.New(seal.GenerateKey())
		probe, err := eredis.Open(rctx, cfg.Redis.URL, cfg.Redis.Prefix, throwaway)
		if err == nil {
			err = probe.Ping(rctx)
			probe.Close()
		}
		if err != nil {
			return a, usagef("redis.url: cannot reach %s: %v", config.Redact(cfg.Redis.URL), err)
		}
	}

	// From here on, local files may be written.
	if cfg.Seal.Key == "" {
		if key, err = seal.LoadOrCreateKeyFile(keyFile); err != nil {
			return a, usagef("seal.key: %v", err)
		}
	}
	a.sealKey = key
	if a.sealer, err = seal.New(key); err != nil {
		return a, usagef("seal.key: %v", err)
	}

	if a.store == nil {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return a, usagef("data_dir: %v", err)
		}
		path := filepath.Join(cfg.DataDir, "sesame.db")
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return a, usagef("data_dir: cannot open %s: %v", path, err)
		}
		a.store, a.migrate = db, db.Migrate
	}

	if err := a.checkSealKey(ctx); err != nil {
		return a, err
	}

	if cfg.Redis.URL != "" {
		r, err := eredis.OpenWith(ctx, cfg.Redis.URL, cfg.Redis.Prefix, a.sealer, eredis.Options{Timeout: cfg.Redis.Timeout})
		if err != nil {
			return a, usagef("redis.url: %v", err)
		}
		a.ephemeral = r
	} else {
		a.ephemeral = memory.NewWithOptions(time.Now, memory.Options{
			MaxEntries: cfg.Ephemeral.MaxEntries,
			Evictable:  oidcstore.IsAuthRequestKey,
		})
	}
	return a, nil
}

// checkSealKey refuses a sealing key that does not open the database's
// sealed rows: the signing keys, sealed since the first start, are the
// canary. A node given another key than the others would otherwise start,
// then fail requests one by one (or seal new secrets no other node can
// open). A database not migrated yet has no signing keys: nothing to check.
func (a *app) checkSealKey(ctx context.Context) error {
	recs, err := a.store.ListSigningKeys(ctx)
	if err != nil || len(recs) == 0 {
		return nil
	}
	for _, r := range recs {
		if r.State == store.KeyRetired {
			continue
		}
		if _, err := a.sealer.Open(r.Sealed, []byte(r.ID)); err == nil {
			return nil
		}
	}
	return usagef("seal.key: this sealing key (id %s) does not open the data the database was sealed with "+
		"(its signing keys): give every node the same key as the first one (seal.key or SESAME_SEAL_KEY_FILE)", a.sealer.CurrentKeyID())
}

func (a *app) close() {
	var errs []error
	if a.ephemeral != nil {
		errs = append(errs, a.ephemeral.Close())
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
	}
	if err := errors.Join(errs...); err != nil {
		a.log.Warn("closing", "err", err)
	}
}

func (a *app) backendNames() (durable, shortLived string) {
	durable, shortLived = "sqlite", "memory"
	if a.cfg.Database.URL != "" {
		durable = "postgres"
	}
	if a.cfg.Redis.URL != "" {
		shortLived = "redis"
	}
	return durable, shortLived
}
