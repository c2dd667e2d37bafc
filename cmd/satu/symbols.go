package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/satu-exchange/satu/matching"
)

// loadSymbols reads the markets from a JSON file (an array of
// matching.Symbol, unknown fields refused), or returns the built-in ones
// when path is empty. The engine validates each symbol when it starts.
func loadSymbols(path string) ([]matching.Symbol, error) {
	if path == "" {
		return matching.DefaultSymbols(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("symbols: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var symbols []matching.Symbol
	if err := dec.Decode(&symbols); err != nil {
		return nil, fmt.Errorf("symbols %s: %w", path, err)
	}
	if len(symbols) == 0 {
		return nil, fmt.Errorf("symbols %s: no symbols", path)
	}
	if _, err := matching.New(symbols); err != nil {
		return nil, fmt.Errorf("symbols %s: %w", path, err)
	}
	return symbols, nil
}

// checkSymbolAssets refuses symbols whose assets the ledger does not know,
// or knows with another scale: settlement writes amounts at the ledger's
// scale, so the two must agree.
func checkSymbolAssets(symbols []matching.Symbol, scale func(asset string) (int, error)) error {
	for _, s := range symbols {
		for _, a := range []struct {
			asset string
			scale int
		}{{s.Base, s.BaseScale}, {s.Quote, s.QuoteScale}} {
			got, err := scale(a.asset)
			if err != nil {
				return fmt.Errorf("symbol %s: asset %s is not in the ledger's assets table", s.Name, a.asset)
			}
			if got != a.scale {
				return fmt.Errorf("symbol %s: %s has scale %d in the symbol but %d in the ledger", s.Name, a.asset, a.scale, got)
			}
		}
	}
	return nil
}
