package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	eredis "github.com/sesame-idp/sesame/idp/ephemeral/redis"
)

func cmdServe(ctx context.Context, args []string, e env) error {
	fs, file := flags("serve", e)
	noMigrate := fs.Bool("no-migrate", false, "do not apply database migrations at start-up")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*file, e)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, e)
	slog.SetDefault(log)  // zitadel/oidc logs to the default logger
	eredis.SetLogger(log) // and go-redis to a process-wide one of its own

	// Take the port first: a port in use must fail before anything is written.
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return usagef("http.addr: cannot listen on %s: %v", cfg.HTTP.Addr, unwrapNetErr(err))
	}
	defer ln.Close()
	var mln net.Listener
	if cfg.Metrics.Addr != "" {
		if mln, err = net.Listen("tcp", cfg.Metrics.Addr); err != nil {
			return usagef("metrics.addr: cannot listen on %s: %v", cfg.Metrics.Addr, unwrapNetErr(err))
		}
		defer mln.Close()
	}

	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	if cfg.Database.AutoMigrate && !*noMigrate {
		if err := a.migrate(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}

	reg := a.newRegistry()
	srv, err := a.server(ctx, reg)
	if err != nil {
		return err
	}
	if mln != nil {
		srv.SeparateMetrics = true
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go func() { _ = ms.Serve(mln) }()
		defer ms.Close()
		log.Info("metrics are served apart", "metrics_addr", mln.Addr().String())
	}
	worker, err := a.outbox(reg)
	if err != nil {
		return err
	}
	srv.Notify = worker.Poke
	// At the stop the worker is drained (it stops between messages) and
	// waited for, up to http.shutdown_timeout, before the store closes.
	workerCtx, killWorker := context.WithCancel(context.WithoutCancel(ctx))
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); worker.Run(workerCtx) }()
	defer func() {
		worker.Drain()
		t := time.NewTimer(cfg.HTTP.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-workerDone:
		case <-t.C:
			log.Warn("outbox worker still sending at the end of the shutdown timeout: interrupted")
		}
		killWorker()
		<-workerDone
	}()
	if err := a.firstStart(ctx, e); err != nil {
		return err
	}
	handler, err := srv.Handler()
	if err != nil {
		return err
	}
	go a.keys.Run(ctx)
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	durable, shortLived := a.backendNames()
	log.Info("Sésame is listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer,
		"store", durable, "ephemeral", shortLived, "version", versionString())

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	// In-flight requests finish (their context is not the signal's), up
	// to http.shutdown_timeout.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// unwrapNetErr keeps the system's reason ("address already in use").
func unwrapNetErr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

func cmdMigrate(ctx context.Context, args []string, e env) error {
	fs, file := flags("migrate", e)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*file, e)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, newLogger(cfg.Log, e))
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Fprintln(e.stdout, "migrations applied")
	return nil
}
