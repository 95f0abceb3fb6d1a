package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sesame-idp/sesame/config"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/store/postgres"
	"github.com/sesame-idp/sesame/idp/store/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := mainErr(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sesame-bench:", err)
		os.Exit(1)
	}
}

func mainErr(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sesame-bench", flag.ContinueOnError)
	file := fs.String("config", "", "the server's YAML configuration `file` (SESAME_* variables override it): users are provisioned in its database, with its sealing key")
	o := options{Out: os.Stdout, Status: os.Stderr}
	fs.StringVar(&o.URL, "url", "http://localhost:8080", "the server's base `URL`")
	fs.StringVar(&o.Issuer, "issuer", "", "the configured issuer, when it differs from -url")
	fs.StringVar(&o.MetricsURL, "metrics", "", "the server's /metrics `URL` (default: -url + /metrics; give it with metrics.addr)")
	fs.IntVar(&o.Users, "users", 200, "test users to provision (each signs in at most once per 30 s TOTP step)")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "requests in flight")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long each scenario runs")
	list := fs.String("scenarios", "all", "comma-separated: "+strings.Join(scenarios, ", ")+", or all")
	pids := fs.String("cpu-pids", "", "comma-separated `pids` (the PostgreSQL postmaster, redis-server) whose CPU, with their children's, is added per operation")
	fs.StringVar(&o.SigningAlg, "signing-alg", "RS256", "the bench clients' ID token and JWT access token `algorithm`: RS256 or ES256")
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *quiet {
		o.Status = nil
	}
	if o.Users < 1 || o.Concurrency < 1 || o.Duration <= 0 {
		return errors.New("-users, -concurrency and -duration must be positive")
	}
	if *list == "all" {
		o.Scenarios = scenarios
	} else {
		for _, s := range strings.Split(*list, ",") {
			if s = strings.TrimSpace(s); !slices.Contains(scenarios, s) {
				return fmt.Errorf("unknown scenario %q (want %s)", s, strings.Join(scenarios, ", "))
			}
			o.Scenarios = append(o.Scenarios, strings.TrimSpace(s))
		}
	}
	if *pids != "" {
		for _, p := range strings.Split(*pids, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				return fmt.Errorf("-cpu-pids: %q is not a pid", p)
			}
			o.CPUPids = append(o.CPUPids, n)
		}
	}
	st, sealer, err := openStore(ctx, *file)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = run(ctx, st, sealer, o)
	return err
}

// openStore opens the server's database and sealing key from its
// configuration, as `sesame` does (without creating anything).
func openStore(ctx context.Context, file string) (store.Store, *seal.Sealer, error) {
	cfg, err := config.Load(file, os.Environ())
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	var key seal.Key
	if cfg.Seal.Key != "" {
		key, err = seal.ParseKey(cfg.Seal.Key)
	} else {
		var b []byte
		path := filepath.Join(cfg.DataDir, "seal.key")
		if b, err = os.ReadFile(path); err == nil {
			key, err = seal.ParseKey(strings.TrimSpace(string(b)))
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("seal.key: %w", err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		return nil, nil, fmt.Errorf("seal.key: %w", err)
	}
	if cfg.Database.URL != "" {
		db, err := postgres.Open(ctx, cfg.Database.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("database.url: %w", err)
		}
		return db, sealer, nil
	}
	path := filepath.Join(cfg.DataDir, "sesame.db")
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("data_dir: %w (start the server once first)", err)
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, nil, fmt.Errorf("data_dir: %w", err)
	}
	return db, sealer, nil
}
