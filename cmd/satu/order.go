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
	account := fs.String("account", "", "account to log on as")
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
	if *account == "" || p.Side == "" || p.Price == "" || p.Quantity == "" || p.NewClientOrderID == "" {
		return fmt.Errorf("-account, -side, -price, -quantity and -client-id are required")
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
	if err := ws.Logon(ctx, *account); err != nil {
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
