package compliance_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/satu-exchange/satu/compliance"
)

func TestAttribution_Attribute(t *testing.T) {
	a := mustRuleSet(t, compliance.DefaultRuleSet).Attribution
	// Two open BTC obligations: January (deadline 2 March) and February
	// (deadline 30 March); instants are Astana time (UTC+5).
	jan := compliance.OpenObligation{ID: 7, PeriodStart: day(t, "2025-01-01"), Deadline: day(t, "2025-03-02"), Remaining: 100}
	feb := compliance.OpenObligation{ID: 3, PeriodStart: day(t, "2025-02-01"), Deadline: day(t, "2025-03-30"), Remaining: 50}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, compliance.Zone)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ref := big.NewRat(4_330_000_000, 1) // 43,300,000.00 KZT per BTC in tiyn
	sale := func(qty int64, when string) compliance.Sale {
		return compliance.Sale{FillID: "1-1", Asset: "BTC", Proceeds: "KZT", Quantity: qty, Price: 4_330_000_000, ExecutedAt: at(when),
			Mandatory: true, Miner: "altai", BuyerOwner: "fund", Reference: ref, Basis: compliance.BasisVWAP}
	}
	type alloc = []compliance.Allocation
	for _, tc := range []struct {
		name     string
		sale     compliance.Sale
		open     []compliance.OpenObligation
		want     alloc
		excluded int64
		reason   string
	}{
		{"FIFO by deadline, not by ID", sale(120, "2025-02-10 12:00"), []compliance.OpenObligation{feb, jan},
			alloc{{ObligationID: 7, Quantity: 100}, {ObligationID: 3, Quantity: 20}}, 0, ""},
		{"Excess over both", sale(200, "2025-02-10 12:00"), []compliance.OpenObligation{jan, feb},
			alloc{{ObligationID: 7, Quantity: 100}, {ObligationID: 3, Quantity: 50}}, 50, compliance.ExcludedExcess},
		{"Before February: January only", sale(120, "2025-01-31 23:59"), []compliance.OpenObligation{jan, feb},
			alloc{{ObligationID: 7, Quantity: 100}}, 20, compliance.ExcludedExcess},
		{"After January's deadline: February only", sale(30, "2025-03-03 00:00"), []compliance.OpenObligation{jan, feb},
			alloc{{ObligationID: 3, Quantity: 30}}, 0, ""},
		{"Deadline day counts to its end", sale(30, "2025-03-02 23:59"), []compliance.OpenObligation{jan},
			alloc{{ObligationID: 7, Quantity: 30}}, 0, ""},
		{"Period start is Astana midnight", sale(30, "2025-01-01 00:00"), []compliance.OpenObligation{jan},
			alloc{{ObligationID: 7, Quantity: 30}}, 0, ""},
		{"Before the period", sale(30, "2024-12-31 23:59"), []compliance.OpenObligation{jan}, nil, 30, compliance.ExcludedOutsideWindow},
		{"After every deadline", sale(30, "2025-04-01 10:00"), []compliance.OpenObligation{jan, feb}, nil, 30, compliance.ExcludedOutsideWindow},
		{"No open obligation", sale(30, "2025-02-10 12:00"), nil, nil, 30, compliance.ExcludedNoObligation},
		{"Not tagged mandatory", func() compliance.Sale { s := sale(30, "2025-02-10 12:00"); s.Mandatory = false; return s }(),
			[]compliance.OpenObligation{jan}, nil, 30, compliance.ExcludedNotMandatory},
		{"Sold for another currency", func() compliance.Sale { s := sale(30, "2025-02-10 12:00"); s.Proceeds = "USDT"; return s }(),
			[]compliance.OpenObligation{jan}, nil, 30, compliance.ExcludedProceeds},
		{"Buyer owned by the seller", func() compliance.Sale { s := sale(30, "2025-02-10 12:00"); s.BuyerOwner = "altai"; return s }(),
			[]compliance.OpenObligation{jan}, nil, 30, compliance.ExcludedSelfDealing},
		{"Price 5 % below counts", func() compliance.Sale { s := sale(30, "2025-02-10 12:00"); s.Price = 4_113_500_000; return s }(),
			[]compliance.OpenObligation{jan}, alloc{{ObligationID: 7, Quantity: 30}}, 0, ""},
		{"Price a tiyn more than 5 % below", func() compliance.Sale { s := sale(30, "2025-02-10 12:00"); s.Price = 4_113_499_999; return s }(),
			[]compliance.OpenObligation{jan}, nil, 30, compliance.ExcludedPrice},
		{"Price a tiyn more than 5 % above", func() compliance.Sale { s := sale(30, "2025-02-10 12:00"); s.Price = 4_546_500_001; return s }(),
			[]compliance.OpenObligation{jan}, nil, 30, compliance.ExcludedPrice},
		{"Fractional VWAP compared exactly", func() compliance.Sale {
			s := sale(30, "2025-02-10 12:00")
			s.Reference, s.Price = big.NewRat(200, 3), 70 // 66.67 ± 3.33: 70 is 5 % above exactly
			return s
		}(), []compliance.OpenObligation{jan}, alloc{{ObligationID: 7, Quantity: 30}}, 0, ""},
		{"No reference: price unchecked", func() compliance.Sale {
			s := sale(30, "2025-02-10 12:00")
			s.Reference, s.Basis, s.Price = nil, compliance.BasisNone, 1
			return s
		}(), []compliance.OpenObligation{jan}, alloc{{ObligationID: 7, Quantity: 30}}, 0, ""},
		{"Fully met obligation takes nothing", sale(10, "2025-02-10 12:00"),
			[]compliance.OpenObligation{{ID: 7, PeriodStart: jan.PeriodStart, Deadline: jan.Deadline}, feb},
			alloc{{ObligationID: 3, Quantity: 10}}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open := append([]compliance.OpenObligation(nil), tc.open...)
			allocs, excl := a.Attribute(tc.sale, open)
			if len(allocs) != len(tc.want) {
				t.Fatalf("allocations = %+v, want %+v", allocs, tc.want)
			}
			total := int64(0)
			for i := range allocs {
				if allocs[i] != tc.want[i] {
					t.Fatalf("allocations = %+v, want %+v", allocs, tc.want)
				}
				total += allocs[i].Quantity
			}
			switch {
			case tc.excluded == 0 && len(excl) != 0:
				t.Fatalf("excluded %+v, want nothing", excl)
			case tc.excluded != 0 && (len(excl) != 1 || excl[0].Quantity != tc.excluded || excl[0].Reason != tc.reason || excl[0].Detail == ""):
				t.Fatalf("excluded %+v, want %d as %s with a detail", excl, tc.excluded, tc.reason)
			}
			if total+tc.excluded != tc.sale.Quantity {
				t.Fatalf("counted %d + excluded %d != sold %d", total, tc.excluded, tc.sale.Quantity)
			}
			for i := range open {
				if open[i] != tc.open[i] {
					t.Fatal("Attribute changed its input")
				}
			}
		})
	}
}

func TestDayOf(t *testing.T) {
	// 19:00 UTC on 31 January is already 1 February in Astana.
	if got := compliance.DayOf(time.Date(2025, 1, 31, 19, 0, 0, 0, time.UTC)); !got.Equal(day(t, "2025-02-01")) {
		t.Fatalf("DayOf = %s", got)
	}
	if got := compliance.DayOf(time.Date(2025, 1, 31, 18, 59, 59, 0, time.UTC)); !got.Equal(day(t, "2025-01-31")) {
		t.Fatalf("DayOf = %s", got)
	}
	if got := compliance.StartOf(day(t, "2025-02-01")); !got.Equal(time.Date(2025, 1, 31, 19, 0, 0, 0, time.UTC)) {
		t.Fatalf("StartOf = %s", got)
	}
}
