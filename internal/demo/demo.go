// Package demo is Satu's demo market: three licensed miners with reports in
// both years of the mandatory-sale schedule, an investment fund and a market
// maker on the other side. It drives Satu only through its public REST and
// websocket APIs, exactly as clients would. `satu demo` runs it once and
// prints the compliance table; `make run` seeds it into the running server.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsclient"
)

type miner struct {
	compliance.Miner
	licence  string // subtype
	issuedOn string
	reports  []report
	sell     string // mandatory sell quantity, BTC
	limit    string // its limit price, KZT
}

type report struct{ period, mined string }

// Miners are the demo's miners. IDs are fixed so the README can query them.
var Miners = []miner{
	{Miner: compliance.Miner{ID: "altai-hash", Name: "Altai Hash LLP", BIN: "210140012345", EntityKind: compliance.LegalEntity,
		Accounts: []string{"altai-hash-1"}}, licence: "I", issuedOn: "2024-01-10",
		reports: []report{{"2024-06", "2.00000000"}, {"2025-01", "1.20000000"}}, sell: "1.90000000", limit: "43300000.00"},
	{Miner: compliance.Miner{ID: "ekibastuz-mining", Name: "Ekibastuz Mining JSC", BIN: "190540067890", EntityKind: compliance.LegalEntity,
		Accounts: []string{"ekibastuz-1"}}, licence: "II", issuedOn: "2024-03-15",
		reports: []report{{"2024-11", "0.80000000"}, {"2025-02", "0.50000000"}}, sell: "0.77500000", limit: "43300000.00"},
	{Miner: compliance.Miner{ID: "steppe-compute", Name: "IE Steppe Compute", BIN: "850712300456", EntityKind: compliance.IndividualEntrepreneur,
		Accounts: []string{"steppe-1"}}, licence: "II", issuedOn: "2025-01-10",
		reports: []report{{"2025-03", "0.40000000"}}, sell: "0.10000000", limit: "43300000.00"},
}

type order struct {
	account, side, price, qty string
}

// The other side: a fund's bid and a market maker's ladder.
var (
	traders = []struct{ account, owner, kind, kzt, btc string }{
		{"kaspi-fund", "kaspi-fund", "trader", "100000000.00", ""},
		{"aix-mm", "aix-mm", "market_maker", "300000000.00", "5.00000000"},
	}
	bookOrders = []order{
		{"kaspi-fund", "BUY", "43550000.00", "1.50000000"},
		{"aix-mm", "BUY", "43500000.00", "1.00000000"},
		{"aix-mm", "BUY", "43400000.00", "1.00000000"},
		{"aix-mm", "BUY", "43300000.00", "2.00000000"},
		{"aix-mm", "SELL", "43700000.00", "0.50000000"},
		{"aix-mm", "SELL", "43800000.00", "1.00000000"},
	}
)

// Client reaches one Satu server.
type Client struct {
	HTTP    *http.Client
	BaseURL string // http://127.0.0.1:8080
	WSURL   string // ws://127.0.0.1:8080/ws/api
}

// NewClient returns a client for a server at host:port.
func NewClient(addr string) *Client {
	return &Client{HTTP: &http.Client{Timeout: 15 * time.Second}, BaseURL: "http://" + addr, WSURL: "ws://" + addr + "/ws/api"}
}

// Call does one REST request; an error answer becomes its *apperr.Error.
func (c *Client) Call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e apperr.Error
		if json.Unmarshal(data, &e) == nil && e.Code != "" {
			return &e
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Seeded reports whether the demo's first miner exists already.
func (c *Client) Seeded(ctx context.Context) (bool, error) {
	err := c.Call(ctx, "GET", "/v1/regulator/obligations?miner="+Miners[0].ID, nil, nil)
	switch apperr.CodeOf(err) {
	case "":
		return true, nil
	case apperr.UnknownMiner:
		return false, nil
	}
	return false, err
}

// Seed registers the miners, licences and reports, funds everyone, builds
// the book and sends the miners' mandatory sales; then waits until all of
// it is settled. today decides whether a licence needs renewing to be
// active now (the 3-year term).
func (c *Client) Seed(ctx context.Context, today time.Time) error {
	for _, m := range Miners {
		if err := c.Call(ctx, "POST", "/v1/operator/miners", m.Miner, nil); err != nil {
			return fmt.Errorf("register %s: %w", m.ID, err)
		}
		issued, _ := time.Parse(time.DateOnly, m.issuedOn)
		licences := []string{m.issuedOn}
		if !today.Before(compliance.LicenceExpiresOn(issued)) {
			licences = append(licences, today.Format(time.DateOnly)) // the renewal
		}
		for i, on := range licences {
			lic := map[string]string{"miner": m.ID, "number": fmt.Sprintf("KZ-DM-%s-%d", strings.ToUpper(m.ID[:3]), i+1),
				"subtype": m.licence, "issuedOn": on, "status": "active"}
			if err := c.Call(ctx, "POST", "/v1/operator/licences", lic, nil); err != nil {
				return fmt.Errorf("licence %s: %w", m.ID, err)
			}
		}
		for _, r := range m.reports {
			rep := map[string]string{"miner": m.ID, "asset": "BTC", "period": r.period, "mined": r.mined}
			if err := c.Call(ctx, "POST", "/v1/reports", rep, nil); err != nil {
				return fmt.Errorf("report %s %s: %w", m.ID, r.period, err)
			}
			if err := c.deposit(ctx, m.Accounts[0], "BTC", r.mined, "mined-"+m.ID+"-"+r.period); err != nil {
				return err
			}
		}
	}
	for _, t := range traders {
		if err := c.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": t.account, "owner": t.owner, "kind": t.kind}, nil); err != nil {
			return fmt.Errorf("account %s: %w", t.account, err)
		}
		if err := c.deposit(ctx, t.account, "KZT", t.kzt, "wire-"+t.account); err != nil {
			return err
		}
		if t.btc != "" {
			if err := c.deposit(ctx, t.account, "BTC", t.btc, "btc-"+t.account); err != nil {
				return err
			}
		}
	}
	for i, o := range bookOrders {
		if err := c.place(ctx, o.account, wsapi.PlaceParams{Symbol: "BTCKZT", Side: o.side, Type: "LIMIT", Price: o.price,
			Quantity: o.qty, NewClientOrderID: fmt.Sprintf("demo-book-%d", i)}); err != nil {
			return err
		}
	}
	for _, m := range Miners {
		if err := c.place(ctx, m.Accounts[0], wsapi.PlaceParams{Symbol: "BTCKZT", Side: "SELL", Type: "LIMIT", Price: m.limit,
			Quantity: m.sell, NewClientOrderID: "demo-mandatory-1", Mandatory: true}); err != nil {
			return err
		}
	}
	return c.WaitSettled(ctx)
}

func (c *Client) deposit(ctx context.Context, account, asset, amount, ref string) error {
	err := c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": account, "asset": asset, "amount": amount, "extRef": ref}, nil)
	if err != nil {
		return fmt.Errorf("deposit %s %s: %w", amount, asset, err)
	}
	return nil
}

func (c *Client) place(ctx context.Context, account string, p wsapi.PlaceParams) error {
	ws, err := wsclient.Dial(ctx, c.WSURL)
	if err != nil {
		return err
	}
	defer ws.Close()
	if err := ws.Logon(ctx, account); err != nil {
		return err
	}
	if _, err := ws.Place(ctx, p); err != nil {
		return fmt.Errorf("%s %s %s: %w", account, p.Side, p.Quantity, err)
	}
	return nil
}

// WaitSettled waits until settlement has caught up with the engine.
func (c *Client) WaitSettled(ctx context.Context) error {
	for {
		var st struct{ EngineSeq, SettledSeq uint64 }
		if err := c.Call(ctx, "GET", "/v1/settlement/status", nil, &st); err != nil {
			return err
		}
		if st.SettledSeq >= st.EngineSeq {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("settlement did not catch up (engine %d, settled %d): %w", st.EngineSeq, st.SettledSeq, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Table writes the compliance table of the demo's miners.
func (c *Client) Table(ctx context.Context, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "miner\tperiod\tmined BTC\tshare\trequired BTC\tsold BTC\tremaining BTC\tstatus\t")
	for _, m := range Miners {
		var res struct {
			Obligations []compliance.ObligationView `json:"obligations"`
		}
		if err := c.Call(ctx, "GET", "/v1/regulator/obligations?miner="+m.ID, nil, &res); err != nil {
			return err
		}
		for _, o := range res.Obligations {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", m.ID, o.Period, o.Mined, o.Share, o.Required, o.Sold, o.Remaining, o.Status)
		}
	}
	return tw.Flush()
}
