package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/settlement"
)

// attributionSetup registers alpha (accounts alpha-1, alpha-2) and beta
// (beta-1), the engine accounts that buy from them, and alpha's January
// 2024 BTC report (2 BTC mined: 1.0 BTC required by 1 March 2024); the
// clock is on 1 March 2024.
func attributionSetup(t *testing.T) (*postgres.Store, *pgxpool.Pool, compliance.ObligationView) {
	t.Helper()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2023-06-15", "alpha-1", "alpha-2")
	register(t, s, "beta", "222222222222", "2023-06-15", "beta-1")
	openAccount(t, db, "buyer-1", "trader-x", "trader")
	openAccount(t, db, "trader-2", "trader-y", "trader")
	// A miner's account belongs to the miner whatever owner the engine has.
	openAccount(t, db, "alpha-2", "engine-owner-7", "miner")
	// An account the engine knows as owned by alpha, not a miner account.
	openAccount(t, db, "alpha-desk", "alpha", "trader")
	openAccount(t, db, "beta-1", "beta", "miner")
	setNow(t, s, "2024-03-01 09:00")
	jan := report(t, s, "alpha", "BTC", "2024-01-01", 2*btc)
	if jan.Required != "1.00000000" || jan.Deadline != "2024-03-01" {
		t.Fatalf("January: %+v, want 1.00000000 required by 2024-03-01", jan)
	}
	return s, db, jan
}

// vwapMarket settles two ordinary BTC-KZT trades on 29 February 2024: 1 BTC
// at 30,000,000 ₸ and 3 BTC at 31,000,000 ₸. Their VWAP, the reference of
// a mandatory sale within 24 hours, is (30 + 3 × 31) / 4 = 30,750,000 ₸.
func vwapMarket(t *testing.T, s *postgres.Store, db *pgxpool.Pool) {
	t.Helper()
	mustSettle(t, s, db, "s1",
		sale("1-0", "trader-2", "BTC", btc, almaty(t, "2024-02-29 12:00"), notMandatory),
		sale("2-0", "trader-2", "BTC", 3*btc, almaty(t, "2024-02-29 13:00"), notMandatory, atPrice(31_000_000*tenge)))
}

// auctionMarket settles two auction trades (26 and 27 February 2024, at
// 28,000,000 and 30,000,000 ₸) and an ordinary trade on 28 February at
// 50,000,000 ₸, all more than 24 hours before 1 March 10:00: the reference
// is then the last auction price, 30,000,000 ₸.
func auctionMarket(t *testing.T, s *postgres.Store, db *pgxpool.Pool) {
	t.Helper()
	mustSettle(t, s, db, "s1",
		sale("1-0", "trader-2", "BTC", btc, almaty(t, "2024-02-26 12:00"), notMandatory, inAuction, atPrice(28_000_000*tenge)),
		sale("2-0", "trader-2", "BTC", btc, almaty(t, "2024-02-27 12:00"), notMandatory, inAuction, atPrice(30_000_000*tenge)),
		sale("3-0", "trader-2", "BTC", btc, almaty(t, "2024-02-28 08:00"), notMandatory, atPrice(50_000_000*tenge)))
}

func TestAttribution_Reasons(t *testing.T) {
	ctx := context.Background()
	const vwap = "30750000.00"
	// The tolerance is 5 % of the reference: 30,750,000 × 0.05 = 1,537,500 ₸,
	// so prices from 29,212,500 to 32,287,500 ₸ count.
	const (
		upper = (30_750_000 + 1_537_500) * tenge
		lower = (30_750_000 - 1_537_500) * tenge
	)
	at := almaty(t, "2024-03-01 10:00")
	for _, tc := range []struct {
		name   string
		market func(t *testing.T, s *postgres.Store, db *pgxpool.Pool)
		fill   settlement.Fill
		// counted towards January; excluded with the reason ("" for none).
		counted, excluded, reason string
		reference, basis          string
	}{
		{name: "OK/WithinTolerance", market: vwapMarket, fill: sale("10-0", "alpha-1", "BTC", 40_000_000, at),
			counted: "0.40000000", reference: vwap, basis: compliance.BasisVWAP},
		{name: "OK/UpperBound", market: vwapMarket, fill: sale("10-0", "alpha-1", "BTC", 40_000_000, at, atPrice(upper)),
			counted: "0.40000000", reference: vwap, basis: compliance.BasisVWAP},
		{name: "OK/LowerBound", market: vwapMarket, fill: sale("10-0", "alpha-1", "BTC", 40_000_000, at, atPrice(lower)),
			counted: "0.40000000", reference: vwap, basis: compliance.BasisVWAP},
		{name: "OK/BuyerIsAnotherMiner", market: vwapMarket, fill: sale("10-0", "alpha-2", "BTC", 40_000_000, at, boughtBy("beta-1")),
			counted: "0.40000000", reference: vwap, basis: compliance.BasisVWAP},
		// The window ends with the deadline day in Kazakhstan; the market's
		// trades are more than 24 hours before, so nothing checks the price.
		{name: "OK/LastMillisecondOfWindow", market: vwapMarket,
			fill:    sale("10-0", "alpha-1", "BTC", 40_000_000, almaty(t, "2024-03-02 00:00").Add(-time.Millisecond)),
			counted: "0.40000000", reference: "", basis: compliance.BasisNone},
		{name: "OK/NoMarket", fill: sale("10-0", "alpha-1", "BTC", 40_000_000, at, atPrice(10_000_000*tenge)),
			counted: "0.40000000", reference: "", basis: compliance.BasisNone},
		// 30,000,000 × 1.05 = 31,500,000 ₸.
		{name: "OK/LastAuctionWithin", market: auctionMarket, fill: sale("10-0", "alpha-1", "BTC", 40_000_000, at, atPrice(31_500_000*tenge)),
			counted: "0.40000000", reference: "30000000.00", basis: compliance.BasisLastAuction},

		{name: "OKExcluded/NotMandatory", market: vwapMarket, fill: sale("10-0", "alpha-1", "BTC", 40_000_000, at, notMandatory),
			excluded: "0.40000000", reason: compliance.ExcludedNotMandatory, reference: "", basis: compliance.BasisNone},
		{name: "OKExcluded/BuyerIsOwnMinerAccount", market: vwapMarket, fill: sale("10-0", "alpha-1", "BTC", 40_000_000, at, boughtBy("alpha-2")),
			excluded: "0.40000000", reason: compliance.ExcludedSelfDealing, reference: vwap, basis: compliance.BasisVWAP},
		{name: "OKExcluded/BuyerOwnedByMiner", market: vwapMarket, fill: sale("10-0", "alpha-1", "BTC", 40_000_000, at, boughtBy("alpha-desk")),
			excluded: "0.40000000", reason: compliance.ExcludedSelfDealing, reference: vwap, basis: compliance.BasisVWAP},
		{name: "OKExcluded/AboveTolerance", market: vwapMarket, fill: sale("10-0", "alpha-1", "BTC", 40_000_000, at, atPrice(upper+1)),
			excluded: "0.40000000", reason: compliance.ExcludedPrice, reference: vwap, basis: compliance.BasisVWAP},
		{name: "OKExcluded/BelowTolerance", market: vwapMarket, fill: sale("10-0", "alpha-1", "BTC", 40_000_000, at, atPrice(lower-1)),
			excluded: "0.40000000", reason: compliance.ExcludedPrice, reference: vwap, basis: compliance.BasisVWAP},
		{name: "OKExcluded/LastAuctionOutside", market: auctionMarket, fill: sale("10-0", "alpha-1", "BTC", 40_000_000, at, atPrice(31_500_000*tenge+1)),
			excluded: "0.40000000", reason: compliance.ExcludedPrice, reference: "30000000.00", basis: compliance.BasisLastAuction},
		{name: "OKExcluded/NoOpenObligation", market: vwapMarket, fill: sale("10-0", "alpha-1", "ETH", 400_000_000, at),
			excluded: "0.400000000", reason: compliance.ExcludedNoObligation, reference: "", basis: compliance.BasisNone},
		{name: "OKExcluded/OutsideWindow", market: vwapMarket, fill: sale("10-0", "alpha-1", "BTC", 40_000_000, almaty(t, "2024-03-02 00:00")),
			excluded: "0.40000000", reason: compliance.ExcludedOutsideWindow, reference: "", basis: compliance.BasisNone},
		{name: "OKExcluded/BeforeWindow", market: vwapMarket, fill: sale("10-0", "alpha-1", "BTC", 40_000_000, almaty(t, "2023-12-31 23:59")),
			excluded: "0.40000000", reason: compliance.ExcludedOutsideWindow, reference: "", basis: compliance.BasisNone},
		{name: "OKExcluded/Excess", market: vwapMarket, fill: sale("10-0", "alpha-1", "BTC", 130_000_000, at),
			counted: "1.00000000", excluded: "0.30000000", reason: compliance.ExcludedExcess, reference: vwap, basis: compliance.BasisVWAP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db, jan := attributionSetup(t)
			if tc.market != nil {
				tc.market(t, s, db)
			}
			mustSettle(t, s, db, "s1", tc.fill)
			ev := tc.fill.Event
			price := fmtPrice(ev.Price)

			d := obligation(t, s, jan.ID)
			var wantCounted []postgres.CountedFill
			if tc.counted != "" {
				wantCounted = []postgres.CountedFill{{Shard: "s1", FillID: "10-0", Quantity: tc.counted, Price: price,
					ExecutedAt: time.UnixMilli(ev.Time), Reference: tc.reference, Basis: tc.basis}}
			}
			if !sameCounted(d.Counted, wantCounted) {
				t.Errorf("Counted =\n%+v, want\n%+v", d.Counted, wantCounted)
			}
			if d.Sold != orZero(tc.counted) {
				t.Errorf("sold = %s, want %s", d.Sold, orZero(tc.counted))
			}

			xs, err := s.ExcludedFills(ctx, "alpha")
			if err != nil {
				t.Fatalf("ExcludedFills: %v", err)
			}
			var wantExcl []postgres.ExcludedFill
			if tc.excluded != "" {
				wantExcl = []postgres.ExcludedFill{{Shard: "s1", FillID: "10-0", Miner: "alpha", Asset: ev.BaseAsset, Quantity: tc.excluded,
					Price: price, ExecutedAt: time.UnixMilli(ev.Time), Reason: tc.reason, Reference: tc.reference, Basis: tc.basis}}
			}
			if !sameExcluded(xs, wantExcl) {
				t.Errorf("ExcludedFills =\n%+v, want\n%+v", xs, wantExcl)
			}
			// The obligation's detail lists what was excluded in its window
			// (of its asset).
			inWindow := tc.excluded != "" && ev.BaseAsset == "BTC" && tc.reason != compliance.ExcludedOutsideWindow
			if inWindow != (len(d.Excluded) == 1) || len(d.Excluded) > 1 {
				t.Errorf("Obligation.Excluded = %+v, want the exclusion listed: %v", d.Excluded, inWindow)
			}

			// The sale is accounted for in full.
			scale := scales[ev.BaseAsset]
			var total int64
			for _, q := range []string{tc.counted, tc.excluded} {
				if q != "" {
					total += mustParse(t, q, scale)
				}
			}
			if total != ev.Quantity {
				t.Errorf("counted + excluded = %d, want the sale's %d", total, ev.Quantity)
			}
		})
	}
}

// fmtPrice writes tiyn as tenge with two decimals, as fills.price stores it.
func fmtPrice(tiyn int64) string { return fmt.Sprintf("%d.%02d", tiyn/tenge, tiyn%tenge) }

func orZero(q string) string {
	if q == "" {
		return "0.00000000"
	}
	return q
}

func sameCounted(got, want []postgres.CountedFill) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.ExecutedAt.Equal(w.ExecutedAt) {
			return false
		}
		g.ExecutedAt = w.ExecutedAt
		if g != w {
			return false
		}
	}
	return true
}

// sameExcluded compares excluded fills, the detail only for being there.
func sameExcluded(got, want []postgres.ExcludedFill) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.ExecutedAt.Equal(w.ExecutedAt) || g.Detail == "" {
			return false
		}
		g.ExecutedAt, g.Detail = w.ExecutedAt, w.Detail
		if g != w {
			return false
		}
	}
	return true
}

// TestAttribution_FIFO: a sale counts towards the open obligation with the
// earliest deadline first, then the next; what is left over is excess.
func TestAttribution_FIFO(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2023-06-15", "alpha-1")
	register(t, s, "beta", "222222222222", "2023-06-15", "beta-1")
	openAccount(t, db, "buyer-1", "trader-x", "trader")
	setNow(t, s, "2024-03-01 09:00")
	// February first: the lower ID must not put it first.
	feb := report(t, s, "alpha", "BTC", "2024-02-01", 180_000_000) // 0.9 required by 2024-03-30
	jan := report(t, s, "alpha", "BTC", "2024-01-01", 2*btc)       // 1.0 required by 2024-03-01
	if feb.ID > jan.ID || feb.Required != "0.90000000" || jan.Required != "1.00000000" {
		t.Fatalf("reports: %+v, %+v", feb, jan)
	}
	tA, tB, tC, tD := almaty(t, "2024-03-01 10:00"), almaty(t, "2024-03-01 11:00"), almaty(t, "2024-03-01 12:00"), almaty(t, "2024-03-02 10:00")
	mustSettle(t, s, db, "s1",
		sale("10-0", "alpha-1", "BTC", 130_000_000, tA), // January 1.0, February 0.3
		sale("11-0", "alpha-1", "BTC", 80_000_000, tB),  // February 0.6, excess 0.2
		sale("12-0", "alpha-1", "BTC", 10_000_000, tC, notMandatory))
	mustSettle(t, s, db, "s1", sale("13-0", "alpha-1", "BTC", 10_000_000, tD)) // nothing open
	price := fmtPrice(defaultPrice["BTC"])
	ref := func(basis string) string {
		if basis == compliance.BasisNone {
			return ""
		}
		return price
	}
	counted := func(id string, qty string, at time.Time, basis string) postgres.CountedFill {
		return postgres.CountedFill{Shard: "s1", FillID: id, Quantity: qty, Price: price, ExecutedAt: at, Reference: ref(basis), Basis: basis}
	}
	excluded := func(id, qty string, at time.Time, reason, basis string) postgres.ExcludedFill {
		return postgres.ExcludedFill{Shard: "s1", FillID: id, Miner: "alpha", Asset: "BTC", Quantity: qty, Price: price,
			ExecutedAt: at, Reason: reason, Reference: ref(basis), Basis: basis}
	}
	// 10-0 is the symbol's first trade (no reference); the others have the
	// earlier ones' VWAP, all at the same price.
	xB := excluded("11-0", "0.20000000", tB, compliance.ExcludedExcess, compliance.BasisVWAP)
	xC := excluded("12-0", "0.10000000", tC, compliance.ExcludedNotMandatory, compliance.BasisNone)
	xD := excluded("13-0", "0.10000000", tD, compliance.ExcludedNoObligation, compliance.BasisVWAP)

	for _, tc := range []struct {
		name     string
		ob       compliance.ObligationView
		sold     string
		metAt    time.Time
		counted  []postgres.CountedFill
		excluded []postgres.ExcludedFill
	}{
		{"OK/January", jan, "1.00000000", tA, []postgres.CountedFill{counted("10-0", "1.00000000", tA, compliance.BasisNone)},
			[]postgres.ExcludedFill{xB, xC}}, // 13-0 is after its deadline day
		{"OK/February", feb, "0.90000000", tB, []postgres.CountedFill{
			counted("10-0", "0.30000000", tA, compliance.BasisNone), counted("11-0", "0.60000000", tB, compliance.BasisVWAP)},
			[]postgres.ExcludedFill{xB, xC, xD}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := obligation(t, s, tc.ob.ID)
			if d.Sold != tc.sold || d.Status != compliance.StatusMet || d.Remaining != "0.00000000" {
				t.Errorf("obligation = %+v, want sold %s, met", d.ObligationView, tc.sold)
			}
			if got := storedProgress(t, db, tc.ob.ID); !sameTime(got.metAt, &tc.metAt) {
				t.Errorf("met_at = %s, want %s", fmtTime(got.metAt), tc.metAt)
			}
			if !sameCounted(d.Counted, tc.counted) {
				t.Errorf("Counted =\n%+v, want\n%+v", d.Counted, tc.counted)
			}
			if !sameExcluded(d.Excluded, tc.excluded) {
				t.Errorf("Excluded =\n%+v, want\n%+v", d.Excluded, tc.excluded)
			}
		})
	}

	t.Run("OK/ExcludedFills", func(t *testing.T) {
		for miner, want := range map[string][]postgres.ExcludedFill{"alpha": {xB, xC, xD}, "": {xB, xC, xD}, "beta": nil} {
			got, err := s.ExcludedFills(ctx, miner)
			if err != nil {
				t.Fatalf("ExcludedFills(%q): %v", miner, err)
			}
			if !sameExcluded(got, want) || got == nil {
				t.Errorf("ExcludedFills(%q) =\n%+v, want\n%+v", miner, got, want)
			}
		}
	})

	t.Run("OK/EveryFillAccountedFor", func(t *testing.T) {
		var fills []string
		rows, err := db.Query(ctx, `SELECT f.id || ' ' || f.quantity::text || ' = ' ||
				coalesce((SELECT sum(quantity) FROM obligation_fills o WHERE o.shard = f.shard AND o.fill_id = f.id), 0)::text || ' + ' ||
				coalesce((SELECT sum(quantity) FROM excluded_fills x WHERE x.shard = f.shard AND x.fill_id = f.id), 0)::text
			FROM fills f WHERE f.seller_account = 'alpha-1' ORDER BY f.seq`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			fills = append(fills, s)
		}
		want := []string{"10-0 1.30000000 = 1.30000000 + 0", "11-0 0.80000000 = 0.60000000 + 0.20000000",
			"12-0 0.10000000 = 0 + 0.10000000", "13-0 0.10000000 = 0 + 0.10000000"}
		if !slices.Equal(fills, want) {
			t.Errorf("fills = %q, want %q", fills, want)
		}
	})
}
