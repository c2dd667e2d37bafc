package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/satu-exchange/satu/internal/loadgen"
	"github.com/satu-exchange/satu/matching/wsapi"
)

// loadCmd runs the load generator against a Satu on this machine and
// prints progress, then throughput and latency percentiles.
func loadCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("satu load", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	var c loadgen.Config
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "Satu's address (loopback only)")
	opKey := fs.String("operator-key", ".satu/keys/operator.token", "file holding an operator's API key (opens and funds the load's accounts)")
	fs.IntVar(&c.Conns, "conns", 16, fmt.Sprintf("order-sending connections, each its own account and key (0–%d)", loadgen.MaxConns))
	fs.IntVar(&c.InFlight, "inflight", 1, fmt.Sprintf("requests in flight per connection (1–%d)", loadgen.MaxInFlight))
	fs.IntVar(&c.Batch, "batch", 1, fmt.Sprintf("orders per request: 1 sends order.place/order.cancel, 2–%d batchOrders.place/.cancel", wsapi.MaxBatchOrders))
	fs.IntVar(&c.Rate, "rate", 1000, "orders per second over all connections (0: as fast as they are answered)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to send orders (at most "+loadgen.MaxDuration.String()+")")
	mix := fs.String("mix", "70/25/5", "percent of resting orders / cancels / crossing IOC orders")
	fs.IntVar(&c.MaxOpen, "max-open", 0, "about the most resting orders per connection: one holding that many cancels instead of resting more (0: no bound)")
	fs.StringVar(&c.Symbol, "symbol", "BTCKZT", "symbol")
	fs.StringVar(&c.Quantity, "quantity", "0.001", "each order's quantity")
	fs.StringVar(&c.Mid, "mid", "", "price to place orders around (empty: the middle of the best bid and offer)")
	fs.IntVar(&c.Idle, "idle", 0, "extra logged-on connections held silent for the run")
	fs.IntVar(&c.Subscribers, "subscribers", 0, "market-data connections subscribed to -stream for the run")
	fs.StringVar(&c.Stream, "stream", "btckzt@depth@100ms", "the stream the subscribers follow")
	fs.BoolVar(&c.CountUpdates, "count-updates", false, "follow the symbol's per-command depth stream on one more connection and report the book's update rate")
	fs.DurationVar(&c.Progress, "progress", time.Second, "how often to print progress, with the interval's p50 and p99 (0: never)")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile to this file (it shares the machine with what it measures)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if _, err := fmt.Sscanf(*mix, "%d/%d/%d", &c.Mix.Rest, &c.Mix.Cancel, &c.Mix.Take); err != nil {
		return fmt.Errorf("-mix %q: want REST/CANCEL/TAKE percentages such as 70/25/5", *mix)
	}
	if c.Conns > 0 || c.Idle > 0 {
		tok, err := os.ReadFile(*opKey)
		if err != nil {
			return fmt.Errorf("-operator-key: %w", err)
		}
		c.OperatorKey = strings.TrimSpace(string(tok))
	}
	rep, err := loadgen.Run(ctx, c, stdout)
	if err != nil {
		return err
	}
	rep.Write(stdout)
	return nil
}
