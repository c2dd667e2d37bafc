package redisbus_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// TestTrimming: nothing is trimmed before settlement reports a position;
// then, once settlement has passed the oldest kept snapshot, the inbox goes
// below that snapshot and the events below the settled sequence. A restarted engine recovers from the snapshot to the
// same state; a replay from the start is refused, one from the snapshot
// reaches the same state.
func TestTrimming(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	testTrimming(t, rdb, ns)
}

func testTrimming(t *testing.T, rdb redis.UniversalClient, ns string) {
	keys := redisbus.KeysFor(ns)
	ctx := context.Background()
	cmds := randomCommands(31, 1400)
	r := newRunner(t, rdb, keys)
	r.SnapshotEvery = 200
	runUntil(t, rdb, keys, r, 800, cmds[:800]...)
	if n, err := redisbus.InboxCommands(ctx, rdb, keys); n != 800 {
		t.Fatalf("inbox trimmed to %d commands before anything was settled (%v)", n, err)
	}
	start, err := rdb.XRangeN(ctx, keys.Inbox, "-", "+", 1).Result()
	if err != nil || len(start) != 1 {
		t.Fatal(err)
	}

	// Settlement reports a position past where the oldest kept snapshot
	// will be: the next snapshots trim.
	if err := (redisbus.EventReader{RDB: rdb, Keys: keys}).MarkSettled(ctx, 1300); err != nil {
		t.Fatal(err)
	}
	r2 := newRunner(t, rdb, keys)
	r2.SnapshotEvery = 200
	runUntil(t, rdb, keys, r2, 1400, cmds[800:]...)
	want := r2.Engine().StateHash()
	// The runner trims right after it writes a snapshot, which can be just
	// after the batch that runUntil waited for: wait for the trim.
	//
	// The events stream is trimmed to its first entry whose ID — its
	// batch's last sequence — is at least 1300: that entry's batch holds
	// command 1300 or starts right after it.
	eventsStart := func() (entry, first uint64) {
		envs, err := redisbus.ReadEvents(ctx, rdb, keys, "0", 1, 0)
		if err != nil || len(envs) == 0 {
			return 0, 0
		}
		ms, _, _ := strings.Cut(envs[0].StreamID, "-")
		entry, _ = strconv.ParseUint(ms, 10, 64)
		return entry, envs[0].Event.Seq
	}
	var metas []redisbus.SnapshotMeta
	var inbox []redis.XMessage
	var entry, first uint64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		metas, _ = redisbus.Snapshots(ctx, rdb, keys)
		inbox, _ = rdb.XRangeN(ctx, keys.Inbox, "-", "+", 1).Result()
		entry, first = eventsStart()
		trimmed := len(metas) > 0 && len(inbox) == 1 && inbox[0].ID != start[0].ID && entry >= 1300
		if trimmed || time.Now().After(deadline) {
			break
		}
	}
	// The inbox starts at the entry of the snapshot that was the oldest
	// kept when it was last trimmed — the oldest kept now, or, when the
	// runner's last snapshot was the one it took at its stop (which does
	// not trim), the one before: never past the oldest kept snapshot.
	oldest := metas[len(metas)-1]
	if oldest.Seq > 1300 || len(inbox) != 1 || inbox[0].ID == start[0].ID || streamIDAfter(inbox[0].ID, oldest.Inbox) ||
		entry < 1300 || first > 1300 {
		t.Fatalf("after settling to 1300 with snapshots %+v: inbox starts at %v, events at entry %d holding commands from %d", metas, inbox, entry, first)
	}

	r3 := newRunner(t, rdb, keys)
	runUntil(t, rdb, keys, r3, 1400)
	if got := r3.Engine().StateHash(); got != want {
		t.Fatalf("recovered from the snapshot: state %s, want %s", got, want)
	}
	fresh, _ := matching.New(matching.DefaultSymbols())
	if err := redisbus.Replay(ctx, rdb, keys, fresh, 1400); !errors.Is(err, redisbus.ErrTrimmed) {
		t.Fatalf("replay from the start of a trimmed inbox: %v", err)
	}
	e, from, err := redisbus.ReplayFromSnapshot(ctx, rdb, keys, matching.Config{}, 1400)
	if err != nil || e.StateHash() != want || from.Seq != oldest.Seq {
		t.Fatalf("replay from snapshot %d: %v", from.Seq, err)
	}

	// With every snapshot gone, the trimmed shard cannot be recovered from
	// Redis alone, and the runner says so instead of replaying a gap.
	for _, m := range metas {
		rdb.Del(ctx, "satu:{"+ns+"}:snap:"+strconv.FormatUint(m.Seq, 10)+":0")
	}
	bad := newRunner(t, rdb, keys)
	if err := bad.Run(ctx); !errors.Is(err, redisbus.ErrTrimmed) {
		t.Fatalf("runner over a trimmed inbox without snapshots: %v", err)
	}
}

// streamIDAfter says whether stream ID a comes after b.
func streamIDAfter(a, b string) bool {
	split := func(id string) (uint64, uint64) {
		ms, seq, _ := strings.Cut(id, "-")
		m, _ := strconv.ParseUint(ms, 10, 64)
		q, _ := strconv.ParseUint(seq, 10, 64)
		return m, q
	}
	am, aq := split(a)
	bm, bq := split(b)
	return am > bm || am == bm && aq > bq
}
