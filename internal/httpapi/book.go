package httpapi

import (
	"net/http"
	"strconv"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/wsapi"
)

// depth serves a depth snapshot from the Redis order book:
// GET /v1/depth?symbol=BTCKZT&limit=100 (limit 1–5000, default 100).
func (s *Server) depth(r *http.Request) (int, any, error) {
	name := r.URL.Query().Get("symbol")
	sym, ok := s.symbol(name)
	if !ok {
		return 0, nil, apperr.New(apperr.UnknownSymbol, "unknown symbol %q", name)
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5000 {
			return 0, nil, apperr.New(apperr.InvalidParameter, "limit %q must be a whole number from 1 to 5000", v)
		}
		limit = n
	}
	seq, bids, asks, err := s.Book.Depth(r.Context(), sym.Name, limit)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, wsapi.Depth(sym, seq, bids, asks), nil
}

// openOrders serves an account's open orders from the Redis order book.
func (s *Server) openOrders(r *http.Request) (int, any, error) {
	account := r.PathValue("account")
	if !matching.ValidAccountID(account) {
		return 0, nil, apperr.New(apperr.InvalidParameter, "account %q is not a valid account ID", account)
	}
	seq, orders, err := s.Book.OpenOrders(r.Context(), account)
	if err != nil {
		return 0, nil, err
	}
	out := make([]wsapi.OrderResult, 0, len(orders))
	for _, o := range orders {
		sym, _ := s.symbol(o.Symbol)
		out = append(out, wsapi.OpenOrder(o, sym))
	}
	return http.StatusOK, map[string]any{"account": account, "lastUpdateId": seq, "orders": out}, nil
}

func (s *Server) symbol(name string) (matching.Symbol, bool) {
	for _, sym := range s.Symbols {
		if sym.Name == name {
			return sym, true
		}
	}
	return matching.Symbol{}, false
}
