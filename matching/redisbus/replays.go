package redisbus

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Replays is the gateways' shared memory of accepted signed requests: a
// signature is remembered (SET NX PX) until its timestamp is stale anyway,
// so a request replayed to any gateway is refused. Keys are satu:replay:ID
// and expire by themselves.
type Replays struct {
	rdb redis.UniversalClient
}

// NewReplays returns the replay memory on rdb.
func NewReplays(rdb redis.UniversalClient) *Replays { return &Replays{rdb: rdb} }

// FirstUse records id for ttl and reports whether it was not recorded yet.
func (r *Replays) FirstUse(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	err := r.rdb.SetArgs(ctx, "satu:replay:"+id, 1, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	switch {
	case err == redis.Nil:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("redisbus: replay memory: %w", err)
	}
	return true, nil
}
