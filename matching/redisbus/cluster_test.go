package redisbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// TestOnRedisCluster runs the shard's Redis suite — commands and events
// through a client, snapshots and recovery, the order book, takeover and
// fencing, trimming — on a local three-master Redis Cluster, each case on
// its own shard (its keys in one slot by the shard's hash tag).
func TestOnRedisCluster(t *testing.T) {
	addrs := testenv.NewRedisCluster(t, 3)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = rdb.Close() })

	t.Run("round trip", func(t *testing.T) {
		keys := redisbus.KeysFor("c-round-trip")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e, _ := matching.New(matching.DefaultSymbols())
		go func() { _ = redisbus.NewRunner(rdb, keys, e, zap.NewNop(), nil).Run(ctx) }()
		client := redisbus.NewClient(rdb, keys, zap.NewNop())
		go func() { _ = client.Run(ctx) }()
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		evs, err := client.Do(cctx, matching.Command{Kind: matching.CmdOpenAccount, Account: "a", Owner: "a", AccountKind: matching.KindTrader})
		if err != nil || len(evs) != 1 || evs[0].Kind != matching.EvAccountOpened || evs[0].Seq != 1 {
			t.Fatalf("events %+v (%v)", evs, err)
		}
	})
	t.Run("snapshot and replay", func(t *testing.T) { testSnapshotReplay(t, rdb, "c-snapshots", 4) })
	t.Run("corrupt snapshot", func(t *testing.T) { testCorruptSnapshot(t, rdb, "c-corrupt") })
	t.Run("order book", func(t *testing.T) { testMirror(t, rdb, "c-book", 23, 3) })
	t.Run("takeover", func(t *testing.T) { testStandbyTakeover(t, rdb, "c-takeover") })
	t.Run("trimming", func(t *testing.T) { testTrimming(t, rdb, "c-trimming") })

	// The shards landed on more than one master.
	masters := map[string]bool{}
	for _, shard := range []string{"c-round-trip", "c-snapshots", "c-corrupt", "c-book", "c-takeover", "c-trimming"} {
		slot, err := rdb.ClusterKeySlot(context.Background(), redisbus.KeysFor(shard).Inbox).Result()
		if err != nil {
			t.Fatal(err)
		}
		shards, _ := rdb.ClusterShards(context.Background()).Result()
		for _, s := range shards {
			for _, r := range s.Slots {
				if slot >= r.Start && slot <= r.End {
					masters[s.Nodes[0].ID] = true
				}
			}
		}
	}
	if len(masters) < 2 {
		t.Fatalf("the shards landed on %d master(s); the test wants them spread", len(masters))
	}
}
