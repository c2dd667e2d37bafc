package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
)

// reportTables are every table a report write touches.
var reportTables = []string{"mining_reports", "report_versions", "obligations", "obligation_computations", "registry_audit", "violations"}

// btcReport returns alpha's report of mined satoshis of BTC for January 2025.
func btcReport(t *testing.T, mined int64) compliance.Report {
	return compliance.Report{MinerID: "alpha", Asset: "BTC", PeriodStart: day(t, "2025-01-01"), Mined: mined,
		Wallets: []string{"bc1q-alpha-1"}, Source: compliance.FromMiner}
}

func createPool(t *testing.T, s *postgres.Store, id string) {
	t.Helper()
	if err := s.CreatePool(context.Background(), compliance.Pool{ID: id, Name: "Pool " + id, Accreditation: "ACC-" + id,
		AccreditedOn: day(t, "2023-09-01"), Location: "Astana"}, regulator); err != nil {
		t.Fatalf("CreatePool(%s): %v", id, err)
	}
}

func TestReports_MonthMustHaveEnded(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2024-01-15", "alpha-1")

	for _, tc := range []struct {
		name, now, period string
	}{
		{"ErrCurrentMonth", "2025-01-31 23:59", "2025-01-01"},
		{"ErrFutureMonth", "2025-02-05 12:00", "2025-03-01"},
		{"ErrNextMonth", "2025-02-05 12:00", "2025-02-01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setNow(t, s, tc.now)
			unchanged(t, db, reportTables, func() {
				r := btcReport(t, btc)
				r.PeriodStart = day(t, tc.period)
				_, err := s.SubmitReport(ctx, r, regulator)
				wantCode(t, err, apperr.InvalidParameter)
			})
		})
	}

	// 00:30 on 1 February in Kazakhstan is 19:30 on 31 January in UTC:
	// the month has ended where the miner is.
	t.Run("OKJustEnded", func(t *testing.T) {
		setNow(t, s, "2025-02-01 00:30")
		if got := s.Today(); !got.Equal(day(t, "2025-02-01")) {
			t.Errorf("Today() = %s, want 2025-02-01", got.Format(time.DateOnly))
		}
		v, err := s.SubmitReport(ctx, btcReport(t, btc), regulator)
		if err != nil {
			t.Fatalf("SubmitReport: %v", err)
		}
		if v.Status != compliance.StatusOpen || v.Required != "0.75000000" {
			t.Errorf("SubmitReport = %+v, want open, required 0.75000000", v)
		}
	})
}

func TestReports_Refused(t *testing.T) {
	ctx := context.Background()
	wallets := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("wallet-%03d", i)
		}
		return out
	}
	submitted := func(t *testing.T, s *postgres.Store) {
		if _, err := s.SubmitReport(ctx, btcReport(t, btc), regulator); err != nil {
			t.Fatal(err)
		}
	}
	amendment := compliance.Actor{ID: "regulator-1", Reason: "meter correction"}
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, s *postgres.Store)
		edit   func(r *compliance.Report)
		amend  bool
		actor  *compliance.Actor
		want   apperr.Code
		stored int // reports stored after the refusal
	}{
		{name: "ErrNegativeMined", edit: func(r *compliance.Report) { r.Mined = -1 }, want: apperr.InvalidQuantity},
		{name: "ErrNoWallets", edit: func(r *compliance.Report) { r.Wallets = nil }, want: apperr.InvalidParameter},
		{name: "ErrTooManyWallets", edit: func(r *compliance.Report) { r.Wallets = wallets(101) }, want: apperr.InvalidParameter},
		{name: "ErrWalletTwice", edit: func(r *compliance.Report) { r.Wallets = []string{"w-1", "w-1"} }, want: apperr.InvalidParameter},
		{name: "ErrWalletForm", edit: func(r *compliance.Report) { r.Wallets = []string{"not a wallet"} }, want: apperr.InvalidParameter},
		{name: "ErrUnknownSource", edit: func(r *compliance.Report) { r.Source = "exchange" }, want: apperr.InvalidParameter},
		{name: "ErrPoolSourceWithoutPool", edit: func(r *compliance.Report) { r.Source = compliance.FromPool },
			want: apperr.InvalidParameter},
		{name: "ErrPoolWithMinerSource", edit: func(r *compliance.Report) { r.Pool = "pool-kz" }, want: apperr.InvalidParameter},
		{name: "ErrUnknownPool", edit: func(r *compliance.Report) { r.Source, r.Pool = compliance.FromPool, "pool-none" },
			want: apperr.InvalidParameter},
		{name: "ErrNoActor", actor: &compliance.Actor{Reason: "anonymous"}, want: apperr.InvalidParameter},
		{name: "ErrSecondSubmission", setup: submitted, edit: func(r *compliance.Report) { r.Mined = 2 * btc },
			want: apperr.Conflict, stored: 1},
		{name: "ErrAmendWithoutReason", setup: submitted, amend: true, actor: &compliance.Actor{ID: "regulator-1"},
			edit: func(r *compliance.Report) { r.Mined = 2 * btc }, want: apperr.InvalidParameter, stored: 1},
		{name: "ErrAmendNothingSubmitted", amend: true, want: apperr.InvalidParameter},
		{name: "ErrAmendNegative", setup: submitted, amend: true, edit: func(r *compliance.Report) { r.Mined = -btc },
			want: apperr.InvalidQuantity, stored: 1},
		{name: "ErrAmendNoWallets", setup: submitted, amend: true, edit: func(r *compliance.Report) { r.Wallets = []string{} },
			want: apperr.InvalidParameter, stored: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db := newStore(t, compliance.DefaultRuleSet)
			register(t, s, "alpha", "111111111111", "2024-01-15", "alpha-1")
			createPool(t, s, "pool-kz")
			setNow(t, s, "2025-02-05 12:00")
			if tc.setup != nil {
				tc.setup(t, s)
			}
			r := btcReport(t, btc)
			if tc.edit != nil {
				tc.edit(&r)
			}
			actor := regulator
			if tc.amend {
				actor = amendment
			}
			if tc.actor != nil {
				actor = *tc.actor
			}
			unchanged(t, db, reportTables, func() {
				var err error
				if tc.amend {
					_, err = s.AmendReport(ctx, r, actor)
				} else {
					_, err = s.SubmitReport(ctx, r, actor)
				}
				wantCode(t, err, tc.want)
			})
			reports, err := s.Reports(ctx, postgres.ReportFilter{})
			if err != nil || len(reports) != tc.stored {
				t.Fatalf("Reports = %+v, %v; want %d", reports, err, tc.stored)
			}
			if tc.stored == 1 && (reports[0].Version != 1 || reports[0].Mined != "1.00000000") {
				t.Errorf("report after a refused change = %+v, want version 1 of 1.00000000", reports[0])
			}
		})
	}

	t.Run("OKHundredWallets", func(t *testing.T) {
		s, _ := newStore(t, compliance.DefaultRuleSet)
		register(t, s, "alpha", "111111111111", "2024-01-15", "alpha-1")
		setNow(t, s, "2025-02-05 12:00")
		r := btcReport(t, btc)
		r.Wallets = wallets(100)
		if _, err := s.SubmitReport(ctx, r, regulator); err != nil {
			t.Fatalf("SubmitReport with 100 wallets: %v", err)
		}
		reports, err := s.Reports(ctx, postgres.ReportFilter{Miner: "alpha"})
		if err != nil || len(reports) != 1 || !reflect.DeepEqual(reports[0].Versions[0].Wallets, r.Wallets) {
			t.Errorf("Reports = %+v, %v; want the 100 wallets back", reports, err)
		}
	})
}

func TestReports_Amend(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2024-01-15", "alpha-1")
	createPool(t, s, "pool-kz")
	submittedAt, amendedAt := almaty(t, "2025-02-05 12:00"), almaty(t, "2025-02-06 09:15")
	setClock(s, submittedAt)
	v1, err := s.SubmitReport(ctx, btcReport(t, btc), regulator)
	if err != nil {
		t.Fatalf("SubmitReport: %v", err)
	}
	// 2025: 75 % of 1 BTC = 0.75 BTC.
	if v1.Required != "0.75000000" || v1.ReportVersion != 1 {
		t.Fatalf("SubmitReport = %+v, want required 0.75000000, report version 1", v1)
	}

	setClock(s, amendedAt)
	r := btcReport(t, 2*btc)
	r.Wallets, r.Source, r.Pool = []string{"bc1q-alpha-1", "bc1q-alpha-2"}, compliance.FromPool, "pool-kz"
	miner := compliance.Actor{ID: "miner-key-alpha", Reason: "pool statement received"}
	v2, err := s.AmendReport(ctx, r, miner)
	if err != nil {
		t.Fatalf("AmendReport: %v", err)
	}
	// 75 % of 2 BTC = 1.5 BTC; the same obligation, recomputed.
	want := v1
	want.Mined, want.Required, want.Remaining, want.ReportVersion = "2.00000000", "1.50000000", "1.50000000", 2
	if v2 != want {
		t.Errorf("AmendReport =\n%+v, want\n%+v", v2, want)
	}

	t.Run("OKVersionsKept", func(t *testing.T) {
		reports, err := s.Reports(ctx, postgres.ReportFilter{Miner: "alpha"})
		if err != nil || len(reports) != 1 {
			t.Fatalf("Reports = %+v, %v; want one", reports, err)
		}
		got := reports[0]
		if got.Version != 2 || got.Mined != "2.00000000" || got.Period != "2025-01" || got.Asset != "BTC" {
			t.Errorf("report = %+v, want version 2 of 2.00000000 for 2025-01 BTC", got)
		}
		wantVersions := []postgres.ReportVersionView{
			{Version: 1, Mined: "1.00000000", Wallets: []string{"bc1q-alpha-1"}, Source: "miner", Reason: "submitted",
				Actor: "regulator-1", SubmittedAt: submittedAt},
			{Version: 2, Mined: "2.00000000", Wallets: []string{"bc1q-alpha-1", "bc1q-alpha-2"}, Source: "pool", Pool: "pool-kz",
				Reason: "pool statement received", Actor: "miner-key-alpha", SubmittedAt: amendedAt},
		}
		if len(got.Versions) != 2 {
			t.Fatalf("versions = %+v, want 2", got.Versions)
		}
		for i, w := range wantVersions {
			g := got.Versions[i]
			if !g.SubmittedAt.Equal(w.SubmittedAt) {
				t.Errorf("version %d submitted at %s, want %s", i+1, g.SubmittedAt, w.SubmittedAt)
			}
			g.SubmittedAt = w.SubmittedAt
			if !reflect.DeepEqual(g, w) {
				t.Errorf("version %d =\n%+v, want\n%+v", i+1, g, w)
			}
		}
		for period, n := range map[string]int{"2025-01": 1, "2025-02": 0} {
			if rs, err := s.Reports(ctx, postgres.ReportFilter{Period: period}); err != nil || len(rs) != n {
				t.Errorf("Reports(period %s) = %d, %v; want %d", period, len(rs), err, n)
			}
		}
	})

	t.Run("OKRecomputed", func(t *testing.T) {
		d := obligation(t, s, v1.ID)
		if d.ObligationView != want {
			t.Errorf("Obligation =\n%+v, want\n%+v", d.ObligationView, want)
		}
		wantComps := []postgres.Computation{
			{Version: 1, ReportVersion: 1, Mined: "1.00000000", Share: "0.75", RuleSet: "kz-law-193", RuleSetVersion: 2,
				Required: "0.75000000", ComputedAt: submittedAt},
			{Version: 2, ReportVersion: 2, Mined: "2.00000000", Share: "0.75", RuleSet: "kz-law-193", RuleSetVersion: 2,
				Required: "1.50000000", ComputedAt: amendedAt},
		}
		if len(d.Computations) != len(wantComps) {
			t.Fatalf("Computations = %+v, want %+v", d.Computations, wantComps)
		}
		for i, w := range wantComps {
			g := d.Computations[i]
			if !g.ComputedAt.Equal(w.ComputedAt) {
				t.Errorf("computation %d at %s, want %s", i+1, g.ComputedAt, w.ComputedAt)
			}
			g.ComputedAt = w.ComputedAt
			if g != w {
				t.Errorf("computation %d = %+v, want %+v", i+1, g, w)
			}
		}
	})

	t.Run("OKAudited", func(t *testing.T) {
		e := lastAudit(t, s, "alpha")
		wantAudit(t, e, "miner-key-alpha", "report.amend", "alpha", "pool statement received")
		var detail struct {
			Version  int
			Mined    int64
			Required int64
		}
		if err := json.Unmarshal(e.Detail, &detail); err != nil || detail.Version != 2 || detail.Mined != 2*btc || detail.Required != 150_000_000 {
			t.Errorf("audit detail = %s, want version 2, mined %d, required %d", e.Detail, 2*btc, 150_000_000)
		}
	})
}

// TestReports_AmendedAfterPartialSales: an amendment recomputes what is
// required and keeps what was sold.
func TestReports_AmendedAfterPartialSales(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2024-01-15", "alpha-1")
	openAccount(t, db, "buyer-1", "trader-x", "trader")
	setNow(t, s, "2025-02-05 12:00")
	ob, err := s.SubmitReport(ctx, btcReport(t, btc), regulator) // required 0.75
	if err != nil {
		t.Fatal(err)
	}
	mustSettle(t, s, db, "s1", sale("100-0", "alpha-1", "BTC", 50_000_000, almaty(t, "2025-02-05 13:00")))

	amendedAt := almaty(t, "2025-02-06 10:00")
	setClock(s, amendedAt)
	for _, step := range []struct {
		name     string
		mined    int64
		required string // hand-computed: ceil(mined × 0.75)
		status   compliance.Status
		metAt    *time.Time
	}{
		// 0.6 × 0.75 = 0.45 ≤ 0.5 sold: met by what was already sold.
		{"OK/LowerBelowSold", 60_000_000, "0.45000000", compliance.StatusMet, &amendedAt},
		// 1.2 × 0.75 = 0.9 > 0.5: open again.
		{"OK/RaiseReopens", 120_000_000, "0.90000000", compliance.StatusOpen, nil},
		// 66,666,667 × 3/4 = 50,000,000.25 sat, rounded up to 50,000,001: one satoshi short.
		{"OK/RoundedUpOneShort", 66_666_667, "0.50000001", compliance.StatusOpen, nil},
		// 66,666,666 × 3/4 = 49,999,999.5, rounded up to 50,000,000: met.
		{"OK/RoundedUpMet", 66_666_666, "0.50000000", compliance.StatusMet, &amendedAt},
	} {
		t.Run(step.name, func(t *testing.T) {
			v, err := s.AmendReport(ctx, btcReport(t, step.mined), compliance.Actor{ID: "regulator-1", Reason: step.name})
			if err != nil {
				t.Fatalf("AmendReport: %v", err)
			}
			remaining := mustParse(t, step.required, 8) - 50_000_000
			if step.status == compliance.StatusMet {
				remaining = 0
			}
			if v.ID != ob.ID || v.Required != step.required || v.Sold != "0.50000000" || v.Status != step.status ||
				v.Remaining != fmtBTC(remaining) {
				t.Errorf("AmendReport = %+v, want required %s, sold 0.50000000, remaining %s, %s", v, step.required, fmtBTC(remaining), step.status)
			}
			got := storedProgress(t, db, ob.ID)
			if got.sold != "0.50000000" || got.status != string(step.status) || !sameTime(got.metAt, step.metAt) {
				t.Errorf("stored (sold, status, met_at) = (%s, %s, %s), want (0.50000000, %s, %s)",
					got.sold, got.status, fmtTime(got.metAt), step.status, fmtTime(step.metAt))
			}
		})
	}
	d := obligation(t, s, ob.ID)
	if len(d.Computations) != 5 || d.ReportVersion != 5 || len(d.Counted) != 1 || d.Counted[0].Quantity != "0.50000000" {
		t.Errorf("Obligation = %+v, want 5 computations, report version 5, the one sale counted", d)
	}
}

// fmtBTC writes satoshis as BTC.
func fmtBTC(sat int64) string { return fmt.Sprintf("%d.%08d", sat/btc, sat%btc) }

func TestReports_PoolStatements(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2024-01-15", "alpha-1")
	register(t, s, "beta", "222222222222", "2024-01-15", "beta-1")
	createPool(t, s, "pool-a")
	createPool(t, s, "pool-b")
	setNow(t, s, "2025-02-05 12:00")
	if _, err := s.SubmitReport(ctx, btcReport(t, btc), regulator); err != nil {
		t.Fatal(err)
	}
	jan := day(t, "2025-01-01")
	statement := func(pool string, qty int64) postgres.PoolStatement {
		return postgres.PoolStatement{Pool: pool, Miner: "alpha", Asset: "BTC", PeriodStart: jan, Quantity: qty}
	}
	check := func(t *testing.T, total string, mismatch bool, diff string) {
		t.Helper()
		rs, err := s.Reports(ctx, postgres.ReportFilter{Miner: "alpha"})
		if err != nil || len(rs) != 1 {
			t.Fatalf("Reports = %+v, %v", rs, err)
		}
		if r := rs[0]; r.PoolTotal != total || r.PoolMismatch != mismatch || r.PoolDifference != diff {
			t.Errorf("report's pool check = (total %q, mismatch %v, difference %q), want (%q, %v, %q)",
				r.PoolTotal, r.PoolMismatch, r.PoolDifference, total, mismatch, diff)
		}
		sum, err := s.Summary(ctx, "alpha")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 0, true: 1}[mismatch]; sum.PoolMismatches != want {
			t.Errorf("Summary.PoolMismatches = %d, want %d", sum.PoolMismatches, want)
		}
	}

	t.Run("OKNoStatements", func(t *testing.T) { check(t, "", false, "") })

	t.Run("OKMatches", func(t *testing.T) {
		if err := s.SubmitPoolStatement(ctx, statement("pool-a", btc), compliance.Actor{ID: "pool-key-a", Reason: "monthly statement"}); err != nil {
			t.Fatalf("SubmitPoolStatement: %v", err)
		}
		check(t, "1.00000000", false, "")
		wantAudit(t, lastAudit(t, s, "alpha"), "pool-key-a", "pool.statement", "alpha", "monthly statement")
	})

	t.Run("OKMismatch", func(t *testing.T) {
		if err := s.SubmitPoolStatement(ctx, statement("pool-b", 20_000_000), regulator); err != nil {
			t.Fatalf("SubmitPoolStatement: %v", err)
		}
		// Reported 1.0, pools paid 1.0 + 0.2 = 1.2: the report is 0.2 short.
		check(t, "1.20000000", true, "-0.20000000")
		rs, _ := s.Reports(ctx, postgres.ReportFilter{Miner: "alpha"})
		b, _ := json.Marshal(rs[0])
		if !strings.Contains(string(b), `"poolMismatch":true`) || !strings.Contains(string(b), `"poolDifference":"-0.20000000"`) {
			t.Errorf("report as JSON = %s, want poolMismatch true and poolDifference -0.20000000", b)
		}
	})

	t.Run("OKAmendedToMatch", func(t *testing.T) {
		if _, err := s.AmendReport(ctx, btcReport(t, 120_000_000), compliance.Actor{ID: "regulator-1", Reason: "pool statements"}); err != nil {
			t.Fatalf("AmendReport: %v", err)
		}
		check(t, "1.20000000", false, "")
	})

	for _, tc := range []struct {
		name string
		st   postgres.PoolStatement
		want apperr.Code
	}{
		{"ErrDuplicate", statement("pool-a", 2*btc), apperr.Conflict},
		{"ErrUnknownPool", statement("pool-none", btc), apperr.InvalidParameter},
		{"ErrUnknownMiner", postgres.PoolStatement{Pool: "pool-a", Miner: "nobody", Asset: "BTC", PeriodStart: jan, Quantity: btc},
			apperr.UnknownMiner},
		{"ErrUnknownAsset", postgres.PoolStatement{Pool: "pool-a", Miner: "alpha", Asset: "DOGE", PeriodStart: jan, Quantity: btc},
			apperr.UnknownAsset},
		{"ErrMonthNotEnded", postgres.PoolStatement{Pool: "pool-a", Miner: "alpha", Asset: "BTC", PeriodStart: day(t, "2025-02-01"),
			Quantity: btc}, apperr.InvalidParameter},
		{"ErrNegative", statement("pool-c", -1), apperr.InvalidQuantity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unchanged(t, db, []string{"pool_statements", "registry_audit"}, func() {
				wantCode(t, s.SubmitPoolStatement(ctx, tc.st, regulator), tc.want)
			})
		})
	}
}

// TestReports_AmendKeepsTheRuleSet: an obligation keeps the rule set that
// computed it. A server applying another rule set refuses to amend it
// (CONFLICT) and changes nothing: recomputed there, the share would change
// behind the miner's back.
func TestReports_AmendKeepsTheRuleSet(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2024-01-15", "alpha-1")
	setClock(s, almaty(t, "2025-02-05 12:00"))
	v1, err := s.SubmitReport(ctx, btcReport(t, btc), regulator)
	if err != nil {
		t.Fatalf("SubmitReport: %v", err)
	}
	book, err := compliance.LoadRuleBook()
	if err != nil {
		t.Fatal(err)
	}
	var other *compliance.RuleSet
	for _, id := range []string{"kz-law-193", "kz-paper-2024"} {
		if r, err := book.Get(id); err == nil && r.ID != v1.RuleSet {
			other = r
		}
	}
	if other == nil {
		t.Fatalf("fixture: no rule set other than %s", v1.RuleSet)
	}
	s2, err := postgres.NewStore(ctx, db, other)
	if err != nil {
		t.Fatal(err)
	}
	setClock(s2, almaty(t, "2025-02-06 09:15"))
	r := btcReport(t, btc)
	r.Wallets = []string{"bc1q-alpha-1", "bc1q-alpha-2"}
	_, err = s2.AmendReport(ctx, r, compliance.Actor{ID: "miner-key-alpha", Reason: "one more wallet"})
	if apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("amending under %s an obligation computed under %s: %v; want CONFLICT", other.ID, v1.RuleSet, err)
	}
	reports, err := s.Reports(ctx, postgres.ReportFilter{Miner: "alpha"})
	if err != nil || len(reports) != 1 || reports[0].Version != 1 {
		t.Fatalf("reports after the refused amendment: %+v (%v); want version 1 only", reports, err)
	}
}
