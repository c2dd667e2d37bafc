package httpapi_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/access"
	accesspg "github.com/satu-exchange/satu/internal/access/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/httpapi"
	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/settlement"
	"github.com/satu-exchange/satu/settlement/postgres"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// ledgerServer serves the REST API over a real ledger store in which
// "buyer" deposited KZT on 2025-01-01 and bought BTC from "seller" in three
// fills on 2025-01-02, 03 and 04.
// regulatorKey is the API key get sends: a regulator reads every account.
var regulatorKey string

func ledgerServer(t *testing.T) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	db := testenv.PG(t)
	keys := accesspg.NewKeyStore(db)
	tok, err := keys.Create(ctx, accesspg.CreateRequest{Role: access.RoleRegulator, Label: "ledger tests"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	regulatorKey = tok.String()
	store, err := postgres.NewStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	day := func(d int) int64 { return time.Date(2025, 1, d, 12, 0, 0, 0, time.UTC).UnixMilli() }
	evs := []matching.Event{
		{Seq: 1, Time: day(1), Kind: matching.EvAccountOpened, Account: "buyer", Owner: "b", AccountKind: matching.KindTrader},
		{Seq: 2, Time: day(1), Kind: matching.EvAccountOpened, Account: "seller", Owner: "s", AccountKind: matching.KindTrader},
		{Seq: 3, Time: day(1), Kind: matching.EvDeposited, Account: "buyer", Asset: "KZT", Amount: 10_000_000_00, ExtRef: "d1"},
		{Seq: 4, Time: day(1), Kind: matching.EvDeposited, Account: "seller", Asset: "BTC", Amount: 100_000_000, ExtRef: "d2"},
	}
	for i := range 3 {
		seq := uint64(5 + i)
		evs = append(evs, matching.Event{Seq: seq, Index: 1, Time: day(2 + i), Kind: matching.EvTrade, Symbol: "BTCKZT",
			BaseAsset: "BTC", QuoteAsset: "KZT", Price: 30_000_000_00, Quantity: 1_000_000, QuoteAmount: 300_000_00,
			BuyerFee: 300_00, SellerFee: 300_00, FeeAccount: matching.DefaultFeeAccount, BuyerAccount: "buyer",
			SellerAccount: "seller", BuyOrderID: seq*10 + 1, SellOrderID: seq*10 + 2, TakerSide: matching.Buy})
	}
	b := &settlement.Batch{After: "0"}
	for _, ev := range evs {
		b.Add(ev.ID(), ev)
	}
	if err := store.Settle(ctx, "s1", b); err != nil {
		t.Fatal(err)
	}
	api := &httpapi.Server{Ledger: store, Keys: keys, WebSocket: http.NotFoundHandler(), Now: time.Now, Log: zap.NewNop(),
		Audit: zap.NewNop(), Metrics: prometheus.NewRegistry()}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+regulatorKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func getJSON(t *testing.T, srv *httptest.Server, path string, wantStatus int, v any) {
	t.Helper()
	resp, body := get(t, srv, path)
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: %d %s; want %d", path, resp.StatusCode, body, wantStatus)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

func TestLedgerEndpoints(t *testing.T) {
	srv := ledgerServer(t)

	t.Run("Fills", func(t *testing.T) {
		var page postgres.FillPage
		getJSON(t, srv, "/v1/accounts/buyer/fills?limit=2", http.StatusOK, &page)
		if len(page.Fills) != 2 || page.Fills[0].ID != "7-1" || page.Fills[1].ID != "6-1" || page.NextCursor == "" {
			t.Fatalf("first page = %+v", page)
		}
		f := page.Fills[0]
		if f.Side != "buy" || f.Price != "30000000.00" || f.Quantity != "0.01000000" || f.QuoteAmount != "300000.00" ||
			f.Fee != "300.00" || f.FeeAsset != "KZT" || f.ExecutedAt != "2025-01-04T12:00:00.000Z" {
			t.Errorf("fill = %+v", f)
		}
		var last postgres.FillPage
		getJSON(t, srv, "/v1/accounts/buyer/fills?limit=2&cursor="+url.QueryEscape(page.NextCursor), http.StatusOK, &last)
		if len(last.Fills) != 1 || last.Fills[0].ID != "5-1" || last.NextCursor != "" {
			t.Fatalf("last page = %+v", last)
		}
		var sells postgres.FillPage
		getJSON(t, srv, "/v1/accounts/seller/fills", http.StatusOK, &sells)
		if len(sells.Fills) != 3 || sells.Fills[2].Side != "sell" {
			t.Fatalf("seller's fills = %+v", sells)
		}
	})

	t.Run("Postings", func(t *testing.T) {
		var page postgres.PostingPage
		getJSON(t, srv, "/v1/accounts/buyer/postings?limit=5", http.StatusOK, &page)
		if len(page.Postings) != 5 || page.NextCursor == "" || page.Postings[0].BookedAt != "2025-01-04T12:00:00.000Z" {
			t.Fatalf("first page = %+v", page)
		}
		var last postgres.PostingPage
		getJSON(t, srv, "/v1/accounts/buyer/postings?limit=5&cursor="+page.NextCursor, http.StatusOK, &last)
		if len(last.Postings) != 2 || last.NextCursor != "" || last.Postings[1].Kind != "deposit" {
			t.Fatalf("last page = %+v", last)
		}
	})

	t.Run("StatementJSON", func(t *testing.T) {
		var st postgres.Statement
		getJSON(t, srv, "/v1/accounts/buyer/statement?from=2025-01-02&to=2025-01-04T00:00:00%2B05:00", http.StatusOK, &st)
		// to is 2025-01-03T19:00Z: the fills of Jan 2 and 3 at noon UTC.
		if st.From != "2025-01-02T00:00:00.000Z" || st.To != "2025-01-03T19:00:00.000Z" || len(st.Assets) != 2 {
			t.Fatalf("statement = %+v", st)
		}
		btc, kzt := st.Assets[0], st.Assets[1]
		if btc.Opening != "0.00000000" || btc.Closing != "0.02000000" || len(btc.Postings) != 2 ||
			kzt.Opening != "10000000.00" || kzt.Debits != "600600.00" || kzt.Closing != "9399400.00" {
			t.Fatalf("statement = %+v", st)
		}
	})

	t.Run("StatementCSV", func(t *testing.T) {
		resp, body := get(t, srv, "/v1/accounts/buyer/statement?from=2025-01-01&to=2025-02-01&format=csv")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("Content-Type %q", ct)
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="statement-buyer-2025-01-01-2025-02-01.csv"` {
			t.Errorf("Content-Disposition %q", cd)
		}
		records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		// header; BTC: opening, 3 postings, closing; KZT: opening, 4, closing
		if len(records) != 1+5+6 || strings.Join(records[0], ",") != "account,asset,bookedAt,eventId,kind,amount,balance" {
			t.Fatalf("csv = %v", records)
		}
		if last := records[len(records)-1]; strings.Join(last, ",") != "buyer,KZT,2025-02-01T00:00:00.000Z,,closing,,9099100.00" {
			t.Errorf("last row = %v", last)
		}
	})

	for _, tc := range []struct {
		name, path string
		status     int
		code       apperr.Code
	}{
		{"ErrLimit", "/v1/accounts/buyer/fills?limit=abc", 400, apperr.InvalidParameter},
		{"ErrLimitZero", "/v1/accounts/buyer/postings?limit=0", 400, apperr.InvalidParameter},
		{"ErrLimitTooLarge", "/v1/accounts/buyer/postings?limit=1001", 400, apperr.InvalidParameter},
		{"ErrCursor", "/v1/accounts/buyer/fills?cursor=nonsense", 400, apperr.InvalidParameter},
		{"ErrAccountID", "/v1/accounts/Not_Valid/fills", 400, apperr.InvalidParameter},
		{"ErrUnknownAccount", "/v1/accounts/nobody/postings", 404, apperr.UnknownAccount},
		{"ErrUnknownAccountStatement", "/v1/accounts/nobody/statement?from=2025-01-01&to=2025-02-01", 404, apperr.UnknownAccount},
		{"ErrFromMissing", "/v1/accounts/buyer/statement?to=2025-02-01", 400, apperr.InvalidParameter},
		{"ErrFromMalformed", "/v1/accounts/buyer/statement?from=01.01.2025&to=2025-02-01", 400, apperr.InvalidParameter},
		{"ErrPeriodEmpty", "/v1/accounts/buyer/statement?from=2025-02-01&to=2025-02-01", 400, apperr.InvalidParameter},
		{"ErrPeriodTooLong", "/v1/accounts/buyer/statement?from=2025-01-01&to=2026-01-03", 400, apperr.InvalidParameter},
		{"ErrFormat", "/v1/accounts/buyer/statement?from=2025-01-01&to=2025-02-01&format=xml", 400, apperr.InvalidParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e apperr.Error
			getJSON(t, srv, tc.path, tc.status, &e)
			if e.Code != tc.code || e.Message == "" {
				t.Fatalf("error = %+v; want %s", e, tc.code)
			}
		})
	}
}

// TestLedgerDocExamples runs the examples of docs/api.md's ledger section
// against the same ledger and checks each answer is exactly as shown.
func TestLedgerDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "### The settled ledger of an account")
	if start < 0 {
		t.Fatal("docs/api.md has no ledger section")
	}
	text = text[start:]
	if end := strings.Index(text[1:], "\n#"); end >= 0 {
		text = text[:end+1]
	}
	srv := ledgerServer(t)
	const prefix = "curl -s -H @.satu/keys/regulator.header 'http://127.0.0.1:8080"
	var examples int
	for {
		i := strings.Index(text, "```sh\n")
		if i < 0 {
			break
		}
		text = text[i+len("```sh\n"):]
		command, rest, _ := strings.Cut(text, "\n```\n")
		if !strings.HasPrefix(command, prefix) || !strings.HasSuffix(command, "'") {
			t.Fatalf("example %q is not a plain curl GET", command)
		}
		path := strings.TrimSuffix(strings.TrimPrefix(command, prefix), "'")
		lang, rest, _ := strings.Cut(rest, "\n")
		want, rest, _ := strings.Cut(rest, "```")
		text = rest
		if lang != "```json" && lang != "```csv" {
			t.Fatalf("%s is followed by %q, not its answer", command, lang)
		}
		resp, body := get(t, srv, path)
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("GET %s: %d\n%s\ndocs/api.md shows:\n%s", path, resp.StatusCode, body, want)
		}
		examples++
	}
	if examples != 4 {
		t.Fatalf("%d examples in the ledger section; want 4", examples)
	}
}
