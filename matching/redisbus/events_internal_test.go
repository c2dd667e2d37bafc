package redisbus

import (
	"strconv"
	"testing"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/matching"
)

// TestBatchRecords: records written by beginRecord/endRecord split back
// into their references and events; damaged entries are refused, never
// read as fewer or other commands.
func TestBatchRecords(t *testing.T) {
	cmds := [][]matching.Event{
		{{Seq: 7, Kind: matching.EvAccountOpened, Account: "a"}},
		{{Seq: 8, Kind: matching.EvDeposited, Account: "a", Asset: "KZT", Amount: 5}, {Seq: 8, Index: 1, Kind: matching.EvBalance, Account: "a", Asset: "KZT", Free: 5}},
	}
	refs := []string{"", "client-1"}
	var buf []byte
	ends := map[int]bool{}
	for i, evs := range cmds {
		var at int
		buf, at = beginRecord(buf, refs[i])
		buf = matching.AppendEvents(buf, evs)
		endRecord(buf, at)
		ends[len(buf)] = true
	}
	envs, err := decodeEntry(nil, redis.XMessage{ID: "8-0", Values: map[string]any{fieldBatch: string(buf)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 3 || envs[0].Ref != "" || !envs[0].Last || envs[1].Ref != "client-1" || envs[1].Last || !envs[2].Last ||
		envs[2].Event.Free != 5 || envs[1].StreamID != "8-0" {
		t.Fatalf("decoded %+v", envs)
	}
	for n := 1; n < len(buf); n++ {
		if ends[n] {
			continue // a whole record: an entry of fewer commands, but a well-formed one
		}
		if _, err := decodeEntry(nil, redis.XMessage{ID: "8-0", Values: map[string]any{fieldBatch: string(buf[:n])}}); err == nil {
			t.Fatalf("an entry cut to %d of %d bytes decoded", n, len(buf))
		}
	}
	for _, bad := range []string{"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "\x05ab", "\x00\x00\x00\x00\x00", "\x00\x09\x00\x00\x00x"} {
		if _, _, _, err := nextRecord(bad); err == nil {
			t.Fatalf("record %q accepted", bad)
		}
	}
}

// TestInboxEntryCommands: an inbox entry holds its submitters' commands
// as records, or (older entries) one command; a record that does not
// decode is a command of no kind, and an entry whose records cannot be
// split is one command of no kind — the engine refuses each, so sequence
// numbers stay gap-free.
func TestInboxEntryCommands(t *testing.T) {
	var value []byte
	cmds := []matching.Command{
		{Kind: matching.CmdOpenAccount, Account: "a", Owner: "a", AccountKind: matching.KindTrader},
		{Kind: matching.CmdDeposit, Account: "a", Asset: "KZT", Amount: 5, ExtRef: "x"},
	}
	for i := range cmds {
		var at int
		value, at = beginRecord(value, "ref-"+strconv.Itoa(i))
		value = matching.AppendCommand(value, &cmds[i])
		endRecord(value, at)
	}
	var at int
	value, at = beginRecord(value, "ref-bad")
	value = append(value, 0xff, 0xff)
	endRecord(value, at)
	got := entryCommands(redis.XMessage{ID: "1-0", Values: map[string]any{fieldCommands: string(value)}}, nil)
	if len(got) != 3 || got[0].ref != "ref-0" || got[0].cmd.Account != "a" || got[1].cmd.Amount != 5 || got[1].ref != "ref-1" ||
		got[2].ref != "ref-bad" || got[2].cmd.Kind != 0 {
		t.Fatalf("commands %+v", got)
	}
	got = entryCommands(redis.XMessage{ID: "1-0", Values: map[string]any{fieldCommands: string(value[:len(value)-1])}}, nil)
	if len(got) != 1 || got[0].cmd.Kind != 0 {
		t.Fatalf("an entry cut short: %+v; want one command of no kind", got)
	}
	got = entryCommands(redis.XMessage{ID: "1-0", Values: map[string]any{fieldCommand: `{"kind":"tick"}`, fieldRef: "r"}}, nil)
	if len(got) != 1 || got[0].cmd.Kind != matching.CmdTick || got[0].ref != "r" {
		t.Fatalf("an older entry: %+v", got)
	}
}

// TestInboxCommandsDoNotPinTheEntry: the strings of a decoded command are
// not slices of the entry's value, so an order the engine keeps open does
// not keep the other commands of its entry in memory with it.
func TestInboxCommandsDoNotPinTheEntry(t *testing.T) {
	var value []byte
	for i := range 20 {
		c := matching.Command{Kind: matching.CmdPlaceOrder, Account: "miner-1", Symbol: "BTCKZT", ClientID: "order-" + strconv.Itoa(i),
			Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: 4_300_000_000, Quantity: 1_000_000,
			Purpose: matching.PurposeMandatory, Obligation: "obligation-" + strconv.Itoa(i)}
		var at int
		value, at = beginRecord(value, "ref-"+strconv.Itoa(i))
		value = matching.AppendCommand(value, &c)
		endRecord(value, at)
	}
	entry := string(value)
	got := entryCommands(redis.XMessage{ID: "1-0", Values: map[string]any{fieldCommands: entry}}, nil)
	if len(got) != 20 {
		t.Fatalf("%d commands, want 20", len(got))
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(entry)))
	inEntry := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return p >= lo && p < lo+uintptr(len(entry))
	}
	for i, c := range got {
		if c.cmd.ClientID != "order-"+strconv.Itoa(i) || c.cmd.Obligation != "obligation-"+strconv.Itoa(i) {
			t.Fatalf("command %d decoded as %+v", i, c.cmd)
		}
		for _, s := range []string{c.cmd.Account, c.cmd.Symbol, c.cmd.ClientID, c.cmd.Obligation} {
			if inEntry(s) {
				t.Fatalf("command %d: %q is a slice of the entry's value", i, s)
			}
		}
	}
}
