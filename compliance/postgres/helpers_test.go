package postgres_test

import (
	"context"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/settlement"
)

// regulator is the actor of the tests' registry writes.
var regulator = compliance.Actor{ID: "regulator-1", Reason: "test setup"}

// tenge is one tenge in KZT minor units (tiyn).
const tenge = 100

// scales are the assets' scales as the migrations define them; DOGE is not
// an asset the store knows (its scale is only for writing the fills row).
var scales = map[string]int{"BTC": 8, "ETH": 9, "USDT": 6, "KZT": 2, "DOGE": 8}

// defaultPrice is the price a sale is made at unless told otherwise, in
// tiyn per whole base unit.
var defaultPrice = map[string]int64{"BTC": 30_000_000 * tenge, "ETH": 1_500_000 * tenge, "DOGE": 100 * tenge}

// almaty reads "YYYY-MM-DD HH:MM" as a wall-clock time in Kazakhstan (UTC+5).
func almaty(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04", s, compliance.Zone)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// setClock stops the store's clock at now.
func setClock(s *postgres.Store, now time.Time) { s.Clock = func() time.Time { return now } }

// setNow stops the store's clock at "YYYY-MM-DD HH:MM" in Kazakhstan.
func setNow(t *testing.T, s *postgres.Store, wall string) {
	t.Helper()
	setClock(s, almaty(t, wall))
}

// openAccount records an engine account as settlement does: its owner and kind.
func openAccount(t *testing.T, db *pgxpool.Pool, id, owner, kind string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), `INSERT INTO accounts (id, owner, kind, opened_seq) VALUES ($1, $2, $3, 1)`,
		id, owner, kind); err != nil {
		t.Fatalf("open account %s: %v", id, err)
	}
}

// sale returns a settled trade "seq-index" in which seller sells qty minor
// units of base for KZT at the asset's default price to buyer-1, tagged
// mandatory, with a buying taker; opts change the event before the quote
// amount is computed.
func sale(id, seller, base string, qty int64, at time.Time, opts ...func(*matching.Event)) settlement.Fill {
	seq, err := strconv.ParseUint(strings.Split(id, "-")[0], 10, 64)
	if err != nil {
		panic("fill id " + id + " is not seq-index")
	}
	ev := matching.Event{Kind: matching.EvTrade, Seq: seq, Time: at.UnixMilli(), Symbol: base + "-KZT", BaseAsset: base,
		QuoteAsset: "KZT", Price: defaultPrice[base], Quantity: qty, BuyerAccount: "buyer-1", SellerAccount: seller,
		BuyOrderID: seq*10 + 1, SellOrderID: seq*10 + 2, Purpose: matching.PurposeMandatory, TakerSide: matching.Buy}
	for _, o := range opts {
		o(&ev)
	}
	// quote amount = price × quantity / 10^scale(base), in tiyn.
	q := new(big.Int).Mul(big.NewInt(ev.Price), big.NewInt(ev.Quantity))
	q.Quo(q, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scales[base])), nil))
	ev.QuoteAmount = q.Int64()
	return settlement.Fill{ID: id, Event: ev}
}

// atPrice sets a trade's price in tiyn per whole base unit.
func atPrice(p int64) func(*matching.Event) { return func(ev *matching.Event) { ev.Price = p } }

// boughtBy sets a trade's buyer account.
func boughtBy(account string) func(*matching.Event) {
	return func(ev *matching.Event) { ev.BuyerAccount = account }
}

// notMandatory makes the sell order an ordinary one.
func notMandatory(ev *matching.Event) { ev.Purpose = matching.PurposeNone }

// inAuction makes the trade an auction trade: no taker.
func inAuction(ev *matching.Event) { ev.TakerSide = 0 }

// insertFills records fills as the settlement writer does, each in a batch
// of its own, with the event's price, quantity, time, symbol, sequence,
// taker side and purpose: ApplyFills reads them back (reference prices)
// and obligation_fills references fills (shard, id).
func insertFills(ctx context.Context, tx pgx.Tx, shard string, fills ...settlement.Fill) error {
	for _, f := range fills {
		ev := f.Event
		var batchID int64
		if err := tx.QueryRow(ctx, `INSERT INTO settlement_batches (shard, first_seq, last_seq, last_stream_id, events, fills, postings)
			VALUES ($1, $2, $2, $3, 1, 1, 4) RETURNING id`, shard, int64(ev.Seq), strconv.FormatUint(ev.Seq, 10)+"-0").Scan(&batchID); err != nil {
			return err
		}
		taker := "auction"
		if ev.TakerSide != 0 {
			taker = ev.TakerSide.String()
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fills (shard, id, seq, batch_id, symbol, base_asset, quote_asset, price, quantity,
				quote_amount, buyer_account, seller_account, buy_order_id, sell_order_id, taker_side, mandatory, executed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::numeric, $9::numeric, $10::numeric, $11, $12, $13, $14, $15, $16, $17)`,
			shard, f.ID, int64(ev.Seq), batchID, ev.Symbol, ev.BaseAsset, ev.QuoteAsset,
			money.Format(ev.Price, scales[ev.QuoteAsset]), money.Format(ev.Quantity, scales[ev.BaseAsset]),
			money.Format(ev.QuoteAmount, scales[ev.QuoteAsset]), ev.BuyerAccount, ev.SellerAccount,
			int64(ev.BuyOrderID), int64(ev.SellOrderID), taker, ev.Purpose == matching.PurposeMandatory,
			time.UnixMilli(ev.Time).UTC()); err != nil {
			return err
		}
	}
	return nil
}

// settle records the fills and attributes them in one transaction, as the
// settlement writer does.
func settle(ctx context.Context, s *postgres.Store, db *pgxpool.Pool, shard string, fills ...settlement.Fill) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := insertFills(ctx, tx, shard, fills...); err != nil {
			return err
		}
		return s.ApplyFills(ctx, tx, shard, fills)
	})
}

// mustSettle is settle failing the test on error.
func mustSettle(t *testing.T, s *postgres.Store, db *pgxpool.Pool, shard string, fills ...settlement.Fill) {
	t.Helper()
	if err := settle(context.Background(), s, db, shard, fills...); err != nil {
		t.Fatalf("settle %d fills on %s: %v", len(fills), shard, err)
	}
}

// submit sends a report from the miner with one wallet.
func submit(s *postgres.Store, minerID, asset string, period time.Time, mined int64) (compliance.ObligationView, error) {
	return s.SubmitReport(context.Background(), compliance.Report{MinerID: minerID, Asset: asset, PeriodStart: period,
		Mined: mined, Wallets: []string{"wallet-" + minerID}, Source: compliance.FromMiner}, regulator)
}

// obligation returns an obligation's detail, failing the test on error.
func obligation(t *testing.T, s *postgres.Store, id int64) postgres.ObligationDetail {
	t.Helper()
	d, err := s.Obligation(context.Background(), id)
	if err != nil {
		t.Fatalf("Obligation(%d): %v", id, err)
	}
	return d
}

// lastAudit returns the newest audit entry of a subject.
func lastAudit(t *testing.T, s *postgres.Store, subject string) postgres.AuditEntry {
	t.Helper()
	es, err := s.Audit(context.Background(), subject, 1)
	if err != nil {
		t.Fatalf("Audit(%s): %v", subject, err)
	}
	if len(es) != 1 {
		t.Fatalf("Audit(%s) = %+v, want one entry", subject, es)
	}
	return es[0]
}
