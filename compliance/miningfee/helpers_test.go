package miningfee_test

import (
	"testing"
	"time"

	"github.com/satu-exchange/satu/compliance/miningfee"
	"github.com/satu-exchange/satu/internal/apperr"
)

// mustLoad returns the embedded schedule.
func mustLoad(t *testing.T) *miningfee.Tables {
	t.Helper()
	ts, err := miningfee.Load()
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// day returns a calendar day at UTC midnight.
func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// q returns a quarter.
func q(year, n int) miningfee.Quarter { return miningfee.Quarter{Year: year, Q: n} }

// metered returns a metered record for the first day of month y-m.
func metered(y int, m time.Month, src miningfee.Source, kwh, priceTiyn int64) miningfee.Consumption {
	return miningfee.Consumption{Month: day(y, m, 1), KWh: kwh, Source: src, Metered: true, PriceTiyn: priceTiyn}
}

// unmetered returns an unmetered record for the first day of month y-m.
func unmetered(y int, m time.Month, src miningfee.Source, kwh int64) miningfee.Consumption {
	return miningfee.Consumption{Month: day(y, m, 1), KWh: kwh, Source: src}
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, err error, code apperr.Code) {
	t.Helper()
	if got := apperr.CodeOf(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}
