package main

import (
	"runtime"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"
)

// newRegistry is the one Prometheus registry of a `sesame serve`: the Go
// runtime and process collectors, build info, and the pool statistics of
// the database and Redis when they are used. idp.Server and the outbox
// worker register their own series on it.
func (a *app) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	durable, shortLived := a.backendNames()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "sesame_build_info",
		Help:        "Always 1: the version of the binary, its Go version, its cryptography (go, or boringcrypto for the release build) and the backends it uses.",
		ConstLabels: prometheus.Labels{"version": versionString(), "go_version": runtime.Version(), "crypto": cryptoModule(), "store": durable, "ephemeral": shortLived},
	}, func() float64 { return 1 }))
	if p, ok := a.store.(interface{ PoolStat() *pgxpool.Stat }); ok {
		reg.MustRegister(pgPoolCollector{p.PoolStat})
	}
	if r, ok := a.ephemeral.(interface{ PoolStats() *goredis.PoolStats }); ok {
		reg.MustRegister(redisPoolCollector{r.PoolStats})
	}
	return reg
}

var (
	pgDescs = struct{ max, total, idle, acquired, constructing, acquires, empty, waitSeconds, canceled *prometheus.Desc }{
		max:          prometheus.NewDesc("sesame_db_pool_max_connections", "PostgreSQL pool: most connections it may open (pool_max_conns).", nil, nil),
		total:        prometheus.NewDesc("sesame_db_pool_connections", "PostgreSQL pool: open connections.", nil, nil),
		idle:         prometheus.NewDesc("sesame_db_pool_idle_connections", "PostgreSQL pool: idle connections.", nil, nil),
		acquired:     prometheus.NewDesc("sesame_db_pool_acquired_connections", "PostgreSQL pool: connections in use.", nil, nil),
		constructing: prometheus.NewDesc("sesame_db_pool_constructing_connections", "PostgreSQL pool: connections being opened.", nil, nil),
		acquires:     prometheus.NewDesc("sesame_db_pool_acquires_total", "PostgreSQL pool: connections handed out.", nil, nil),
		empty:        prometheus.NewDesc("sesame_db_pool_empty_acquires_total", "PostgreSQL pool: acquisitions that had to wait for a connection (the pool is too small when this grows).", nil, nil),
		waitSeconds:  prometheus.NewDesc("sesame_db_pool_acquire_wait_seconds_total", "PostgreSQL pool: time spent waiting for a connection.", nil, nil),
		canceled:     prometheus.NewDesc("sesame_db_pool_canceled_acquires_total", "PostgreSQL pool: acquisitions given up (request ended first).", nil, nil),
	}
	redisDescs = struct{ total, idle, stale, hits, misses, timeouts *prometheus.Desc }{
		total:    prometheus.NewDesc("sesame_redis_pool_connections", "Redis pool: open connections.", nil, nil),
		idle:     prometheus.NewDesc("sesame_redis_pool_idle_connections", "Redis pool: idle connections.", nil, nil),
		stale:    prometheus.NewDesc("sesame_redis_pool_stale_connections_total", "Redis pool: connections closed as stale.", nil, nil),
		hits:     prometheus.NewDesc("sesame_redis_pool_hits_total", "Redis pool: a free connection was found.", nil, nil),
		misses:   prometheus.NewDesc("sesame_redis_pool_misses_total", "Redis pool: a connection had to be opened.", nil, nil),
		timeouts: prometheus.NewDesc("sesame_redis_pool_timeouts_total", "Redis pool: waits for a connection that timed out (the pool is too small when this grows).", nil, nil),
	}
)

// pgPoolCollector reads pgxpool's statistics at each scrape.
type pgPoolCollector struct{ stat func() *pgxpool.Stat }

func (c pgPoolCollector) Describe(ch chan<- *prometheus.Desc) {
	d := pgDescs
	for _, x := range []*prometheus.Desc{d.max, d.total, d.idle, d.acquired, d.constructing, d.acquires, d.empty, d.waitSeconds, d.canceled} {
		ch <- x
	}
}

func (c pgPoolCollector) Collect(ch chan<- prometheus.Metric) {
	s, d := c.stat(), pgDescs
	g, n := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(d.max, g, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(d.total, g, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(d.idle, g, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(d.acquired, g, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(d.constructing, g, float64(s.ConstructingConns()))
	ch <- prometheus.MustNewConstMetric(d.acquires, n, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(d.empty, n, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(d.waitSeconds, n, s.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(d.canceled, n, float64(s.CanceledAcquireCount()))
}

// redisPoolCollector reads go-redis's pool statistics at each scrape.
type redisPoolCollector struct{ stats func() *goredis.PoolStats }

func (c redisPoolCollector) Describe(ch chan<- *prometheus.Desc) {
	d := redisDescs
	for _, x := range []*prometheus.Desc{d.total, d.idle, d.stale, d.hits, d.misses, d.timeouts} {
		ch <- x
	}
}

func (c redisPoolCollector) Collect(ch chan<- prometheus.Metric) {
	s, d := c.stats(), redisDescs
	g, n := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(d.total, g, float64(s.TotalConns))
	ch <- prometheus.MustNewConstMetric(d.idle, g, float64(s.IdleConns))
	ch <- prometheus.MustNewConstMetric(d.stale, n, float64(s.StaleConns))
	ch <- prometheus.MustNewConstMetric(d.hits, n, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(d.misses, n, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(d.timeouts, n, float64(s.Timeouts))
}
