package redisbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// One writer per shard. The leader holds satu:{s1}:lease (SET NX PX with
// its owner name) and renews it; taking the lease increments the fencing
// epoch in the engine hash and the fence, and every write carries the
// writer's epoch, which the write checks under WATCH (fence.go). So after a takeover the old leader's
// writes are refused even if it never noticed losing the lease (a long
// pause, a partition). A standby tails what the leader has written and
// takes the lease when it lapses.

// Lease configures a runner's claim on its shard.
type Lease struct {
	Owner string        // unique per process, e.g. host:pid:random
	TTL   time.Duration // how long the lease lives without renewal; default 5 s
}

// ErrFenced means a newer leader holds the shard: this runner must stop.
var ErrFenced = errors.New("redisbus: fenced: another engine took over this shard")

// ErrDeposed means the runner could not renew its lease in time.
var ErrDeposed = errors.New("redisbus: lost the shard's lease")

// KEYS[1] lease, KEYS[2] engine hash, KEYS[3] fence (fence.go); ARGV[1]
// owner, ARGV[2] TTL in ms. Returns the new epoch, or 0 when someone else
// holds the lease. The epoch goes to the fence too, which aborts a
// transaction the old leader has under WATCH.
var acquireLease = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local e = redis.call('HINCRBY', KEYS[2], 'epoch', 1)
  redis.call('HSET', KEYS[3], 'epoch', e)
  return e
end
return 0
`)

// KEYS[1] lease; ARGV[1] owner, ARGV[2] TTL in ms. 1 if renewed.
var renewLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// KEYS[1] lease; ARGV[1] owner.
var releaseLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

func (k Keys) lease() string { return k.Prefix + "lease" }

// leaseState is a runner's view of its lease. Without a Lease the runner
// leads from the start and writes without an epoch.
type leaseState struct {
	cfg       *Lease
	leading   bool
	epoch     string
	lastTry   time.Time
	lastRenew time.Time
}

func newLeaseState(cfg *Lease) *leaseState {
	return &leaseState{cfg: cfg, leading: cfg == nil}
}

func (l *leaseState) ttl() time.Duration {
	if l.cfg.TTL > 0 {
		return l.cfg.TTL
	}
	return 5 * time.Second
}

// tick renews a held lease (every TTL/3) or tries to take a free one
// (every TTL/4); it reports whether the lease was just taken.
func (l *leaseState) tick(ctx context.Context, rdb redis.UniversalClient, keys Keys) (bool, error) {
	if l.cfg == nil {
		return false, nil
	}
	ms := strconv.FormatInt(l.ttl().Milliseconds(), 10)
	now := time.Now()
	if l.leading {
		if now.Sub(l.lastRenew) < l.ttl()/3 {
			return false, nil
		}
		ok, err := renewLease.EvalSha(ctx, rdb, []string{keys.lease()}, l.cfg.Owner, ms).Int()
		if err != nil || ok != 1 {
			if ctx.Err() != nil {
				return false, nil
			}
			return false, fmt.Errorf("%w (renewal: %v)", ErrDeposed, err)
		}
		l.lastRenew = now
		return false, nil
	}
	if now.Sub(l.lastTry) < l.ttl()/4 {
		return false, nil
	}
	l.lastTry = now
	epoch, err := acquireLease.EvalSha(ctx, rdb, []string{keys.lease(), keys.Engine, keys.fence()}, l.cfg.Owner, ms).Int64()
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, fmt.Errorf("redisbus: take the lease: %w", err)
	}
	if epoch == 0 {
		return false, nil
	}
	l.leading, l.epoch, l.lastRenew = true, strconv.FormatInt(epoch, 10), now
	return true, nil
}

// release gives the lease up (on a clean stop), so a standby need not wait
// for it to lapse.
func (l *leaseState) release(rdb redis.UniversalClient, keys Keys) {
	if l.cfg == nil || !l.leading {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = releaseLease.EvalSha(ctx, rdb, []string{keys.lease()}, l.cfg.Owner).Err()
}
