package redisbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/matching"
)

// Trimming. The inbox is the journal: an entry may go only when no one
// needs to replay it — below the oldest kept snapshot (a restart restores a
// snapshot and replays after it) and below the settlement position. The
// events stream may go below the settlement position (gateways tail its
// end). After each snapshot it takes while running (not the final one of a
// clean stop), the leader trims both and records the trim point in the
// engine hash (trimmed: the sequence of the snapshot the inbox now starts
// after; trimmedInbox: the inbox entry that snapshot ends with).

// ErrTrimmed means the inbox no longer holds its first commands.
var ErrTrimmed = errors.New("redisbus: the inbox is trimmed")

// MarkSettled records settlement's position (the engine sequence settled
// through) for trimming. It is advisory: a missed mark only delays trimming.
func (r EventReader) MarkSettled(ctx context.Context, seq uint64) error {
	return r.RDB.HSet(ctx, r.Keys.Engine, "settled", seq).Err()
}

// trim trims the inbox below the oldest kept snapshot if settlement has
// passed it, and the events stream below the settlement position.
func trim(ctx context.Context, rdb redis.UniversalClient, keys Keys) error {
	metas, err := Snapshots(ctx, rdb, keys)
	if err != nil || len(metas) == 0 {
		return err
	}
	oldest := metas[len(metas)-1]
	settled, err := rdb.HGet(ctx, keys.Engine, "settled").Uint64()
	if errors.Is(err, redis.Nil) {
		return nil // nothing settled yet
	}
	if err != nil {
		return fmt.Errorf("redisbus: trim: %w", err)
	}
	pipe := rdb.TxPipeline()
	if settled >= oldest.Seq {
		pipe.XTrimMinID(ctx, keys.Inbox, oldest.Inbox)
		pipe.HSet(ctx, keys.Engine, "trimmed", oldest.Seq, "trimmedInbox", oldest.Inbox)
	}
	pipe.XTrimMinID(ctx, keys.Events, strconv.FormatUint(settled, 10)+"-0")
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisbus: trim: %w", err)
	}
	return nil
}

// trimPoint reads where the inbox was last trimmed (0 and "" if never).
func trimPoint(ctx context.Context, rdb redis.UniversalClient, keys Keys) (uint64, string, error) {
	v, err := rdb.HMGet(ctx, keys.Engine, "trimmed", "trimmedInbox").Result()
	if err != nil {
		return 0, "", fmt.Errorf("redisbus: trim point: %w", err)
	}
	s, _ := v[0].(string)
	id, _ := v[1].(string)
	if s == "" {
		return 0, "", nil
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	return seq, id, err
}

// ReplayFromSnapshot is Replay for a trimmed inbox: it restores the stored
// snapshot at the trim point (the oldest kept) and replays after it to
// sequence to. Unlike Replay it trusts that snapshot (verified by checksum
// and state hash when loaded).
func ReplayFromSnapshot(ctx context.Context, rdb redis.UniversalClient, keys Keys, cfg matching.Config, to uint64) (*matching.Engine, SnapshotMeta, error) {
	metas, err := Snapshots(ctx, rdb, keys)
	if err != nil {
		return nil, SnapshotMeta{}, err
	}
	for i := len(metas) - 1; i >= 0; i-- { // oldest first: the trim point is the oldest kept
		m := metas[i]
		if m.Seq > to {
			break
		}
		e, err := loadSnapshot(ctx, rdb, keys, m, cfg)
		if err != nil {
			continue
		}
		if err := replayAfter(ctx, rdb, keys, e, "("+m.Inbox, to); err != nil {
			return nil, SnapshotMeta{}, err
		}
		return e, m, nil
	}
	return nil, SnapshotMeta{}, fmt.Errorf("%w: no usable snapshot at or below sequence %d", ErrNoSnapshot, to)
}
