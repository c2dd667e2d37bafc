package postgres_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
)

// change returns a status change from one day until another ("" for none).
func change(t *testing.T, kind compliance.ChangeKind, from, until, reason string) compliance.StatusChange {
	t.Helper()
	c := compliance.StatusChange{Kind: kind, From: day(t, from), Reason: reason}
	if until != "" {
		c.Until = day(t, until)
	}
	return c
}

// changeLicence makes a change and fails the test on error.
func changeLicence(t *testing.T, s *postgres.Store, number string, c compliance.StatusChange) {
	t.Helper()
	if _, err := s.ChangeLicence(context.Background(), number, c, regulator); err != nil {
		t.Fatalf("ChangeLicence(%s, %s from %s): %v", number, c.Kind, c.From.Format(time.DateOnly), err)
	}
}

func TestLicences_ChangeHistory(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "", "alpha-1")
	if err := s.AddLicence(ctx, "alpha", licence(t, "KZ-DM-1", "2023-03-01"), compliance.Actor{ID: "regulator-2", Reason: "application 9"}); err != nil {
		t.Fatal(err)
	}
	wantAudit(t, lastAudit(t, s, "alpha"), "regulator-2", "licence.register", "alpha", "application 9")
	setNow(t, s, "2024-06-10 12:00")
	changes := []compliance.StatusChange{
		change(t, compliance.ChangeSuspend, "2024-06-01", "2024-09-01", "quota overrun in May"), // 3 months
		change(t, compliance.ChangeReinstate, "2024-07-15", "", "overrun remedied"),
		change(t, compliance.ChangeSuspend, "2024-10-01", "2024-11-01", "late reports"), // 1 month, ends by itself
		change(t, compliance.ChangeRevoke, "2025-01-01", "", "repeat violations"),
	}
	for _, c := range changes {
		minerID, err := s.ChangeLicence(ctx, "KZ-DM-1", c, compliance.Actor{ID: "regulator-key-3", Reason: "ignored: the change's own"})
		if err != nil {
			t.Fatalf("ChangeLicence(%s from %s): %v", c.Kind, c.From.Format(time.DateOnly), err)
		}
		if minerID != "alpha" {
			t.Errorf("ChangeLicence returned miner %q, want alpha", minerID)
		}
		e := lastAudit(t, s, "alpha")
		wantAudit(t, e, "regulator-key-3", "licence."+string(c.Kind), "alpha", c.Reason)
		var detail struct{ Number, From, Until string }
		if err := json.Unmarshal(e.Detail, &detail); err != nil || detail.Number != "KZ-DM-1" || detail.From != c.From.Format(time.DateOnly) {
			t.Errorf("audit detail = %s, want number KZ-DM-1 from %s", e.Detail, c.From.Format(time.DateOnly))
		}
	}

	t.Run("OKHistory", func(t *testing.T) {
		lics, err := s.Licences(ctx, "alpha")
		if err != nil {
			t.Fatalf("Licences: %v", err)
		}
		if len(lics) != 1 || !reflect.DeepEqual(lics[0].Changes, changes) {
			t.Fatalf("Licences = %+v, want one licence with changes %+v", lics, changes)
		}
		// The registered status stays what it was registered with.
		if lics[0].Status != compliance.LicenceActive {
			t.Errorf("registered status = %s, want active", lics[0].Status)
		}
	})

	for _, tc := range []struct {
		today string
		want  compliance.LicenceStatus
	}{
		{"2024-05-31", compliance.LicenceActive},
		{"2024-06-01", compliance.LicenceSuspended},
		{"2024-07-14", compliance.LicenceSuspended},
		{"2024-07-15", compliance.LicenceActive}, // reinstated before the suspension's end
		{"2024-10-31", compliance.LicenceSuspended},
		{"2024-11-01", compliance.LicenceActive}, // the suspension ended by itself
		{"2025-01-01", compliance.LicenceRevoked},
		{"2026-03-01", compliance.LicenceExpired},
	} {
		t.Run("OKStatusToday/"+tc.today, func(t *testing.T) {
			setNow(t, s, tc.today+" 00:30") // 00:30 in Kazakhstan is still the day before in UTC
			vs, err := s.LicenceViews(ctx, "alpha")
			if err != nil {
				t.Fatalf("LicenceViews: %v", err)
			}
			if len(vs) != 1 || vs[0].StatusToday != tc.want || len(vs[0].Changes) != len(changes) {
				t.Errorf("LicenceViews on %s = %+v, want status %s with %d changes", tc.today, vs, tc.want, len(changes))
			}
		})
	}
}

func TestLicences_Fees(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, compliance.DefaultRuleSet)
	setNow(t, s, "2025-06-10 12:00")
	register(t, s, "alpha", "111111111111", "", "alpha-1")
	register(t, s, "beta", "222222222222", "", "beta-1")
	hosted := licence(t, "KZ-DM-B", "2023-05-10")
	hosted.Subtype = compliance.SubtypeHosted
	for _, l := range []struct {
		miner string
		l     compliance.Licence
	}{
		{"alpha", licence(t, "KZ-DM-2025", "2025-02-01")},
		{"alpha", licence(t, "KZ-DM-2023", "2023-03-01")},
		{"alpha", licence(t, "KZ-DM-2024", "2024-03-01")},
		{"beta", hosted},
	} {
		if err := s.AddLicence(ctx, l.miner, l.l, regulator); err != nil {
			t.Fatal(err)
		}
	}

	// Fees from the rule set: sub-type I 2,000 MCI, sub-type II 5 MCI; the
	// only confirmed MCI is 2023's, 3,450 ₸.
	const mci2023 = 3450
	fee2023I := fmtTenge(2000 * mci2023) // 6,900,000.00 ₸
	fee2023II := fmtTenge(5 * mci2023)   // 17,250.00 ₸
	if fee2023I != "6900000.00" || fee2023II != "17250.00" {
		t.Fatalf("hand-computed fees %s, %s", fee2023I, fee2023II)
	}
	want := []postgres.LicenceView{
		{Miner: "alpha", Number: "KZ-DM-2023", Subtype: "I", IssuedOn: "2023-03-01", ExpiresOn: "2026-03-01",
			StatusToday: compliance.LicenceActive, Changes: []compliance.StatusChange{}, FeeMCI: 2000, FeeTenge: fee2023I},
		// 2024's and 2025's MCI are not confirmed: the fee stays in MCI.
		{Miner: "alpha", Number: "KZ-DM-2024", Subtype: "I", IssuedOn: "2024-03-01", ExpiresOn: "2027-03-01",
			StatusToday: compliance.LicenceActive, Changes: []compliance.StatusChange{}, FeeMCI: 2000, FeeTenge: ""},
		{Miner: "alpha", Number: "KZ-DM-2025", Subtype: "I", IssuedOn: "2025-02-01", ExpiresOn: "2028-02-01",
			StatusToday: compliance.LicenceActive, Changes: []compliance.StatusChange{}, FeeMCI: 2000, FeeTenge: ""},
		{Miner: "beta", Number: "KZ-DM-B", Subtype: "II", IssuedOn: "2023-05-10", ExpiresOn: "2026-05-10",
			StatusToday: compliance.LicenceActive, Changes: []compliance.StatusChange{}, FeeMCI: 5, FeeTenge: fee2023II},
	}

	t.Run("OKAll", func(t *testing.T) {
		got, err := s.LicenceViews(ctx, "")
		if err != nil {
			t.Fatalf("LicenceViews: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("LicenceViews(\"\") =\n%+v, want\n%+v", got, want)
		}
	})
	t.Run("OKOneMiner", func(t *testing.T) {
		got, err := s.LicenceViews(ctx, "beta")
		if err != nil {
			t.Fatalf("LicenceViews: %v", err)
		}
		if !reflect.DeepEqual(got, want[3:]) {
			t.Errorf("LicenceViews(beta) =\n%+v, want\n%+v", got, want[3:])
		}
		b, _ := json.Marshal(got[0])
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || m["feeMci"] != 5.0 || m["feeTenge"] != "17250.00" || m["statusToday"] != "active" {
			t.Errorf("LicenceView as JSON = %s", b)
		}
	})
	t.Run("ErrUnknownMiner", func(t *testing.T) {
		_, err := s.LicenceViews(ctx, "nobody")
		wantCode(t, err, apperr.UnknownMiner)
	})
}

// fmtTenge writes whole tenge with two decimals.
func fmtTenge(v int64) string { return strconv.FormatInt(v, 10) + ".00" }

func TestLicences_InvalidChanges(t *testing.T) {
	ctx := context.Background()
	history := []string{"licence_changes", "registry_audit"}
	revoked := func(t *testing.T, s *postgres.Store) {
		changeLicence(t, s, "KZ-DM-1", change(t, compliance.ChangeRevoke, "2024-10-01", "", "fraud"))
	}
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, s *postgres.Store) // after a suspension from 2024-06-01 until 2024-09-01
		number string
		change func(t *testing.T) compliance.StatusChange
		actor  compliance.Actor
		want   apperr.Code
	}{
		{name: "ErrSuspendSevenMonths", change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeSuspend, "2024-10-01", "2025-05-01", "too long")
		}, want: apperr.InvalidParameter},
		{name: "ErrSuspendNotWholeMonths", change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeSuspend, "2024-10-01", "2024-11-15", "six weeks")
		}, want: apperr.InvalidParameter},
		{name: "ErrSuspendWithoutEnd", change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeSuspend, "2024-10-01", "", "open-ended")
		}, want: apperr.InvalidParameter},
		{name: "ErrSuspendWhileSuspended", change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeSuspend, "2024-07-01", "2024-08-01", "again")
		}, want: apperr.InvalidTransition},
		{name: "ErrReinstateActive", change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeReinstate, "2024-09-01", "", "already active again")
		}, want: apperr.InvalidTransition},
		{name: "ErrReinstateWithEnd", change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeReinstate, "2024-07-01", "2024-08-01", "with an end")
		}, want: apperr.InvalidParameter},
		{name: "ErrBeforePreviousChange", change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeRevoke, "2024-05-31", "", "backdated")
		}, want: apperr.InvalidParameter},
		{name: "ErrNoReason", change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeRevoke, "2024-10-01", "", " ")
		}, want: apperr.InvalidParameter},
		{name: "ErrOnExpiry", change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeRevoke, "2026-03-01", "", "after the term")
		}, want: apperr.InvalidParameter},
		{name: "ErrNotADay", change: func(t *testing.T) compliance.StatusChange {
			c := change(t, compliance.ChangeRevoke, "2024-10-01", "", "at noon")
			c.From = c.From.Add(12 * time.Hour)
			return c
		}, want: apperr.InvalidParameter},
		{name: "ErrUnknownKind", change: func(t *testing.T) compliance.StatusChange {
			return change(t, "cancel", "2024-10-01", "", "no such kind")
		}, want: apperr.InvalidParameter},
		{name: "ErrUnknownLicence", number: "KZ-DM-404", change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeRevoke, "2024-10-01", "", "no such licence")
		}, want: apperr.InvalidParameter},
		{name: "ErrRevokeTwice", setup: revoked, change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeRevoke, "2024-11-01", "", "again")
		}, want: apperr.InvalidTransition},
		{name: "ErrSuspendAfterRevocation", setup: revoked, change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeSuspend, "2024-11-01", "2024-12-01", "too late")
		}, want: apperr.InvalidTransition},
		{name: "ErrReinstateAfterRevocation", setup: revoked, change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeReinstate, "2024-11-01", "", "undo")
		}, want: apperr.InvalidTransition},
		// The change row is written before the audit entry is refused: the
		// transaction must take it back.
		{name: "ErrNoActor", actor: compliance.Actor{Reason: "anonymous"}, change: func(t *testing.T) compliance.StatusChange {
			return change(t, compliance.ChangeRevoke, "2024-10-01", "", "anonymous revocation")
		}, want: apperr.InvalidParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db := newStore(t, compliance.DefaultRuleSet)
			register(t, s, "alpha", "111111111111", "", "alpha-1")
			if err := s.AddLicence(ctx, "alpha", licence(t, "KZ-DM-1", "2023-03-01"), regulator); err != nil {
				t.Fatal(err)
			}
			changeLicence(t, s, "KZ-DM-1", change(t, compliance.ChangeSuspend, "2024-06-01", "2024-09-01", "first"))
			if tc.setup != nil {
				tc.setup(t, s)
			}
			number, actor := tc.number, tc.actor
			if number == "" {
				number = "KZ-DM-1"
			}
			if actor == (compliance.Actor{}) {
				actor = regulator
			}
			before, err := s.Licences(ctx, "alpha")
			if err != nil {
				t.Fatal(err)
			}
			unchanged(t, db, history, func() {
				_, err := s.ChangeLicence(ctx, number, tc.change(t), actor)
				wantCode(t, err, tc.want)
			})
			after, err := s.Licences(ctx, "alpha")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(before, after) {
				t.Errorf("licences went from %+v to %+v", before, after)
			}
		})
	}
}

// TestLicences_ReportDuringSuspension: a month is reported only if a
// licence was active on at least one of its days; the history decides, not
// today's status.
func TestLicences_ReportDuringSuspension(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2023-03-01", "alpha-1")
	register(t, s, "beta", "222222222222", "2023-03-01", "beta-1")
	// alpha: suspended for all of April and May 2024.
	changeLicence(t, s, "KZ-DM-alpha", change(t, compliance.ChangeSuspend, "2024-04-01", "2024-06-01", "inspection"))
	// beta: suspended mid-April to mid-May: active on some day of both.
	changeLicence(t, s, "KZ-DM-beta", change(t, compliance.ChangeSuspend, "2024-04-15", "2024-05-15", "inspection"))
	setNow(t, s, "2024-07-05 12:00")

	for _, tc := range []struct {
		miner, period string
		want          apperr.Code // "" for accepted
	}{
		{"alpha", "2024-03-01", ""},
		{"alpha", "2024-04-01", apperr.NoLicence},
		{"alpha", "2024-05-01", apperr.NoLicence},
		{"alpha", "2024-06-01", ""},
		{"beta", "2024-04-01", ""},
		{"beta", "2024-05-01", ""},
	} {
		name := "OK/"
		if tc.want != "" {
			name = "ErrNoActiveLicence/"
		}
		t.Run(name+tc.miner+"/"+tc.period[:7], func(t *testing.T) {
			if tc.want == "" {
				report(t, s, tc.miner, "BTC", tc.period, btc)
				return
			}
			unchanged(t, db, []string{"mining_reports", "report_versions", "obligations", "obligation_computations", "registry_audit"}, func() {
				_, err := submit(s, tc.miner, "BTC", day(t, tc.period), btc)
				wantCode(t, err, tc.want)
			})
		})
	}
	obs, err := s.Obligations(ctx, postgres.ObligationFilter{Miner: "alpha"})
	if err != nil || len(obs) != 2 {
		t.Errorf("alpha's obligations = %+v, %v; want March and June only", obs, err)
	}
}
