package miningfee_test

import (
	"testing"
	"time"

	"github.com/satu-exchange/satu/compliance/miningfee"
	"github.com/satu-exchange/satu/internal/apperr"
)

func TestParseQuarter(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     miningfee.Quarter
	}{
		{"OK_Q2", "2023-Q2", q(2023, 2)},
		{"OK_Q1", "2022-Q1", q(2022, 1)},
		{"OK_Q4", "2023-Q4", q(2023, 4)},
		{"OK_FirstYear", "0001-Q1", q(1, 1)},
		{"OK_LastYear", "9999-Q4", q(9999, 4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := miningfee.ParseQuarter(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || got.String() != tc.in {
				t.Fatalf("ParseQuarter(%q) = %v (%s), want %v", tc.in, got, got, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, in string }{
		{"ErrEmpty", ""},
		{"ErrQ0", "2023-Q0"},
		{"ErrQ5", "2023-Q5"},
		{"ErrNoDash", "2023Q2"},
		{"ErrLowerCase", "2023-q2"},
		{"ErrShortYear", "23-Q2"},
		{"ErrLongYear", "02023-Q2"},
		{"ErrYearZero", "0000-Q1"},
		{"ErrPaddedQuarter", "2023-Q02"},
		{"ErrLeadingSpace", " 2023-Q2"},
		{"ErrTrailingSpace", "2023-Q2 "},
		{"ErrSign", "+2023-Q2"},
		{"ErrMonth", "2023-04"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := miningfee.ParseQuarter(tc.in)
			wantCode(t, err, apperr.InvalidParameter)
		})
	}
}

func TestQuarterOf(t *testing.T) {
	almaty := time.FixedZone("UTC+6", 6*3600)
	for _, tc := range []struct {
		name string
		in   time.Time
		want miningfee.Quarter
	}{
		{"OK_FirstDay", day(2023, 1, 1), q(2023, 1)},
		{"OK_LastInstantOfQ1", time.Date(2023, 3, 31, 23, 59, 59, 999999999, time.UTC), q(2023, 1)},
		{"OK_FirstDayOfQ2", day(2023, 4, 1), q(2023, 2)},
		{"OK_Q3", day(2023, 9, 30), q(2023, 3)},
		{"OK_Q4", day(2023, 12, 31), q(2023, 4)},
		// 1 April 02:00 in Almaty is still 31 March in UTC: the package reads UTC.
		{"OK_ReadInUTC", time.Date(2023, 4, 1, 2, 0, 0, 0, almaty), q(2023, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := miningfee.QuarterOf(tc.in); got != tc.want {
				t.Fatalf("QuarterOf(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestQuarterBounds(t *testing.T) {
	for _, tc := range []struct {
		q          miningfee.Quarter
		start, end time.Time
	}{
		{q(2023, 1), day(2023, 1, 1), day(2023, 3, 31)},
		{q(2023, 2), day(2023, 4, 1), day(2023, 6, 30)},
		{q(2023, 3), day(2023, 7, 1), day(2023, 9, 30)},
		{q(2023, 4), day(2023, 10, 1), day(2023, 12, 31)},
		{q(2024, 1), day(2024, 1, 1), day(2024, 3, 31)}, // leap year: Q1 still ends 31 Mar
	} {
		t.Run("OK_"+tc.q.String(), func(t *testing.T) {
			if s, e := tc.q.Start(), tc.q.End(); !s.Equal(tc.start) || !e.Equal(tc.end) || s.Location() != time.UTC {
				t.Fatalf("%s: Start %v End %v, want %v %v", tc.q, s, e, tc.start, tc.end)
			}
			if got := miningfee.QuarterOf(tc.q.End()); got != tc.q {
				t.Fatalf("QuarterOf(End) = %v", got)
			}
		})
	}
	for _, bad := range []miningfee.Quarter{q(2023, 0), q(2023, 5), q(0, 1), q(10000, 1), q(-1, 2)} {
		t.Run("Err"+bad.String(), func(t *testing.T) {
			wantCode(t, bad.Validate(), apperr.InvalidParameter)
		})
	}
}
