// Package demo is Satu's demo market: three licensed miners with reports in
// both years of the mandatory-sale schedule, an investment fund and a market
// maker on the other side. It drives Satu only through its public REST and
// websocket APIs, exactly as clients would. `satu demo` runs it once and
// prints the compliance table; `make run` seeds it into the running server.
package demo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsclient"
)

type miner struct {
	compliance.Miner
	licence string // subtype
	reports []report
	sell    string // mandatory sell quantity, BTC, sent after the reports
	limit   string // its limit price, KZT
}

// report is a mined-volume report for the month `ago` months before the
// current one: the demo is relative to the day it runs, because sales only
// count inside an obligation's window (its month to its deadline, 30 days
// after the month).
type report struct {
	ago   int
	mined string
	pool  string // a pool statement for the same month ("" none)
}

// Miners are the demo's miners, one per state an obligation can be in.
// IDs are fixed so the README can query them.
//   - altai-hash sells everything it owes for last month: met;
//   - steppe-compute sells a third: open, and its pool's statement does not
//     match its report (flagged);
//   - ekibastuz-mining reported three and four months ago and sold nothing in
//     time: both overdue, the second a repeat violation within 12 months, with
//     a suspension recommendation — and the regulator suspends its licence;
//     it still owes last month's sale.
var Miners = []miner{
	{Miner: compliance.Miner{ID: "altai-hash", Name: "Altai Hash LLP", BIN: "210140012345", EntityKind: compliance.LegalEntity,
		Accounts: []string{"altai-hash-1"}, Email: "compliance@altaihash.kz", Phone: "+7 7172 000001", Address: "Ust-Kamenogorsk"},
		licence: "I", reports: []report{{1, "1.20000000", "1.20000000"}}, sell: "0.90000000", limit: "43300000.00"},
	{Miner: compliance.Miner{ID: "ekibastuz-mining", Name: "Ekibastuz Mining JSC", BIN: "190540067890", EntityKind: compliance.LegalEntity,
		Accounts: []string{"ekibastuz-1"}, Email: "office@ekibastuzmining.kz"},
		licence: "II", reports: []report{{4, "0.80000000", ""}, {3, "0.50000000", ""}, {1, "0.40000000", ""}}},
	{Miner: compliance.Miner{ID: "steppe-compute", Name: "IE Steppe Compute", BIN: "850712300456", EntityKind: compliance.IndividualEntrepreneur,
		Accounts: []string{"steppe-1"}},
		licence: "II", reports: []report{{1, "0.40000000", "0.39000000"}}, sell: "0.10000000", limit: "43300000.00"},
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
	// APIKey is sent as the bearer API key of every REST call (an
	// operator's for Seed).
	APIKey string
}

// NewClient returns a client for a server at host:port using an API key.
func NewClient(addr, apiKey string) *Client {
	return &Client{HTTP: &http.Client{Timeout: 15 * time.Second}, BaseURL: "http://" + addr, WSURL: "ws://" + addr + "/ws/api",
		APIKey: apiKey}
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
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
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
	err := c.Call(ctx, "GET", "/v1/compliance/obligations?miner="+Miners[0].ID, nil, nil)
	switch apperr.CodeOf(err) {
	case "":
		return true, nil
	case apperr.UnknownMiner:
		return false, nil
	}
	return false, err
}

// month returns the first day of the month ago months before today's.
func month(today time.Time, ago int) time.Time {
	return time.Date(today.Year(), today.Month()-time.Month(ago), 1, 0, 0, 0, 0, time.UTC)
}

// Seed registers a pool, a data centre, the miners with their licences,
// equipment and electricity, their reports and the pools' statements; funds
// everyone, builds the book and sends the miners' mandatory sales; waits
// until all of it is settled; then runs the compliance sweep, suspends
// ekibastuz-mining's licence as its repeat violation recommends, and
// assesses last quarter's mining fees. today is the day it runs.
func (c *Client) Seed(ctx context.Context, today time.Time) error {
	steps := []struct {
		path string
		body any
	}{
		{"/v1/operator/pools", map[string]string{"id": "kazpool", "name": "KazPool LLP", "accreditation": "KZ-POOL-0001",
			"accreditedOn": "2023-09-01", "location": "Astana"}},
		{"/v1/operator/datacentres", compliance.DataCentre{ID: "ekibastuz-dc", Name: "Ekibastuz DC-1", Operator: "Ekibastuz Hosting LLP",
			Location: "Ekibastuz, Pavlodar region", CapacityKW: 40_000}},
	}
	for _, st := range steps {
		if err := c.Call(ctx, "POST", st.path, st.body, nil); err != nil {
			return fmt.Errorf("%s: %w", st.path, err)
		}
	}
	issued := month(today, 24).Format(time.DateOnly) // two years ago: every reported month is licensed
	lastQuarter := month(today, 3+int(today.Month()-1)%3)
	for i, m := range Miners {
		if err := c.Call(ctx, "POST", "/v1/operator/miners", m.Miner, nil); err != nil {
			return fmt.Errorf("register %s: %w", m.ID, err)
		}
		lic := map[string]string{"miner": m.ID, "number": fmt.Sprintf("KZ-DM-%s-1", strings.ToUpper(m.ID[:3])),
			"subtype": m.licence, "issuedOn": issued, "status": "active"}
		if err := c.Call(ctx, "POST", "/v1/operator/licences", lic, nil); err != nil {
			return fmt.Errorf("licence %s: %w", m.ID, err)
		}
		eq := compliance.Equipment{Serial: fmt.Sprintf("S19XP-%04d", i+1), Model: "Antminer S19 XP", HashRate: "140",
			RatedPower: 3010, Location: "Ekibastuz DC-1", DataCentre: "ekibastuz-dc", Pool: "kazpool", MinerID: m.ID}
		if err := c.Call(ctx, "POST", "/v1/operator/equipment", eq, nil); err != nil {
			return fmt.Errorf("equipment %s: %w", m.ID, err)
		}
		for k := range 3 { // last quarter's electricity: quota and metered grid power
			mon := lastQuarter.AddDate(0, k, 0).Format("2006-01")
			quota, used := 2_000_000, 1_800_000+i*150_000 // steppe-compute runs over its quota
			if err := c.Call(ctx, "POST", "/v1/operator/quotas", map[string]any{"miner": m.ID, "month": mon, "kwh": quota}, nil); err != nil {
				return fmt.Errorf("quota %s: %w", m.ID, err)
			}
			if err := c.Call(ctx, "POST", "/v1/operator/consumption", map[string]any{"miner": m.ID, "month": mon, "source": "grid",
				"kwh": used, "metered": true, "avgPrice": "7.50"}, nil); err != nil {
				return fmt.Errorf("consumption %s: %w", m.ID, err)
			}
		}
		for _, r := range m.reports {
			period := month(today, r.ago).Format("2006-01")
			rep := map[string]any{"miner": m.ID, "asset": "BTC", "period": period, "mined": r.mined,
				"wallets": []string{"bc1q" + strings.ReplaceAll(m.ID, "-", "") + period[:4]}}
			if err := c.Call(ctx, "POST", "/v1/reports", rep, nil); err != nil {
				return fmt.Errorf("report %s %s: %w", m.ID, period, err)
			}
			if r.pool != "" {
				st := map[string]string{"pool": "kazpool", "miner": m.ID, "asset": "BTC", "period": period, "quantity": r.pool}
				if err := c.Call(ctx, "POST", "/v1/operator/poolStatements", st, nil); err != nil {
					return fmt.Errorf("pool statement %s: %w", m.ID, err)
				}
			}
			if err := c.deposit(ctx, m.Accounts[0], "BTC", r.mined, "mined-"+m.ID+"-"+period); err != nil {
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
	// Each party signs its orders with its own Ed25519 key.
	signers := map[string]access.Signer{}
	var err error
	for _, t := range traders {
		if signers[t.account], err = c.NewSigner(ctx, KeyRequest{Role: t.kind, Account: t.account, Label: "demo " + t.account}); err != nil {
			return err
		}
	}
	for _, m := range Miners {
		if signers[m.Accounts[0]], err = c.NewSigner(ctx, KeyRequest{Role: "miner", Miner: m.ID, Label: "demo " + m.ID}); err != nil {
			return err
		}
	}
	for i, o := range bookOrders {
		if err := c.place(ctx, signers[o.account], wsapi.PlaceParams{Symbol: "BTCKZT", Side: o.side, Type: "LIMIT", Price: o.price,
			Quantity: o.qty, NewClientOrderID: fmt.Sprintf("demo-book-%d", i)}); err != nil {
			return err
		}
	}
	for _, m := range Miners {
		if m.sell == "" {
			continue
		}
		if err := c.place(ctx, signers[m.Accounts[0]], wsapi.PlaceParams{Symbol: "BTCKZT", Side: "SELL", Type: "LIMIT", Price: m.limit,
			Quantity: m.sell, NewClientOrderID: "demo-mandatory-1", Mandatory: true}); err != nil {
			return err
		}
	}
	if err := c.WaitSettled(ctx); err != nil {
		return err
	}
	if err := c.Call(ctx, "POST", "/v1/operator/compliance/sweep", nil, nil); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	suspend := map[string]string{"kind": "suspend", "from": today.Format(time.DateOnly),
		"until": today.AddDate(0, 3, 0).Format(time.DateOnly), "reason": "repeat violation of the mandatory sale: the sweep recommends 3 months"}
	if err := c.Call(ctx, "POST", "/v1/operator/licences/KZ-DM-EKI-1/changes", suspend, nil); err != nil {
		return fmt.Errorf("suspend: %w", err)
	}
	q := fmt.Sprintf("%d-Q%d", lastQuarter.Year(), (int(lastQuarter.Month())+2)/3)
	for _, m := range Miners {
		if err := c.Call(ctx, "POST", "/v1/operator/fees", map[string]string{"miner": m.ID, "quarter": q}, nil); err != nil {
			return fmt.Errorf("fee %s: %w", m.ID, err)
		}
	}
	return nil
}

func (c *Client) deposit(ctx context.Context, account, asset, amount, ref string) error {
	err := c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": account, "asset": asset, "amount": amount, "extRef": ref}, nil)
	if err != nil {
		return fmt.Errorf("deposit %s %s: %w", amount, asset, err)
	}
	return nil
}

func (c *Client) place(ctx context.Context, signer access.Signer, p wsapi.PlaceParams) error {
	ws, err := wsclient.Dial(ctx, c.WSURL)
	if err != nil {
		return err
	}
	defer ws.Close()
	s, err := ws.Logon(ctx, signer, "")
	if err != nil {
		return err
	}
	if _, err := ws.Place(ctx, p); err != nil {
		return fmt.Errorf("%s %s %s: %w", s.Account, p.Side, p.Quantity, err)
	}
	return nil
}

// KeyRequest is POST /v1/operator/keys's body.
type KeyRequest struct {
	Role      string `json:"role"`
	Miner     string `json:"miner,omitempty"`
	Account   string `json:"account,omitempty"`
	Label     string `json:"label"`
	Signing   string `json:"signing,omitempty"`   // NewSigner sets it
	PublicKey string `json:"publicKey,omitempty"` // NewSigner sets it
}

// NewSigner issues a signing key with the client's (operator's) API key:
// an Ed25519 key pair made here, of which only the public key is sent —
// or, with hmac, a key whose secret the exchange issues.
func (c *Client) NewSigner(ctx context.Context, req KeyRequest) (access.Signer, error) {
	return c.newSigner(ctx, req, false)
}

// NewHMACSigner is NewSigner for an HMAC-SHA256 key.
func (c *Client) NewHMACSigner(ctx context.Context, req KeyRequest) (access.Signer, error) {
	return c.newSigner(ctx, req, true)
}

func (c *Client) newSigner(ctx context.Context, req KeyRequest, hmac bool) (access.Signer, error) {
	var priv ed25519.PrivateKey
	if hmac {
		req.Signing = string(access.SigningHMAC)
	} else {
		pub, p, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return access.Signer{}, err
		}
		priv, req.Signing, req.PublicKey = p, string(access.SigningEd25519), base64.StdEncoding.EncodeToString(pub)
	}
	var out struct{ ID, HMACSecret string }
	if err := c.Call(ctx, "POST", "/v1/operator/keys", req, &out); err != nil {
		return access.Signer{}, fmt.Errorf("signing key for %s%s: %w", req.Miner, req.Account, err)
	}
	if hmac {
		return access.Signer{APIKey: out.ID, Kind: access.SigningHMAC, HMACSecret: []byte(out.HMACSecret)}, nil
	}
	return access.Signer{APIKey: out.ID, Kind: access.SigningEd25519, Ed25519: priv}, nil
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

// Table writes the compliance table of the demo's miners, with each
// overdue obligation's violation.
func (c *Client) Table(ctx context.Context, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "miner\tperiod\tmined BTC\tshare\trequired BTC\tsold BTC\tremaining BTC\tstatus\tviolation\t")
	for _, m := range Miners {
		var res struct {
			Obligations []compliance.ObligationView `json:"obligations"`
		}
		if err := c.Call(ctx, "GET", "/v1/compliance/obligations?miner="+m.ID, nil, &res); err != nil {
			return err
		}
		var vs struct {
			Violations []struct {
				Obligation       int64 `json:"obligation"`
				Number           int   `json:"number"`
				FineMCI          int64 `json:"fineMci"`
				SuspensionMonths int   `json:"suspensionRecommendedMonths"`
			} `json:"violations"`
		}
		if err := c.Call(ctx, "GET", "/v1/compliance/violations?miner="+m.ID, nil, &vs); err != nil {
			return err
		}
		for _, o := range res.Obligations {
			violation := "-"
			for _, v := range vs.Violations {
				if v.Obligation == o.ID {
					violation = fmt.Sprintf("#%d: %d MCI", v.Number, v.FineMCI)
					if v.SuspensionMonths > 0 {
						violation += fmt.Sprintf(", suspend %d mo", v.SuspensionMonths)
					}
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", m.ID, o.Period, o.Mined, o.Share, o.Required, o.Sold,
				o.Remaining, o.Status, violation)
		}
	}
	return tw.Flush()
}
