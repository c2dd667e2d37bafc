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

// Keys names a shard's Redis keys.
type Keys struct {
	Shard  string
	Inbox  string // stream of commands, appended by gateways
	Events string // stream of events, IDs "seq-index", written only by the engine
	Engine string // hash: seq and inbox ID of the last command whose events are written
}

// KeysFor returns the keys of a shard, e.g. satu:{s1}:inbox.
func KeysFor(shard string) Keys {
	p := fmt.Sprintf("satu:{%s}:", shard)
	return Keys{Shard: shard, Inbox: p + "inbox", Events: p + "events", Engine: p + "engine"}
}

// DeleteShard deletes every key of a shard (satu:{shard}:*): inbox,
// events, engine hash, snapshots, order book, lease. For scratch shards
// such as the demo's; never for one that holds a ledger's history.
func DeleteShard(ctx context.Context, rdb redis.UniversalClient, k Keys) error {
	var cursor uint64
	for {
		names, next, err := rdb.Scan(ctx, cursor, k.prefix()+"*", 1000).Result()
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
