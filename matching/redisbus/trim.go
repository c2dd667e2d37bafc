package redisbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/internal/streamid"
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

// DurableMark is the highest sequence the engine marked durable (its
// WaitReplicas mark in the engine hash; 0 before any).
func (r EventReader) DurableMark(ctx context.Context) (uint64, error) {
	return durableMark(ctx, r.RDB, r.Keys)
}

func durableMark(ctx context.Context, rdb redis.UniversalClient, keys Keys) (uint64, error) {
	d, err := rdb.HGet(ctx, keys.Engine, "durable").Uint64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisbus: the durable mark: %w", err)
	}
	return d, nil
}

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
	var seq uint64
	var inbox string
	if settled >= oldest.Seq {
		seq, inbox = oldest.Seq, oldest.Inbox
	}
	return trimTo(ctx, rdb, keys, seq, inbox, strconv.FormatUint(settled, 10)+"-0")
}

// trimTo trims, in one step, the inbox below entry inbox and records the
// trim point (seq, inbox) — unless the inbox was trimmed at or past seq
// already, so that the trim point never goes back when two trims cross (a
// leader's and a standby's, each from the list of snapshots it read) —
// and the events stream below eventsMin. An empty inbox leaves the inbox.
func trimTo(ctx context.Context, rdb redis.UniversalClient, keys Keys, seq uint64, inbox, eventsMin string) error {
	err := trimScript.Run(ctx, rdb, []string{keys.Inbox, keys.Events, keys.Engine}, seq, inbox, eventsMin).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisbus: trim: %w", err)
	}
	return nil
}

// trimScript: KEYS inbox, events, engine hash; ARGV the snapshot's
// sequence and inbox entry ("": leave the inbox), the events' minimum ID.
var trimScript = redis.NewScript(`
if ARGV[2] ~= '' then
	local cur = tonumber(redis.call('HGET', KEYS[3], 'trimmed') or '0')
	if tonumber(ARGV[1]) > cur then
		redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2])
		redis.call('HSET', KEYS[3], 'trimmed', ARGV[1], 'trimmedInbox', ARGV[2])
	end
end
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[3])
return 1
`)

// checkNotTrimmed fails with ErrTrimmed if the inbox was trimmed past pos,
// the last entry a reader applied ("0" or "-": none): the entries it would
// read next may be gone, and a read returns what is left without a word.
// A reader that may lag behind the trim point (a standby; a replay) checks
// after each read — the trim point it then reads covers every trim that
// came before the read.
func checkNotTrimmed(ctx context.Context, rdb redis.UniversalClient, keys Keys, pos string) error {
	trimmed, trimmedInbox, err := trimPoint(ctx, rdb, keys)
	if err != nil {
		return err
	}
	if trimmedInbox != "" && streamid.Less(pos, trimmedInbox) {
		return fmt.Errorf("%w below sequence %d (entry %s) while this reader was at entry %s: restart it (it restores a snapshot)",
			ErrTrimmed, trimmed, trimmedInbox, pos)
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
		if err := replayAfter(ctx, rdb, keys, e, "("+m.Inbox, to); errors.Is(err, ErrTrimmed) {
			continue // trimmed past this one meanwhile: a newer one may reach
		} else if err != nil {
			return nil, SnapshotMeta{}, err
		}
		return e, m, nil
	}
	return nil, SnapshotMeta{}, fmt.Errorf("%w: no usable snapshot at or below sequence %d", ErrNoSnapshot, to)
}
