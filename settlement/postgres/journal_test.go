package postgres_test

// Tests of the journal design (migrations/00007_journal.sql): paging
// and statements over the view postings, the hand-encoded binary COPY of
// fills, the pipelined consumer through the real store, and the journal
// migration over data settled under the version-6 schema.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/migrations"
	"github.com/satu-exchange/satu/settlement"
	"github.com/satu-exchange/satu/settlement/postgres"
)

var journalScales = map[string]int{"BTC": 8, "ETH": 9, "KZT": 2, "USDT": 6}

// journalEvents is a real engine's flow on BTCKZT (many fills per engine
// millisecond, several fills per command) followed by hand-made commands at
// the flow's last instant: one command with twelve fills (indexes 1..12:
// "S-10" is newer than "S-9"), among them a fill with one account on both
// sides, a fill without fees and without a fee account, one whose seller
// fee eats the whole quote amount (no leg 3) and one whose quote amount
// rounds to zero (only legs 0 and 1); a deposit and a withdrawal at the
// same instant; a last fill the other way round.
func journalEvents(t *testing.T, commands int, seed uint64) []matching.Event {
	t.Helper()
	f, evs := newFlow(t, 6, seed)
	for range commands {
		evs = f.step(t, evs)
	}
	seq, at := f.e.Seq(), f.now
	seq++
	for idx := uint32(1); idx <= 12; idx++ {
		ev := tradeEvent(seq, idx, at, "t000", "t001", 30_000_000_00+int64(idx)*100, int64(idx)*1000)
		switch idx {
		case 3: // one account on both sides (the engine's self-trade prevention forbids it; the ledger must not care)
			ev.BuyerAccount, ev.SellerAccount = "t002", "t002"
		case 5: // no fees, no fee account
			ev.BuyerFee, ev.SellerFee, ev.FeeAccount = 0, 0, ""
		case 7: // the seller's fee is the whole quote amount: no leg 3
			ev.SellerFee = ev.QuoteAmount
		case 11: // the quote amount rounds to zero: only the base legs
			ev.Price, ev.Quantity, ev.QuoteAmount, ev.BuyerFee, ev.SellerFee, ev.FeeAccount = 100, 1, 0, 0, 0, ""
		}
		evs = append(evs, ev)
	}
	seq++
	evs = append(evs, matching.Event{Seq: seq, Index: 0, Time: at, Kind: matching.EvDeposited, Account: "t002",
		Asset: "KZT", Amount: 12_345, ExtRef: "journal-dep"})
	seq++
	evs = append(evs, matching.Event{Seq: seq, Index: 0, Time: at, Kind: matching.EvWithdrawn, Account: "t000",
		Asset: "BTC", Amount: 777, ExtRef: "journal-wd"})
	seq++
	evs = append(evs, tradeEvent(seq, 1, at, "t001", "t000", 30_000_000_00, 5000))
	return evs
}

// onShard2 is the same flow as another shard would settle it: equal
// sequences, indexes and times, other external references.
func onShard2(evs []matching.Event) []matching.Event {
	out := slices.Clone(evs)
	for i := range out {
		if out[i].ExtRef != "" {
			out[i].ExtRef = "s2-" + out[i].ExtRef
		}
	}
	return out
}

type journalLedger struct {
	db       *pgxpool.Pool
	store    *postgres.Store
	accounts []string
	batches  map[string][]*settlement.Batch // by shard
}

// newJournalLedger settles journalEvents on shard s1 in batches of about 37
// events and on shard s2 in batches of about 53.
func newJournalLedger(t *testing.T) *journalLedger {
	t.Helper()
	db := testenv.PG(t)
	store, err := postgres.NewStore(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := journalEvents(t, 250, 5)
	l := &journalLedger{db: db, store: store, batches: map[string][]*settlement.Batch{}}
	l.batches["s1"] = settleAll(t, store, "s1", evs, 37)
	l.batches["s2"] = settleAll(t, store, "s2", onShard2(evs), 53)
	l.accounts = []string{"t000", "t001", "t002", "t003", "t004", "t005", matching.DefaultFeeAccount, settlement.CustodyAccount}
	return l
}

// bookedPostings is every posting the pure batches booked, as
// "shard/event/leg account amount".
func (l *journalLedger) bookedPostings() []string {
	var out []string
	for shard, bs := range l.batches {
		for _, b := range bs {
			for _, p := range allPostings(b) {
				out = append(out, fmt.Sprintf("%s/%s/%d %s %s", shard, p.EventID, p.Leg, p.Account,
					money.Format(p.Amount, journalScales[p.Asset])))
			}
		}
	}
	slices.Sort(out)
	return out
}

func queryStrings(t *testing.T, db *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// firstDiff describes where two listings part.
func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			lo := max(0, i-2)
			return fmt.Sprintf("at row %d: got %q, want %q (context got %q want %q)", i, got[i], want[i],
				got[lo:min(len(got), i+3)], want[lo:min(len(want), i+3)])
		}
	}
	return fmt.Sprintf("lengths differ: got %d rows, want %d", len(got), len(want))
}

// TestPostingsPagingAcrossShards walks every account's postings with small page
// sizes and compares the walk with the view read in one ordered query.
func TestPostingsPagingAcrossShards(t *testing.T) {
	ctx := context.Background()
	l := newJournalLedger(t)

	// The view shows exactly the postings the batches booked.
	view := queryStrings(t, l.db, `SELECT shard || '/' || event_id || '/' || leg || ' ' || account || ' ' || amount::text FROM postings`)
	slices.Sort(view)
	if booked := l.bookedPostings(); !slices.Equal(view, booked) {
		t.Fatalf("view postings differ from the booked postings: %s", firstDiff(view, booked))
	}
	// The fixture has what the walk must get right.
	var n int
	if err := l.db.QueryRow(ctx, `SELECT count(*) FROM fills a JOIN fills b ON a.shard = b.shard AND a.seq = b.seq
		AND a.id LIKE '%-9' AND b.id LIKE '%-10'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("fixture: %d commands with fills -9 and -10 (%v)", n, err)
	}
	if err := l.db.QueryRow(ctx, `SELECT max(c) FROM (SELECT count(*) c FROM fills GROUP BY shard, executed_at) x`).Scan(&n); err != nil || n < 5 {
		t.Fatalf("fixture: at most %d fills share an instant (%v)", n, err)
	}

	for _, account := range l.accounts {
		want := queryStrings(t, l.db, `SELECT shard || '/' || event_id || '/' || leg || ' ' || amount::text FROM postings
			WHERE account = $1 ORDER BY booked_at DESC, seq DESC, split_part(event_id, '-', 2)::bigint DESC, shard DESC, leg DESC`,
			account)
		if len(want) < 10 {
			t.Fatalf("fixture: %s has %d postings", account, len(want))
		}
		for _, limit := range []int{1, 2, 3, 7} {
			t.Run(fmt.Sprintf("%s/limit%d", account, limit), func(t *testing.T) {
				var got []string
				page := postgres.PageRequest{Limit: limit}
				for pages := 1; ; pages++ {
					if pages > len(want)+1 {
						t.Fatalf("more than %d pages", pages)
					}
					p, err := l.store.Postings(ctx, account, page)
					if err != nil {
						t.Fatal(err)
					}
					if len(p.Postings) > limit || (p.NextCursor != "" && len(p.Postings) != limit) {
						t.Fatalf("page %d: %d postings, next %q", pages, len(p.Postings), p.NextCursor)
					}
					for _, e := range p.Postings {
						got = append(got, e.ID+" "+e.Amount)
					}
					if p.NextCursor == "" {
						break
					}
					page.Cursor = p.NextCursor
				}
				if !slices.Equal(got, want) {
					t.Fatalf("walk differs from the view: %s", firstDiff(got, want))
				}
			})
		}
		if account == matching.DefaultFeeAccount || account == settlement.CustodyAccount {
			continue
		}
		wantFills := queryStrings(t, l.db, `SELECT shard || '/' || id || ' ' || side FROM (
				SELECT shard, id, seq, executed_at, 'buy' AS side FROM fills WHERE buyer_account = $1
				UNION ALL SELECT shard, id, seq, executed_at, 'sell' FROM fills WHERE seller_account = $1) f
			ORDER BY executed_at DESC, seq DESC, split_part(id, '-', 2)::bigint DESC, shard DESC, side DESC`, account)
		for _, limit := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/fills/limit%d", account, limit), func(t *testing.T) {
				var got []string
				page := postgres.PageRequest{Limit: limit}
				for pages := 1; ; pages++ {
					if pages > len(wantFills)+1 {
						t.Fatalf("more than %d pages", pages)
					}
					p, err := l.store.Fills(ctx, account, page)
					if err != nil {
						t.Fatal(err)
					}
					for _, fl := range p.Fills {
						got = append(got, fl.Shard+"/"+fl.ID+" "+fl.Side)
					}
					if p.NextCursor == "" {
						break
					}
					page.Cursor = p.NextCursor
				}
				if !slices.Equal(got, wantFills) {
					t.Fatalf("fills walk differs from the table: %s", firstDiff(got, wantFills))
				}
			})
		}
	}
}

// TestStatementPeriods cuts every account's history into consecutive
// periods, some boundaries at an instant shared by many postings, and
// checks each statement against the view: opening = the postings before,
// lines = the period's postings oldest first, closing = opening + lines,
// one period's closing the next one's opening, the last closing the
// balances table.
func TestStatementPeriods(t *testing.T) {
	ctx := context.Background()
	l := newJournalLedger(t)

	var lo, hi, busy time.Time
	if err := l.db.QueryRow(ctx, `SELECT min(booked_at), max(booked_at) FROM postings`).Scan(&lo, &hi); err != nil {
		t.Fatal(err)
	}
	// The instant with the most postings, and a few quantiles.
	if err := l.db.QueryRow(ctx, `SELECT booked_at FROM postings GROUP BY booked_at ORDER BY count(*) DESC, booked_at LIMIT 1`).
		Scan(&busy); err != nil {
		t.Fatal(err)
	}
	cuts := []time.Time{lo.Add(-time.Hour), lo, lo.Add(hi.Sub(lo) / 3), busy, busy.Add(time.Millisecond),
		lo.Add(2 * hi.Sub(lo) / 3), hi, hi.Add(time.Millisecond), hi.Add(time.Hour)}
	slices.SortFunc(cuts, func(a, b time.Time) int { return a.Compare(b) })
	cuts = slices.CompactFunc(cuts, func(a, b time.Time) bool { return a.Equal(b) })

	for _, account := range l.accounts {
		t.Run(account, func(t *testing.T) {
			prevClosing := map[string]string{}
			for i := 0; i+1 < len(cuts); i++ {
				from, to := cuts[i], cuts[i+1]
				st, err := l.store.Statement(ctx, account, from, to)
				if err != nil {
					t.Fatal(err)
				}
				assets := queryStrings(t, l.db, `SELECT DISTINCT asset FROM postings WHERE account = $1 AND booked_at < $2 ORDER BY 1`,
					account, to)
				var gotAssets []string
				for _, a := range st.Assets {
					gotAssets = append(gotAssets, a.Asset)
				}
				if !slices.Equal(gotAssets, assets) {
					t.Fatalf("[%s, %s): assets %v; want %v", from, to, gotAssets, assets)
				}
				for _, a := range st.Assets {
					scale := journalScales[a.Asset]
					var opening, closing string
					if err := l.db.QueryRow(ctx, `SELECT round(coalesce(sum(amount) FILTER (WHERE booked_at < $3), 0), $4)::text,
						round(coalesce(sum(amount), 0), $4)::text FROM postings WHERE account = $1 AND asset = $2 AND booked_at < $5`,
						account, a.Asset, from, scale, to).Scan(&opening, &closing); err != nil {
						t.Fatal(err)
					}
					lines := queryStrings(t, l.db, `SELECT shard || '/' || event_id || '/' || leg || ' ' || amount::text FROM postings
						WHERE account = $1 AND asset = $2 AND booked_at >= $3 AND booked_at < $4
						ORDER BY booked_at, seq, split_part(event_id, '-', 2)::bigint, shard, leg`, account, a.Asset, from, to)
					var got []string
					for _, p := range a.Postings {
						got = append(got, p.ID+" "+p.Amount)
					}
					if a.Opening != opening || a.Closing != closing {
						t.Errorf("[%s, %s) %s: opening %s closing %s; want %s %s", from, to, a.Asset, a.Opening, a.Closing, opening, closing)
					}
					if c, ok := prevClosing[a.Asset]; ok && c != a.Opening {
						t.Errorf("[%s, %s) %s: opening %s; the previous period closed at %s", from, to, a.Asset, a.Opening, c)
					}
					prevClosing[a.Asset] = a.Closing
					if !slices.Equal(got, lines) {
						t.Errorf("[%s, %s) %s: lines differ: %s", from, to, a.Asset, firstDiff(got, lines))
					}
					if n := len(a.Postings); n > 0 && a.Postings[n-1].Balance != a.Closing {
						t.Errorf("[%s, %s) %s: last running balance %s, closing %s", from, to, a.Asset, a.Postings[n-1].Balance, a.Closing)
					}
				}
			}
			balances, err := l.store.Balances(ctx, account)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range balances {
				if prevClosing[b.Asset] != b.Amount {
					t.Errorf("%s: last closing %s; balances table %s", b.Asset, prevClosing[b.Asset], b.Amount)
				}
			}
			if len(balances) != len(prevClosing) {
				t.Errorf("balances %v; closings %v", balances, prevClosing)
			}
		})
	}
}

// TestFillColumnsRoundTrip settles fills at engine times around PostgreSQL's
// epoch (2000-01-01) and Unix's, with and without an obligation and a fee
// account, and reads every column back as PostgreSQL stores it.
func TestFillColumnsRoundTrip(t *testing.T) {
	ctx := context.Background()
	db := testenv.PG(t)
	store, err := postgres.NewStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	times := []time.Time{
		time.Date(1999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 1_000_000, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Millisecond),
		time.Date(2025, 6, 30, 23, 59, 59, 123_000_000, time.UTC),
	}
	evs := []matching.Event{
		{Seq: 1, Time: times[0].UnixMilli(), Kind: matching.EvDeposited, Account: "b", Asset: "KZT", Amount: 1e12, ExtRef: "d1"},
		{Seq: 2, Time: times[0].UnixMilli(), Kind: matching.EvDeposited, Account: "s", Asset: "BTC", Amount: 1e12, ExtRef: "d2"},
	}
	for i, at := range times {
		ev := tradeEvent(uint64(3+i), uint32(i+1), at.UnixMilli(), "b", "s", 30_000_000_00, 1000+int64(i))
		ev.BuyOrderID, ev.SellOrderID = 1<<62+uint64(i), 7
		switch i % 3 {
		case 0:
			ev.Purpose, ev.Obligation = matching.PurposeMandatory, "ob-"+fmt.Sprint(i)
		case 1:
			ev.BuyerFee, ev.SellerFee, ev.FeeAccount = 0, 0, ""
			ev.TakerSide = 0
		case 2:
			ev.TakerSide = matching.Sell
		}
		evs = append(evs, ev)
	}
	b := &settlement.Batch{After: "0"}
	for _, ev := range evs {
		b.Add(ev.ID(), ev)
	}
	if err := store.Settle(ctx, "s1", b); err != nil {
		t.Fatal(err)
	}
	for _, fl := range b.Fills {
		ev := fl.Event
		var executed, booked time.Time
		var ms int64
		var obligation, feeAccount *string
		var row string
		err := db.QueryRow(ctx, `SELECT executed_at, (extract(epoch FROM executed_at) * 1000)::bigint, obligation, fee_account,
			concat_ws(' ', seq, batch_id, symbol, base_asset, quote_asset, price, quantity, quote_amount, buyer_account,
				seller_account, buy_order_id, sell_order_id, taker_side, mandatory::text, buyer_fee, seller_fee),
			(SELECT max(booked_at) FROM postings p WHERE p.shard = f.shard AND p.event_id = f.id)
			FROM fills f WHERE shard = 's1' AND id = $1`, fl.ID).Scan(&executed, &ms, &obligation, &feeAccount, &row, &booked)
		if err != nil {
			t.Fatal(err)
		}
		if ms != ev.Time || !executed.Equal(time.UnixMilli(ev.Time)) || !booked.Equal(executed) {
			t.Errorf("fill %s at %d ms: executed_at %s (%d ms), booked_at %s", fl.ID, ev.Time, executed.UTC(), ms, booked.UTC())
		}
		if (obligation == nil) != (ev.Obligation == "") || obligation != nil && *obligation != ev.Obligation {
			t.Errorf("fill %s: obligation %v; want %q (NULL when empty)", fl.ID, obligation, ev.Obligation)
		}
		if (feeAccount == nil) != (ev.FeeAccount == "") || feeAccount != nil && *feeAccount != ev.FeeAccount {
			t.Errorf("fill %s: fee_account %v; want %q (NULL when empty)", fl.ID, feeAccount, ev.FeeAccount)
		}
		taker := "auction"
		if ev.TakerSide != 0 {
			taker = ev.TakerSide.String()
		}
		want := fmt.Sprintf("%d %d BTCKZT BTC KZT %s %s %s b s %d %d %s %t %s %s", ev.Seq, 1,
			money.Format(ev.Price, 2), money.Format(ev.Quantity, 8), money.Format(ev.QuoteAmount, 2),
			ev.BuyOrderID, ev.SellOrderID, taker, ev.Purpose == matching.PurposeMandatory,
			money.Format(ev.BuyerFee, 2), money.Format(ev.SellerFee, 2))
		if row != want {
			t.Errorf("fill %s:\n got %s\nwant %s", fl.ID, row, want)
		}
	}
}

// ---------------------------------------------------------------------------
// The pipelined consumer through the real store.

// pacedSource serves pre-made events like sliceSource, but waits as the
// events stream would when there is nothing new (sliceSource returns at once,
// which would make a consumer that outruns it spin).
type pacedSource struct{ s *sliceSource }

func (p pacedSource) ReadEvents(ctx context.Context, after string, max int64, block time.Duration) ([]matching.Envelope, error) {
	envs, err := p.s.ReadEvents(ctx, after, max, block)
	if err == nil && len(envs) == 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(block):
		}
	}
	return envs, err
}

// failingSink fails the commit of the fail-th batch with fills once (a
// transient error) and counts its calls.
type failingSink struct {
	mu    sync.Mutex
	calls int
	fail  int
}

func (s *failingSink) ApplyFills(ctx context.Context, tx pgx.Tx, shard string, fills []settlement.Fill) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls == s.fail {
		return errors.New("injected commit failure")
	}
	return nil
}

// consumerGoroutines lists the goroutines still running consumer code.
func consumerGoroutines() []string {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
	var out []string
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, "settlement.(*Consumer)") {
			out = append(out, g)
		}
	}
	return out
}

func waitNoConsumerGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := consumerGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d consumer goroutines left after Run returned:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPipelineCommitFailure: a commit that fails with two more
// batches in flight rolls them back; Run resumes from the stored position
// and settles every event exactly once, telling Settled about each batch in
// stream order; after ctx ends no consumer goroutine is left.
func TestPipelineCommitFailure(t *testing.T) {
	ctx := context.Background()
	db := testenv.PG(t)
	sink := &failingSink{fail: 4}
	store, err := postgres.NewStore(ctx, db, sink)
	if err != nil {
		t.Fatal(err)
	}
	evs := journalEvents(t, 300, 9)
	lastSeq := evs[len(evs)-1].Seq
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var settled []*settlement.Batch
	c := &settlement.Consumer{Shard: "s1", Source: pacedSource{newSliceSource(evs)}, Store: store, Log: zap.NewNop(),
		BatchSize: 9, Wait: 5 * time.Millisecond, Depth: 3,
		Settled: func(b *settlement.Batch) {
			mu.Lock()
			settled = append(settled, b)
			mu.Unlock()
			if b.LastSeq == lastSeq {
				cancel()
			}
		}}
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		cancel()
		<-done
		t.Fatal("the consumer did not settle every event in 60 s")
	}
	waitNoConsumerGoroutines(t)
	if sink.calls <= sink.fail {
		t.Fatalf("the sink saw %d commits; the failure was injected at %d", sink.calls, sink.fail)
	}

	// Settled heard of each batch once, in stream order, without gaps.
	after := "0"
	var events int
	for i, b := range settled {
		if b.After != after {
			t.Fatalf("settled batch %d continues from %s; the previous one ended at %s", i, b.After, after)
		}
		after, events = b.LastStreamID, events+b.Events
	}
	if events != len(evs) {
		t.Fatalf("Settled heard of %d events; %d were sent", events, len(evs))
	}
	var fills, batches int
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM fills), (SELECT count(*) FROM settlement_batches)`).
		Scan(&fills, &batches); err != nil {
		t.Fatal(err)
	}
	if fills != trades(evs) || batches != len(settled) {
		t.Fatalf("%d fills in %d batches; want %d fills in %d batches", fills, batches, trades(evs), len(settled))
	}
	// Batches prepared and rolled back left gaps in the batch IDs: the
	// failed one and at least one prepared behind it.
	var maxID int
	if err := db.QueryRow(ctx, `SELECT max(id) FROM settlement_batches`).Scan(&maxID); err != nil {
		t.Fatal(err)
	}
	if maxID-batches < 2 {
		t.Fatalf("%d batch IDs for %d batches: no batch was in flight behind the failed one", maxID, batches)
	}
	t.Logf("%d batches, %d rolled back", batches, maxID-batches)
	if pos, err := store.Position(ctx, "s1"); err != nil || pos != after {
		t.Fatalf("position %s (%v); want %s", pos, err, after)
	}
	r, err := store.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range r.Checks {
		if ch.Name != settlement.CheckEngine && ch.Differences != 0 { // hand-made events carry no balance events
			t.Errorf("check %s: %+v", ch.Name, ch.Examples)
		}
	}
}

// TestPipelinePrepareFailure: a batch whose bulk write fails (a fill
// in an asset the ledger does not know) stops settlement right before it,
// however many batches were read and prepared after it; cancelling Run
// leaves no goroutine behind.
func TestPipelinePrepareFailure(t *testing.T) {
	ctx := context.Background()
	db := testenv.PG(t)
	store, err := postgres.NewStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := journalEvents(t, 200, 13)
	// Commands in stream order; the bad fill goes into command number bad.
	var seqs []uint64
	for _, ev := range evs {
		if len(seqs) == 0 || seqs[len(seqs)-1] != ev.Seq {
			seqs = append(seqs, ev.Seq)
		}
	}
	const size = 9
	bad := -1
	for i := len(seqs) / 2; i < len(seqs); i++ {
		for j := range evs {
			if evs[j].Seq == seqs[i] && evs[j].Kind == matching.EvTrade {
				evs[j].QuoteAsset = "XXX"
				bad = i
				break
			}
		}
		if bad >= 0 {
			break
		}
	}
	if bad < 2*size {
		t.Fatalf("fixture: bad command %d", bad)
	}
	wantSeq := seqs[bad/size*size-1] // the end of the batch before the bad one's

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var last uint64
	c := &settlement.Consumer{Shard: "s1", Source: pacedSource{newSliceSource(evs)}, Store: store, Log: zap.NewNop(),
		BatchSize: size, Wait: 5 * time.Millisecond, Depth: 3,
		Settled: func(b *settlement.Batch) { last = b.LastSeq }}
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	time.Sleep(2 * time.Second) // several attempts: Run retries every 500 ms
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitNoConsumerGoroutines(t)
	var seq int64
	if err := db.QueryRow(ctx, `SELECT seq FROM settlement_positions WHERE shard = 's1'`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if uint64(seq) != wantSeq || last != wantSeq {
		t.Fatalf("settled to %d (Settled heard %d); want %d, the end of the batch before the bad one", seq, last, wantSeq)
	}
	var later int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM fills WHERE seq > $1`, seq).Scan(&later); err != nil || later != 0 {
		t.Fatalf("%d fills after the position (%v)", later, err)
	}
}

// ---------------------------------------------------------------------------
// The journal migration over data settled under version 6.

// settleV6 writes a batch as the version-6 store did: every posting a row
// of ledger_entries, in the order the batch booked them.
func settleV6(t *testing.T, db *pgxpool.Pool, shard string, b *settlement.Batch) {
	t.Helper()
	ctx := context.Background()
	num := func(asset string, v int64) pgtype.Numeric {
		return pgtype.Numeric{Int: big.NewInt(v), Exp: -int32(journalScales[asset]), Valid: true}
	}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO settlement_batches (shard, first_seq, last_seq, last_stream_id, events, fills, postings)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, shard, int64(b.FirstSeq), int64(b.LastSeq), b.LastStreamID,
			b.Events, len(b.Fills), b.PostingCount).Scan(&id); err != nil {
			return err
		}
		var fills, postings, custody [][]any
		for _, f := range b.Fills {
			ev := f.Event
			taker := "auction"
			if ev.TakerSide != 0 {
				taker = ev.TakerSide.String()
			}
			var obligation any
			if ev.Obligation != "" {
				obligation = ev.Obligation
			}
			fills = append(fills, []any{shard, f.ID, int64(ev.Seq), id, ev.Symbol, ev.BaseAsset, ev.QuoteAsset,
				num(ev.QuoteAsset, ev.Price), num(ev.BaseAsset, ev.Quantity), num(ev.QuoteAsset, ev.QuoteAmount),
				ev.BuyerAccount, ev.SellerAccount, int64(ev.BuyOrderID), int64(ev.SellOrderID), taker,
				ev.Purpose == matching.PurposeMandatory, time.UnixMilli(ev.Time).UTC(),
				num(ev.QuoteAsset, ev.BuyerFee), num(ev.QuoteAsset, ev.SellerFee), obligation})
		}
		for _, p := range allPostings(b) { // version 6 stored every posting
			postings = append(postings, []any{id, shard, p.EventID, int64(p.Seq), time.UnixMilli(p.Time).UTC(), string(p.Kind),
				p.Account, p.Asset, num(p.Asset, p.Amount)})
		}
		for _, m := range b.Custody {
			custody = append(custody, []any{shard, m.EventID, int64(m.Seq), id, string(m.Kind), m.Account, m.Asset,
				num(m.Asset, m.Amount), m.ExtRef, time.UnixMilli(m.Time).UTC()})
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"fills"}, []string{"shard", "id", "seq", "batch_id", "symbol",
			"base_asset", "quote_asset", "price", "quantity", "quote_amount", "buyer_account", "seller_account",
			"buy_order_id", "sell_order_id", "taker_side", "mandatory", "executed_at", "buyer_fee", "seller_fee", "obligation"},
			pgx.CopyFromRows(fills)); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_entries"}, []string{"batch_id", "shard", "event_id", "seq",
			"booked_at", "kind", "account", "asset", "amount"}, pgx.CopyFromRows(postings)); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"custody_movements"}, []string{"shard", "event_id", "seq", "batch_id",
			"direction", "account", "asset", "amount", "ext_ref", "booked_at"}, pgx.CopyFromRows(custody)); err != nil {
			return err
		}
		for _, ev := range b.Accounts {
			if _, err := tx.Exec(ctx, `INSERT INTO accounts (id, owner, kind, opened_seq) VALUES ($1, $2, $3, $4)
				ON CONFLICT (id) DO NOTHING`, ev.Account, ev.Owner, ev.AccountKind.String(), int64(ev.Seq)); err != nil {
				return err
			}
		}
		net := b.Net()
		keys := make([]settlement.BalanceKey, 0, len(net))
		for k := range net {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			return keys[i].Account < keys[j].Account || keys[i].Account == keys[j].Account && keys[i].Asset < keys[j].Asset
		})
		for _, k := range keys {
			if _, err := tx.Exec(ctx, `INSERT INTO balances (account, asset, amount, seq) VALUES ($1, $2, $3, $4)
				ON CONFLICT (account, asset) DO UPDATE SET amount = balances.amount + EXCLUDED.amount, seq = EXCLUDED.seq`,
				k.Account, k.Asset, num(k.Asset, net[k]), int64(b.LastSeq)); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO settlement_positions (shard, stream_id, seq) VALUES ($1, $2, $3)
			ON CONFLICT (shard) DO UPDATE SET stream_id = EXCLUDED.stream_id, seq = EXCLUDED.seq`, shard, b.LastStreamID, int64(b.LastSeq))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

const (
	// v6Entries is ledger_entries as version 6 kept them, without the
	// row's own id and commit time, one line per row.
	v6Entries = `SELECT concat_ws(' ', batch_id, shard, event_id, seq, booked_at, kind, account, asset, amount) FROM ledger_entries`
	// v6Listing is how version 6 listed an account's postings (its
	// statements and pages): by engine time, then by row.
	v6Listing = `SELECT account || ' ' || concat_ws(' ', shard, event_id, kind, asset, amount) FROM ledger_entries
		ORDER BY account, booked_at, id`
	// journal is every posting of version 7 with its leg.
	journal = `SELECT concat_ws(' ', batch_id, shard, event_id, seq, leg, booked_at, kind, account, asset, amount)
		FROM postings ORDER BY shard, seq, split_part(event_id, '-', 2)::bigint, leg`
)

// TestJournalMigrationUpDownUp settles a real flow under the version-6
// schema, migrates it to version 7 and compares it with the same flow
// settled natively by version 7; then migrates down and up again.
func TestJournalMigrationUpDownUp(t *testing.T) {
	ctx := context.Background()
	pool := testenv.PG(t)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	p, err := migrations.NewProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	evs := journalEvents(t, 250, 21)
	shards := []struct {
		name string
		evs  []matching.Event
	}{{"s1", evs}, {"s2", onShard2(evs)}}
	for _, sh := range shards {
		for _, b := range batchesOf(sh.evs, 41) {
			settleV6(t, pool, sh.name, b)
		}
	}
	v6 := queryStrings(t, pool, v6Entries)
	slices.Sort(v6)
	v6List := queryStrings(t, pool, v6Listing)

	// The same flow settled by version 7, batch for batch.
	native := testenv.PG(t)
	nstore, err := postgres.NewStore(ctx, native, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		for _, b := range batchesOf(sh.evs, 41) {
			if err := nstore.Settle(ctx, sh.name, b); err != nil {
				t.Fatal(err)
			}
		}
	}

	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("Up over version-6 data: %v", err)
	}
	migrated := queryStrings(t, pool, journal)
	if want := queryStrings(t, native, journal); !slices.Equal(migrated, want) {
		t.Errorf("postings migrated from version 6 differ from version 7's own: %s", firstDiff(migrated, want))
	}
	const fillRows = `SELECT concat_ws(' ', shard, id, seq, batch_id, symbol, base_asset, quote_asset, price, quantity,
		quote_amount, buyer_account, seller_account, buy_order_id, sell_order_id, taker_side, mandatory, executed_at,
		buyer_fee, seller_fee, obligation, CASE WHEN buyer_fee + seller_fee > 0 THEN fee_account END) FROM fills ORDER BY shard, id`
	if got, want := queryStrings(t, pool, fillRows), queryStrings(t, native, fillRows); !slices.Equal(got, want) {
		t.Errorf("fills migrated from version 6 differ from version 7's own: %s", firstDiff(got, want))
	}
	mstore, err := postgres.NewStore(ctx, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := mstore.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range r.Checks {
		if ch.Name != settlement.CheckEngine && ch.Differences != 0 { // version 6 was written without the engine's view here
			t.Errorf("after Up, check %s: %+v", ch.Name, ch.Examples)
		}
	}

	// Down restores version 6's postings: the same rows, listed as
	// version 6 listed them.
	if _, err := p.DownTo(ctx, 6); err != nil {
		t.Fatalf("Down: %v", err)
	}
	down := queryStrings(t, pool, v6Entries)
	slices.Sort(down)
	if !slices.Equal(down, v6) {
		t.Errorf("ledger_entries after Down differ from version 6's: %s", firstDiff(down, v6))
	}
	t.Run("DownKeepsVersion6Order", func(t *testing.T) {
		// Version 6 ordered an account's postings of one instant by row
		// (its pages' and statements' key was (booked_at, id)): the order
		// the events were settled in, "7-9" before "7-10", a trade before
		// a deposit of a later command. Down numbers the stored and the
		// derived postings again together, batch by batch, in event and
		// leg order.
		got := queryStrings(t, pool, v6Listing)
		if !slices.Equal(got, v6List) {
			moved := 0
			for i := range min(len(got), len(v6List)) {
				if got[i] != v6List[i] {
					moved++
				}
			}
			t.Errorf("after Down, version 6 lists %d of %d postings elsewhere (by booked_at, id); first %s",
				moved, len(v6List), firstDiff(got, v6List))
		}
	})

	// And Up again is the first Up.
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
	if again := queryStrings(t, pool, journal); !slices.Equal(again, migrated) {
		t.Errorf("postings after Down and Up differ from the first Up's: %s", firstDiff(again, migrated))
	}
}

// ---------------------------------------------------------------------------
// Two writers on one shard (docs/settlement.md: "running both is safe").

// lockWaiters counts the database's backends waiting on a lock, and those
// idle inside a transaction.
func lockWaiters(t *testing.T, db *pgxpool.Pool) (waiting, idleInTx int) {
	t.Helper()
	if err := db.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'),
		count(*) FILTER (WHERE state = 'idle in transaction')
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&waiting, &idleInTx); err != nil {
		t.Fatal(err)
	}
	return waiting, idleInTx
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("fixture: timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTwoWritersDoNotHang: a second writer's Prepare inserts fills
// another writer's open batch holds, so it waits for that transaction —
// Prepare does wait on other batches. With batches in flight that wait
// closes a cycle PostgreSQL cannot see: writer 2's batch 1 waits (in
// PostgreSQL) for writer 1's batch, which waits (in PostgreSQL) for writer
// 2's batch 2, which waits (in Go, for its predecessor's outcome) for writer
// 2's batch 1. Without PrepareLockTimeout nothing was ever aborted and both
// writers hung (found by review); with it, a Prepare that waits on another
// writer gives up, its writer resumes from the stored position, and the
// cycle breaks. (Two Consumers do not get here at all: the second waits for
// the shard's writer lock — TestSecondWriterWaits.)
//
// The scheduling is forced with one row held in a side transaction
// (standing for writer 2's batch 1 being slower to reach it than batch 2 is
// to write its own rows), released once the cycle is in place.
func TestTwoWritersDoNotHang(t *testing.T) {
	ctx := context.Background()
	db := testenv.PG(t)
	store, err := postgres.NewStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := journalEvents(t, 200, 17)
	type command struct {
		seq    uint64
		lastID string // stream ID of its last event
		fill   string // its first fill's ID, if any
	}
	var cmds []command
	for _, ev := range evs {
		if len(cmds) == 0 || cmds[len(cmds)-1].seq != ev.Seq {
			cmds = append(cmds, command{seq: ev.Seq})
		}
		c := &cmds[len(cmds)-1]
		c.lastID = ev.ID()
		if ev.Kind == matching.EvTrade && c.fill == "" {
			c.fill = ev.ID()
		}
	}
	const size = 40 // writer 2's batches: commands [0, 40), [40, 80), …
	first, m, n := -1, -1, -1
	for i := range size {
		if cmds[i].fill != "" {
			if first < 0 {
				first = i
			}
			m = i
		}
	}
	for i := size; i < 2*size && n < 0; i++ {
		if cmds[i].fill != "" {
			n = i
		}
	}
	if first < 0 || m <= first || n < 0 {
		t.Fatalf("fixture: fills at commands %d, %d, %d", first, m, n)
	}
	// Writer 1's batch: commands m..n, across writer 2's first two batches.
	other := &settlement.Batch{After: cmds[m-1].lastID}
	for _, ev := range evs {
		if ev.Seq >= cmds[m].seq && ev.Seq <= cmds[n].seq {
			other.Add(ev.ID(), ev)
		}
	}

	// The side transaction holds writer 2's first fill.
	side, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer side.Rollback(ctx)
	if _, err := side.Exec(ctx, `INSERT INTO fills (shard, id, seq, batch_id, symbol, base_asset, quote_asset, price, quantity,
		quote_amount, buyer_account, seller_account, buy_order_id, sell_order_id, taker_side, mandatory, executed_at)
		VALUES ('s1', $1, $2, 0, 'BTCKZT', 'BTC', 'KZT', 1, 1, 1, 'x', 'y', 1, 2, 'buy', false, now())`,
		cmds[first].fill, int64(cmds[first].seq)); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var settled int
	c := &settlement.Consumer{Shard: "s1", Source: pacedSource{newSliceSource(evs)}, Store: store, Log: zap.NewNop(),
		BatchSize: size, Wait: 5 * time.Millisecond, Depth: 3,
		Settled: func(b *settlement.Batch) { mu.Lock(); settled++; mu.Unlock() }}
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() {
		cancel()
		<-done
	}()
	// Writer 2's batch 1 waits for the side transaction; batches 2 and 3 are written and wait for it.
	waitFor(t, "writer 2's batches in flight", func() bool {
		w, idle := lockWaiters(t, db)
		return w == 1 && idle >= 3
	})

	// Writer 1 prepares its batch: it writes its fills of commands up to
	// writer 2's first batch's end, then waits for writer 2's batch 2.
	type result struct {
		p   settlement.Prepared
		err error
	}
	prepared := make(chan result, 1)
	go func() {
		p, err := store.Prepare(runCtx, "s1", other)
		prepared <- result{p, err}
	}()
	waitFor(t, "writer 1 waiting for writer 2's batch 2", func() bool {
		w, _ := lockWaiters(t, db)
		return w == 2
	})
	// Writer 2's batch 1 may go on now; it reaches writer 1's fills.
	if err := side.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	select {
	case r := <-prepared:
		if r.err == nil {
			r.p.Rollback(ctx)
		}
		t.Logf("writer 1's Prepare returned: %v", r.err)
		// The cycle is broken: writer 2 settles everything, each fill once.
		last := evs[len(evs)-1].Seq
		waitFor(t, "writer 2 to settle everything", func() bool {
			var seq int64
			_ = db.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM settlement_positions WHERE shard = 's1'), 0)`).Scan(&seq)
			return uint64(seq) == last
		})
		var fills, distinct int
		if err := db.QueryRow(ctx, `SELECT count(*), count(DISTINCT id) FROM fills`).Scan(&fills, &distinct); err != nil {
			t.Fatal(err)
		}
		if fills != trades(evs) || distinct != fills {
			t.Fatalf("after the cycle broke: %d fills (%d distinct); want %d", fills, distinct, trades(evs))
		}
		return
	case <-time.After(5 * time.Second):
	}
	mu.Lock()
	n2 := settled
	mu.Unlock()
	w, idle := lockWaiters(t, db)
	t.Errorf("two writers of one shard hang: after 5 s writer 2 settled %d batches, writer 1's Prepare has not returned; "+
		"%d backends wait on a lock, %d are idle in a transaction (PostgreSQL's deadlock detector sees no cycle)", n2, w, idle)
	cancel()
	if r := <-prepared; r.err == nil {
		r.p.Rollback(ctx)
	}
}

// TestSecondWriterWaits runs two consumers of one shard at once: the second
// waits for the shard's writer lock while the first settles everything,
// then takes it when the first stops; every fill is settled once.
func TestSecondWriterWaits(t *testing.T) {
	ctx := context.Background()
	db := testenv.PG(t)
	store, err := postgres.NewStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := journalEvents(t, 200, 23)
	last := evs[len(evs)-1].Seq
	run := func(ctx context.Context, settled *atomic.Int64, done chan<- error) {
		c := &settlement.Consumer{Shard: "s1", Source: newSliceSource(evs), Store: store, Log: zap.NewNop(),
			BatchSize: 30, Wait: time.Millisecond,
			Settled: func(b *settlement.Batch) { settled.Add(int64(len(b.Fills))) }}
		done <- c.Run(ctx)
	}
	ctx1, stop1 := context.WithCancel(ctx)
	defer stop1()
	var first, second atomic.Int64
	done1, done2 := make(chan error, 1), make(chan error, 1)
	go run(ctx1, &first, done1)
	waitFor(t, "the first writer to settle everything", func() bool {
		var seq int64
		_ = db.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM settlement_positions WHERE shard = 's1'), 0)`).Scan(&seq)
		return uint64(seq) == last
	})
	ctx2, stop2 := context.WithCancel(ctx)
	defer stop2()
	go run(ctx2, &second, done2)
	time.Sleep(700 * time.Millisecond) // longer than one poll of the lock
	var holders int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted`).Scan(&holders); err != nil {
		t.Fatal(err)
	}
	if holders != 1 {
		t.Fatalf("%d advisory locks granted while two writers run; want the first writer's only", holders)
	}
	stop1()
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	// The second takes the lock and finds nothing left to settle.
	waitFor(t, "the second writer to take the lock", func() bool {
		var n int
		_ = db.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted`).Scan(&n)
		return n == 1
	})
	time.Sleep(100 * time.Millisecond)
	stop2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	var fills int64
	if err := db.QueryRow(ctx, `SELECT count(*) FROM fills`).Scan(&fills); err != nil {
		t.Fatal(err)
	}
	if want := int64(trades(evs)); fills != want || first.Load() != want || second.Load() != 0 {
		t.Fatalf("fills %d (first writer %d, second %d); want %d, all by the first", fills, first.Load(), second.Load(), want)
	}
}

// trickleSource releases its commands one per millisecond, as an engine
// under light load writes them, and records when each non-empty read
// happened and how many commands it brought.
type trickleSource struct {
	s     *sliceSource
	start time.Time
	seqs  []uint64 // the commands' sequences, in order

	mu    sync.Mutex
	reads []trickleRead
}

type trickleRead struct {
	at       time.Time
	commands int
}

func (p *trickleSource) ReadEvents(ctx context.Context, after string, max int64, block time.Duration) ([]matching.Envelope, error) {
	released := min(len(p.seqs), int(time.Since(p.start)/time.Millisecond))
	envs, err := p.s.ReadEvents(ctx, after, max, block)
	for len(envs) > 0 && (released == 0 || envs[len(envs)-1].Event.Seq > p.seqs[released-1]) {
		envs = envs[:len(envs)-1] // not yet written
	}
	if err == nil && len(envs) == 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		return nil, nil
	}
	n := 0
	for _, e := range envs {
		if e.Last {
			n++
		}
	}
	p.mu.Lock()
	p.reads = append(p.reads, trickleRead{time.Now(), n})
	p.mu.Unlock()
	return envs, err
}

// TestConsumerLingers: under light load (a command a millisecond, batches
// far from full) the consumer starts a batch at most once per Linger, so
// a batch gathers what arrived meanwhile instead of each read starting a
// transaction for a command or two; every command is still settled once.
func TestConsumerLingers(t *testing.T) {
	ctx := context.Background()
	store, err := postgres.NewStore(ctx, testenv.PG(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := journalEvents(t, 300, 9)
	src := &trickleSource{s: newSliceSource(evs), start: time.Now()}
	for _, ev := range evs {
		if len(src.seqs) == 0 || src.seqs[len(src.seqs)-1] != ev.Seq {
			src.seqs = append(src.seqs, ev.Seq)
		}
	}
	const linger = 40 * time.Millisecond
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var settled []*settlement.Batch
	c := &settlement.Consumer{Shard: "s1", Source: src, Store: store, Log: zap.NewNop(), Linger: linger,
		Wait: 5 * time.Millisecond, Settled: func(b *settlement.Batch) {
			settled = append(settled, b) // Settled is called in order, one batch at a time
			if b.LastSeq == src.seqs[len(src.seqs)-1] {
				cancel()
			}
		}}
	if err := c.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	waitNoConsumerGoroutines(t)
	var next int
	for _, b := range settled {
		if b.FirstSeq != src.seqs[next] {
			t.Fatalf("a batch starts at %d; want %d", b.FirstSeq, src.seqs[next])
		}
		for next < len(src.seqs) && src.seqs[next] <= b.LastSeq {
			next++
		}
	}
	if next != len(src.seqs) {
		t.Fatalf("settled %d of %d commands", next, len(src.seqs))
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	for i := 1; i < len(src.reads); i++ {
		if gap := src.reads[i].at.Sub(src.reads[i-1].at); gap < linger {
			t.Fatalf("read %d came %s after a batch of %d commands; want at least the linger, %s", i, gap, src.reads[i-1].commands, linger)
		}
	}
	// About one batch per linger over the time the commands took to arrive.
	arrival := time.Duration(len(src.seqs)) * time.Millisecond
	if want := int(arrival/linger) + 3; len(settled) > want {
		t.Fatalf("%d batches for %d commands arriving over %s; want at most %d", len(settled), len(src.seqs), arrival, want)
	}
	t.Logf("%d commands in %d batches", len(src.seqs), len(settled))
}

// plainStore is a settlement store on a database of its own, without a
// fill sink.
func plainStore(t *testing.T) (*pgxpool.Pool, *postgres.Store) {
	t.Helper()
	db := testenv.PG(t)
	store, err := postgres.NewStore(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db, store
}

// TestCustodyReferencesPerShard: two shards' engines each accepted a
// deposit and a withdrawal with the same external references (each
// refuses a repeat only among its own commands): both shards settle them.
// Within one shard the reference stays unique: a second movement with it
// is refused.
func TestCustodyReferencesPerShard(t *testing.T) {
	ctx := context.Background()
	db, store := plainStore(t)
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC).UnixMilli()
	evs := []matching.Event{
		{Seq: 1, Time: at, Kind: matching.EvDeposited, Account: "t000", Asset: "BTC", Amount: 5_000, ExtRef: "tx-1:0"},
		{Seq: 2, Time: at, Kind: matching.EvWithdrawn, Account: "t000", Asset: "BTC", Amount: 700, ExtRef: "tx-2:0"},
	}
	s1 := settleAll(t, store, "s1", evs, 10)
	settleAll(t, store, "s2", evs, 10) // the same references on another shard
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM custody_movements WHERE ext_ref IN ('tx-1:0', 'tx-2:0')`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("%d custody movements (%v); want 4", n, err)
	}
	again := batchesOf([]matching.Event{{Seq: 3, Time: at, Kind: matching.EvDeposited, Account: "t000", Asset: "BTC", Amount: 1, ExtRef: "tx-1:0"}}, 10)[0]
	again.After = s1[len(s1)-1].LastStreamID
	if err := store.Settle(ctx, "s1", again); err == nil || !strings.Contains(err.Error(), "custody_movements_shard_direction_ext_ref_key") {
		t.Fatalf("a repeated reference within shard s1: %v; want the unique key's refusal", err)
	}
}

// TestSettlementRefusesAGap: the batch after the stored position must start
// at the next sequence — every command has events — or the events in
// between were lost (trimmed from the stream before they were settled),
// and settling on would skip their fills: ErrGap, and nothing is written.
func TestSettlementRefusesAGap(t *testing.T) {
	ctx := context.Background()
	db, store := plainStore(t)
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC).UnixMilli()
	first := settleAll(t, store, "s1", []matching.Event{
		{Seq: 1, Time: at, Kind: matching.EvDeposited, Account: "t000", Asset: "BTC", Amount: 5_000, ExtRef: "gap-1"},
		{Seq: 2, Time: at, Kind: matching.EvDeposited, Account: "t000", Asset: "BTC", Amount: 5_000, ExtRef: "gap-2"},
	}, 10)
	later := batchesOf([]matching.Event{
		{Seq: 5, Time: at, Kind: matching.EvDeposited, Account: "t000", Asset: "BTC", Amount: 5_000, ExtRef: "gap-5"},
	}, 10)[0]
	later.After = first[len(first)-1].LastStreamID
	if err := store.Settle(ctx, "s1", later); !errors.Is(err, settlement.ErrGap) {
		t.Fatalf("a batch starting at 5 after 2: %v; want ErrGap", err)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM custody_movements WHERE ext_ref = 'gap-5'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d movements of the refused batch (%v)", n, err)
	}
	next := batchesOf([]matching.Event{
		{Seq: 3, Time: at, Kind: matching.EvDeposited, Account: "t000", Asset: "BTC", Amount: 5_000, ExtRef: "gap-3"},
	}, 10)[0]
	next.After = first[len(first)-1].LastStreamID
	if err := store.Settle(ctx, "s1", next); err != nil {
		t.Fatalf("the batch at the next sequence: %v", err)
	}
	// A ledger with nothing settled yet — started over beside a stream
	// already trimmed — begins at sequence 1, not midway.
	_, fresh := plainStore(t)
	midway := batchesOf([]matching.Event{
		{Seq: 7, Time: at, Kind: matching.EvDeposited, Account: "t000", Asset: "BTC", Amount: 5_000, ExtRef: "gap-7"},
	}, 10)[0]
	if err := fresh.Settle(ctx, "s1", midway); !errors.Is(err, settlement.ErrGap) {
		t.Fatalf("a first batch starting at 7: %v; want ErrGap", err)
	}
}
