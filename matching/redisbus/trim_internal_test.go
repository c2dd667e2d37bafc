package redisbus

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
)

// trimInbox writes n inbox entries, 1-1 to n-1, each opening an account,
// and returns the keys.
func trimInbox(t *testing.T, n int) (redis.UniversalClient, Keys) {
	t.Helper()
	rdb, ns := testenv.Redis(t)
	keys := KeysFor(ns)
	ctx := context.Background()
	if err := LoadScripts(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		c := matching.Command{Kind: matching.CmdOpenAccount, Account: "a" + strconv.Itoa(i), Owner: "o", AccountKind: matching.KindTrader}
		value, at := beginRecord(nil, "")
		value = matching.AppendCommand(value, &c)
		endRecord(value, at)
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Inbox, ID: strconv.Itoa(i) + "-1", Values: []any{fieldCommands, string(value)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return rdb, keys
}

// TestTrimPointNeverGoesBack: of two trims that cross — each from the list
// of snapshots its process read — the older one changes nothing.
func TestTrimPointNeverGoesBack(t *testing.T) {
	rdb, keys := trimInbox(t, 5)
	ctx := context.Background()
	if err := trimTo(ctx, rdb, keys, 4, "4-1", "0-0"); err != nil {
		t.Fatal(err)
	}
	if err := trimTo(ctx, rdb, keys, 2, "2-1", "0-0"); err != nil {
		t.Fatal(err)
	}
	seq, id, err := trimPoint(ctx, rdb, keys)
	if err != nil || seq != 4 || id != "4-1" {
		t.Fatalf("trim point %d %q (%v) after trims to 4 then 2; want 4 4-1", seq, id, err)
	}
	if first, _ := rdb.XRangeN(ctx, keys.Inbox, "-", "+", 1).Result(); len(first) != 1 || first[0].ID != "4-1" {
		t.Fatalf("the inbox starts at %v; want 4-1", first)
	}
	if err := trimTo(ctx, rdb, keys, 0, "", "0-0"); err != nil { // the events only
		t.Fatal(err)
	}
	if seq, id, _ := trimPoint(ctx, rdb, keys); seq != 4 || id != "4-1" {
		t.Fatalf("trim point %d %q after a trim of the events only", seq, id)
	}
}

// TestReaderNoticesATrim: a reader whose position is below the trim point
// is told so (ErrTrimmed) instead of reading on from what is left: the
// check a standby makes after each read, and a replay after each page.
func TestReaderNoticesATrim(t *testing.T) {
	rdb, keys := trimInbox(t, 5)
	ctx := context.Background()
	for _, pos := range []string{"0", "-", "1-1", "3-1", "3-0", "4-1", "5-1"} {
		if err := checkNotTrimmed(ctx, rdb, keys, pos); err != nil {
			t.Fatalf("untrimmed inbox, reader at %s: %v", pos, err)
		}
	}
	// A replay from the start reads entries 1–3 and reaches sequence 3.
	e, _ := matching.New(matching.DefaultSymbols())
	if err := replayAfter(ctx, rdb, keys, e, "-", 3); err != nil || e.Seq() != 3 {
		t.Fatalf("replay of the untrimmed inbox to 3: %v, at %d", err, e.Seq())
	}

	if err := trimTo(ctx, rdb, keys, 4, "4-1", "0-0"); err != nil {
		t.Fatal(err)
	}
	for _, pos := range []string{"0", "-", "1-1", "3-1", "4-0"} {
		if err := checkNotTrimmed(ctx, rdb, keys, pos); !errors.Is(err, ErrTrimmed) {
			t.Fatalf("inbox trimmed below 4-1, reader at %s: %v; want ErrTrimmed", pos, err)
		}
	}
	for _, pos := range []string{"4-1", "5-1", "10-0"} {
		if err := checkNotTrimmed(ctx, rdb, keys, pos); err != nil {
			t.Fatalf("inbox trimmed below 4-1, reader at %s: %v", pos, err)
		}
	}
	// The same replay now finds entries 4 and 5 where 1–3 were: it used
	// to apply them as sequences 1 and 2, silently.
	e, _ = matching.New(matching.DefaultSymbols())
	if err := replayAfter(ctx, rdb, keys, e, "-", 2); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("replay of a trimmed inbox from the start: %v (engine at %d); want ErrTrimmed", err, e.Seq())
	}
}

// TestStandbyNoticesATrimDuringItsRead: a standby behind the trim point is
// stopped with ErrTrimmed even when the trim lands between its check of
// the trim point and its read, and the read spans the gap — where it used
// to apply the commands after the gap as if they followed its own, and
// pass the next check, its sequence having caught up with the trim point.
func TestStandbyNoticesATrimDuringItsRead(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	keys := KeysFor(ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmds := make([]matching.Command, 300)
	for i := range cmds {
		cmds[i] = matching.Command{Kind: matching.CmdOpenAccount, Account: "a" + strconv.Itoa(i), Owner: "o", AccountKind: matching.KindTrader}
	}
	runner := func(owner string) *Runner {
		e, _ := matching.New(matching.DefaultSymbols())
		r := NewRunner(rdb, keys, e, zap.NewNop(), nil)
		r.Lease = &Lease{Owner: owner, TTL: 10 * time.Second}
		return r
	}
	written := func(seq uint64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if s, _ := rdb.HGet(ctx, keys.Engine, "seq").Uint64(); s >= seq {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("sequence %d not written", seq)
			}
		}
	}
	leader := runner("leader")
	go func() { _ = leader.Run(ctx) }()
	for i := 0; i < len(cmds); i += 10 { // entries of 10 commands
		if err := Append(ctx, rdb, keys, cmds[i:i+10]); err != nil {
			t.Fatal(err)
		}
	}
	written(300)

	// The standby reads at most 100 commands at a time. Once it is at 100,
	// and has checked the trim point, the inbox is trimmed to the entry of
	// command 150, which it has not read.
	standby := runner("standby")
	standby.batch = 100
	fired := false
	standby.beforeRead = func() {
		if fired || standby.Seq() < 100 {
			return
		}
		fired = true
		msgs, err := rdb.XRange(ctx, keys.Inbox, "-", "+").Result()
		if err != nil {
			t.Error(err)
			return
		}
		n := 0
		for _, m := range msgs {
			if n += len(entryCommands(m, nil)); n >= 150 {
				if err := trimTo(ctx, rdb, keys, uint64(n), m.ID, "0-0"); err != nil {
					t.Error(err)
				}
				return
			}
		}
	}
	done := make(chan error, 1)
	go func() { done <- standby.Run(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTrimmed) {
			t.Fatalf("the standby stopped with %v at sequence %d; want ErrTrimmed", err, standby.Seq())
		}
		if !fired {
			t.Fatal("the trim never happened")
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the standby read on past the trim (at sequence %d)", standby.Seq())
	}
}

// TestDurableMarkNeverGoesBack: a mark below the current one changes
// nothing.
func TestDurableMarkNeverGoesBack(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	keys := KeysFor(ns)
	ctx := context.Background()
	for _, seq := range []uint64{5, 900, 12, 900, 1000} {
		if err := markDurable.Run(ctx, rdb, []string{keys.Engine}, seq).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := rdb.HGet(ctx, keys.Engine, "durable").Uint64(); err != nil || got != 1000 {
		t.Fatalf("durable %d (%v) after marks 5, 900, 12, 900, 1000; want 1000", got, err)
	}
	if err := markDurable.Run(ctx, rdb, []string{keys.Engine}, 999).Err(); err != nil {
		t.Fatal(err)
	}
	if got, _ := rdb.HGet(ctx, keys.Engine, "durable").Uint64(); got != 1000 {
		t.Fatalf("durable %d after a mark of 999 on 1000", got)
	}
}
