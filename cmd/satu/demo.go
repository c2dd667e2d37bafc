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
func demoCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	cfg, err := parseConfig("satu demo", args, getenv)
	if err != nil {
		return err
	}
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	scratch, drop, err := scratchDatabase(ctx, cfg.PGURL, "satu_demo_"+suffix)
	if err != nil {
		return err
	}
	defer drop()
	cfg.PGURL, cfg.Shard, cfg.Addr = scratch, "demo-"+suffix, "127.0.0.1:0"
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
