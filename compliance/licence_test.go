package compliance_test

import (
	"testing"
	"time"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/apperr"
)

// licence returns an active sub-type I licence issued on issued, for a full term.
func licence(tb testing.TB, issued string) compliance.Licence {
	tb.Helper()
	on := day(tb, issued)
	return compliance.Licence{
		Number:    "KZ-DM-" + issued,
		Subtype:   compliance.SubtypeOwnDataCentre,
		IssuedOn:  on,
		ExpiresOn: on.AddDate(compliance.LicenceTermYears, 0, 0),
		Status:    compliance.LicenceActive,
	}
}

func TestLicenceExpiresOn(t *testing.T) {
	for _, tc := range []struct{ issued, want string }{
		{"2024-01-15", "2027-01-15"},
		{"2023-12-31", "2026-12-31"},
		{"2024-02-29", "2027-02-28"}, // no 29 February in 2027: the month's last day
		{"2025-02-28", "2028-02-28"},
	} {
		if got := compliance.LicenceExpiresOn(day(t, tc.issued)); !got.Equal(day(t, tc.want)) {
			t.Errorf("LicenceExpiresOn(%s) = %s, want %s", tc.issued, got.Format(time.DateOnly), tc.want)
		}
	}
}

func TestLicence_Validate(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, l := range []compliance.Licence{
			licence(t, "2024-01-15"),
			func() compliance.Licence {
				l := licence(t, "2024-02-29")
				l.ExpiresOn = day(t, "2027-02-28")
				l.Subtype, l.Status = compliance.SubtypeHosted, compliance.LicenceSuspended
				return l
			}(),
			func() compliance.Licence {
				l := licence(t, "2024-01-15")
				l.Status = compliance.LicenceRevoked
				return l
			}(),
		} {
			if err := l.Validate(); err != nil {
				t.Errorf("Validate(%+v): %v", l, err)
			}
		}
	})
	for _, tc := range []struct {
		name  string
		spoil func(l *compliance.Licence)
	}{
		{"ErrNumberRequired", func(l *compliance.Licence) { l.Number = " " }},
		{"ErrSubtype", func(l *compliance.Licence) { l.Subtype = "III" }},
		{"ErrSubtypeEmpty", func(l *compliance.Licence) { l.Subtype = "" }},
		{"ErrStatus", func(l *compliance.Licence) { l.Status = "expired" }},
		{"ErrTermTooShort", func(l *compliance.Licence) { l.ExpiresOn = l.ExpiresOn.AddDate(0, 0, -1) }},
		{"ErrTermTooLong", func(l *compliance.Licence) { l.ExpiresOn = l.ExpiresOn.AddDate(1, 0, 0) }},
		{"ErrIssuedNotADate", func(l *compliance.Licence) {
			l.IssuedOn = l.IssuedOn.Add(time.Hour)
			l.ExpiresOn = l.ExpiresOn.Add(time.Hour)
		}},
		{"ErrZeroDates", func(l *compliance.Licence) { l.IssuedOn, l.ExpiresOn = time.Time{}, time.Time{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := licence(t, "2024-01-15")
			tc.spoil(&l)
			wantCode(t, l.Validate(), apperr.InvalidParameter)
		})
	}
}

func TestLicence_ActiveOn(t *testing.T) {
	active := licence(t, "2024-01-15") // expires 2027-01-15
	suspended := active
	suspended.Status = compliance.LicenceSuspended
	revoked := active
	revoked.Status = compliance.LicenceRevoked
	for _, tc := range []struct {
		name string
		l    compliance.Licence
		day  string
		want bool
	}{
		{"day before issue", active, "2024-01-14", false},
		{"issue day", active, "2024-01-15", true},
		{"mid term", active, "2025-06-01", true},
		{"last day", active, "2027-01-14", true},
		{"expiry day", active, "2027-01-15", false},
		{"suspended", suspended, "2025-06-01", false},
		{"revoked", revoked, "2025-06-01", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.l.ActiveOn(day(t, tc.day)); got != tc.want {
				t.Errorf("ActiveOn(%s) = %v, want %v", tc.day, got, tc.want)
			}
		})
	}
	t.Run("LastInstant", func(t *testing.T) {
		if !active.ActiveOn(day(t, "2027-01-15").Add(-time.Nanosecond)) {
			t.Error("not active in the last nanosecond of its term")
		}
	})
}

func TestCheckReportPeriod(t *testing.T) {
	suspended := licence(t, "2024-01-15")
	suspended.Status = compliance.LicenceSuspended
	for _, tc := range []struct {
		name     string
		licences []compliance.Licence
		period   string
		want     apperr.Code // "" for allowed
	}{
		{"active all month", []compliance.Licence{licence(t, "2024-01-15")}, "2024-03-01", ""},
		{"issued mid-month counts", []compliance.Licence{licence(t, "2024-01-15")}, "2024-01-01", ""},
		{"issued on the month's last day counts", []compliance.Licence{licence(t, "2024-01-31")}, "2024-01-01", ""},
		{"issued the next month", []compliance.Licence{licence(t, "2024-02-01")}, "2024-01-01", apperr.NoLicence},
		{"expiring mid-month counts", []compliance.Licence{licence(t, "2021-03-10")}, "2024-03-01", ""},
		{"expired on the month's first day", []compliance.Licence{licence(t, "2021-03-01")}, "2024-03-01", apperr.NoLicence},
		{"expired before the month", []compliance.Licence{licence(t, "2020-06-01")}, "2024-03-01", apperr.NoLicence},
		{"suspended", []compliance.Licence{suspended}, "2024-03-01", apperr.NoLicence},
		{"suspended and an active one", []compliance.Licence{suspended, licence(t, "2024-03-20")}, "2024-03-01", ""},
		{"expired then renewed", []compliance.Licence{licence(t, "2020-06-01"), licence(t, "2023-06-01")}, "2024-03-01", ""},
		{"no licences", nil, "2024-03-01", apperr.NoLicence},
		{"period not a month start", []compliance.Licence{licence(t, "2024-01-15")}, "2024-03-02", apperr.InvalidParameter},
		{"invalid licence", []compliance.Licence{{Number: "X", Subtype: "I", Status: "active"}}, "2024-03-01", apperr.InvalidParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := compliance.CheckReportPeriod(tc.licences, day(t, tc.period))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, tc.want)
		})
	}
}

func TestLicence_Changes(t *testing.T) {
	base := licence(t, "2024-01-15") // to 2027-01-15
	suspend := compliance.StatusChange{Kind: compliance.ChangeSuspend, From: day(t, "2024-06-01"), Until: day(t, "2024-09-01"),
		Reason: "false information in the application"}
	with := func(changes ...compliance.StatusChange) compliance.Licence {
		l := base
		l.Changes = changes
		return l
	}
	t.Run("StatusOn", func(t *testing.T) {
		revoke := compliance.StatusChange{Kind: compliance.ChangeRevoke, From: day(t, "2025-02-01"), Reason: "repeat violation"}
		reinstate := compliance.StatusChange{Kind: compliance.ChangeReinstate, From: day(t, "2024-07-01"), Reason: "appeal upheld"}
		for _, tc := range []struct {
			name string
			l    compliance.Licence
			on   string
			want compliance.LicenceStatus
		}{
			{"before issue", base, "2024-01-14", compliance.LicenceNotIssued},
			{"issued", base, "2024-01-15", compliance.LicenceActive},
			{"expired", base, "2027-01-15", compliance.LicenceExpired},
			{"suspended from its first day", with(suspend), "2024-06-01", compliance.LicenceSuspended},
			{"suspended to its last day", with(suspend), "2024-08-31", compliance.LicenceSuspended},
			{"active again after the suspension", with(suspend), "2024-09-01", compliance.LicenceActive},
			{"reinstated early", with(suspend, reinstate), "2024-07-01", compliance.LicenceActive},
			{"revoked", with(suspend, revoke), "2025-02-01", compliance.LicenceRevoked},
			{"active before the revocation", with(suspend, revoke), "2025-01-31", compliance.LicenceActive},
			{"expiry wins over revocation", with(revoke), "2027-02-01", compliance.LicenceExpired},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.l.Validate(); err != nil {
					t.Fatal(err)
				}
				if got := tc.l.StatusOn(day(t, tc.on)); got != tc.want {
					t.Fatalf("StatusOn(%s) = %s, want %s", tc.on, got, tc.want)
				}
			})
		}
	})
	t.Run("ReportPeriod", func(t *testing.T) {
		// Suspended all of July 2024: no report for July; June and
		// September have active days.
		l := with(compliance.StatusChange{Kind: compliance.ChangeSuspend, From: day(t, "2024-06-20"), Until: day(t, "2024-09-20"), Reason: "r"})
		for period, want := range map[string]apperr.Code{"2024-06-01": "", "2024-07-01": apperr.NoLicence, "2024-08-01": apperr.NoLicence, "2024-09-01": ""} {
			err := compliance.CheckReportPeriod([]compliance.Licence{l}, day(t, period))
			if want == "" && err != nil {
				t.Errorf("%s: %v", period, err)
			} else if want != "" {
				wantCode(t, err, want)
			}
		}
	})
	for _, tc := range []struct {
		name   string
		before []compliance.StatusChange
		change compliance.StatusChange
		want   apperr.Code
	}{
		{"OK suspend", nil, suspend, ""},
		{"OK six months", nil, compliance.StatusChange{Kind: compliance.ChangeSuspend, From: day(t, "2024-06-01"), Until: day(t, "2024-12-01"), Reason: "r"}, ""},
		{"OK revoke a suspended licence", []compliance.StatusChange{suspend},
			compliance.StatusChange{Kind: compliance.ChangeRevoke, From: day(t, "2024-07-01"), Reason: "r"}, ""},
		{"ErrSevenMonths", nil, compliance.StatusChange{Kind: compliance.ChangeSuspend, From: day(t, "2024-06-01"), Until: day(t, "2025-01-01"), Reason: "r"}, apperr.InvalidParameter},
		{"ErrTwoWeeks", nil, compliance.StatusChange{Kind: compliance.ChangeSuspend, From: day(t, "2024-06-01"), Until: day(t, "2024-06-15"), Reason: "r"}, apperr.InvalidParameter},
		{"ErrNoReason", nil, compliance.StatusChange{Kind: compliance.ChangeRevoke, From: day(t, "2024-06-01")}, apperr.InvalidParameter},
		{"ErrUnknownKind", nil, compliance.StatusChange{Kind: "pause", From: day(t, "2024-06-01"), Reason: "r"}, apperr.InvalidParameter},
		{"ErrOutsideTerm", nil, compliance.StatusChange{Kind: compliance.ChangeRevoke, From: day(t, "2027-01-15"), Reason: "r"}, apperr.InvalidParameter},
		{"ErrBeforePrevious", []compliance.StatusChange{suspend},
			compliance.StatusChange{Kind: compliance.ChangeRevoke, From: day(t, "2024-05-01"), Reason: "r"}, apperr.InvalidParameter},
		{"ErrReinstateActive", nil, compliance.StatusChange{Kind: compliance.ChangeReinstate, From: day(t, "2024-06-01"), Reason: "r"}, apperr.InvalidTransition},
		{"ErrSuspendSuspended", []compliance.StatusChange{suspend}, suspend, apperr.InvalidTransition},
		{"ErrRevokeTwice", []compliance.StatusChange{{Kind: compliance.ChangeRevoke, From: day(t, "2024-05-01"), Reason: "r"}},
			compliance.StatusChange{Kind: compliance.ChangeRevoke, From: day(t, "2024-06-01"), Reason: "r"}, apperr.InvalidTransition},
		{"ErrUntilOnRevoke", nil, compliance.StatusChange{Kind: compliance.ChangeRevoke, From: day(t, "2024-06-01"), Until: day(t, "2024-07-01"), Reason: "r"}, apperr.InvalidParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := with(tc.before...).CheckChange(tc.change)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, tc.want)
		})
	}
}
