package miningfee_test

import (
	"strings"
	"testing"

	"github.com/satu-exchange/satu/compliance/miningfee"
	"github.com/satu-exchange/satu/internal/apperr"
)

// goodFile is a valid schedule; the tests below break one thing at a time.
const goodFile = `{
  "id": "test-fee",
  "version": 3,
  "title": "test",
  "tables": [
    {
      "from": "2022-01-01", "grade": "B", "source": "B: flat", "secondary_source": false,
      "due": {"payment_day": 20, "months_after_quarter": 1, "confirmed": true, "satu_default": false, "source": "B: due"},
      "rates": {
        "purchased": {"tenge": "1", "confirmed": true, "source": "B: p"},
        "own": {"tenge": "1.5", "confirmed": true, "source": "B: o"},
        "own_renewable": {"tenge": "0.25", "confirmed": true, "source": "B: r"}
      }
    },
    {
      "from": "2023-01-01", "grade": "A-", "source": "B: scale", "secondary_source": true,
      "due": {"return_day": 15, "payment_day": 25, "months_after_quarter": 2, "confirmed": false, "satu_default": true, "source": "assumed"},
      "rates": {
        "purchased_by_price": [
          {"price": "[0, 5)", "confirmed": false, "source": "unknown"},
          {"price": "[5, 10]", "tenge": "10", "confirmed": true, "source": "B: b"},
          {"price": "(10, 24)", "confirmed": false, "source": "unknown"},
          {"price": "[24, ∞)", "tenge": "1", "confirmed": true, "source": "B: b"}
        ],
        "own": {"tenge": "10", "confirmed": true, "source": "B: o"},
        "own_renewable": {"tenge": "1", "confirmed": true, "source": "B: r"},
        "no_metering": {"tenge": "25", "confirmed": true, "source": "B: n"},
        "maximum": {"tenge": "25", "confirmed": true, "source": "B: m"}
      }
    }
  ],
  "notes": ["a note"]
}`

func TestParse(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		ts, err := miningfee.Parse([]byte(goodFile))
		if err != nil {
			t.Fatal(err)
		}
		if ts.ID != "test-fee" || ts.Version != 3 || len(ts.Tables) != 2 || len(ts.Notes) != 1 {
			t.Fatalf("parsed %+v", ts)
		}
		flat, scale := ts.Tables[0], ts.Tables[1]
		if flat.Purchased == nil || flat.Purchased.Tiyn != 100 || flat.Own.Tiyn != 150 || flat.OwnRenewable.Tiyn != 25 ||
			flat.NoMetering != nil || flat.Maximum != nil || flat.Due.ReturnDay != 0 || flat.Due.SatuDefault {
			t.Errorf("flat table = %+v", flat)
		}
		if !scale.From.Equal(day(2023, 1, 1)) || scale.Grade != "A-" || !scale.SecondarySource || !scale.Due.SatuDefault ||
			scale.Purchased != nil || scale.Maximum.Tiyn != 2500 || scale.NoMetering.Tiyn != 2500 {
			t.Errorf("scale table = %+v", scale)
		}
		var got []string
		for _, b := range scale.PurchasedByPrice {
			got = append(got, b.String())
		}
		if strings.Join(got, " ") != "[0, 5) [5, 10] (10, 24) [24, ∞)" {
			t.Errorf("brackets = %v", got)
		}
	})
	for _, tc := range []struct{ name, old, new, msg string }{
		{"ErrUnknownField", `"notes"`, `"note"`, "unknown field"},
		{"ErrTrailingData", `["a note"]
}`, `["a note"]
} {}`, "data after its object"},
		{"ErrBadDate", `"2023-01-01"`, `"2023-1-1"`, "not a YYYY-MM-DD"},
		{"ErrImpossibleDate", `"2023-01-01"`, `"2023-02-30"`, "not a YYYY-MM-DD"},
		{"ErrDateTime", `"2023-01-01"`, `"2023-01-01T00:00:00Z"`, "not a YYYY-MM-DD"},
		{"ErrDateNotQuarterStart", `"2023-01-01"`, `"2023-02-01"`, "not the first day of a quarter"},
		{"ErrTablesOutOfOrder", `"2023-01-01"`, `"2021-01-01"`, "does not come after"},
		{"ErrOverlappingBrackets", `"(10, 24)"`, `"[10, 24)"`, "overlaps"},
		{"ErrOverlappingBracketsDeep", `"(10, 24)"`, `"(9, 24)"`, "overlaps"},
		{"ErrBracketGap", `"(10, 24)"`, `"(11, 24)"`, "leaves a gap"},
		{"ErrBracketGapOpenBounds", `"[24, ∞)"`, `"(24, ∞)"`, "leaves a gap"},
		{"ErrFirstBracketNotZero", `"[0, 5)"`, `"[1, 5)"`, "must start at [0"},
		{"ErrLastBracketBounded", `"[24, ∞)"`, `"[24, 99]"`, "must be open to ∞"},
		{"ErrInfinityClosed", `"[24, ∞)"`, `"[24, ∞]"`, `ends with ")"`},
		{"ErrEmptyInterval", `"[5, 10]"`, `"[5, 5)"`, "empty interval"},
		{"ErrIntervalNotation", `"[5, 10]"`, `"5-10"`, "is not an interval"},
		{"ErrRateAboveMaximum", `"tenge": "10", "confirmed": true, "source": "B: b"`, `"tenge": "26", "confirmed": true, "source": "B: b"`, "above the maximum"},
		{"ErrRateThreeDecimals", `"tenge": "10", "confirmed": true, "source": "B: b"`, `"tenge": "9.995", "confirmed": true, "source": "B: b"`, "at most two decimals"},
		{"ErrRateNegative", `"tenge": "10", "confirmed": true, "source": "B: b"`, `"tenge": "-10", "confirmed": true, "source": "B: b"`, "decimal tenge"},
		{"ErrRateJSONNumber", `"tenge": "10", "confirmed": true, "source": "B: b"`, `"tenge": 10, "confirmed": true, "source": "B: b"`, "not valid"},
		{"ErrUnconfirmedWithFigure", `{"price": "[0, 5)", "confirmed": false`, `{"price": "[0, 5)", "tenge": "15", "confirmed": false`, "is not confirmed but states"},
		{"ErrConfirmedWithoutFigure", `{"price": "[0, 5)", "confirmed": false`, `{"price": "[0, 5)", "confirmed": true`, "decimal tenge"},
		{"ErrRateWithoutSource", `"source": "B: n"}`, `"source": " "}`, "has no source"},
		{"ErrScaleWithoutNoMetering", `"no_metering": {"tenge": "25", "confirmed": true, "source": "B: n"},`, ``, "needs a no_metering rate"},
		{"ErrBothPurchasedForms", `"own": {"tenge": "10"`, `"purchased": {"tenge": "1", "confirmed": true, "source": "x"}, "own": {"tenge": "10"`, "exactly one of purchased"},
		{"ErrMissingOwn", `"own": {"tenge": "1.5", "confirmed": true, "source": "B: o"},`, ``, "own and own_renewable are required"},
		{"ErrMaximumUnconfirmed", `"maximum": {"tenge": "25", "confirmed": true`, `"maximum": {"confirmed": false`, "maximum is not confirmed"},
		{"ErrGrade", `"grade": "B"`, `"grade": "D"`, "grade"},
		{"ErrNoSource", `"source": "B: flat"`, `"source": ""`, "has no source"},
		{"ErrDueUnmarked", `"confirmed": false, "satu_default": true`, `"confirmed": false, "satu_default": false`, "either confirmed or satu_default"},
		{"ErrPaymentDay", `"payment_day": 20`, `"payment_day": 31`, "payment day 31"},
		{"ErrReturnDay", `"return_day": 15`, `"return_day": -1`, "return day -1"},
		{"ErrMonthsAfterQuarter", `"months_after_quarter": 1`, `"months_after_quarter": 0`, "months after the quarter"},
		{"ErrVersion", `"version": 3`, `"version": 0`, "version 0"},
		{"ErrID", `"id": "test-fee"`, `"id": "Test Fee"`, "id must be"},
		{"ErrTitle", `"title": "test"`, `"title": " "`, "title is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := strings.Count(goodFile, tc.old); n != 1 {
				t.Fatalf("%q occurs %d times in goodFile, want once", tc.old, n)
			}
			_, err := miningfee.Parse([]byte(strings.Replace(goodFile, tc.old, tc.new, 1)))
			wantCode(t, err, apperr.InvalidParameter)
			if !strings.Contains(apperr.MessageOf(err), tc.msg) {
				t.Errorf("message %q lacks %q", apperr.MessageOf(err), tc.msg)
			}
		})
	}
	t.Run("ErrNoTables", func(t *testing.T) {
		_, err := miningfee.Parse([]byte(`{"id": "x", "version": 1, "title": "t", "tables": [], "notes": []}`))
		wantCode(t, err, apperr.InvalidParameter)
	})
}

func TestLoad(t *testing.T) {
	ts := mustLoad(t)
	if ts.ID != "kz-mining-fee" || ts.Version != 1 || len(ts.Tables) != 3 || len(ts.Notes) == 0 {
		t.Fatalf("loaded %s v%d with %d tables", ts.ID, ts.Version, len(ts.Tables))
	}
	for i, want := range []struct {
		from       string
		grade      string
		secondary  bool
		dueAssumed bool
		byPrice    bool
	}{
		{"2022-01-01", "B", false, false, false},
		{"2023-01-01", "B", false, false, true},
		{"2024-01-01", "C", true, true, false},
	} {
		tab := ts.Tables[i]
		if tab.From.Format("2006-01-02") != want.from || tab.Grade != want.grade || tab.SecondarySource != want.secondary ||
			tab.Due.SatuDefault != want.dueAssumed || (len(tab.PurchasedByPrice) > 0) != want.byPrice {
			t.Errorf("table %d = %+v", i+1, tab)
		}
	}
	// The 2023 gaps are data: present, unconfirmed and without a figure.
	var brackets []string
	for _, b := range ts.Tables[1].PurchasedByPrice {
		brackets = append(brackets, b.String())
		if b.Rate.Confirmed == (b.String() == "[0, 5)" || b.String() == "(10, 24)") {
			t.Errorf("bracket %s confirmed = %v", b, b.Rate.Confirmed)
		}
	}
	if strings.Join(brackets, " ") != "[0, 5) [5, 10] (10, 24) [24, ∞)" {
		t.Errorf("2023 brackets = %v", brackets)
	}
	if m := ts.Tables[1].Maximum; m == nil || m.Tiyn != 2500 {
		t.Errorf("2023 maximum = %+v", m)
	}
}
