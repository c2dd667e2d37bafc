package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/demo"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, log, audit, flush, err := startCommand("satu serve", args, getenv)
	if err != nil {
		return err
	}
	defer flush()
	app := &App{Config: cfg, Log: log, Audit: audit}
	if err := app.Start(ctx); err != nil {
		_ = app.Close(context.Background())
		return err
	}
	if cfg.Demo {
		if err := seedDemo(ctx, app.Addr(), app.Token(access.RoleOperator), stdout); err != nil {
			_ = app.Close(context.Background())
			return fmt.Errorf("demo seed: %w", err)
		}
	}
	fmt.Fprintf(stdout, `
Satu is serving on http://%[1]s  (Ctrl-C stops it; 'make stop' stops PostgreSQL and Redis)

  health        curl -s http://%[1]s/readyz
  markets       curl -s http://%[1]s/v1/exchangeInfo
  obligations   curl -s -H @.satu/keys/regulator.header 'http://%[1]s/v1/compliance/obligations'
  a summary     curl -s -H @.satu/keys/regulator.header http://%[1]s/v1/compliance/miners/ekibastuz-mining/summary
  a proof       curl -s -H @.satu/keys/regulator.header -o cert.json http://%[1]s/v1/regulator/obligations/1/certificate
                .satu/bin/satu verify cert.json -key .satu/log.pub      (docs/proof.md)
  websocket     ws://%[1]s/ws/api   (session.logon, order.place, order.cancel, exchangeInfo)
  metrics       http://%[1]s/metrics

The README's quick tour walks a new miner from licence to met obligation.
`, app.Addr())
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-app.Err():
	}
	// App.Close bounds the shutdown by the grace itself; 0 is no bound (a
	// context that expired at once would cut the engine's final snapshot).
	if err := app.Close(context.Background()); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// seedDemo seeds the demo market unless it is there already, and prints its table.
func seedDemo(ctx context.Context, addr, apiKey string, out io.Writer) error {
	c := demo.NewClient(addr, apiKey)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	seeded, err := c.Seeded(ctx)
	if err != nil {
		return err
	}
	if !seeded {
		if err := c.Seed(ctx, time.Now().UTC()); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "\nDemo market (mandatory sales under rule set kz-law-193):")
	return c.Table(ctx, out)
}

func migrateCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	cfg, err := parseConfig("satu migrate", args, getenv)
	if err != nil {
		return err
	}
	db, err := openPG(ctx, cfg.PGURL, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrate(ctx, db); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

// quietLogger keeps one-shot commands' output to what they print.
func quietLogger() (*zap.Logger, *zap.Logger) { return zap.NewNop(), zap.NewNop() }
