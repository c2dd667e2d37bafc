package redisbus

import (
	"context"

	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/matching"
)

// SetBeforeWrite installs a hook that runs before each of r's writes.
func SetBeforeWrite(r *Runner, f func()) { r.beforeWrite = f }

// SetAfterWrite installs a hook that runs after each of r's writes, in
// the runner's goroutine: the engine is at the written sequence.
func SetAfterWrite(r *Runner, f func()) { r.afterWrite = f }

// SnapshotsTaken is how many snapshots r took while running, as leader
// and as standby.
func SnapshotsTaken(r *Runner) (leader, standby int) {
	count := func(role string) int {
		var m dto.Metric
		_ = r.snapshots.WithLabelValues(role).Write(&m)
		return int(m.GetCounter().GetValue())
	}
	return count("leader"), count("standby")
}

// SetMirrorGroupMax makes r split the mirror's write groups (mirror.go)
// at n arguments or keys instead of maxGroup.
func SetMirrorGroupMax(r *Runner, n int) { r.mirrorGroupMax = n }

// SetFeedEntries bounds the runners' feeds (local.go) at n entries until
// the returned function restores the bound.
func SetFeedEntries(n int) (restore func()) {
	old := feedEntriesTest.Swap(int64(n))
	return func() { feedEntriesTest.Store(old) }
}

// LocalReads is how many reads of the events stream the runners' feeds
// answered in this process so far.
func LocalReads() int64 { return localReads.Load() }

// FeedEntries is how many events entries r's feed holds.
func FeedEntries(r *Runner) int {
	r.local.mu.Lock()
	defer r.local.mu.Unlock()
	return len(r.local.feed)
}

// LoadSnapshotAt restores the stored snapshot m, verified as LoadSnapshot
// verifies it.
func LoadSnapshotAt(ctx context.Context, rdb redis.UniversalClient, keys Keys, m SnapshotMeta) (*matching.Engine, error) {
	return loadSnapshot(ctx, rdb, keys, m, matching.Config{})
}
