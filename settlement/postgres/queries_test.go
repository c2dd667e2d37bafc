package postgres_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/settlement"
	"github.com/satu-exchange/satu/settlement/postgres"
)

// ledgerFixture is a small settled ledger built from hand-made events:
// three traders, deposits, trades over ten days (several fills in one
// command, several commands at one instant, a mandatory fill) and a
// withdrawal, settled in several batches.
type ledgerFixture struct {
	db       *pgxpool.Pool
	store    *postgres.Store
	shard    string
	position string
	seq      uint64
	postings []settlement.Posting // every posting settled, from the pure batches
	fills    []matching.Event     // every trade settled
}

var fixtureStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newLedgerFixture(t *testing.T) *ledgerFixture {
	t.Helper()
	db := testenv.PG(t)
	store, err := postgres.NewStore(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &ledgerFixture{db: db, store: store, shard: "s1", position: "0"}

	at := func(days, hours int) int64 {
		return fixtureStart.Add(time.Duration(days)*24*time.Hour + time.Duration(hours)*time.Hour).UnixMilli()
	}
	var evs []matching.Event
	for _, a := range []string{"alice", "bob", "carol"} {
		evs = append(evs, f.event(at(-1, 10), matching.Event{Kind: matching.EvAccountOpened, Account: a, Owner: a,
			AccountKind: matching.KindTrader}))
	}
	evs = append(evs,
		f.event(at(0, 9), matching.Event{Kind: matching.EvDeposited, Account: "alice", Asset: "KZT", Amount: 50_000_000_00, ExtRef: "d-alice"}),
		f.event(at(0, 9), matching.Event{Kind: matching.EvDeposited, Account: "bob", Asset: "BTC", Amount: 5 * btc, ExtRef: "d-bob"}),
		f.event(at(0, 10), matching.Event{Kind: matching.EvDeposited, Account: "carol", Asset: "BTC", Amount: 2 * btc, ExtRef: "d-carol"}),
	)
	f.settle(t, evs)

	// Ten commands on ten days; command 3 has fills at indexes 3, 9, 10
	// and 12 (newest first is 12, 10, 9, 3, not the text order); commands
	// 5 and 6 share an instant; alice sells back in commands 7 and 8.
	evs = nil
	for k := range 10 {
		f.seq++
		when := at(1+k, 12)
		if k == 6 {
			when = at(1+5, 12)
		}
		indexes := []uint32{1}
		if k == 3 {
			indexes = []uint32{3, 9, 10, 12}
		}
		for n, idx := range indexes {
			buyer, seller := "alice", "bob"
			if k == 7 || k == 8 {
				buyer, seller = "bob", "alice"
			}
			ev := tradeEvent(f.seq, idx, when, buyer, seller, int64(30_000_000+1000*k)*100, int64(1+n)*btc/100)
			if k == 9 {
				ev.Purpose, ev.Obligation = matching.PurposeMandatory, "ob-7"
			}
			evs = append(evs, ev)
		}
		if k == 4 || k == 8 { // batch boundaries fall between commands
			f.settle(t, evs)
			evs = nil
		}
	}
	evs = append(evs, f.event(at(40, 8), matching.Event{Kind: matching.EvWithdrawn, Account: "alice", Asset: "KZT",
		Amount: 1_000_000_00, ExtRef: "w-alice"}))
	f.settle(t, evs)
	return f
}

// event gives ev the next sequence and the time.
func (f *ledgerFixture) event(when int64, ev matching.Event) matching.Event {
	f.seq++
	ev.Seq, ev.Time = f.seq, when
	return ev
}

// tradeEvent is a BTCKZT fill at price (KZT minor units per BTC) with a
// 0.1 % fee on each side.
func tradeEvent(seq uint64, idx uint32, when int64, buyer, seller string, price, qty int64) matching.Event {
	quote := new(big.Int).Mul(big.NewInt(price), big.NewInt(qty))
	quote.Quo(quote, big.NewInt(btc))
	q := quote.Int64()
	return matching.Event{Seq: seq, Index: idx, Time: when, Kind: matching.EvTrade, Symbol: "BTCKZT",
		BaseAsset: "BTC", QuoteAsset: "KZT", Price: price, Quantity: qty, QuoteAmount: q,
		BuyerFee: q / 1000, SellerFee: q / 1000, FeeAccount: matching.DefaultFeeAccount,
		BuyerAccount: buyer, SellerAccount: seller, BuyOrderID: seq*10 + 1, SellOrderID: seq*10 + 2,
		TakerSide: matching.Buy}
}

// settle settles events as one batch after the fixture's position.
func (f *ledgerFixture) settle(t *testing.T, evs []matching.Event) {
	t.Helper()
	b := &settlement.Batch{After: f.position}
	for _, ev := range evs {
		b.Add(ev.ID(), ev)
	}
	if err := f.store.Settle(context.Background(), f.shard, b); err != nil {
		t.Fatal(err)
	}
	f.position = b.LastStreamID
	f.postings = append(f.postings, allPostings(b)...)
	for _, fl := range b.Fills {
		f.fills = append(f.fills, fl.Event)
	}
}

func wantCode(t *testing.T, err error, code apperr.Code) {
	t.Helper()
	if got := apperr.CodeOf(err); got != code {
		t.Fatalf("error %v: code %q; want %q", err, got, code)
	}
}

// fillKey names one fill from one side: what a listing must show once.
func fillKey(id, side string) string { return id + " " + side }

func TestFills(t *testing.T) {
	ctx := context.Background()
	f := newLedgerFixture(t)

	// The expected listing of alice's fills, newest first by engine time,
	// sequence and index within the command.
	var want []matching.Event
	for _, ev := range f.fills {
		if ev.BuyerAccount == "alice" || ev.SellerAccount == "alice" {
			want = append(want, ev)
		}
	}
	slices.SortFunc(want, func(a, b matching.Event) int {
		if a.Time != b.Time {
			return -cmpInt(a.Time, b.Time)
		}
		if a.Seq != b.Seq {
			return -cmpInt(a.Seq, b.Seq)
		}
		return -cmpInt(a.Index, b.Index)
	})
	if len(want) != 13 {
		t.Fatalf("fixture: alice has %d fills; want 13", len(want))
	}
	wantKeys := make([]string, len(want))
	for i, ev := range want {
		side := "buy"
		if ev.SellerAccount == "alice" {
			side = "sell"
		}
		wantKeys[i] = fillKey(ev.ID(), side)
	}

	t.Run("OK", func(t *testing.T) {
		var got []string
		var pages int
		page := postgres.PageRequest{Limit: 4}
		for {
			p, err := f.store.Fills(ctx, "alice", page)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(p.Fills) > 4 {
				t.Fatalf("page %d has %d fills; limit 4", pages, len(p.Fills))
			}
			for _, fl := range p.Fills {
				got = append(got, fillKey(fl.ID, fl.Side))
			}
			if pages == 1 {
				// Fills settled while a client pages are newer than its walk:
				// they change nothing in the pages still to come.
				f.settle(t, []matching.Event{tradeEvent(f.seq+1, 1, fixtureStart.AddDate(0, 3, 0).UnixMilli(),
					"alice", "bob", 31_000_000_00, btc/100)})
				f.seq++
			}
			if p.NextCursor == "" {
				break
			}
			page.Cursor = p.NextCursor
		}
		if pages != 4 {
			t.Errorf("%d pages of at most 4 for 13 fills; want 4", pages)
		}
		if !slices.Equal(got, wantKeys) {
			t.Fatalf("fills walked:\n%v\nwant:\n%v", got, wantKeys)
		}
	})

	t.Run("Fields", func(t *testing.T) {
		p, err := f.store.Fills(ctx, "alice", postgres.PageRequest{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var mandatory, sold *postgres.AccountFill
		for i := range p.Fills {
			switch p.Fills[i].ID {
			case want[0].ID():
				mandatory = &p.Fills[i]
			case "15-1":
				sold = &p.Fills[i]
			}
		}
		if mandatory == nil || sold == nil {
			t.Fatalf("fills = %+v", p.Fills)
		}
		wantMandatory := postgres.AccountFill{ID: want[0].ID(), Shard: "s1", Seq: int64(want[0].Seq), Symbol: "BTCKZT",
			Side: "buy", Price: "30009000.00", Quantity: "0.01000000", QuoteAmount: "300090.00", Fee: "300.09",
			FeeAsset: "KZT", Mandatory: true, Obligation: "ob-7", ExecutedAt: "2025-01-11T12:00:00.000Z"}
		if got, want := jsonOf(t, *mandatory), jsonOf(t, wantMandatory); got != want {
			t.Errorf("fill = %s\nwant %s", got, want)
		}
		if sold.Side != "sell" || sold.Mandatory || sold.Obligation != "" || sold.Fee != "300.08" {
			t.Errorf("alice's sale = %+v", *sold)
		}
		// The counterparty is never shown.
		for _, fl := range p.Fills {
			if strings.Contains(jsonOf(t, fl), "bob") {
				t.Fatalf("fill %+v names the counterparty", fl)
			}
		}
	})

	t.Run("Empty", func(t *testing.T) {
		p, err := f.store.Fills(ctx, "carol", postgres.PageRequest{})
		if err != nil || p.Fills == nil || len(p.Fills) != 0 || p.NextCursor != "" {
			t.Fatalf("carol's fills = %+v, %v; want an empty last page", p, err)
		}
	})

	t.Run("ErrLimit", func(t *testing.T) {
		for _, n := range []int{-1, postgres.MaxPageLimit + 1} {
			_, err := f.store.Fills(ctx, "alice", postgres.PageRequest{Limit: n})
			wantCode(t, err, apperr.InvalidParameter)
		}
	})

	t.Run("ErrCursor", func(t *testing.T) {
		postings, err := f.store.Postings(ctx, "alice", postgres.PageRequest{Limit: 1})
		if err != nil || postings.NextCursor == "" {
			t.Fatalf("postings: %+v, %v", postings, err)
		}
		for _, c := range []string{"not base64!", "e30", "eyJrIjoiZmlsbHMifQ", postings.NextCursor, strings.Repeat("A", 600)} {
			_, err := f.store.Fills(ctx, "alice", postgres.PageRequest{Cursor: c})
			wantCode(t, err, apperr.InvalidParameter)
		}
	})

	t.Run("ErrUnknownAccount", func(t *testing.T) {
		_, err := f.store.Fills(ctx, "nobody", postgres.PageRequest{})
		wantCode(t, err, apperr.UnknownAccount)
	})
}

// jsonOf is v as the API shows it.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cmpInt[T int64 | uint64 | uint32](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestPostings(t *testing.T) {
	ctx := context.Background()
	f := newLedgerFixture(t)

	for _, account := range []string{"alice", matching.DefaultFeeAccount} {
		t.Run("OK/"+account, func(t *testing.T) {
			// The expected walk, read straight from the table.
			// The expected walk, read straight from the view of every posting.
			rows, err := f.db.Query(ctx, `SELECT shard || '/' || event_id || '/' || leg, event_id, amount::text FROM postings
				WHERE account = $1 ORDER BY booked_at DESC, seq DESC, split_part(event_id, '-', 2)::bigint DESC, shard DESC, leg DESC`,
				account)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for rows.Next() {
				var id, ev, amt string
				if err := rows.Scan(&id, &ev, &amt); err != nil {
					t.Fatal(err)
				}
				want = append(want, fmt.Sprint(id, " ", ev, " ", amt))
			}
			rows.Close()
			var n int
			for _, p := range f.postings {
				if p.Account == account {
					n++
				}
			}
			if len(want) != n || n < 10 {
				t.Fatalf("%d postings in the table, %d settled", len(want), n)
			}

			var got []string
			var last time.Time
			page := postgres.PageRequest{Limit: 3}
			for pages := 1; ; pages++ {
				p, err := f.store.Postings(ctx, account, page)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Postings) > 3 || pages > len(want) {
					t.Fatalf("page %d: %d postings", pages, len(p.Postings))
				}
				for _, e := range p.Postings {
					got = append(got, fmt.Sprint(e.ID, " ", e.EventID, " ", e.Amount))
					at, err := time.Parse(postgres.TimeLayout, e.BookedAt)
					if err != nil || !strings.HasSuffix(e.BookedAt, "Z") {
						t.Fatalf("bookedAt %q: %v", e.BookedAt, err)
					}
					if !last.IsZero() && at.After(last) {
						t.Fatalf("posting %s booked at %s after %s: not newest first", e.ID, at, last)
					}
					last = at
				}
				if p.NextCursor == "" {
					break
				}
				page.Cursor = p.NextCursor
			}
			if !slices.Equal(got, want) {
				t.Fatalf("postings walked:\n%v\nwant:\n%v", got, want)
			}
		})
	}

	t.Run("Fields", func(t *testing.T) {
		p, err := f.store.Postings(ctx, "alice", postgres.PageRequest{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		got := jsonOf(t, p.Postings[0])
		want := `{"id":"s1/17-0/0","shard":"s1","eventId":"17-0","leg":0,"seq":17,"kind":"withdrawal","asset":"KZT",` +
			`"amount":"-1000000.00","bookedAt":"2025-02-10T08:00:00.000Z"}`
		if got != want {
			t.Fatalf("newest posting = %s; want %s", got, want)
		}
	})

	t.Run("ErrLimit", func(t *testing.T) {
		_, err := f.store.Postings(ctx, "alice", postgres.PageRequest{Limit: 1001})
		wantCode(t, err, apperr.InvalidParameter)
	})

	t.Run("ErrCursor", func(t *testing.T) {
		fills, err := f.store.Fills(ctx, "alice", postgres.PageRequest{Limit: 1})
		if err != nil || fills.NextCursor == "" {
			t.Fatalf("fills: %+v, %v", fills, err)
		}
		for _, c := range []string{"%%%", fills.NextCursor, fills.NextCursor + "x"} {
			_, err := f.store.Postings(ctx, "alice", postgres.PageRequest{Cursor: c})
			wantCode(t, err, apperr.InvalidParameter)
		}
	})

	t.Run("ErrUnknownAccount", func(t *testing.T) {
		_, err := f.store.Postings(ctx, "nobody", postgres.PageRequest{})
		wantCode(t, err, apperr.UnknownAccount)
	})
}

func TestStatement(t *testing.T) {
	ctx := context.Background()
	f := newLedgerFixture(t)
	scales := map[string]int{"BTC": 8, "KZT": 2}

	t.Run("ClosingIsBalance", func(t *testing.T) {
		// Over all of history, every account's closing balances are the
		// balances table.
		for _, account := range []string{"alice", "bob", "carol", matching.DefaultFeeAccount, settlement.CustodyAccount} {
			st, err := f.store.Statement(ctx, account, fixtureStart.AddDate(0, -1, 0), fixtureStart.AddDate(0, 6, 0))
			if err != nil {
				t.Fatal(err)
			}
			balances, err := f.store.Balances(ctx, account)
			if err != nil {
				t.Fatal(err)
			}
			var closing []postgres.Balance
			for _, a := range st.Assets {
				closing = append(closing, postgres.Balance{Asset: a.Asset, Amount: a.Closing})
				if a.Opening != money.Format(0, scales[a.Asset]) {
					t.Errorf("%s %s: opening %s before any posting", account, a.Asset, a.Opening)
				}
			}
			if !slices.Equal(closing, balances) || len(balances) == 0 {
				t.Errorf("%s: closing %v; balances %v", account, closing, balances)
			}
		}
	})

	t.Run("OK", func(t *testing.T) {
		// A period in the middle: [Jan 4, Jan 8) holds commands 2 to 6 of
		// the ten days of trading.
		from, to := fixtureStart.AddDate(0, 0, 3), fixtureStart.AddDate(0, 0, 7)
		st, err := f.store.Statement(ctx, "alice", from, to)
		if err != nil {
			t.Fatal(err)
		}
		if st.Account != "alice" || st.From != "2025-01-04T00:00:00.000Z" || st.To != "2025-01-08T00:00:00.000Z" {
			t.Fatalf("statement header = %q %q %q", st.Account, st.From, st.To)
		}
		// Expected figures from the settled batches, not from the database.
		opening, period := map[string]int64{}, map[string][]settlement.Posting{}
		for _, p := range f.postings {
			if p.Account != "alice" {
				continue
			}
			switch at := time.UnixMilli(p.Time); {
			case at.Before(from):
				opening[p.Asset] += p.Amount
			case at.Before(to):
				period[p.Asset] = append(period[p.Asset], p)
			}
		}
		if len(st.Assets) != 2 || st.Assets[0].Asset != "BTC" || st.Assets[1].Asset != "KZT" {
			t.Fatalf("assets = %+v", st.Assets)
		}
		for _, a := range st.Assets {
			scale := scales[a.Asset]
			bal, credits, debits := opening[a.Asset], int64(0), int64(0)
			if a.Opening != money.Format(bal, scale) {
				t.Errorf("%s opening %s; want %s", a.Asset, a.Opening, money.Format(bal, scale))
			}
			if len(a.Postings) != len(period[a.Asset]) || len(a.Postings) < 4 {
				t.Fatalf("%s: %d postings; want %d", a.Asset, len(a.Postings), len(period[a.Asset]))
			}
			for i, p := range period[a.Asset] { // settled in engine order: oldest first
				bal += p.Amount
				if p.Amount > 0 {
					credits += p.Amount
				} else {
					debits -= p.Amount
				}
				line := a.Postings[i]
				if line.EventID != p.EventID || line.Amount != money.Format(p.Amount, scale) ||
					line.Balance != money.Format(bal, scale) || line.Kind != string(p.Kind) {
					t.Errorf("%s line %d = %+v; want %s %s balance %s", a.Asset, i, line, p.EventID,
						money.Format(p.Amount, scale), money.Format(bal, scale))
				}
			}
			if a.Credits != money.Format(credits, scale) || a.Debits != money.Format(debits, scale) ||
				a.Closing != money.Format(bal, scale) {
				t.Errorf("%s: credits %s debits %s closing %s; want %s %s %s", a.Asset, a.Credits, a.Debits, a.Closing,
					money.Format(credits, scale), money.Format(debits, scale), money.Format(bal, scale))
			}
		}
	})

	t.Run("OpeningWithoutPostings", func(t *testing.T) {
		st, err := f.store.Statement(ctx, "carol", fixtureStart.AddDate(0, 0, 3), fixtureStart.AddDate(0, 0, 7))
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Assets) != 1 {
			t.Fatalf("carol's assets = %+v", st.Assets)
		}
		a := st.Assets[0]
		if a.Asset != "BTC" || a.Opening != "2.00000000" || a.Closing != "2.00000000" || a.Credits != "0.00000000" ||
			a.Debits != "0.00000000" || a.Postings == nil || len(a.Postings) != 0 {
			t.Fatalf("carol's BTC = %+v", a)
		}
		// Before carol's deposit she has no asset at all.
		st, err = f.store.Statement(ctx, "carol", fixtureStart.AddDate(0, 0, -3), fixtureStart)
		if err != nil || st.Assets == nil || len(st.Assets) != 0 {
			t.Fatalf("carol before her deposit = %+v, %v", st, err)
		}
	})

	t.Run("CSV", func(t *testing.T) {
		st, err := f.store.Statement(ctx, "alice", fixtureStart.AddDate(0, 0, 3), fixtureStart.AddDate(0, 0, 7))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := postgres.WriteStatementCSV(&buf, st); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(buf.String(), "account,asset,bookedAt,eventId,kind,amount,balance\n") {
			t.Fatalf("csv starts %q", buf.String()[:min(80, buf.Len())])
		}
		records, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{postgres.StatementCSVHeader}
		for _, a := range st.Assets {
			want = append(want, []string{"alice", a.Asset, "2025-01-04T00:00:00.000Z", "", "opening", "", a.Opening})
			for _, p := range a.Postings {
				want = append(want, []string{"alice", a.Asset, p.BookedAt, p.EventID, p.Kind, p.Amount, p.Balance})
			}
			want = append(want, []string{"alice", a.Asset, "2025-01-08T00:00:00.000Z", "", "closing", "", a.Closing})
		}
		if !slices.EqualFunc(records, want, slices.Equal) {
			t.Fatalf("csv:\n%v\nwant:\n%v", records, want)
		}
		// Spot-check one row against the ledger's own words.
		if r := records[2]; r[3] != "9-1" || r[4] != "trade" || r[5] != "0.01000000" || r[6] != "0.03000000" {
			t.Errorf("first BTC posting row = %v", r)
		}
	})

	t.Run("ErrPeriod", func(t *testing.T) {
		for _, p := range []struct{ from, to time.Time }{
			{fixtureStart, fixtureStart},
			{fixtureStart.AddDate(0, 1, 0), fixtureStart},
			{fixtureStart, fixtureStart.Add(366*24*time.Hour + time.Millisecond)},
			{time.Time{}, fixtureStart},
		} {
			_, err := f.store.Statement(ctx, "alice", p.from, p.to)
			wantCode(t, err, apperr.InvalidParameter)
		}
		if _, err := f.store.Statement(ctx, "alice", fixtureStart, fixtureStart.Add(366*24*time.Hour)); err != nil {
			t.Fatalf("a 366-day period: %v", err)
		}
	})

	t.Run("ErrUnknownAccount", func(t *testing.T) {
		_, err := f.store.Statement(ctx, "nobody", fixtureStart, fixtureStart.AddDate(0, 1, 0))
		wantCode(t, err, apperr.UnknownAccount)
	})
}
