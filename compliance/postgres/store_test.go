package postgres_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/settlement"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// sat is one satoshi in BTC minor units; btc one whole BTC.
const (
	sat = 1
	btc = 100_000_000 * sat
)

// newStore returns a store on a fresh migrated database under the embedded
// rule set ruleSet, and the database.
func newStore(t *testing.T, ruleSet string) (*postgres.Store, *pgxpool.Pool) {
	t.Helper()
	book, err := compliance.LoadRuleBook()
	if err != nil {
		t.Fatalf("LoadRuleBook: %v", err)
	}
	rules, err := book.Get(ruleSet)
	if err != nil {
		t.Fatalf("Get(%q): %v", ruleSet, err)
	}
	db := testenv.PG(t)
	s, err := postgres.NewStore(context.Background(), db, rules)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	// A fixed day, so that no test depends on when it runs; tests that
	// decide by date move it.
	setClock(s, time.Date(2026, 1, 10, 12, 0, 0, 0, compliance.Zone))
	return s, db
}

// reportDay is when a report for the month starting period is sent in the
// tests: noon in Kazakhstan on the 5th of the next month, after the month
// and before its deadline.
func reportDay(t *testing.T, period string) time.Time {
	t.Helper()
	start := day(t, period)
	return time.Date(start.Year(), start.Month()+1, 5, 12, 0, 0, 0, compliance.Zone)
}

// day parses a YYYY-MM-DD date at UTC midnight.
func day(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// wantCode fails unless err carries the application error code want.
func wantCode(t *testing.T, err error, want apperr.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil, want %s", want)
	}
	if got := apperr.CodeOf(err); got != want {
		t.Fatalf("error = %v, want code %s", err, want)
	}
}

// counts returns the number of rows of each table, in order.
func counts(t *testing.T, db *pgxpool.Pool, tables ...string) []int {
	t.Helper()
	out := make([]int, len(tables))
	for i, table := range tables {
		if err := db.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&out[i]); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
	}
	return out
}

// unchanged runs f and fails if it changed the row count of any of tables.
func unchanged(t *testing.T, db *pgxpool.Pool, tables []string, f func()) {
	t.Helper()
	before := counts(t, db, tables...)
	f()
	if after := counts(t, db, tables...); !slices.Equal(before, after) {
		t.Fatalf("row counts of %v went from %v to %v", tables, before, after)
	}
}

// miner returns a valid legal-entity miner record.
func miner(id, bin string, accounts ...string) compliance.Miner {
	return compliance.Miner{ID: id, Name: "Miner " + id + " LLP", BIN: bin, EntityKind: compliance.LegalEntity, Accounts: accounts}
}

// licence returns an active sub-type I licence issued on issued, for the full term.
func licence(t *testing.T, number, issued string) compliance.Licence {
	t.Helper()
	on := day(t, issued)
	return compliance.Licence{Number: number, Subtype: compliance.SubtypeOwnDataCentre,
		IssuedOn: on, ExpiresOn: compliance.LicenceExpiresOn(on), Status: compliance.LicenceActive}
}

// register creates a miner with the accounts and, unless issued is empty,
// an active licence issued that day.
func register(t *testing.T, s *postgres.Store, id, bin, issued string, accounts ...string) {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateMiner(ctx, miner(id, bin, accounts...), regulator); err != nil {
		t.Fatalf("CreateMiner(%s): %v", id, err)
	}
	if issued != "" {
		if err := s.AddLicence(ctx, id, licence(t, "KZ-DM-"+id, issued), regulator); err != nil {
			t.Fatalf("AddLicence(%s): %v", id, err)
		}
	}
}

// report submits a report and fails the test on error.
func report(t *testing.T, s *postgres.Store, minerID, asset, period string, mined int64) compliance.ObligationView {
	t.Helper()
	v, err := submit(s, minerID, asset, day(t, period), mined)
	if err != nil {
		t.Fatalf("SubmitReport(%s, %s, %s, %d): %v", minerID, asset, period, mined, err)
	}
	return v
}

func TestStore_CreateMiner(t *testing.T) {
	registry := []string{"miners", "miner_accounts"}

	t.Run("OK", func(t *testing.T) {
		s, db := newStore(t, compliance.DefaultRuleSet)
		ctx := context.Background()
		m := compliance.Miner{ID: "kaz-mining", Name: "Kaz Mining LLP", BIN: "123456789012",
			EntityKind: compliance.IndividualEntrepreneur, Accounts: []string{"kaz-2", "kaz-1"}}
		if err := s.CreateMiner(ctx, m, regulator); err != nil {
			t.Fatalf("CreateMiner: %v", err)
		}
		var name, bin, kind string
		if err := db.QueryRow(ctx, `SELECT name, bin, entity_kind FROM miners WHERE id = $1`, m.ID).Scan(&name, &bin, &kind); err != nil {
			t.Fatal(err)
		}
		if name != m.Name || bin != m.BIN || kind != string(compliance.IndividualEntrepreneur) {
			t.Errorf("miners row = (%q, %q, %q), want (%q, %q, %q)", name, bin, kind, m.Name, m.BIN, compliance.IndividualEntrepreneur)
		}
		accounts, err := s.MinerAccounts(ctx, m.ID)
		if err != nil {
			t.Fatalf("MinerAccounts: %v", err)
		}
		if want := []string{"kaz-1", "kaz-2"}; !slices.Equal(accounts, want) {
			t.Errorf("MinerAccounts = %v, want %v", accounts, want)
		}
		if got := counts(t, db, registry...); !slices.Equal(got, []int{1, 2}) {
			t.Errorf("row counts of %v = %v, want [1 2]", registry, got)
		}
	})

	for _, tc := range []struct {
		name  string
		miner compliance.Miner
		want  apperr.Code
	}{
		{"ErrDuplicateID", miner("alpha", "999999999999", "other-1"), apperr.Conflict},
		{"ErrDuplicateBIN", miner("beta", "111111111111", "other-1"), apperr.Conflict},
		// The miner row and the first account are written before the taken
		// account is refused: the transaction must take them back.
		{"ErrAccountTaken", miner("beta", "222222222222", "beta-1", "alpha-2"), apperr.Conflict},
		{"ErrInvalidBIN", miner("beta", "12345", "beta-1"), apperr.InvalidParameter},
		{"ErrInvalidID", miner("Beta", "222222222222", "beta-1"), apperr.InvalidParameter},
		{"ErrNoAccounts", miner("beta", "222222222222"), apperr.InvalidParameter},
		{"ErrAccountTwice", miner("beta", "222222222222", "beta-1", "beta-1"), apperr.InvalidParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db := newStore(t, compliance.DefaultRuleSet)
			ctx := context.Background()
			register(t, s, "alpha", "111111111111", "", "alpha-1", "alpha-2")
			unchanged(t, db, registry, func() {
				wantCode(t, s.CreateMiner(ctx, tc.miner, regulator), tc.want)
			})
			if tc.miner.ID != "alpha" {
				_, err := s.MinerAccounts(ctx, tc.miner.ID)
				wantCode(t, err, apperr.UnknownMiner)
			}
			accounts, err := s.MinerAccounts(ctx, "alpha")
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"alpha-1", "alpha-2"}; !slices.Equal(accounts, want) {
				t.Errorf("alpha's accounts = %v, want %v", accounts, want)
			}
		})
	}
}

func TestStore_AddLicence(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s, _ := newStore(t, compliance.DefaultRuleSet)
		ctx := context.Background()
		register(t, s, "alpha", "111111111111", "", "alpha-1")
		first := licence(t, "KZ-DM-2", "2024-02-29") // expires 2027-02-28
		second := licence(t, "KZ-DM-1", "2021-03-10")
		second.Subtype, second.Status = compliance.SubtypeHosted, compliance.LicenceRevoked
		for _, l := range []compliance.Licence{first, second} {
			if err := s.AddLicence(ctx, "alpha", l, regulator); err != nil {
				t.Fatalf("AddLicence(%s): %v", l.Number, err)
			}
		}
		got, err := s.Licences(ctx, "alpha")
		if err != nil {
			t.Fatalf("Licences: %v", err)
		}
		want := []compliance.Licence{second, first} // by issue date
		if len(got) != len(want) {
			t.Fatalf("Licences = %+v, want %+v", got, want)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Number != w.Number || g.Subtype != w.Subtype || g.Status != w.Status ||
				!g.IssuedOn.Equal(w.IssuedOn) || !g.ExpiresOn.Equal(w.ExpiresOn) {
				t.Errorf("Licences[%d] = %+v, want %+v", i, g, w)
			}
		}
	})

	// The same instant as UTC midnight, written in zones east and west of
	// UTC: the licence is for the UTC calendar day, whatever the zone.
	for _, zone := range []*time.Location{time.FixedZone("UTC+5", 5*3600), time.FixedZone("UTC-5", -5*3600)} {
		t.Run("OK/"+zone.String(), func(t *testing.T) {
			s, _ := newStore(t, compliance.DefaultRuleSet)
			ctx := context.Background()
			register(t, s, "alpha", "111111111111", "", "alpha-1")
			l := licence(t, "KZ-DM-1", "2024-03-01")
			l.IssuedOn, l.ExpiresOn = l.IssuedOn.In(zone), l.ExpiresOn.In(zone)
			if err := s.AddLicence(ctx, "alpha", l, regulator); err != nil {
				t.Fatalf("AddLicence: %v", err)
			}
			got, err := s.Licences(ctx, "alpha")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !got[0].IssuedOn.Equal(day(t, "2024-03-01")) || !got[0].ExpiresOn.Equal(day(t, "2027-03-01")) {
				t.Fatalf("Licences = %+v, want one issued 2024-03-01, expiring 2027-03-01", got)
			}
		})
	}

	for _, tc := range []struct {
		name    string
		miner   string
		licence func(t *testing.T) compliance.Licence
		want    apperr.Code
	}{
		{"ErrUnknownMiner", "nobody", func(t *testing.T) compliance.Licence { return licence(t, "KZ-DM-9", "2024-01-15") },
			apperr.UnknownMiner},
		{"ErrDuplicateNumber", "alpha", func(t *testing.T) compliance.Licence { return licence(t, "KZ-DM-1", "2025-01-15") },
			apperr.Conflict},
		{"ErrDuplicateNumberOtherMiner", "beta", func(t *testing.T) compliance.Licence { return licence(t, "KZ-DM-1", "2025-01-15") },
			apperr.Conflict},
		{"ErrWrongTerm", "alpha", func(t *testing.T) compliance.Licence {
			l := licence(t, "KZ-DM-9", "2024-01-15")
			l.ExpiresOn = day(t, "2026-01-15") // two years, not three
			return l
		}, apperr.InvalidParameter},
		{"ErrSubtype", "alpha", func(t *testing.T) compliance.Licence {
			l := licence(t, "KZ-DM-9", "2024-01-15")
			l.Subtype = "III"
			return l
		}, apperr.InvalidParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db := newStore(t, compliance.DefaultRuleSet)
			ctx := context.Background()
			register(t, s, "alpha", "111111111111", "", "alpha-1")
			register(t, s, "beta", "222222222222", "", "beta-1")
			if err := s.AddLicence(ctx, "alpha", licence(t, "KZ-DM-1", "2024-01-15"), regulator); err != nil {
				t.Fatal(err)
			}
			unchanged(t, db, []string{"licences"}, func() {
				wantCode(t, s.AddLicence(ctx, tc.miner, tc.licence(t), regulator), tc.want)
			})
		})
	}
}

func TestStore_SubmitReport(t *testing.T) {
	reports := []string{"mining_reports", "obligations"}

	for _, tc := range []struct {
		name    string
		ruleSet string
		asset   string
		period  string
		mined   int64
		want    compliance.ObligationView // ID and Miner are filled in
	}{
		{"OK/2024", compliance.DefaultRuleSet, "BTC", "2024-02-01", btc + sat, compliance.ObligationView{
			Asset: "BTC", Period: "2024-02", PeriodStart: "2024-02-01", PeriodEnd: "2024-02-29", Deadline: "2024-03-30",
			Mined: "1.00000001", Share: "0.5", RuleSet: "kz-law-193", RuleSetVersion: 2,
			Required: "0.50000001", Sold: "0.00000000", Remaining: "0.50000001", Status: compliance.StatusOpen}},
		{"OK/2025", compliance.DefaultRuleSet, "BTC", "2025-01-01", 2 * btc, compliance.ObligationView{
			Asset: "BTC", Period: "2025-01", PeriodStart: "2025-01-01", PeriodEnd: "2025-01-31", Deadline: "2025-03-02",
			Mined: "2.00000000", Share: "0.75", RuleSet: "kz-law-193", RuleSetVersion: 2,
			Required: "1.50000000", Sold: "0.00000000", Remaining: "1.50000000", Status: compliance.StatusOpen}},
		{"OK/2025OneSatoshi", compliance.DefaultRuleSet, "BTC", "2025-06-01", sat, compliance.ObligationView{
			Asset: "BTC", Period: "2025-06", PeriodStart: "2025-06-01", PeriodEnd: "2025-06-30", Deadline: "2025-07-30",
			Mined: "0.00000001", Share: "0.75", RuleSet: "kz-law-193", RuleSetVersion: 2,
			Required: "0.00000001", Sold: "0.00000000", Remaining: "0.00000001", Status: compliance.StatusOpen}},
		{"OK/ETHScale9", compliance.DefaultRuleSet, "ETH", "2025-12-01", 3, compliance.ObligationView{
			Asset: "ETH", Period: "2025-12", PeriodStart: "2025-12-01", PeriodEnd: "2025-12-31", Deadline: "2026-01-30",
			Mined: "0.000000003", Share: "0.75", RuleSet: "kz-law-193", RuleSetVersion: 2,
			Required: "0.000000003", Sold: "0.000000000", Remaining: "0.000000003", Status: compliance.StatusOpen}},
		// Before Art. 8 §4 applied the share is 0: nothing to sell, met at once.
		{"OK/2023ShareZero", compliance.DefaultRuleSet, "BTC", "2023-06-01", btc, compliance.ObligationView{
			Asset: "BTC", Period: "2023-06", PeriodStart: "2023-06-01", PeriodEnd: "2023-06-30", Deadline: "2023-07-30",
			Mined: "1.00000000", Share: "0", RuleSet: "kz-law-193", RuleSetVersion: 2,
			Required: "0.00000000", Sold: "0.00000000", Remaining: "0.00000000", Status: compliance.StatusMet}},
		{"OK/Paper2025", "kz-paper-2024", "BTC", "2025-03-01", btc, compliance.ObligationView{
			Asset: "BTC", Period: "2025-03", PeriodStart: "2025-03-01", PeriodEnd: "2025-03-31", Deadline: "2025-04-30",
			Mined: "1.00000000", Share: "0.8", RuleSet: "kz-paper-2024", RuleSetVersion: 2,
			Required: "0.80000000", Sold: "0.00000000", Remaining: "0.80000000", Status: compliance.StatusOpen}},
		{"OK/Paper2024", "kz-paper-2024", "BTC", "2024-02-01", 3 * sat, compliance.ObligationView{
			Asset: "BTC", Period: "2024-02", PeriodStart: "2024-02-01", PeriodEnd: "2024-02-29", Deadline: "2024-03-30",
			Mined: "0.00000003", Share: "0.5", RuleSet: "kz-paper-2024", RuleSetVersion: 2,
			Required: "0.00000002", Sold: "0.00000000", Remaining: "0.00000002", Status: compliance.StatusOpen}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db := newStore(t, tc.ruleSet)
			ctx := context.Background()
			register(t, s, "alpha", "111111111111", "2023-01-15", "alpha-1")
			setClock(s, reportDay(t, tc.period))
			got := report(t, s, "alpha", tc.asset, tc.period, tc.mined)
			want := tc.want
			want.ID, want.Miner, want.ReportVersion = got.ID, "alpha", 1
			if got.ID <= 0 || got != want {
				t.Errorf("SubmitReport =\n%+v, want\n%+v", got, want)
			}
			list, err := s.Obligations(ctx, postgres.ObligationFilter{Miner: "alpha"})
			if err != nil {
				t.Fatalf("Obligations: %v", err)
			}
			if len(list) != 1 || list[0] != want {
				t.Errorf("Obligations =\n%+v, want\n[%+v]", list, want)
			}

			// The rows as stored: exact NUMERICs, never a float.
			var mined, share, required, sold, status, ruleSet string
			var periodStart, periodEnd, deadline time.Time
			var metAt *time.Time
			err = db.QueryRow(ctx, `SELECT r.mined::text, o.share::text, o.required::text, o.sold::text, o.status,
					o.ruleset, o.period_start, o.period_end, o.deadline, o.met_at
				FROM obligations o JOIN mining_reports r ON r.id = o.report_id
				WHERE o.id = $1 AND r.miner_id = 'alpha' AND r.asset = $2 AND r.period_start = o.period_start`,
				got.ID, tc.asset).Scan(&mined, &share, &required, &sold, &status, &ruleSet, &periodStart, &periodEnd, &deadline, &metAt)
			if err != nil {
				t.Fatalf("stored obligation: %v", err)
			}
			if mined != want.Mined || share != want.Share || required != want.Required || sold != "0" ||
				status != string(want.Status) || ruleSet != want.RuleSet {
				t.Errorf("stored (mined, share, required, sold, status, ruleset) = (%s, %s, %s, %s, %s, %s), want (%s, %s, %s, 0, %s, %s)",
					mined, share, required, sold, status, ruleSet, want.Mined, want.Share, want.Required, want.Status, want.RuleSet)
			}
			for _, d := range []struct {
				col  string
				got  time.Time
				want string
			}{{"period_start", periodStart, want.PeriodStart}, {"period_end", periodEnd, want.PeriodEnd}, {"deadline", deadline, want.Deadline}} {
				if !d.got.Equal(day(t, d.want)) {
					t.Errorf("stored %s = %s, want %s", d.col, d.got.Format(time.DateOnly), d.want)
				}
			}
			if (want.Status == compliance.StatusOpen) != (metAt == nil) {
				t.Errorf("met_at = %v with status %s: want NULL exactly while open", metAt, want.Status)
			}
			if got := counts(t, db, reports...); !slices.Equal(got, []int{1, 1}) {
				t.Errorf("row counts of %v = %v, want [1 1]", reports, got)
			}
		})
	}

	// The month is the UTC month of the instant, whatever zone it is written in.
	for _, zone := range []*time.Location{time.FixedZone("UTC+5", 5*3600), time.FixedZone("UTC-5", -5*3600)} {
		t.Run("OK/"+zone.String(), func(t *testing.T) {
			s, db := newStore(t, compliance.DefaultRuleSet)
			ctx := context.Background()
			register(t, s, "alpha", "111111111111", "2023-01-15", "alpha-1")
			setClock(s, reportDay(t, "2024-02-01"))
			got, err := submit(s, "alpha", "BTC", day(t, "2024-02-01").In(zone), btc)
			if err != nil {
				t.Fatalf("SubmitReport: %v", err)
			}
			if got.Period != "2024-02" || got.PeriodEnd != "2024-02-29" || got.Required != "0.50000000" {
				t.Errorf("SubmitReport = %+v, want period 2024-02 ending 2024-02-29, required 0.50000000", got)
			}
			var reported time.Time
			if err := db.QueryRow(ctx, `SELECT period_start FROM mining_reports`).Scan(&reported); err != nil {
				t.Fatal(err)
			}
			if !reported.Equal(day(t, "2024-02-01")) {
				t.Errorf("mining_reports.period_start = %s, want 2024-02-01", reported.Format(time.DateOnly))
			}
		})
	}

	for _, tc := range []struct {
		name    string
		ruleSet string
		setup   func(t *testing.T, s *postgres.Store) // after alpha is registered with no licence
		miner   string
		asset   string
		period  string
		mined   int64
		want    apperr.Code
	}{
		{name: "ErrUnknownMiner", miner: "nobody", asset: "BTC", period: "2025-01-01", mined: btc, want: apperr.UnknownMiner},
		{name: "ErrUnknownAsset", miner: "alpha", asset: "DOGE", period: "2025-01-01", mined: btc, want: apperr.UnknownAsset,
			setup: addLicence("2024-01-15", compliance.LicenceActive)},
		{name: "ErrFiatNotMined", miner: "alpha", asset: "KZT", period: "2025-01-01", mined: 100, want: apperr.InvalidParameter,
			setup: addLicence("2024-01-15", compliance.LicenceActive)},
		{name: "ErrNoActiveLicence/None", miner: "alpha", asset: "BTC", period: "2025-01-01", mined: btc, want: apperr.NoLicence},
		{name: "ErrNoActiveLicence/IssuedAfterMonth", miner: "alpha", asset: "BTC", period: "2024-02-01", mined: btc,
			want: apperr.NoLicence, setup: addLicence("2024-03-01", compliance.LicenceActive)},
		{name: "ErrNoActiveLicence/Revoked", miner: "alpha", asset: "BTC", period: "2025-01-01", mined: btc,
			want: apperr.NoLicence, setup: addLicence("2024-01-15", compliance.LicenceRevoked)},
		{name: "ErrNoActiveLicence/Suspended", miner: "alpha", asset: "BTC", period: "2025-01-01", mined: btc,
			want: apperr.NoLicence, setup: addLicence("2024-01-15", compliance.LicenceSuspended)},
		{name: "ErrNoActiveLicence/Expired", miner: "alpha", asset: "BTC", period: "2025-01-01", mined: btc,
			want: apperr.NoLicence, setup: addLicence("2021-12-01", compliance.LicenceActive)},
		{name: "ErrConflict", miner: "alpha", asset: "BTC", period: "2025-01-01", mined: 2 * btc, want: apperr.Conflict,
			setup: func(t *testing.T, s *postgres.Store) {
				addLicence("2024-01-15", compliance.LicenceActive)(t, s)
				report(t, s, "alpha", "BTC", "2025-01-01", btc)
			}},
		{name: "ErrNotMonthStart", miner: "alpha", asset: "BTC", period: "2025-01-02", mined: btc, want: apperr.InvalidParameter,
			setup: addLicence("2024-01-15", compliance.LicenceActive)},
		{name: "ErrNegativeMined", miner: "alpha", asset: "BTC", period: "2025-01-01", mined: -1, want: apperr.InvalidQuantity,
			setup: addLicence("2024-01-15", compliance.LicenceActive)},
		{name: "ErrRuleNotConfirmed/BeforeLaw", miner: "alpha", asset: "BTC", period: "2023-03-01", mined: btc,
			want: apperr.RuleNotConfirmed, setup: addLicence("2022-01-15", compliance.LicenceActive)},
		{name: "ErrRuleNotConfirmed/PaperBefore2024", ruleSet: "kz-paper-2024", miner: "alpha", asset: "BTC", period: "2023-12-01",
			mined: btc, want: apperr.RuleNotConfirmed, setup: addLicence("2022-01-15", compliance.LicenceActive)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ruleSet := tc.ruleSet
			if ruleSet == "" {
				ruleSet = compliance.DefaultRuleSet
			}
			s, db := newStore(t, ruleSet)
			ctx := context.Background()
			register(t, s, "alpha", "111111111111", "", "alpha-1")
			if tc.setup != nil {
				tc.setup(t, s)
			}
			before, err := s.Obligations(ctx, postgres.ObligationFilter{Miner: "alpha"})
			if err != nil {
				t.Fatal(err)
			}
			unchanged(t, db, reports, func() {
				_, err := submit(s, tc.miner, tc.asset, day(t, tc.period), tc.mined)
				wantCode(t, err, tc.want)
			})
			after, err := s.Obligations(ctx, postgres.ObligationFilter{Miner: "alpha"})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(before, after) {
				t.Errorf("obligations went from %+v to %+v", before, after)
			}
		})
	}
}

// addLicence returns a setup step giving miner alpha a licence issued on
// issued with the status.
func addLicence(issued string, status compliance.LicenceStatus) func(t *testing.T, s *postgres.Store) {
	return func(t *testing.T, s *postgres.Store) {
		t.Helper()
		l := licence(t, "KZ-DM-alpha-"+issued, issued)
		l.Status = status
		if err := s.AddLicence(context.Background(), "alpha", l, regulator); err != nil {
			t.Fatalf("AddLicence: %v", err)
		}
	}
}

func TestStore_Obligations(t *testing.T) {
	t.Run("ErrUnknownMiner", func(t *testing.T) {
		s, _ := newStore(t, compliance.DefaultRuleSet)
		got, err := s.Obligations(context.Background(), postgres.ObligationFilter{Miner: "nobody"})
		wantCode(t, err, apperr.UnknownMiner)
		if got != nil {
			t.Errorf("Obligations = %+v with the error, want nil", got)
		}
	})

	t.Run("OKNone", func(t *testing.T) {
		s, _ := newStore(t, compliance.DefaultRuleSet)
		register(t, s, "alpha", "111111111111", "2024-01-15", "alpha-1")
		got, err := s.Obligations(context.Background(), postgres.ObligationFilter{Miner: "alpha"})
		if err != nil {
			t.Fatalf("Obligations: %v", err)
		}
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != "[]" {
			t.Errorf("Obligations as JSON = %s, want []", b)
		}
	})

	t.Run("OKOldestFirst", func(t *testing.T) {
		s, _ := newStore(t, compliance.DefaultRuleSet)
		register(t, s, "alpha", "111111111111", "2024-01-15", "alpha-1")
		register(t, s, "beta", "222222222222", "2024-01-15", "beta-1")
		for _, r := range []struct{ asset, period string }{
			{"BTC", "2025-02-01"}, {"ETH", "2024-06-01"}, {"BTC", "2024-06-01"}, {"BTC", "2025-01-01"},
		} {
			setClock(s, reportDay(t, r.period))
			report(t, s, "alpha", r.asset, r.period, btc)
		}
		setClock(s, reportDay(t, "2024-03-01"))
		report(t, s, "beta", "BTC", "2024-03-01", btc) // another miner's: not listed
		got, err := s.Obligations(context.Background(), postgres.ObligationFilter{Miner: "alpha"})
		if err != nil {
			t.Fatalf("Obligations: %v", err)
		}
		var order []string
		for _, o := range got {
			if o.Miner != "alpha" {
				t.Errorf("obligation %d of miner %q listed for alpha", o.ID, o.Miner)
			}
			order = append(order, o.Period+" "+o.Asset)
		}
		if want := []string{"2024-06 BTC", "2024-06 ETH", "2025-01 BTC", "2025-02 BTC"}; !slices.Equal(order, want) {
			t.Errorf("Obligations order = %q, want %q", order, want)
		}

		for _, f := range []struct {
			name   string
			filter postgres.ObligationFilter
			want   int
		}{
			{"AllMiners", postgres.ObligationFilter{}, 5},
			{"Period", postgres.ObligationFilter{Miner: "alpha", Period: "2024-06"}, 2},
			{"Asset", postgres.ObligationFilter{Miner: "alpha", Asset: "ETH"}, 1},
			{"Open", postgres.ObligationFilter{Status: compliance.StatusOpen}, 5},
			{"Met", postgres.ObligationFilter{Status: compliance.StatusMet}, 0},
			{"PeriodOfBeta", postgres.ObligationFilter{Period: "2024-03"}, 1},
		} {
			got, err := s.Obligations(context.Background(), f.filter)
			if err != nil || len(got) != f.want {
				t.Errorf("Obligations(%s %+v) = %d obligations, %v; want %d", f.name, f.filter, len(got), err, f.want)
			}
		}
		_, err = s.Obligations(context.Background(), postgres.ObligationFilter{Status: "late"})
		wantCode(t, err, apperr.InvalidParameter)
	})
}

// progress is an obligation's sold amount, status and met_at as stored.
type progress struct {
	sold   string
	status string
	metAt  *time.Time
}

func storedProgress(t *testing.T, db *pgxpool.Pool, id int64) progress {
	t.Helper()
	var p progress
	if err := db.QueryRow(context.Background(), `SELECT sold::text, status, met_at FROM obligations WHERE id = $1`, id).
		Scan(&p.sold, &p.status, &p.metAt); err != nil {
		t.Fatal(err)
	}
	return p
}

// allocations returns, per fill ID, the obligation_fills rows as
// obligation ID → quantity.
func allocations(t *testing.T, db *pgxpool.Pool) map[string]map[int64]string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT fill_id, obligation_id, quantity::text FROM obligation_fills`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int64]string{}
	var fill, qty string
	var ob int64
	if _, err := pgx.ForEachRow(rows, []any{&fill, &ob, &qty}, func() error {
		if out[fill] == nil {
			out[fill] = map[int64]string{}
		}
		out[fill][ob] = qty
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// exclusions returns, per fill ID, the excluded_fills rows as reason →
// quantity.
func exclusions(t *testing.T, db *pgxpool.Pool) map[string]map[string]string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT fill_id, reason, quantity::text FROM excluded_fills`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	var fill, reason, qty string
	if _, err := pgx.ForEachRow(rows, []any{&fill, &reason, &qty}, func() error {
		if out[fill] == nil {
			out[fill] = map[string]string{}
		}
		out[fill][reason] = qty
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStore_ApplyFills(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2023-06-15", "alpha-1", "alpha-2")
	register(t, s, "beta", "222222222222", "2023-06-15", "beta-1")
	openAccount(t, db, "buyer-1", "trader-x", "trader")
	// 1 March 2024 in Kazakhstan: January's obligations are due today (31
	// January + 30 days) and February has just ended, so both months'
	// windows hold a sale made today.
	setNow(t, s, "2024-03-01 09:00")
	first := report(t, s, "alpha", "BTC", "2024-01-01", 2*btc)        // required 1.0 (50 %)
	second := report(t, s, "alpha", "BTC", "2024-02-01", 180_000_000) // required 0.9 (50 %)
	eth := report(t, s, "alpha", "ETH", "2024-01-01", 2_000_000_000)  // required 1.0 ETH
	others := report(t, s, "beta", "BTC", "2024-01-01", 2*btc)        // beta's, required 1.0
	if first.Required != "1.00000000" || second.Required != "0.90000000" || eth.Required != "1.000000000" {
		t.Fatalf("required = %s, %s, %s ETH; want 1.00000000, 0.90000000, 1.000000000 ETH", first.Required, second.Required, eth.Required)
	}
	if first.Deadline != "2024-03-01" || second.Deadline != "2024-03-30" {
		t.Fatalf("deadlines = %s, %s; want 2024-03-01, 2024-03-30", first.Deadline, second.Deadline)
	}
	t1, t2, t3 := almaty(t, "2024-03-01 10:00"), almaty(t, "2024-03-01 11:00"), almaty(t, "2024-03-01 12:00")
	ms := time.Millisecond

	type want struct {
		first, second, eth, others progress
		alloc                      map[int64]string  // this step's fill: obligation → quantity; nil for none
		excluded                   map[string]string // this step's fill: reason → quantity; nil for none
	}
	open0 := progress{"0", "open", nil}
	for _, step := range []struct {
		name string
		fill settlement.Fill
		want want
	}{
		{"PartOfOldest", sale("10-0", "alpha-1", "BTC", 60_000_000, t1), want{
			first: progress{"0.60000000", "open", nil}, second: open0, eth: open0, others: open0,
			alloc: map[int64]string{first.ID: "0.60000000"}}},
		// Another account of the same miner: the miner's obligations count.
		{"MeetsOldestThenNext", sale("11-0", "alpha-2", "BTC", 70_000_000, t2), want{
			first: progress{"1.00000000", "met", &t2}, second: progress{"0.30000000", "open", nil}, eth: open0, others: open0,
			alloc: map[int64]string{first.ID: "0.40000000", second.ID: "0.30000000"}}},
		{"MoreThanOpen", sale("12-0", "alpha-1", "BTC", btc, t3), want{
			first: progress{"1.00000000", "met", &t2}, second: progress{"0.90000000", "met", &t3}, eth: open0, others: open0,
			alloc: map[int64]string{second.ID: "0.60000000"}, excluded: map[string]string{compliance.ExcludedExcess: "0.40000000"}}},
		{"NothingOpen", sale("13-0", "alpha-1", "BTC", 50_000_000, t3.Add(ms)), want{
			first: progress{"1.00000000", "met", &t2}, second: progress{"0.90000000", "met", &t3}, eth: open0, others: open0,
			excluded: map[string]string{compliance.ExcludedNoObligation: "0.50000000"}}},
		{"AccountOfNoMiner", sale("14-0", "trader-1", "BTC", 50_000_000, t3.Add(2*ms)), want{
			first: progress{"1.00000000", "met", &t2}, second: progress{"0.90000000", "met", &t3}, eth: open0, others: open0}},
		{"OtherAsset", sale("15-0", "alpha-1", "ETH", 250_000_000, t3.Add(3*ms)), want{
			first: progress{"1.00000000", "met", &t2}, second: progress{"0.90000000", "met", &t3},
			eth: progress{"0.250000000", "open", nil}, others: open0,
			alloc: map[int64]string{eth.ID: "0.250000000"}}},
	} {
		t.Run("OK/"+step.name, func(t *testing.T) {
			scale := scales[step.fill.Event.BaseAsset]
			mustSettle(t, s, db, "s1", step.fill)
			for _, c := range []struct {
				name string
				id   int64
				want progress
			}{{"2024-01 BTC", first.ID, step.want.first}, {"2024-02 BTC", second.ID, step.want.second},
				{"2024-01 ETH", eth.ID, step.want.eth}, {"beta's 2024-01 BTC", others.ID, step.want.others}} {
				got := storedProgress(t, db, c.id)
				if got.sold != c.want.sold || got.status != c.want.status || !sameTime(got.metAt, c.want.metAt) {
					t.Errorf("%s: (sold, status, met_at) = (%s, %s, %v), want (%s, %s, %v)", c.name,
						got.sold, got.status, fmtTime(got.metAt), c.want.sold, c.want.status, fmtTime(c.want.metAt))
				}
			}
			alloc := allocations(t, db)[step.fill.ID]
			if len(alloc) != len(step.want.alloc) {
				t.Fatalf("obligation_fills for %s = %v, want %v", step.fill.ID, alloc, step.want.alloc)
			}
			var counted int64
			for ob, q := range step.want.alloc {
				if alloc[ob] != q {
					t.Errorf("obligation_fills for %s = %v, want %v", step.fill.ID, alloc, step.want.alloc)
				}
				counted += mustParse(t, q, scale)
			}
			excl := exclusions(t, db)[step.fill.ID]
			if len(excl) != len(step.want.excluded) {
				t.Fatalf("excluded_fills for %s = %v, want %v", step.fill.ID, excl, step.want.excluded)
			}
			for reason, q := range step.want.excluded {
				if excl[reason] != q {
					t.Errorf("excluded_fills for %s = %v, want %v", step.fill.ID, excl, step.want.excluded)
				}
				counted += mustParse(t, q, scale)
			}
			// A miner's sale is accounted for in full: counted or excluded.
			if mined := step.fill.Event.SellerAccount != "trader-1"; mined && counted != step.fill.Event.Quantity {
				t.Errorf("counted and excluded %d of a %d fill", counted, step.fill.Event.Quantity)
			}
		})
	}

	t.Run("OK/ViewAfterFills", func(t *testing.T) {
		list, err := s.Obligations(ctx, postgres.ObligationFilter{Miner: "alpha"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range list {
			got = append(got, o.Period+" "+o.Asset+" sold "+o.Sold+" remaining "+o.Remaining+" "+string(o.Status))
		}
		want := []string{
			"2024-01 BTC sold 1.00000000 remaining 0.00000000 met",
			"2024-01 ETH sold 0.250000000 remaining 0.750000000 open",
			"2024-02 BTC sold 0.90000000 remaining 0.00000000 met",
		}
		if !slices.Equal(got, want) {
			t.Errorf("Obligations =\n%q, want\n%q", got, want)
		}
	})
}

// TestStore_ApplyFills_Batch applies several fills in one call, and checks
// that one bad fill takes the whole settlement transaction back.
func TestStore_ApplyFills_Batch(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*postgres.Store, *pgxpool.Pool, compliance.ObligationView, compliance.ObligationView) {
		s, db := newStore(t, compliance.DefaultRuleSet)
		register(t, s, "alpha", "111111111111", "2023-06-15", "alpha-1")
		openAccount(t, db, "buyer-1", "trader-x", "trader")
		setNow(t, s, "2024-03-01 09:00")
		first := report(t, s, "alpha", "BTC", "2024-01-01", 2*btc)        // required 1.0
		second := report(t, s, "alpha", "BTC", "2024-02-01", 180_000_000) // required 0.9
		return s, db, first, second
	}
	t1, t2 := almaty(t, "2024-03-01 10:00"), almaty(t, "2024-03-01 10:01")
	fills := []settlement.Fill{
		sale("20-0", "alpha-1", "BTC", 60_000_000, t1),
		sale("20-1", "alpha-1", "BTC", 70_000_000, t2),
	}

	t.Run("OK", func(t *testing.T) {
		s, db, first, second := setup(t)
		if err := settle(ctx, s, db, "s1", fills...); err != nil {
			t.Fatalf("ApplyFills: %v", err)
		}
		if got := storedProgress(t, db, first.ID); got.sold != "1.00000000" || got.status != "met" || !sameTime(got.metAt, &t2) {
			t.Errorf("2024-01: %+v, want sold 1.00000000, met at %s", got, t2)
		}
		if got := storedProgress(t, db, second.ID); got.sold != "0.30000000" || got.status != "open" || got.metAt != nil {
			t.Errorf("2024-02: %+v, want sold 0.30000000, open", got)
		}
		alloc := allocations(t, db)
		if alloc["20-0"][first.ID] != "0.60000000" || len(alloc["20-0"]) != 1 ||
			alloc["20-1"][first.ID] != "0.40000000" || alloc["20-1"][second.ID] != "0.30000000" || len(alloc["20-1"]) != 2 {
			t.Errorf("obligation_fills = %v", alloc)
		}
	})

	t.Run("ErrUnknownAssetRollsBack", func(t *testing.T) {
		s, db, first, second := setup(t)
		bad := append(slices.Clone(fills), sale("20-2", "alpha-1", "DOGE", 1, t2))
		unchanged(t, db, []string{"fills", "settlement_batches", "obligation_fills", "excluded_fills"}, func() {
			if err := settle(ctx, s, db, "s1", bad...); err == nil {
				t.Fatal("ApplyFills with a DOGE fill: error = nil")
			}
		})
		for _, ob := range []compliance.ObligationView{first, second} {
			if got := storedProgress(t, db, ob.ID); got.sold != "0" || got.status != "open" || got.metAt != nil {
				t.Errorf("obligation %s after a refused batch: %+v, want untouched", ob.Period, got)
			}
		}
	})
}

// TestStore_ApplyFills_TwoShards: fill IDs ("seq-index") are only unique
// within a shard, so two shards settling into one database both have a fill
// "7-0". The obligation_fills row must name the fill of the shard being
// settled.
func TestStore_ApplyFills_TwoShards(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2023-06-15", "alpha-1")
	openAccount(t, db, "buyer-1", "trader-x", "trader")
	setNow(t, s, "2024-02-05 12:00")
	ob := report(t, s, "alpha", "BTC", "2024-01-01", 2*btc) // required 1.0
	f := sale("7-0", "alpha-1", "BTC", 10_000_000, almaty(t, "2024-02-15 10:00"))
	for _, shard := range []string{"s1", "s2"} {
		if err := settle(ctx, s, db, shard, f); err != nil {
			t.Fatalf("settle shard %s: %v", shard, err)
		}
	}
	var n int
	var sum string
	if err := db.QueryRow(ctx, `SELECT count(DISTINCT shard), sum(quantity)::text FROM obligation_fills WHERE obligation_id = $1 AND fill_id = '7-0'`, ob.ID).
		Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if got := storedProgress(t, db, ob.ID); n != 2 || sum != "0.20000000" || got.sold != "0.20000000" {
		t.Errorf("obligation_fills: %d shards summing %s, sold %s; want 2 shards summing 0.20000000, sold 0.20000000", n, sum, got.sold)
	}
	d := obligation(t, s, ob.ID)
	if len(d.Counted) != 2 || d.Counted[0].Shard != "s1" || d.Counted[1].Shard != "s2" {
		t.Errorf("Obligation(%d).Counted = %+v, want 7-0 of s1 and of s2", ob.ID, d.Counted)
	}
}

// mustParse reads a decimal amount as minor units of an asset with the scale.
func mustParse(t *testing.T, s string, scale int) int64 {
	t.Helper()
	v, err := money.Parse(s, scale)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "NULL"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
