package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/demo"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsclient"
)

// orderCmd places one order over the websocket API, prints the result as
// JSON and waits until settlement has caught up, so that what follows sees
// the fill.
func orderCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("satu order", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "Satu's address")
	signerFile := fs.String("signer", "", "the signing key file (satu signer writes one)")
	account := fs.String("account", "", "the account to trade for, when the key acts for several")
	var p wsapi.PlaceParams
	fs.StringVar(&p.Symbol, "symbol", "BTCKZT", "symbol")
	fs.StringVar(&p.Side, "side", "", "BUY or SELL")
	fs.StringVar(&p.Type, "type", "LIMIT", "order type")
	fs.StringVar(&p.TimeInForce, "tif", "GTC", "GTC or IOC")
	fs.StringVar(&p.Price, "price", "", "limit price in the quote asset")
	fs.StringVar(&p.Quantity, "quantity", "", "quantity in the base asset")
	fs.StringVar(&p.NewClientOrderID, "client-id", "", "client order ID (a retry with the same ID changes nothing)")
	fs.BoolVar(&p.Mandatory, "mandatory", false, "a mandatory sale under the law (miners only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *signerFile == "" || p.Side == "" || p.Price == "" || p.Quantity == "" || p.NewClientOrderID == "" {
		return fmt.Errorf("-signer, -side, -price, -quantity and -client-id are required")
	}
	b, err := os.ReadFile(*signerFile)
	if err != nil {
		return err
	}
	signer, err := access.ParseSignerFile(b)
	if err != nil {
		return fmt.Errorf("%s: %w", *signerFile, err)
	}
	p.Side = strings.ToUpper(p.Side)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := demo.NewClient(*addr, "") // settlement status is public
	ws, err := wsclient.Dial(ctx, c.WSURL)
	if err != nil {
		return err
	}
	defer ws.Close()
	if _, err := ws.Logon(ctx, signer, *account); err != nil {
		return err
	}
	res, err := ws.Place(ctx, p)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return err
	}
	return c.WaitSettled(ctx)
}

// signerCmd issues a websocket signing key through the REST API with an
// operator's key: an Ed25519 key pair is made here and only its public key
// is sent (-hmac: the exchange issues an HMAC secret instead). The private
// half goes to -out (mode 0600) for `satu order -signer`; stdout gets the
// key's ID.
func signerCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("satu signer", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "Satu's address")
	opKey := fs.String("operator-key", "", "file holding an operator's API key (make run: .satu/keys/operator.token)")
	out := fs.String("out", "", "file to write the signing key to (mode 0600; it holds the private key)")
	hmac := fs.Bool("hmac", false, "an HMAC-SHA256 key issued by the exchange instead of an Ed25519 key pair")
	var req demo.KeyRequest
	fs.StringVar(&req.Role, "role", "", "miner, trader or market_maker")
	fs.StringVar(&req.Miner, "miner", "", "miner keys: the registered miner (the key acts for its accounts)")
	fs.StringVar(&req.Account, "account", "", "trader and market_maker keys: the account")
	fs.StringVar(&req.Label, "label", "", "whose key it is and what for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *opKey == "" || *out == "" || req.Role == "" || req.Label == "" {
		return fmt.Errorf("-operator-key, -out, -role and -label are required")
	}
	tok, err := os.ReadFile(*opKey)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := demo.NewClient(*addr, strings.TrimSpace(string(tok)))
	issue := c.NewSigner
	if *hmac {
		issue = c.NewHMACSigner
	}
	signer, err := issue(ctx, req)
	if err != nil {
		return err
	}
	b, err := signer.MarshalFile()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, b, 0o600); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]string{"apiKey": signer.APIKey, "role": req.Role,
		"miner": req.Miner, "account": req.Account, "signing": string(signer.Kind)})
}
