package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/satu-exchange/satu/internal/testenv"
)

// TestEngineProcess runs the split deployment: `satu engine` alone holds
// the shard's engine and `satu serve -engine=false` the gateways,
// settlement and the API, each on Redis clients of its own, as two
// processes would be. The demo market is seeded through the API and
// settled, and its compliance table is the README's; stopping the engine
// process ends it cleanly.
func TestEngineProcess(t *testing.T) {
	_, ns := testenv.Redis(t)
	env := map[string]string{"SATU_REDIS_ADDR": testenv.RedisAddr(t), "SATU_SHARD": ns, "SATU_LOG_LEVEL": "warn"}
	engineCtx, stopEngine := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	var engineErr strings.Builder
	go func() {
		exited <- run(engineCtx, []string{"engine"}, &strings.Builder{}, &engineErr, func(k string) string { return env[k] })
	}()
	defer func() {
		stopEngine()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("satu engine exited %d: %s", code, engineErr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("satu engine did not stop within 30 s of its context")
		}
	}()

	_, c := startAppWith(t, func(cfg *Config) { cfg.Shard, cfg.Engine = ns, false })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	must(t, c.Seed(ctx, time.Now().UTC()))
	must(t, c.WaitSettled(ctx))
	var table strings.Builder
	must(t, c.Table(ctx, &table))
	wantReadmeTable(t, table.String())
	select {
	case code := <-exited:
		t.Fatalf("satu engine exited early (%d): %s", code, engineErr.String())
	default:
	}
}
