package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/demo"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// demoCmd runs the demo market once on a scratch database and a scratch
// shard, prints the compliance table and removes both.
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := parseConfigTo(stderr, "satu demo", args, getenv)
	if err != nil {
		return cannotRun{err}
	}
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	scratch, drop, err := scratchDatabase(ctx, cfg.PGURL, "satu_demo_"+suffix)
	if err != nil {
		return err
	}
	defer drop()
	cfg = demoConfig(cfg, scratch, "demo-"+suffix)
	log, audit := quietLogger()
	app := &App{Config: cfg, Log: log, Audit: audit}
	defer func() {
		_ = app.Close(context.Background())
		rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr})
		_ = redisbus.DeleteShard(context.Background(), rdb, redisbus.KeysFor(cfg.Shard))
		rdb.Close()
	}()
	if err := app.Start(ctx); err != nil {
		return err
	}
	c := demo.NewClient(app.Addr(), app.Token(access.RoleOperator))
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.Seed(ctx, time.Now().UTC()); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Satu demo: mandatory sales under rule set kz-law-193 (50 % in 2024, 75 % from 2025)")
	return c.Table(ctx, stdout)
}

// demoConfig is the configuration of the demo's scratch server: cfg (the
// environment and flags, which are often those of a running server) on the
// scratch database pgURL and shard, on a port of its own, with every
// setting that is about a real server, not the scratch one, ignored:
//
//   - KeysDir: the scratch server's keys are its own (Close revokes them);
//     written to the directory they would replace the running server's key
//     files with keys of a database that is about to be dropped.
//   - Engine, Settle: nothing else runs the scratch shard's engine or
//     settlement; without them the demo would wait for its orders in vain.
//   - PprofAddr: the address is the running server's; the demo serves no
//     profiles.
//   - LogKey, LogKeyFile: the exchange's transparency-log key must not sign
//     checkpoints of a scratch log: a second log signed under the
//     exchange's name is what a witness calls a fork.
//   - WaitReplicas, SnapshotStandby: the scratch shard's events need no
//     Redis replicas, and it has no standby engine to take its snapshots.
//   - WSMaxConns, WSIPRequests, WSKeyOrders: limits for a public gateway;
//     the demo's one client on loopback must not be rate limited.
//   - ComplianceSweep, Reconcile: the demo runs the sweep itself, at its
//     step; nobody watches the scratch ledger's reconciliation.
//   - Symbols: the demo's orders are written for the built-in markets.
func demoConfig(cfg Config, pgURL, shard string) Config {
	cfg.PGURL, cfg.Shard, cfg.Addr = pgURL, shard, "127.0.0.1:0"
	cfg.KeysDir = ""
	cfg.Engine, cfg.Settle = true, true
	cfg.PprofAddr = ""
	cfg.LogKey, cfg.LogKeyFile = "", ""
	cfg.WaitReplicas, cfg.SnapshotStandby = 0, false
	cfg.WSMaxConns, cfg.WSIPRequests, cfg.WSKeyOrders = 0, 0, 0
	cfg.ComplianceSweep, cfg.Reconcile = 0, 0
	cfg.Symbols = ""
	return cfg
}

// scratchDatabase creates database name on the server of pgURL and returns
// its URL and a function that drops it.
func scratchDatabase(ctx context.Context, pgURL, name string) (string, func(), error) {
	admin, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: %w (is it running? make run starts one)", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		admin.Close(ctx)
		return "", nil, fmt.Errorf("create scratch database: %w", err)
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		admin.Close(ctx)
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		admin.Close(context.Background())
	}
	return u.String(), drop, nil
}
