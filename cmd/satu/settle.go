package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/compliance"
	compliancepg "github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
	"github.com/satu-exchange/satu/settlement"
	settlementpg "github.com/satu-exchange/satu/settlement/postgres"
)

// newConsumer is the shard's settlement writer with its metrics.
func newConsumer(shard string, rdb redis.UniversalClient, ledger *settlementpg.Store, log *zap.Logger, reg prometheus.Registerer, waitReplicas int) *settlement.Consumer {
	m := settlement.NewMetrics(reg, shard)
	source := redisbus.EventReader{RDB: rdb, Keys: redisbus.KeysFor(shard)}
	c := &settlement.Consumer{Shard: shard, Source: source, Store: ledger, Log: log, Settled: func(b *settlement.Batch) {
		m.Observe(b, time.Now())
		// Tell the engine how far settlement is, so it may trim the inbox
		// and events below it (advisory: a miss only delays trimming).
		if err := source.MarkSettled(context.Background(), b.LastSeq); err != nil {
			log.Warn("could not record the settlement position in Redis", zap.Error(err))
		}
	}}
	if waitReplicas > 0 {
		// The engine waits for replicas: settle only what they hold.
		c.Durable = source.DurableMark
	}
	return c
}

// openLedger connects PostgreSQL, applies the migrations and builds the
// registry and the ledger store on it: for the commands that write (serve,
// settle).
func openLedger(ctx context.Context, cfg Config) (*pgxpool.Pool, *compliancepg.Store, *settlementpg.Store, error) {
	return openLedgerWith(ctx, cfg, migrate)
}

// openLedgerReadOnly is openLedger for the commands that only read
// (reconcile, certificate). They never change the schema — a newer binary
// run against production would otherwise upgrade it under the servers
// still running the older one — and refuse a database whose schema is
// older than this binary's (checkSchema).
func openLedgerReadOnly(ctx context.Context, cfg Config) (*pgxpool.Pool, *compliancepg.Store, *settlementpg.Store, error) {
	return openLedgerWith(ctx, cfg, checkSchema)
}

// openLedgerWith connects PostgreSQL, readies its schema with prepare and
// builds the registry and the ledger store on it.
func openLedgerWith(ctx context.Context, cfg Config, prepare func(context.Context, *pgxpool.Pool) error) (*pgxpool.Pool, *compliancepg.Store, *settlementpg.Store, error) {
	rules, err := compliance.LoadRuleBook()
	if err != nil {
		return nil, nil, nil, err
	}
	ruleSet, err := rules.Get(cfg.RuleSet)
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := openPG(ctx, cfg.PGURL, cfg.PGMaxConns)
	if err != nil {
		return nil, nil, nil, err
	}
	fail := func(err error) (*pgxpool.Pool, *compliancepg.Store, *settlementpg.Store, error) {
		db.Close()
		return nil, nil, nil, err
	}
	if err := prepare(ctx, db); err != nil {
		return fail(err)
	}
	registry, err := compliancepg.NewStore(ctx, db, ruleSet)
	if err != nil {
		return fail(err)
	}
	ledger, err := settlementpg.NewStore(ctx, db, registry)
	if err != nil {
		return fail(err)
	}
	return db, registry, ledger, nil
}

// settleCmd runs only the settlement writer of one shard (and periodic
// reconciliation): the engine and the gateways run elsewhere. Several may
// run; the stored position lets one settle each batch exactly once.
func settleCmd(ctx context.Context, args []string, getenv func(string) string) error {
	cfg, log, _, flush, err := startCommand("satu settle", args, getenv)
	if err != nil {
		return err
	}
	defer flush()
	db, _, ledger, err := openLedger(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, MaxRetries: -1})
	defer rdb.Close()
	reg := newMetricsRegistry()
	consumer := newConsumer(cfg.Shard, rdb, ledger, log.Named("settlement"), reg, cfg.WaitReplicas)
	stopMetrics, err := serveMetrics(cfg.MetricsAddr, reg)
	if err != nil {
		return err
	}
	defer stopMetrics()
	if cfg.Reconcile > 0 {
		loop := settlement.NewReconcileLoop(ledger, cfg.Reconcile, log.Named("reconcile"), reg)
		go func() { _ = loop.Run(ctx) }()
	}
	log.Info("settling", zap.String("shard", cfg.Shard))
	return consumer.Run(ctx)
}

// reconcileCmd compares engine and ledger once and prints the report; with
// -replay it also rebuilds the engine from the shard's inbox to the settled
// sequence and compares every balance with it. Exit code 0: clean; 1:
// differences found; 2: reconciliation could not run (flags, configuration,
// connections, a schema older than this binary, printing the report). It
// only reads: it never migrates the database.
func reconcileCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var asJSON, replay *bool
	cfg, err := parseConfigTo(stderr, "satu reconcile", args, getenv, func(fs *flag.FlagSet) {
		asJSON = fs.Bool("json", false, "print the report as JSON")
		replay = fs.Bool("replay", false, "also replay the shard's inbox into a fresh engine and compare every balance with it")
	})
	if err != nil {
		return cannotRun{err}
	}
	cfg.PGMaxConns = 2
	db, _, ledger, err := openLedgerReadOnly(ctx, cfg)
	if err != nil {
		return cannotRun{err}
	}
	defer db.Close()
	report, err := ledger.Reconcile(ctx)
	if err == nil && *replay {
		var c settlement.CheckResult
		c, err = replayCheck(ctx, cfg, ledger)
		report.Checks = append(report.Checks, c)
	}
	if err != nil {
		return cannotRun{err}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(struct {
			settlement.Report
			Clean bool `json:"clean"`
		}{report, report.Clean()})
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		return cannotRun{fmt.Errorf("print the report: %w", err)}
	}
	if !report.Clean() {
		return exitCode(1)
	}
	return nil
}

// replayCheck rebuilds the shard's engine from its inbox alone to the
// settled sequence and compares the ledger with it.
func replayCheck(ctx context.Context, cfg Config, ledger *settlementpg.Store) (settlement.CheckResult, error) {
	symbols, err := loadSymbols(cfg.Symbols)
	if err != nil {
		return settlement.CheckResult{}, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr})
	defer rdb.Close()
	return ledger.ReplayCheck(ctx, cfg.Shard, func(ctx context.Context, seq uint64) (func(string, string) (int64, int64), error) {
		engine, err := matching.New(symbols)
		if err != nil {
			return nil, err
		}
		keys := redisbus.KeysFor(cfg.Shard)
		err = redisbus.Replay(ctx, rdb, keys, engine, seq)
		if errors.Is(err, redisbus.ErrTrimmed) {
			// The journal's start is gone: replay from the oldest kept
			// snapshot (verified by checksum and state hash) instead.
			engine, _, err = redisbus.ReplayFromSnapshot(ctx, rdb, keys, matching.Config{Symbols: symbols}, seq)
		}
		if err != nil {
			return nil, err
		}
		return engine.Balance, nil
	})
}
