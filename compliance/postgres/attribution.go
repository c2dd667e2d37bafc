package postgres

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/settlement"
)

// ApplyFills attributes the batch's fills sold by miners' accounts to the
// miners' obligations, inside the settlement transaction (the batch's fills
// are already written in it): each such sale is counted towards open
// obligations (compliance.Attribution.Attribute: FIFO by deadline, inside
// the obligation's window, tagged mandatory, buyer not owned by the seller,
// price within tolerance of the reference) or recorded in excluded_fills
// with its reason. Fills of other sellers cost one lookup per batch.
// Implements settlement/postgres.FillSink.
func (s *Store) ApplyFills(ctx context.Context, tx pgx.Tx, shard string, fills []settlement.Fill) error {
	// The log's lock comes before any obligation row (ARCHITECTURE.md, Locks).
	if err := lockLog(ctx, tx); err != nil {
		return err
	}
	items, err := s.attributeFills(ctx, tx, shard, fills)
	if err != nil {
		return err
	}
	// Every fill is a leaf, then what compliance made of them.
	return s.appendLog(ctx, tx, shard, fills, items)
}

func (s *Store) attributeFills(ctx context.Context, tx pgx.Tx, shard string, fills []settlement.Fill) ([]logItem, error) {
	sellers := make([]string, 0, 8)
	seen := make(map[string]bool, 8)
	for i := range fills {
		if a := fills[i].Event.SellerAccount; !seen[a] {
			seen[a] = true
			sellers = append(sellers, a)
		}
	}
	minerOf, err := s.ownersOf(ctx, tx, `SELECT account, miner_id FROM miner_accounts WHERE account = ANY($1)`, sellers)
	if err != nil || len(minerOf) == 0 {
		return nil, err
	}
	var buyers []string
	for i := range fills {
		if minerOf[fills[i].Event.SellerAccount] != "" {
			buyers = append(buyers, fills[i].Event.BuyerAccount)
		}
	}
	// A miner's accounts belong to the miner whatever owner the engine was
	// given; other accounts to their engine owner.
	ownerOf, err := s.ownersOf(ctx, tx, `SELECT a.id, coalesce(ma.miner_id, a.owner) FROM accounts a
		LEFT JOIN miner_accounts ma ON ma.account = a.id WHERE a.id = ANY($1)`, buyers)
	if err != nil {
		return nil, err
	}
	var items []logItem
	for i := range fills {
		f := &fills[i]
		miner := minerOf[f.Event.SellerAccount]
		if miner == "" {
			continue
		}
		if err := s.attribute(ctx, tx, shard, f, miner, ownerOf[f.Event.BuyerAccount], &items); err != nil {
			return nil, fmt.Errorf("fill %s: %w", f.ID, err)
		}
	}
	return items, nil
}

func (s *Store) ownersOf(ctx context.Context, tx pgx.Tx, sql string, accounts []string) (map[string]string, error) {
	out := map[string]string{}
	if len(accounts) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, sql, accounts)
	if err != nil {
		return nil, fmt.Errorf("compliance: owners: %w", err)
	}
	var account, owner string
	_, err = pgx.ForEachRow(rows, []any{&account, &owner}, func() error {
		out[account] = owner
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compliance: owners: %w", err)
	}
	return out, nil
}

func (s *Store) attribute(ctx context.Context, tx pgx.Tx, shard string, f *settlement.Fill, miner, buyerOwner string, items *[]logItem) error {
	ev := &f.Event
	base, ok := s.scales[ev.BaseAsset]
	if !ok {
		return fmt.Errorf("unknown asset %q", ev.BaseAsset)
	}
	sale := compliance.Sale{FillID: f.ID, Asset: ev.BaseAsset, Proceeds: ev.QuoteAsset, Quantity: ev.Quantity, Price: ev.Price,
		ExecutedAt: time.UnixMilli(ev.Time).UTC(), Mandatory: ev.Purpose == matching.PurposeMandatory,
		Miner: miner, BuyerOwner: buyerOwner, Basis: compliance.BasisNone}
	var open []compliance.OpenObligation
	if sale.Mandatory {
		var err error
		if sale.Reference, sale.Basis, err = s.reference(ctx, tx, shard, ev); err != nil {
			return err
		}
		if open, err = s.openObligations(ctx, tx, miner, ev.BaseAsset); err != nil {
			return err
		}
	}
	allocs, excluded := s.rules.Attribution.Attribute(sale, open)
	reference := refText(sale.Reference, ev.QuoteAsset, s.scales)
	for _, a := range allocs {
		var required, sold, was string
		if err := tx.QueryRow(ctx, `SELECT required::text, sold::text, status FROM obligations WHERE id = $1`, a.ObligationID).
			Scan(&required, &sold, &was); err != nil {
			return err
		}
		req, err := money.Parse(required, base)
		if err != nil {
			return err
		}
		before, err := money.Parse(sold, base)
		if err != nil {
			return err
		}
		_, status := compliance.Progress(req, before+a.Quantity)
		if status == compliance.StatusOpen && was == string(compliance.StatusOverdue) {
			status = compliance.StatusOverdue // its violation stands
		}
		if _, err := tx.Exec(ctx, `UPDATE obligations SET sold = $2::numeric, status = $3,
				met_at = CASE WHEN $3::text = 'met' THEN $4::timestamptz END WHERE id = $1`,
			a.ObligationID, money.Format(before+a.Quantity, base), string(status), sale.ExecutedAt); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO obligation_fills (obligation_id, shard, fill_id, quantity, reference, basis)
			VALUES ($1, $2, $3, $4::numeric, $5::numeric, $6)`,
			a.ObligationID, shard, f.ID, money.Format(a.Quantity, base), reference, sale.Basis); err != nil {
			return err
		}
		*items = append(*items, attributionItem(shard, f.ID, miner, a.ObligationID, money.Format(a.Quantity, base), "", reference, sale.Basis))
		if status == compliance.StatusMet {
			*items = append(*items, stateItem(a.ObligationID, miner, status, money.Format(before+a.Quantity, base), sale.ExecutedAt))
		}
	}
	for _, x := range excluded {
		if _, err := tx.Exec(ctx, `INSERT INTO excluded_fills (shard, fill_id, miner_id, asset, quantity, reason, detail, reference, basis)
			VALUES ($1, $2, $3, $4, $5::numeric, $6, $7, $8::numeric, $9)`,
			shard, f.ID, miner, ev.BaseAsset, money.Format(x.Quantity, base), x.Reason, x.Detail, reference, sale.Basis); err != nil {
			return err
		}
		*items = append(*items, attributionItem(shard, f.ID, miner, 0, money.Format(x.Quantity, base), x.Reason, reference, sale.Basis))
	}
	return nil
}

// attributionItem is the log entry of a counted (obligation ≠ 0) or excluded
// part of a sale.
func attributionItem(shard, fill, miner string, obligation int64, qty, reason string, reference *string, basis string) logItem {
	ref := ""
	if reference != nil {
		ref = *reference
	}
	return logItem{kind: proof.KindAttribution, ref: shard + "/" + fill, obligation: obligation, miner: miner, keepData: true,
		data: proof.MustEncode(proof.KindAttribution, proof.Attribution{Shard: shard, Fill: fill, Miner: miner, Obligation: obligation,
			Quantity: qty, Counted: obligation != 0, Reason: reason, Reference: ref, Basis: basis})}
}

// stateItem is the log entry of an obligation's change of status.
func stateItem(obligation int64, miner string, status compliance.Status, sold string, at time.Time) logItem {
	return logItem{kind: proof.KindState, ref: string(status), obligation: obligation, miner: miner, keepData: true,
		data: proof.MustEncode(proof.KindState, proof.State{Obligation: obligation, Status: string(status), Sold: sold, At: stamp(at)})}
}

// refText writes a reference price in quote units rounded to the quote
// asset's scale for the record (the check itself was exact), or nil.
func refText(ref *big.Rat, quote string, scales map[string]int) *string {
	if ref == nil {
		return nil
	}
	minor := new(big.Rat).Quo(ref, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scales[quote])), nil)))
	v := minor.FloatString(scales[quote])
	return &v
}

// openObligations returns a miner's unmet obligations in an asset, locked:
// the open ones, and the overdue ones — a sale after their deadline is
// outside their window (and says so), but a sale executed in time and
// settled after the sweep marked them overdue still counts.
func (s *Store) openObligations(ctx context.Context, tx pgx.Tx, miner, asset string) ([]compliance.OpenObligation, error) {
	rows, err := tx.Query(ctx, `SELECT id, period_start, deadline, required::text, sold::text FROM obligations
		WHERE miner_id = $1 AND asset = $2 AND status IN ('open', 'overdue') ORDER BY deadline, id FOR UPDATE`, miner, asset)
	if err != nil {
		return nil, err
	}
	var out []compliance.OpenObligation
	var o compliance.OpenObligation
	var required, sold string
	_, err = pgx.ForEachRow(rows, []any{&o.ID, &o.PeriodStart, &o.Deadline, &required, &sold}, func() error {
		req, err := s.parse(asset, required)
		if err != nil {
			return err
		}
		was, err := s.parse(asset, sold)
		if err != nil {
			return err
		}
		o.Remaining, _ = compliance.Progress(req, was)
		out = append(out, o)
		return nil
	})
	return out, err
}

// reference computes a sale's reference price in quote minor units per
// whole base unit: the VWAP of the symbol's trades in the rule set's window
// before it (earlier sequence numbers of the shard, which holds the whole
// symbol), else the last auction price before it, else none.
func (s *Store) reference(ctx context.Context, tx pgx.Tx, shard string, ev *matching.Event) (*big.Rat, string, error) {
	at := time.UnixMilli(ev.Time).UTC()
	var quote, qty string
	if err := tx.QueryRow(ctx, `SELECT coalesce(sum(quote_amount), 0)::text, coalesce(sum(quantity), 0)::text FROM fills
		WHERE symbol = $1 AND shard = $2 AND executed_at >= $3 AND executed_at <= $4 AND seq < $5`,
		ev.Symbol, shard, at.Add(-s.rules.Attribution.ReferenceWindow), at, int64(ev.Seq)).Scan(&quote, &qty); err != nil {
		return nil, "", fmt.Errorf("reference: %w", err)
	}
	q, ok1 := new(big.Rat).SetString(quote)
	n, ok2 := new(big.Rat).SetString(qty)
	if !ok1 || !ok2 {
		return nil, "", fmt.Errorf("reference: sums %q, %q are not decimals", quote, qty)
	}
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(s.scales[ev.QuoteAsset])), nil))
	if n.Sign() > 0 {
		return q.Mul(q, scale).Quo(q, n), compliance.BasisVWAP, nil
	}
	var price string
	err := tx.QueryRow(ctx, `SELECT price::text FROM fills WHERE symbol = $1 AND shard = $2 AND taker_side = 'auction'
		AND executed_at <= $3 AND seq < $4 ORDER BY executed_at DESC, seq DESC LIMIT 1`, ev.Symbol, shard, at, int64(ev.Seq)).Scan(&price)
	if isNoRows(err) {
		return nil, compliance.BasisNone, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reference: %w", err)
	}
	p, ok := new(big.Rat).SetString(price)
	if !ok {
		return nil, "", fmt.Errorf("reference: price %q is not a decimal", price)
	}
	return p.Mul(p, scale), compliance.BasisLastAuction, nil
}
