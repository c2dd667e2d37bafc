package matching_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/satu-exchange/satu/matching"
)

// richEngine builds a state that uses every part of a snapshot: accounts
// of every kind with permissions and an STP default, balances and holds,
// resting limit, GTD, iceberg and mandatory orders with an obligation,
// remembered and finished client IDs, custody references, a halted market.
func richEngine(t testing.TB) *matching.Engine {
	e, err := matching.New(matching.DefaultSymbols())
	if err != nil {
		t.Fatal(err)
	}
	now := int64(1_700_000_000_000)
	do := func(c matching.Command) {
		now += 1000
		c.Seq, c.Time = e.Seq()+1, now
		evs, err := e.Apply(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rej := matching.Rejection(evs); rej != nil {
			t.Fatalf("%s: %v", c.Kind, rej)
		}
	}
	do(matching.Command{Kind: matching.CmdOpenAccount, Account: "miner-1", Owner: "miner", AccountKind: matching.KindMiner})
	do(matching.Command{Kind: matching.CmdOpenAccount, Account: "mm", Owner: "mm", AccountKind: matching.KindMarketMaker})
	do(matching.Command{Kind: matching.CmdOpenAccount, Account: "tr", Owner: "tr", AccountKind: matching.KindTrader})
	do(matching.Command{Kind: matching.CmdSetPermission, Account: "miner-1", Permission: matching.PermMandatorySell, Granted: true})
	do(matching.Command{Kind: matching.CmdSetSTP, Account: "mm", STP: matching.STPExpireBoth})
	for _, a := range []string{"miner-1", "mm", "tr"} {
		do(matching.Command{Kind: matching.CmdDeposit, Account: a, Asset: "BTC", Amount: 500_000_000, ExtRef: "btc-" + a})
		do(matching.Command{Kind: matching.CmdDeposit, Account: a, Asset: "KZT", Amount: 100_000_000_000_00, ExtRef: "kzt-" + a})
	}
	do(matching.Command{Kind: matching.CmdWithdraw, Account: "tr", Asset: "BTC", Amount: 1, ExtRef: "out-1"})
	do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "miner-1", Symbol: "BTCKZT", ClientID: "m1", Side: matching.Sell,
		Type: matching.Limit, TIF: matching.GTC, Price: 31_000_000_00, Quantity: 10_000_000, Purpose: matching.PurposeMandatory, Obligation: "ob-7"})
	do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "mm", Symbol: "BTCKZT", ClientID: "ice", Side: matching.Buy,
		Type: matching.Limit, TIF: matching.GTC, Price: 29_000_000_00, Quantity: 30_000_000, DisplayQty: 5_000_000})
	do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "tr", Symbol: "BTCKZT", ClientID: "gtd", Side: matching.Buy,
		Type: matching.Limit, TIF: matching.GTD, ExpireAt: now + 3_600_000, Price: 29_500_000_00, Quantity: 2_000_000})
	// Half the GTD bid trades: a resting order with a quote amount filled.
	do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "miner-1", Symbol: "BTCKZT", ClientID: "hit", Side: matching.Sell,
		Type: matching.Limit, TIF: matching.IOC, Price: 29_500_000_00, Quantity: 1_000_000})
	do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "tr", Symbol: "ETHKZT", ClientID: "gone", Side: matching.Buy,
		Type: matching.Limit, TIF: matching.GTC, Price: 1_000_000_00, Quantity: 1_000_000_000})
	do(matching.Command{Kind: matching.CmdCancelOrder, Account: "tr", Symbol: "ETHKZT", ClientID: "gone"})
	do(matching.Command{Kind: matching.CmdHalt, Symbol: "USDTKZT"})
	return e
}

// TestSnapshotBinaryRoundTrip: decode(encode(s)) encodes to the same bytes
// and restores to an engine with the same state hash.
func TestSnapshotBinaryRoundTrip(t *testing.T) {
	e := richEngine(t)
	snap := e.Snapshot()
	b, err := snap.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// The encoding is written into one buffer sized up front: enough, and
	// not several times too much.
	if hint := matching.SnapshotSizeHint(snap); hint < len(b) || hint > 2*len(b) {
		t.Errorf("size hint %d for an encoding of %d bytes", hint, len(b))
	}
	var back matching.Snapshot
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	again, _ := back.MarshalBinary()
	if !bytes.Equal(b, again) {
		t.Fatal("re-encoding the decoded snapshot differs")
	}
	r, err := matching.Restore(&back, matching.Config{Symbols: matching.DefaultSymbols()})
	if err != nil {
		t.Fatal(err)
	}
	// Every field survives: the restored engine's snapshot equals the
	// original's, field by field (as JSON), and so do the state hashes.
	j1, _ := json.Marshal(snap)
	j2, _ := json.Marshal(r.Snapshot())
	if !bytes.Equal(j1, j2) {
		t.Fatalf("restored snapshot differs:\n%s\n%s", j1, j2)
	}
	if r.StateHash() != e.StateHash() {
		t.Fatal("restored state hash differs")
	}
	for name, bad := range map[string][]byte{
		"empty": nil, "json": j1, "truncated": b[:len(b)-3], "trailing": append(append([]byte{}, b...), 0),
		"version": append([]byte("SATUSNAP\x09"), b[9:]...),
	} {
		var s matching.Snapshot
		if err := s.UnmarshalBinary(bad); !errors.Is(err, matching.ErrSnapshotEncoding) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzSnapshotDecode(f *testing.F) {
	b, _ := richEngine(f).Snapshot().MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var s matching.Snapshot
		if s.UnmarshalBinary(data) != nil {
			return
		}
		again, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var s2 matching.Snapshot
		if err := s2.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
	})
}

// TestSnapshotLaterIsTheStateWhenTaken: the copy SnapshotLater makes is
// the engine's state at that moment, whatever the engine does before the
// snapshot is completed — orders placed, filled and cancelled, balances,
// client IDs, accounts and custody references that change or appear.
func TestSnapshotLaterIsTheStateWhenTaken(t *testing.T) {
	h := setup(t)
	for i, cid := range []string{"s-1", "s-2", "s-3"} {
		h.limit("miner-1", cid, matching.Sell, (43_000_000+int64(i)*1_000)*kzt, btc/10, false)
	}
	h.limit("buyer-1", "b-1", matching.Buy, 42_000_000*kzt, btc/10, false)
	want := h.e.Snapshot()
	finish := h.e.SnapshotLater()
	// Change everything the copy holds.
	h.limit("buyer-1", "b-2", matching.Buy, 43_000_000*kzt, btc/10, false) // fills s-1
	h.do(matching.Command{Kind: matching.CmdCancelOrder, Account: "miner-1", Symbol: "BTCKZT", ClientID: "s-2"})
	h.open("late-1", "late-co", matching.KindTrader)
	h.deposit("late-1", "KZT", 5*kzt)
	h.deposit("miner-1", "BTC", btc)
	h.do(matching.Command{Kind: matching.CmdSetPermission, Account: "miner-1", Permission: matching.PermMandatorySell, Granted: false})
	if h.e.Snapshot().Hash() == want.Hash() {
		t.Fatal("the commands after the copy changed nothing: the test proves nothing")
	}
	got := finish()
	if got.Hash() != want.Hash() {
		a, _ := json.Marshal(want)
		b, _ := json.Marshal(got)
		t.Fatalf("SnapshotLater completed after more commands differs from Snapshot at the time:\nwant %s\ngot  %s", a, b)
	}
}

// TestRestoreRefusesARepeatedOrder: a snapshot naming one order ID twice —
// on one side, or once on each — is refused, not restored.
func TestRestoreRefusesARepeatedOrder(t *testing.T) {
	snap := richEngine(t).Snapshot()
	var m *matching.MarketSnap
	for i := range snap.Markets {
		if len(snap.Markets[i].Bids) > 0 {
			m = &snap.Markets[i]
		}
	}
	if m == nil {
		t.Fatal("the rich engine rests no bid")
	}
	bids, asks := m.Bids, m.Asks
	for name, change := range map[string]func(){
		"same side": func() { m.Bids = append(slices.Clone(bids), bids[0]) },
		"each side": func() {
			o := bids[0]
			o.Side = matching.Sell // as an ask would be
			m.Asks = append(slices.Clone(asks), o)
		},
	} {
		m.Bids, m.Asks = bids, asks
		change()
		_, err := matching.Restore(snap, matching.Config{Symbols: matching.DefaultSymbols()})
		if err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("%s: restore of a repeated order: %v", name, err)
		}
	}
	m.Bids, m.Asks = bids, asks
	if _, err := matching.Restore(snap, matching.Config{Symbols: matching.DefaultSymbols()}); err != nil {
		t.Fatalf("the snapshot as taken: %v", err)
	}
}

// TestHashIsTheEncodingsSHA256: Hash, which hashes the encoding a
// megabyte at a time as it is written, is the SHA-256 of MarshalBinary's
// bytes — for a small state and for one of several megabytes.
func TestHashIsTheEncodingsSHA256(t *testing.T) {
	e := richEngine(t)
	check := func(what string) {
		t.Helper()
		snap := e.Snapshot()
		b, err := snap.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if got, want := snap.Hash(), hex.EncodeToString(sum[:]); got != want {
			t.Fatalf("%s (%d bytes): Hash %s, SHA-256 of the encoding %s", what, len(b), got, want)
		}
		if what == "large" && len(b) < 3<<20 {
			t.Fatalf("the large state encodes to only %d bytes", len(b))
		}
	}
	check("small")
	seq := e.Seq()
	apply := func(c matching.Command) {
		seq++
		c.Seq, c.Time = seq, e.Now()
		if _, err := e.Apply(c, nil); err != nil {
			t.Fatal(err)
		}
	}
	apply(matching.Command{Kind: matching.CmdOpenAccount, Account: "many", Owner: "many", AccountKind: matching.KindMarketMaker})
	apply(matching.Command{Kind: matching.CmdDeposit, Account: "many", Asset: "BTC", Amount: 1 << 50, ExtRef: "many-btc"})
	for i := range 60_000 {
		apply(matching.Command{Kind: matching.CmdPlaceOrder, Account: "many", Symbol: "BTCKZT", ClientID: "many-" + strconv.Itoa(i),
			Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: 90_000_000_00 + int64(i%500)*100, Quantity: 100_000})
	}
	check("large")
}

// TestRestoreRefusesAnInconsistentSnapshot: a snapshot whose parts do not
// agree — each re-encodes to itself, so its hash cannot tell — is refused:
// held balances that are not its orders' holds, an order ID the next ID is
// not past, a resting order whose client ID it does not remember, one on
// the wrong side or that could not rest, retention entries out of time
// order or for an ID it does not remember.
func TestRestoreRefusesAnInconsistentSnapshot(t *testing.T) {
	cfg := matching.Config{Symbols: matching.DefaultSymbols()}
	bid := func(s *matching.Snapshot) *matching.OrderSnap {
		for i := range s.Markets {
			if len(s.Markets[i].Bids) > 0 {
				return &s.Markets[i].Bids[0]
			}
		}
		t.Fatal("the rich engine rests no bid")
		return nil
	}
	account := func(s *matching.Snapshot, id string) *matching.AccountSnap {
		for i := range s.Accounts {
			if s.Accounts[i].ID == id {
				return &s.Accounts[i]
			}
		}
		t.Fatalf("no account %q", id)
		return nil
	}
	for name, c := range map[string]struct {
		change func(*matching.Snapshot)
		want   string
	}{
		"held balance, no order": {func(s *matching.Snapshot) {
			a := account(s, "miner-1")
			a.Balances = append(slices.Clone(a.Balances), matching.BalanceSnap{Asset: "USDT", Held: 5})
		}, "holds 5 USDT, its orders 0"},
		"order holds more":  {func(s *matching.Snapshot) { bid(s).Held++ }, "its orders"},
		"next ID not past":  {func(s *matching.Snapshot) { s.NextID = 1 }, "next order ID"},
		"client ID unknown": {func(s *matching.Snapshot) { bid(s).ClientID = "nobody-knows" }, "not remembered"},
		"wrong side":        {func(s *matching.Snapshot) { bid(s).Side = matching.Sell }, "side"},
		"more remaining":    {func(s *matching.Snapshot) { o := bid(s); o.Remaining = o.Quantity + 1 }, "cannot rest"},
		"nothing visible":   {func(s *matching.Snapshot) { bid(s).Visible = 0 }, "cannot rest"},
		"off the tick":      {func(s *matching.Snapshot) { bid(s).Price++ }, "tick"},
		"quote negative":    {func(s *matching.Snapshot) { bid(s).QuoteFilled = -1 }, "quote amount"},
		"quote, no fill": {func(s *matching.Snapshot) {
			for i := range s.Markets {
				for j := range s.Markets[i].Bids {
					if o := &s.Markets[i].Bids[j]; o.Remaining == o.Quantity {
						o.QuoteFilled = 1
						return
					}
				}
			}
			t.Fatal("the rich engine rests no unfilled bid")
		}, "quote amount"},
		"retention unknown": {func(s *matching.Snapshot) { s.Finished[0].ClientID = "never" }, "does not remember"},
		"retention reversed": {func(s *matching.Snapshot) {
			s.Finished = append(slices.Clone(s.Finished), s.Finished[0])
			s.Finished[1].At--
		}, "time order"},
	} {
		t.Run(name, func(t *testing.T) {
			s := richEngine(t).Snapshot()
			if len(s.Finished) == 0 {
				t.Fatal("the rich engine has no retention entry")
			}
			c.change(s)
			if _, err := matching.Restore(s, cfg); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Restore: %v; want an error with %q", err, c.want)
			}
		})
	}
	if _, err := matching.Restore(richEngine(t).Snapshot(), cfg); err != nil {
		t.Fatalf("the snapshot as taken: %v", err)
	}
}

// TestSnapshotEncodingV1: a snapshot stored in the first binary encoding,
// which has no quote amounts filled, is still read (the amounts 0),
// restores, and encodes back to its bytes in that encoding — what a
// restart checks; the current encoding keeps the amounts.
func TestSnapshotEncodingV1(t *testing.T) {
	snap := richEngine(t).Snapshot()
	quoted := func(s *matching.Snapshot) (n int) {
		for _, m := range s.Markets {
			for _, o := range append(slices.Clone(m.Bids), m.Asks...) {
				if o.QuoteFilled != 0 {
					n++
				}
			}
		}
		return n
	}
	if quoted(snap) != 1 {
		t.Fatalf("%d resting orders with a quote amount filled; the rich engine has one", quoted(snap))
	}
	cur, err := snap.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back matching.Snapshot
	if err := back.UnmarshalBinary(cur); err != nil || back.Encoding() != 2 || quoted(&back) != 1 {
		t.Fatalf("current encoding: read back in %d with %d quote amounts (%v)", back.Encoding(), quoted(&back), err)
	}

	snap.InEncoding(1)
	old, err := snap.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(old) >= len(cur) {
		t.Fatalf("version 1 is %d bytes, version 2 %d: version 1 should be shorter", len(old), len(cur))
	}
	var v1 matching.Snapshot
	if err := v1.UnmarshalBinary(old); err != nil || v1.Encoding() != 1 || quoted(&v1) != 0 {
		t.Fatalf("version 1: read back in %d with %d quote amounts (%v)", v1.Encoding(), quoted(&v1), err)
	}
	e, err := matching.Restore(&v1, matching.Config{})
	if err != nil {
		t.Fatal(err)
	}
	again := e.Snapshot()
	again.InEncoding(v1.Encoding())
	sum := sha256.Sum256(old)
	if got := again.Hash(); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("restored from version 1, the engine hashes to %s in version 1; its bytes to %x", got, sum)
	}
}

// TestSnapshotEncodingV1Fixture: a snapshot written by the code before
// encoding 2 (testdata/snapshot-encoding1.bin, the rich engine of then)
// still decodes, restores, and hashes back to its own bytes in its
// encoding — what a restart after the upgrade checks.
func TestSnapshotEncodingV1Fixture(t *testing.T) {
	old, err := os.ReadFile("testdata/snapshot-encoding1.bin")
	if err != nil {
		t.Fatal(err)
	}
	var s matching.Snapshot
	if err := s.UnmarshalBinary(old); err != nil || s.Encoding() != 1 {
		t.Fatalf("decoded in encoding %d (%v)", s.Encoding(), err)
	}
	e, err := matching.Restore(&s, matching.Config{})
	if err != nil {
		t.Fatal(err)
	}
	again := e.Snapshot()
	again.InEncoding(1)
	sum := sha256.Sum256(old)
	if got := again.Hash(); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("the restored engine hashes to %s in encoding 1; the file to %x", got, sum)
	}
}
