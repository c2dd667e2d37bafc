package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/demo"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsclient"
)

// apiDocExamples reads the request/response pairs of docs/api.md's
// websocket examples: each json block of the section holds a request line
// and its response line.
func apiDocExamples(t *testing.T) [][2]string {
	t.Helper()
	text := docSection(t, "docs/api.md", "### Websocket examples")
	var out [][2]string
	for {
		i := strings.Index(text, "```json\n")
		if i < 0 {
			return out
		}
		text = text[i+len("```json\n"):]
		j := strings.Index(text, "```")
		lines := strings.Split(strings.TrimSpace(text[:j]), "\n")
		text = text[j+3:]
		if len(lines) != 2 {
			t.Fatalf("an example block must be a request line and a response line: %q", lines)
		}
		out = append(out, [2]string{lines[0], lines[1]})
	}
}

// docSection returns the text of a Markdown file of the repository from
// heading up to the next second-level heading.
func docSection(t *testing.T, file, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../" + file)
	must(t, err)
	text := string(b)
	start := strings.Index(text, heading)
	if start < 0 {
		t.Fatalf("%s has no %q", file, heading)
	}
	text = text[start+len(heading):]
	if end := strings.Index(text, "\n## "); end >= 0 {
		text = text[:end]
	}
	return text
}

// apiDocJSONLines returns the lines of the first JSON block after heading
// in docs/api.md.
func apiDocJSONLines(t *testing.T, heading string) []string {
	t.Helper()
	text := docSection(t, "docs/api.md", heading)
	i := strings.Index(text, "```json\n")
	if i < 0 {
		t.Fatalf("docs/api.md has no JSON block after %q", heading)
	}
	text = text[i+len("```json\n"):]
	return strings.Split(strings.TrimSpace(text[:strings.Index(text, "```")]), "\n")
}

// sameShape reports whether have has want's shape: the same object keys
// (recursively), arrays whose elements have the shapes of want's element
// by element when both are as long, else all the shape of want's first,
// values of the same JSON type; "…" stands for any value.
func sameShape(want, have any) bool {
	if w, ok := want.(string); ok && w == "…" {
		return true
	}
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for k, wv := range w {
			hv, ok := h[k]
			if !ok || !sameShape(wv, hv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(w) > 0 && len(h) == 0 || len(w) == 0 && len(h) > 0 {
			return false
		}
		for i, hv := range h {
			wv := w[0]
			if len(w) == len(h) {
				wv = w[i] // as long as the example: element by element
			}
			if !sameShape(wv, hv) {
				return false
			}
		}
		return true
	default:
		return fmt.Sprintf("%T", want) == fmt.Sprintf("%T", have)
	}
}

// TestAPIDocExamples sends every websocket example of docs/api.md, in
// order, to a real service and checks each response's shape, its status
// and, for errors, its code. Signed examples are signed anew with a key
// issued for the example's miner.
func TestAPIDocExamples(t *testing.T) {
	_, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The examples' world: a licensed miner who owes a sale and holds the
	// coins, and a fund bidding for them.
	must(t, c.Call(ctx, "POST", "/v1/operator/miners", compliance.Miner{ID: "doc-miner", Name: "Doc Miner LLP",
		BIN: "230140000003", EntityKind: compliance.LegalEntity, Accounts: []string{"doc-miner-1"}}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/licences", map[string]string{"miner": "doc-miner", "number": "KZ-DM-DOC",
		"subtype": "I", "issuedOn": "2025-01-01", "status": "active"}, nil))
	period, _ := lastMonth()
	must(t, c.Call(ctx, "POST", "/v1/reports", map[string]any{"miner": "doc-miner", "asset": "BTC",
		"period": period.Format("2006-01"), "mined": "0.40000000", "wallets": []string{"bc1qdocminer"}}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "doc-miner-1", "asset": "BTC", "amount": "1", "extRef": "doc-btc"}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": "doc-fund", "owner": "doc-fund", "kind": "trader"}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "doc-fund", "asset": "KZT", "amount": "100000000", "extRef": "doc-kzt"}, nil))
	fund, err := c.NewSigner(ctx, trader("doc-fund"))
	must(t, err)
	fws, err := wsclient.Dial(ctx, c.WSURL)
	must(t, err)
	defer fws.Close()
	_, err = fws.Logon(ctx, fund, "")
	must(t, err)
	_, err = fws.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: "BUY", Type: "LIMIT", Price: "43550000", Quantity: "0.3", NewClientOrderID: "doc-bid"})
	must(t, err)
	signer, err := c.NewSigner(ctx, demo.KeyRequest{Role: "miner", Miner: "doc-miner", Label: "doc miner"})
	must(t, err)
	must(t, c.WaitSettled(ctx))

	ws, _, err := websocket.DefaultDialer.DialContext(ctx, c.WSURL, nil)
	must(t, err)
	defer ws.Close()
	examples := apiDocExamples(t)
	if len(examples) < 12 {
		t.Fatalf("docs/api.md has %d websocket examples; every method has one", len(examples))
	}
	methods := map[string]bool{}
	for i, ex := range examples {
		var req map[string]any
		if err := json.Unmarshal([]byte(ex[0]), &req); err != nil {
			t.Fatalf("example %d: request is not JSON: %v", i+1, err)
		}
		methods[req["method"].(string)] = true
		if params, ok := req["params"].(map[string]any); ok && params[access.ParamSignature] != nil {
			for _, k := range []string{access.ParamAPIKey, access.ParamTimestamp, access.ParamRecvWindow, access.ParamSignature} {
				delete(params, k)
			}
			req["params"], err = signer.Sign(req["method"].(string), params, time.Now())
			must(t, err)
		}
		must(t, ws.WriteJSON(req))
		_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, got, err := ws.ReadMessage()
		must(t, err)
		var want, have any
		if err := json.Unmarshal([]byte(ex[1]), &want); err != nil {
			t.Fatalf("example %d: response is not JSON: %v", i+1, err)
		}
		must(t, json.Unmarshal(got, &have))
		t.Logf("example %d answered %s", i+1, got)
		w, h := want.(map[string]any), have.(map[string]any)
		ok := sameShape(want, have) && w["status"] == h["status"]
		if we, isErr := w["error"].(map[string]any); isErr && ok {
			ok = we["code"] == h["error"].(map[string]any)["code"]
		}
		if !ok {
			t.Errorf("example %d: %s\ndocs/api.md says:\n%s\nSatu answered:\n%s", i+1, ex[0], ex[1], got)
		}
	}
	for _, m := range []string{"session.logon", "order.place", "batchOrders.place", "batchOrders.cancel", "order.amend", "order.status", "order.cancel", "openOrders.status",
		"openOrders.cancelAll", "account.status", "depth", "obligations.status", "exchangeInfo", "ping"} {
		if !methods[m] {
			t.Errorf("docs/api.md has no example of %s", m)
		}
	}
}
