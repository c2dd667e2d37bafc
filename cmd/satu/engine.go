package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/logging"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// newRunner is the shard's engine loop as configured: snapshots, the
// shard's lease (a second runner is a standby), replica waits.
func newRunner(cfg Config, rdb redis.UniversalClient, engine *matching.Engine, log *zap.Logger, reg prometheus.Registerer) *redisbus.Runner {
	runner := redisbus.NewRunner(rdb, redisbus.KeysFor(cfg.Shard), engine, log, reg)
	runner.SnapshotEvery, runner.SnapshotInterval = uint64(cfg.SnapshotEvery), cfg.SnapshotInterval
	runner.SnapshotSpacing, runner.SnapshotMaxReplay = cfg.SnapshotSpacing, uint64(cfg.SnapshotReplay)
	runner.SnapshotStandby = cfg.SnapshotStandby
	runner.Lease = &redisbus.Lease{Owner: leaseOwner(), TTL: cfg.LeaseTTL}
	runner.WaitReplicas = cfg.WaitReplicas
	return runner
}

// engineCmd runs only the shard's engine — the sequencer: it reads the
// inbox, applies each command and writes the events, the Redis order book
// and the snapshots, while it holds the shard's lease (another one waits
// as a standby). Gateways (`satu serve -engine=false`) and settlement run
// in other processes. It needs Redis only. Being one goroutine's work plus
// Redis round trips, it runs best with few Go processors next to the
// redis-server it shares a host with (GOMAXPROCS; docs/durability.md).
func engineCmd(ctx context.Context, args []string, getenv func(string) string) error {
	cfg, log, _, flush, err := startCommand("satu engine", args, getenv)
	if err != nil {
		return err
	}
	defer flush()
	symbols, err := loadSymbols(cfg.Symbols)
	if err != nil {
		return err
	}
	engine, err := matching.New(symbols)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", cfg.RedisAddr, err)
	}
	reg := newMetricsRegistry()
	runner := newRunner(cfg, rdb, engine, log.Named("engine"), reg)
	stopMetrics, err := serveMetrics(cfg.MetricsAddr, reg)
	if err != nil {
		return err
	}
	defer stopMetrics()
	log.Info("engine running", zap.String("shard", cfg.Shard), zap.String("redis", cfg.RedisAddr))
	return runner.Run(ctx)
}

// startCommand reads a command's configuration and opens its loggers (the
// log and the audit log); flush writes out what they buffer.
func startCommand(name string, args []string, getenv func(string) string) (cfg Config, log, audit *zap.Logger, flush func(), err error) {
	if cfg, err = parseConfig(name, args, getenv); err != nil {
		return cfg, nil, nil, nil, err
	}
	if log, audit, err = logging.New(cfg.LogFormat, cfg.LogLevel); err != nil {
		return cfg, nil, nil, nil, err
	}
	return cfg, log, audit, func() { _ = log.Sync(); _ = audit.Sync() }, nil
}

// newMetricsRegistry is a registry with the Go runtime's and the process's
// collectors.
func newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveMetrics serves reg's /metrics on addr (nothing when addr is empty);
// stop closes the listener.
func serveMetrics(addr string, reg *prometheus.Registry) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}
