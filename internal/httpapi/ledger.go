package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/settlement/postgres"
)

// The settled ledger of one account: fills and postings page by cursor,
// newest first; statements cover a period of engine time.

func (s *Server) fills(r *http.Request) (int, any, error) {
	account, page, err := pageQuery(r)
	if err != nil {
		return 0, nil, err
	}
	fills, err := s.Ledger.Fills(r.Context(), account, page)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, fills, nil
}

func (s *Server) postings(r *http.Request) (int, any, error) {
	account, page, err := pageQuery(r)
	if err != nil {
		return 0, nil, err
	}
	postings, err := s.Ledger.Postings(r.Context(), account, page)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, postings, nil
}

// statement answers JSON, or CSV with format=csv (postgres.WriteStatementCSV
// documents the columns).
func (s *Server) statement(w http.ResponseWriter, r *http.Request) {
	req, err := parseStatementRequest(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.Ledger.Statement(r.Context(), req.account, req.from, req.to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !req.csv {
		writeJSON(w, http.StatusOK, st)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="statement-`+req.account+"-"+
		fileStamp(req.from)+"-"+fileStamp(req.to)+`.csv"`)
	w.WriteHeader(http.StatusOK)
	if err := postgres.WriteStatementCSV(w, st); err != nil {
		// The status is sent: all that is left is to say why the body is short.
		s.Log.Warn("statement csv not written", zap.String("account", req.account), zap.Error(err))
	}
}

type statementRequest struct {
	account  string
	from, to time.Time
	csv      bool
}

func parseStatementRequest(r *http.Request) (statementRequest, error) {
	var req statementRequest
	var err error
	if req.account, err = accountParam(r); err != nil {
		return req, err
	}
	q := r.URL.Query()
	switch q.Get("format") {
	case "", "json":
	case "csv":
		req.csv = true
	default:
		return req, apperr.New(apperr.InvalidParameter, "format %q must be json or csv", q.Get("format"))
	}
	if req.from, err = parseInstant("from", q.Get("from")); err != nil {
		return req, err
	}
	if req.to, err = parseInstant("to", q.Get("to")); err != nil {
		return req, err
	}
	return req, nil
}

// accountParam is the path's {account}, checked for form.
func accountParam(r *http.Request) (string, error) {
	account := r.PathValue("account")
	if !matching.ValidAccountID(account) {
		return "", apperr.New(apperr.InvalidParameter, "account %q is not a valid account ID", account)
	}
	return account, nil
}

// pageQuery reads {account}, limit and cursor; the store checks their values.
func pageQuery(r *http.Request) (string, postgres.PageRequest, error) {
	account, err := accountParam(r)
	if err != nil {
		return "", postgres.PageRequest{}, err
	}
	q := r.URL.Query()
	page := postgres.PageRequest{Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return "", postgres.PageRequest{}, apperr.New(apperr.InvalidParameter,
				"limit %q must be a whole number from 1 to %d", v, postgres.MaxPageLimit)
		}
		page.Limit = n
	}
	return account, page, nil
}

// parseInstant reads a statement bound: a date (midnight UTC) or an
// RFC 3339 time with its offset.
func parseInstant(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, apperr.New(apperr.InvalidParameter, "query parameter %s is required (YYYY-MM-DD or RFC 3339)", field)
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, apperr.New(apperr.InvalidParameter, "%s %q must be a date, YYYY-MM-DD, or an RFC 3339 time", field, v)
}

// fileStamp names an instant in a file name: the date at midnight UTC, else
// the compact UTC time.
func fileStamp(t time.Time) string {
	t = t.UTC()
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format(time.DateOnly)
	}
	return t.Format("20060102T150405Z")
}
