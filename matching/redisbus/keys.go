// Package redisbus carries Satu's commands and events through Redis: the
// shard's inbox stream is the sequencer and journal, the events stream is the
// engine's output, and Runner is the loop that applies one to produce the
// other. Every key of a shard carries the shard's {hash tag}, so scripts work
// unchanged on Redis Cluster.
package redisbus

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Keys names a shard's Redis keys. The other keys of a shard (snapshots,
// the order book, the lease, the fence) are derived from Prefix by this
// package.
type Keys struct {
	Shard  string
	Prefix string // satu:{shard}: — every key of the shard starts with it
	Inbox  string // stream of commands, appended by gateways
	Events string // stream of events, one entry per batch, ID "seq-0", written only by the engine
	// Engine is a hash: seq and inbox (the last command whose events are
	// written), epoch (the lease's fencing epoch), settled (settlement's
	// position), durable (the last sequence replicas confirmed), waitSeq
	// (the last sequence the writer asked the replicas about), trimmed
	// and trimmedInbox (where the inbox now starts).
	Engine string
}

// KeysFor returns the keys of a shard, e.g. satu:{s1}:inbox.
func KeysFor(shard string) Keys {
	p := fmt.Sprintf("satu:{%s}:", shard)
	return Keys{Shard: shard, Prefix: p, Inbox: p + "inbox", Events: p + "events", Engine: p + "engine"}
}

// DeleteShard deletes every key of a shard (satu:{shard}:*): inbox,
// events, engine hash, snapshots, order book, lease, fence. For scratch shards
// such as the demo's; never for one that holds a ledger's history.
func DeleteShard(ctx context.Context, rdb redis.UniversalClient, k Keys) error {
	var cursor uint64
	for {
		names, next, err := rdb.Scan(ctx, cursor, k.Prefix+"*", 1000).Result()
		if err != nil {
			return fmt.Errorf("redisbus: delete shard %s: %w", k.Shard, err)
		}
		if len(names) > 0 {
			if err := rdb.Del(ctx, names...).Err(); err != nil {
				return fmt.Errorf("redisbus: delete shard %s: %w", k.Shard, err)
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}
