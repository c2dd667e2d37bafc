package redisbus_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// BenchmarkRunner measures the sequencer path: b.N order commands already in
// the inbox (alternating resting sells and crossing buys), read in batches,
// applied and their events written with the batch Lua step. One op = one
// command.
func BenchmarkRunner(b *testing.B) {
	rdb, ns := testenv.Redis(b)
	keys := redisbus.KeysFor(ns)
	ctx := context.Background()
	cmds := []matching.Command{
		{Kind: matching.CmdOpenAccount, Account: "s", Owner: "s", AccountKind: matching.KindTrader},
		{Kind: matching.CmdOpenAccount, Account: "b", Owner: "b", AccountKind: matching.KindTrader},
		{Kind: matching.CmdDeposit, Account: "s", Asset: "BTC", Amount: 1 << 60, ExtRef: "s"},
		{Kind: matching.CmdDeposit, Account: "b", Asset: "KZT", Amount: 1 << 62, ExtRef: "b"},
	}
	for i := 0; i < b.N; i++ {
		c := matching.Command{Kind: matching.CmdPlaceOrder, Account: "s", Symbol: "BTCKZT", ClientID: strconv.Itoa(i),
			Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: 4_300_000_000, Quantity: 1_000_000}
		if i%2 == 1 {
			c.Account, c.Side = "b", matching.Buy
		}
		cmds = append(cmds, c)
	}
	for start := 0; start < len(cmds); start += 1000 {
		pipe := rdb.Pipeline()
		for _, c := range cmds[start:min(start+1000, len(cmds))] {
			payload, _ := json.Marshal(c)
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys.Inbox, Values: []any{"c", payload, "ref", ""}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	engine, _ := matching.New(matching.DefaultSymbols())
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	b.ResetTimer()
	go redisbus.NewRunner(rdb, keys, engine, zap.NewNop(), nil).Run(runCtx)
	want := strconv.Itoa(len(cmds))
	for {
		if seq, _ := rdb.HGet(ctx, keys.Engine, "seq").Result(); seq == want {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
}
