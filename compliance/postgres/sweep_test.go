package postgres_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/postgres"
)

// The sanctions of kz-law-193 v2 (Satu's default table from 2024): a first
// violation 15 MCI; a repeat within 12 months 150 MCI and a recommended
// suspension of 3 months. The MCI is confirmed for 2023 only, so a fine of
// 2024 or later stays in MCI.
const (
	firstFineMCI         = 15
	repeatFineMCI        = 150
	repeatSuspension     = 3
	sanctionSourcePrefix = "P: Mussin et al. 2024, Table 2, measure 8"
)

// sweep runs Sweep and fails the test on error.
func sweep(t *testing.T, s *postgres.Store) []postgres.Violation {
	t.Helper()
	vs, err := s.Sweep(context.Background())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	return vs
}

// wantViolation checks a violation against the hand-computed figures; the
// fine is never converted to tenge (no confirmed MCI after 2023) and says so.
func wantViolation(t *testing.T, v postgres.Violation, obligationID int64, miner, arose string, number int, fine int64, suspension int) {
	t.Helper()
	if v.ObligationID != obligationID || v.Miner != miner || v.AroseOn != arose || v.Number != number || v.FineMCI != fine ||
		v.SuspensionMonths != suspension || v.RuleSet != "kz-law-193" || v.RuleSetVersion != 2 || v.ID <= 0 {
		t.Errorf("violation = %+v, want obligation %d of %s arising %s, number %d, %d MCI, suspension %d months, kz-law-193 v2",
			v, obligationID, miner, arose, number, fine, suspension)
	}
	if v.FineTenge != "" || !strings.Contains(v.FineNote, "not converted") || !strings.Contains(v.FineNote, "MCI") {
		t.Errorf("fine in tenge %q with note %q: want none, and a note saying the MCI is not confirmed", v.FineTenge, v.FineNote)
	}
	if !strings.HasPrefix(v.Source, sanctionSourcePrefix) {
		t.Errorf("violation source = %q, want the sanctions table's (%s…)", v.Source, sanctionSourcePrefix)
	}
}

func TestSweep_Violations(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2024-06-01", "alpha-1")
	openAccount(t, db, "buyer-1", "trader-x", "trader")

	setNow(t, s, "2025-02-01 10:00")
	jan := report(t, s, "alpha", "BTC", "2025-01-01", btc) // 0.75 required by 2025-01-31 + 30 days = 2025-03-02
	setNow(t, s, "2025-03-01 10:00")
	feb := report(t, s, "alpha", "BTC", "2025-02-01", 40_000_000) // 0.3 required by 2025-02-28 + 30 = 2025-03-30
	if jan.Deadline != "2025-03-02" || jan.Required != "0.75000000" || feb.Deadline != "2025-03-30" || feb.Required != "0.30000000" {
		t.Fatalf("obligations: %+v, %+v", jan, feb)
	}

	t.Run("OK/DeadlineDayIsInTime", func(t *testing.T) {
		setNow(t, s, "2025-03-02 23:59")
		if vs := sweep(t, s); len(vs) != 0 {
			t.Errorf("Sweep on the deadline day = %+v, want none", vs)
		}
		if got := storedProgress(t, db, jan.ID); got.status != "open" {
			t.Errorf("January = %+v, want open", got)
		}
	})

	t.Run("OK/Overdue", func(t *testing.T) {
		// Midnight in Kazakhstan, still 2 March in UTC.
		setNow(t, s, "2025-03-03 00:00")
		vs := sweep(t, s)
		if len(vs) != 1 {
			t.Fatalf("Sweep = %+v, want one violation", vs)
		}
		wantViolation(t, vs[0], jan.ID, "alpha", "2025-03-03", 1, firstFineMCI, 0)
		if got := storedProgress(t, db, jan.ID); got.status != "overdue" || got.sold != "0" {
			t.Errorf("January = %+v, want overdue, nothing sold", got)
		}
		if got := storedProgress(t, db, feb.ID); got.status != "open" {
			t.Errorf("February = %+v, want open", got)
		}
		d := obligation(t, s, jan.ID)
		if d.Status != compliance.StatusOverdue || d.Violation == nil || !reflect.DeepEqual(*d.Violation, vs[0]) {
			t.Errorf("Obligation(January) = %+v with violation %+v, want overdue with %+v", d.ObligationView, d.Violation, vs[0])
		}
		wantAudit(t, lastAudit(t, s, "alpha"), "system", "obligation.overdue", "alpha", "deadline passed with the required sale not met")
	})

	t.Run("OK/SweepAgainFindsNothing", func(t *testing.T) {
		if vs := sweep(t, s); len(vs) != 0 {
			t.Errorf("second Sweep = %+v, want none", vs)
		}
		if n := counts(t, db, "violations")[0]; n != 1 {
			t.Errorf("%d violations stored, want 1", n)
		}
	})

	// A sale executed on the deadline day but settled after the sweep still
	// counts; the obligation stays overdue while short, its violation stands.
	t.Run("OK/InTimeSaleSettledLate", func(t *testing.T) {
		mustSettle(t, s, db, "s1", sale("20-0", "alpha-1", "BTC", 25_000_000, almaty(t, "2025-03-02 20:00")))
		if got := storedProgress(t, db, jan.ID); got.status != "overdue" || got.sold != "0.25000000" {
			t.Errorf("January = %+v, want overdue with 0.25000000 sold", got)
		}
		if got := storedProgress(t, db, feb.ID); got.sold != "0" {
			t.Errorf("February = %+v, want nothing sold (January's deadline is earlier)", got)
		}
	})

	// After its deadline an overdue obligation's window is closed: a later
	// mandatory sale counts towards the next open obligation.
	t.Run("OK/LateSaleCountsTowardsNext", func(t *testing.T) {
		mustSettle(t, s, db, "s1", sale("21-0", "alpha-1", "BTC", 50_000_000, almaty(t, "2025-03-03 10:00")))
		if got := storedProgress(t, db, jan.ID); got.status != "overdue" || got.sold != "0.25000000" {
			t.Errorf("January = %+v, want overdue with 0.25000000 sold", got)
		}
		// 0.5 sold: February takes its 0.3, the other 0.2 is excess.
		if got := storedProgress(t, db, feb.ID); got.status != "met" || got.sold != "0.30000000" {
			t.Errorf("February = %+v, want met with 0.30000000 sold", got)
		}
		if x := exclusions(t, db)["21-0"]; len(x) != 1 || x[compliance.ExcludedExcess] != "0.20000000" {
			t.Errorf("excluded parts of the late sale = %v, want excess 0.20000000", x)
		}
	})

	var mar compliance.ObligationView
	t.Run("OK/RepeatWithinTwelveMonths", func(t *testing.T) {
		setNow(t, s, "2025-04-01 10:00")
		mar = report(t, s, "alpha", "BTC", "2025-03-01", 2*btc) // 1.5 required by 2025-03-31 + 30 = 2025-04-30
		setNow(t, s, "2025-05-01 10:00")
		vs := sweep(t, s)
		if len(vs) != 1 {
			t.Fatalf("Sweep = %+v, want one violation", vs)
		}
		// 2025-03-03 is less than 12 months before 2025-05-01: the second.
		wantViolation(t, vs[0], mar.ID, "alpha", "2025-05-01", 2, repeatFineMCI, repeatSuspension)
		if vs := sweep(t, s); len(vs) != 0 {
			t.Errorf("second Sweep = %+v, want none", vs)
		}
		all, err := s.Violations(ctx, "alpha")
		if err != nil || len(all) != 2 || all[0].ObligationID != jan.ID || all[1].ObligationID != mar.ID {
			t.Errorf("Violations = %+v, %v; want January's then March's", all, err)
		}
		if none, err := s.Violations(ctx, "beta"); err != nil || none == nil || len(none) != 0 {
			t.Errorf("Violations(beta) = %#v, %v; want []", none, err)
		}
	})

	t.Run("OK/Summary", func(t *testing.T) {
		sum, err := s.Summary(ctx, "alpha")
		if err != nil {
			t.Fatalf("Summary: %v", err)
		}
		// Outstanding: January 0.75 − 0.25 = 0.5, March 1.5: 2.0 BTC.
		want := map[compliance.Status]int{compliance.StatusOverdue: 2, compliance.StatusMet: 1}
		if !reflect.DeepEqual(sum.Obligations, want) || sum.Outstanding["BTC"] != "2.00000000" || len(sum.Outstanding) != 1 {
			t.Errorf("Summary obligations %v, outstanding %v; want %v, BTC 2.00000000", sum.Obligations, sum.Outstanding, want)
		}
		if sum.FinesMCI != firstFineMCI+repeatFineMCI || !sum.SuspensionRecommended || len(sum.Violations) != 2 {
			t.Errorf("Summary fines %d MCI, suspension recommended %v, %d violations; want %d, true, 2",
				sum.FinesMCI, sum.SuspensionRecommended, len(sum.Violations), firstFineMCI+repeatFineMCI)
		}
		if !sum.Licensed || sum.Miner.ID != "alpha" || len(sum.Licences) != 1 || sum.MandatorySell != nil {
			t.Errorf("Summary = %+v, want licensed alpha with one licence, no permission sent yet", sum)
		}
		overdue, err := s.Obligations(ctx, postgres.ObligationFilter{Status: compliance.StatusOverdue})
		if err != nil || len(overdue) != 2 {
			t.Errorf("overdue obligations = %+v, %v; want January and March", overdue, err)
		}
	})
}

// TestSweep_LateReports: a report sent after its deadline is overdue at
// once, with its violation; violations are numbered within 12 months.
func TestSweep_LateReports(t *testing.T) {
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "beta", "222222222222", "2023-06-15", "beta-1")
	setNow(t, s, "2025-03-10 12:00")
	// January 2024: due 2024-03-01, arose 2024-03-02; the first.
	old := report(t, s, "beta", "BTC", "2024-01-01", btc)
	// January 2025: arose 2025-03-03; 2024-03-02 is more than 12 months
	// before (the window starts 2024-03-03): a first violation again.
	jan := report(t, s, "beta", "BTC", "2025-01-01", btc)
	setNow(t, s, "2025-04-05 12:00")
	// February 2025: due 2025-03-30, arose 2025-03-31: a repeat of January's.
	feb := report(t, s, "beta", "BTC", "2025-02-01", btc)
	for _, ob := range []compliance.ObligationView{old, jan, feb} {
		if ob.Status != compliance.StatusOverdue {
			t.Errorf("late report %s: status %s, want overdue", ob.Period, ob.Status)
		}
	}
	vs, err := s.Violations(context.Background(), "beta")
	if err != nil || len(vs) != 3 {
		t.Fatalf("Violations = %+v, %v; want 3", vs, err)
	}
	wantViolation(t, vs[0], old.ID, "beta", "2024-03-02", 1, firstFineMCI, 0)
	wantViolation(t, vs[1], jan.ID, "beta", "2025-03-03", 1, firstFineMCI, 0)
	wantViolation(t, vs[2], feb.ID, "beta", "2025-03-31", 2, repeatFineMCI, repeatSuspension)
	if got := sweep(t, s); len(got) != 0 {
		t.Errorf("Sweep after late reports = %+v, want none", got)
	}
	if n := counts(t, db, "violations")[0]; n != 3 {
		t.Errorf("%d violations stored, want 3", n)
	}
}

// TestSweep_LateViolationRenumbersLaterOnes: a violation recorded after a
// later-arising one of the same miner (its report came last) makes that
// one a repeat: renumbered, fined as a repeat, with the change audited.
func TestSweep_LateViolationRenumbersLaterOnes(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "beta", "222222222222", "2023-06-15", "beta-1")
	setNow(t, s, "2025-04-05 12:00")
	// February first: arose 2025-03-31, the miner's first violation so far.
	feb := report(t, s, "beta", "BTC", "2025-02-01", btc)
	vs, err := s.Violations(ctx, "beta")
	if err != nil || len(vs) != 1 {
		t.Fatalf("Violations = %+v, %v; want 1", vs, err)
	}
	wantViolation(t, vs[0], feb.ID, "beta", "2025-03-31", 1, firstFineMCI, 0)
	// Then January: arose 2025-03-03, before February's, which is now the
	// second within 12 months.
	jan := report(t, s, "beta", "BTC", "2025-01-01", btc)
	vs, err = s.Violations(ctx, "beta")
	if err != nil || len(vs) != 2 {
		t.Fatalf("Violations = %+v, %v; want 2", vs, err)
	}
	wantViolation(t, vs[0], jan.ID, "beta", "2025-03-03", 1, firstFineMCI, 0)
	wantViolation(t, vs[1], feb.ID, "beta", "2025-03-31", 2, repeatFineMCI, repeatSuspension)
	if vs[0].Revised || !vs[1].Revised {
		t.Errorf("revised: January %v, February %v; want false, true", vs[0].Revised, vs[1].Revised)
	}
	es, err := s.Audit(ctx, "beta", 10)
	if err != nil {
		t.Fatal(err)
	}
	var renumbered []postgres.AuditEntry
	for _, e := range es {
		if e.Action == "violation.renumbered" {
			renumbered = append(renumbered, e)
		}
	}
	if len(renumbered) != 1 {
		t.Fatalf("audit entries violation.renumbered: %+v; want one", renumbered)
	}
	var detail struct {
		Violation int64
		Number    struct{ Was, Now int }
		FineMci   struct{ Was, Now int64 }
	}
	if err := json.Unmarshal(renumbered[0].Detail, &detail); err != nil || detail.Violation != vs[1].ID ||
		detail.Number.Was != 1 || detail.Number.Now != 2 || detail.FineMci.Was != firstFineMCI || detail.FineMci.Now != repeatFineMCI {
		t.Errorf("renumbering audited as %s (%v); want violation %d from 1 to 2, %d to %d MCI",
			renumbered[0].Detail, err, vs[1].ID, firstFineMCI, repeatFineMCI)
	}
	wantAudit(t, renumbered[0], "system", "violation.renumbered", "beta", "an earlier violation of the miner was recorded after this one")
	// A violation more than 12 months before a later one changes nothing.
	old := report(t, s, "beta", "BTC", "2024-01-01", btc) // arose 2024-03-02
	vs, _ = s.Violations(ctx, "beta")
	if len(vs) != 3 {
		t.Fatalf("Violations = %+v; want 3", vs)
	}
	wantViolation(t, vs[0], old.ID, "beta", "2024-03-02", 1, firstFineMCI, 0)
	wantViolation(t, vs[1], jan.ID, "beta", "2025-03-03", 1, firstFineMCI, 0)
	wantViolation(t, vs[2], feb.ID, "beta", "2025-03-31", 2, repeatFineMCI, repeatSuspension)
}

// TestSweep_AmendedAfterDeadline: an obligation still open after its
// deadline (the sweep has not run yet) and amended then gets its violation
// like any overdue one; it must not become overdue without one.
func TestSweep_AmendedAfterDeadline(t *testing.T) {
	s, _ := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "beta", "222222222222", "2023-06-15", "beta-1")
	setNow(t, s, "2025-02-05 12:00")
	jan := report(t, s, "beta", "BTC", "2025-01-01", btc) // due 2025-03-02
	setNow(t, s, "2025-03-05 12:00")
	v, err := s.AmendReport(context.Background(), compliance.Report{MinerID: "beta", Asset: "BTC", PeriodStart: day(t, "2025-01-01"),
		Mined: 2 * btc, Wallets: []string{"wallet-beta"}, Source: compliance.FromMiner}, compliance.Actor{ID: "regulator-1", Reason: "audit"})
	if err != nil {
		t.Fatalf("AmendReport: %v", err)
	}
	if v.Status != compliance.StatusOverdue {
		t.Errorf("amended obligation status %s, want overdue", v.Status)
	}
	sweep(t, s)
	vs, err := s.Violations(context.Background(), "beta")
	if err != nil || len(vs) != 1 {
		t.Fatalf("Violations = %+v, %v; want the overdue obligation's one", vs, err)
	}
	wantViolation(t, vs[0], jan.ID, "beta", "2025-03-03", 1, firstFineMCI, 0)
}

// TestSweep_MetThenAmendedUpAfterDeadline: an obligation met in time whose
// report is corrected upward after the deadline fell short of the corrected
// figure at the deadline: overdue, with its violation.
func TestSweep_MetThenAmendedUpAfterDeadline(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "beta", "222222222222", "2023-06-15", "beta-1")
	openAccount(t, db, "buyer-1", "trader-x", "trader")
	setNow(t, s, "2025-02-05 12:00")
	jan := report(t, s, "beta", "BTC", "2025-01-01", btc) // 0.75 due by 2025-03-02
	mustSettle(t, s, db, "s1", sale("200-0", "beta-1", "BTC", 75_000_000, almaty(t, "2025-02-05 13:00")))
	if got := storedProgress(t, db, jan.ID); got.status != string(compliance.StatusMet) {
		t.Fatalf("status after selling 0.75 = %s, want met", got.status)
	}
	setNow(t, s, "2025-03-05 12:00")
	v, err := s.AmendReport(ctx, compliance.Report{MinerID: "beta", Asset: "BTC", PeriodStart: day(t, "2025-01-01"),
		Mined: 2 * btc, Wallets: []string{"wallet-beta"}, Source: compliance.FromMiner}, compliance.Actor{ID: "regulator-1", Reason: "audit found 2 BTC"})
	if err != nil {
		t.Fatalf("AmendReport: %v", err)
	}
	// 2 BTC × 0.75 = 1.5 due; 0.75 sold by the deadline.
	if v.Status != compliance.StatusOverdue || v.Required != "1.50000000" || v.Remaining != "0.75000000" {
		t.Fatalf("amended obligation = %+v, want overdue, 1.50000000 required, 0.75000000 remaining", v)
	}
	vs, err := s.Violations(ctx, "beta")
	if err != nil || len(vs) != 1 {
		t.Fatalf("Violations = %+v, %v; want one", vs, err)
	}
	wantViolation(t, vs[0], jan.ID, "beta", "2025-03-03", 1, firstFineMCI, 0)
	// A second amendment does not fine twice.
	if _, err := s.AmendReport(ctx, compliance.Report{MinerID: "beta", Asset: "BTC", PeriodStart: day(t, "2025-01-01"),
		Mined: 3 * btc, Wallets: []string{"wallet-beta"}, Source: compliance.FromMiner}, compliance.Actor{ID: "regulator-1", Reason: "again"}); err != nil {
		t.Fatal(err)
	}
	if vs, _ := s.Violations(ctx, "beta"); len(vs) != 1 {
		t.Fatalf("violations after a second amendment = %d, want 1", len(vs))
	}
}
