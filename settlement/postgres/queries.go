package postgres

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/satu-exchange/satu/internal/apperr"
)

// Paging over the settled ledger is by key, never by OFFSET: a page starts
// strictly after the last row of the previous one, so rows settled while a
// client pages never make its walk repeat or skip a row that was there when
// it started, and a deep page costs what the first one does. (A row settled
// meanwhile shows in the walk only if its engine time is behind the walk's
// position: a lagging shard's late fill.)

// Limits of the queries.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
	// MaxStatementPeriod is the longest period a statement covers.
	MaxStatementPeriod = 366 * 24 * time.Hour
	// maxCursorLen bounds what the cursor decoder reads.
	maxCursorLen = 512
)

// TimeLayout is how the ledger's queries write instants: RFC 3339 in UTC,
// to the millisecond (engine time has millisecond resolution).
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// PageRequest asks for one page of a newest-first listing.
type PageRequest struct {
	Limit  int    // rows per page: 0 means DefaultPageLimit; at most MaxPageLimit
	Cursor string // NextCursor of the previous page; empty for the first page
}

func (p PageRequest) limit() (int, error) {
	switch {
	case p.Limit == 0:
		return DefaultPageLimit, nil
	case p.Limit < 0 || p.Limit > MaxPageLimit:
		return 0, apperr.New(apperr.InvalidParameter, "limit %d is out of range: 1 to %d", p.Limit, MaxPageLimit)
	}
	return p.Limit, nil
}

// pageKey is the position a cursor encodes: the key of the last row of a
// page. Kind tells a fills cursor from a postings cursor.
type pageKey struct {
	Kind  string `json:"k"`           // "fills" or "postings"
	Time  int64  `json:"t"`           // executed_at or booked_at, Unix microseconds
	Seq   int64  `json:"q,omitempty"` // fills: the engine sequence
	Index int64  `json:"x,omitempty"` // fills: the event's index within its command (the ID's "-index")
	Shard string `json:"s,omitempty"` // fills
	Side  string `json:"d,omitempty"` // fills: "buy" or "sell"
	Leg   int16  `json:"l,omitempty"` // postings: the leg within its event
}

const (
	cursorFills    = "fills"
	cursorPostings = "postings"
)

// encodeCursor makes a key opaque to clients: base64url of its JSON.
func encodeCursor(k pageKey) string {
	b, _ := json.Marshal(k) // plain struct: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor of the given kind; "" is the first page (nil).
func decodeCursor(cursor, kind string) (*pageKey, error) {
	if cursor == "" {
		return nil, nil
	}
	bad := apperr.New(apperr.InvalidParameter, "cursor is not one this listing returned")
	if len(cursor) > maxCursorLen {
		return nil, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, bad
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var k pageKey
	if err := dec.Decode(&k); err != nil || dec.More() {
		return nil, bad
	}
	if k.Kind != kind || k.Time == 0 {
		return nil, bad
	}
	switch kind {
	case cursorFills:
		if k.Seq <= 0 || k.Index < 0 || k.Shard == "" || (k.Side != "buy" && k.Side != "sell") || k.Leg != 0 {
			return nil, bad
		}
	case cursorPostings:
		if k.Seq <= 0 || k.Index < 0 || k.Shard == "" || k.Side != "" || k.Leg < 0 || k.Leg > maxLeg {
			return nil, bad
		}
	}
	return &k, nil
}

// requireAccount answers UNKNOWN_ACCOUNT for an account settlement has
// never recorded (accounts are recorded when their opening is settled).
func requireAccount(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, account string) error {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)`, account).Scan(&ok); err != nil {
		return fmt.Errorf("account: %w", err)
	}
	if !ok {
		return apperr.New(apperr.UnknownAccount, "unknown account %q", account)
	}
	return nil
}

// AccountFill is a settled fill from one account's point of view: its side
// and its fee, never the counterparty.
type AccountFill struct {
	ID          string `json:"id"`
	Shard       string `json:"shard"`
	Seq         int64  `json:"seq"`
	Symbol      string `json:"symbol"`
	Side        string `json:"side"` // "buy" or "sell"
	Price       string `json:"price"`
	Quantity    string `json:"quantity"`
	QuoteAmount string `json:"quoteAmount"`
	Fee         string `json:"fee"` // this side's fee
	FeeAsset    string `json:"feeAsset"`
	Mandatory   bool   `json:"mandatory"`
	Obligation  string `json:"obligation,omitempty"`
	ExecutedAt  string `json:"executedAt"`

	key pageKey
}

// FillPage is one page of an account's fills, newest first. NextCursor is
// empty on the last page.
type FillPage struct {
	Fills      []AccountFill `json:"fills"`
	NextCursor string        `json:"nextCursor"`
}

// fillsSQL lists an account's fills as buyer and as seller, each half an
// ordered walk down its account index, newest first by (executed_at, seq,
// index within the command, shard, side). The index is compared as a
// number: "7-10" is newer than "7-9". Side ends the key so that even a fill
// with the account on both sides would be listed, and paged, once per side.
// %[1]s is the buy half's keyset condition, %[2]s the sell half's.
const fillsSQL = `
WITH f AS (
	(SELECT shard, id, seq, split_part(id, '-', 2)::bigint AS idx, symbol, 'buy'::text AS side, price, quantity,
		quote_amount, buyer_fee AS fee, quote_asset, mandatory, obligation, executed_at
	FROM fills WHERE buyer_account = $1 %[1]s
	ORDER BY executed_at DESC, seq DESC, idx DESC, shard DESC LIMIT $2)
	UNION ALL
	(SELECT shard, id, seq, split_part(id, '-', 2)::bigint AS idx, symbol, 'sell'::text AS side, price, quantity,
		quote_amount, seller_fee AS fee, quote_asset, mandatory, obligation, executed_at
	FROM fills WHERE seller_account = $1 %[2]s
	ORDER BY executed_at DESC, seq DESC, idx DESC, shard DESC LIMIT $2)
)
SELECT shard, id, seq, idx, symbol, side, price::text, quantity::text, quote_amount::text, fee::text, quote_asset,
	mandatory, coalesce(obligation, ''), executed_at
FROM f ORDER BY executed_at DESC, seq DESC, idx DESC, shard DESC, side DESC LIMIT $2`

// fillsAfter is the keyset condition of one half of fillsSQL. PostgreSQL
// starts the index walk at the cursor from the row comparison's leading
// column, executed_at.
const fillsAfter = `AND (executed_at, seq, split_part(id, '-', 2)::bigint, shard, '%s'::text)
		< ($3::timestamptz, $4::bigint, $5::bigint, $6::text, $7::text)`

// The two texts of fillsSQL: distinct statements rather than one with
// "$3 IS NULL OR …", which a generic plan could not turn into an index
// bound, so that a deep page would scan every newer row.
var (
	fillsFirstSQL = fmt.Sprintf(fillsSQL, "", "")
	fillsNextSQL  = fmt.Sprintf(fillsSQL, fmt.Sprintf(fillsAfter, "buy"), fmt.Sprintf(fillsAfter, "sell"))
)

// Fills returns a page of the fills in which the account bought or sold,
// newest first.
func (s *Store) Fills(ctx context.Context, account string, page PageRequest) (FillPage, error) {
	limit, err := page.limit()
	if err != nil {
		return FillPage{}, err
	}
	after, err := decodeCursor(page.Cursor, cursorFills)
	if err != nil {
		return FillPage{}, err
	}
	if err := requireAccount(ctx, s.db, account); err != nil {
		return FillPage{}, fmt.Errorf("settlement: fills: %w", err)
	}
	sql, args := fillsFirstSQL, []any{account, limit + 1}
	if after != nil {
		sql = fillsNextSQL
		args = append(args, time.UnixMicro(after.Time).UTC(), after.Seq, after.Index, after.Shard, after.Side)
	}
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return FillPage{}, fmt.Errorf("settlement: fills: %w", err)
	}
	fills, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AccountFill, error) {
		var f AccountFill
		var idx int64
		var at time.Time
		err := row.Scan(&f.Shard, &f.ID, &f.Seq, &idx, &f.Symbol, &f.Side, &f.Price, &f.Quantity, &f.QuoteAmount,
			&f.Fee, &f.FeeAsset, &f.Mandatory, &f.Obligation, &at)
		f.ExecutedAt = formatTime(at)
		f.key = pageKey{Kind: cursorFills, Time: at.UnixMicro(), Seq: f.Seq, Index: idx, Shard: f.Shard, Side: f.Side}
		return f, err
	})
	if err != nil {
		return FillPage{}, fmt.Errorf("settlement: fills: %w", err)
	}
	if fills == nil {
		fills = []AccountFill{} // JSON [] rather than null
	}
	out := FillPage{Fills: fills}
	if len(fills) > limit {
		out.Fills = fills[:limit]
		out.NextCursor = encodeCursor(fills[limit-1].key)
	}
	return out, nil
}

// AccountPosting is one of an account's ledger postings: a credit
// (positive amount) or debit (negative). A trade's postings are the legs of
// its fill, a custody movement's are stored; either way a posting is named
// by its shard, event and leg.
type AccountPosting struct {
	ID       string `json:"id"` // "shard/eventId/leg"
	Shard    string `json:"shard"`
	EventID  string `json:"eventId"`
	Leg      int16  `json:"leg"`
	Seq      int64  `json:"seq"`
	Kind     string `json:"kind"` // trade, fee, deposit, withdrawal
	Asset    string `json:"asset"`
	Amount   string `json:"amount"`
	BookedAt string `json:"bookedAt"` // engine time

	idx int64 // the event's index within its command
	at  time.Time
}

// maxLeg is the highest leg number (a fill's fee leg; see migrations/00007_journal.sql).
const maxLeg = 4

func postingID(shard, eventID string, leg int16) string {
	return shard + "/" + eventID + "/" + strconv.Itoa(int(leg))
}

// PostingPage is one page of an account's postings, newest first.
// NextCursor is empty on the last page.
type PostingPage struct {
	Postings   []AccountPosting `json:"postings"`
	NextCursor string           `json:"nextCursor"`
}

// accountLegs is the account's legs of the fills in a set f of fills,
// each fill tagged with the account's role in it (b buyer, s seller, f fee
// account): the view fill_legs, restricted to one account.
const accountLegs = `
	SELECT f.shard, f.id AS event_id, f.seq, split_part(f.id, '-', 2)::bigint AS idx, l.leg, l.kind, l.asset, l.amount,
		f.executed_at AS booked_at
	FROM f CROSS JOIN LATERAL (VALUES
		('s', 0::smallint, 'trade', f.base_asset, -f.quantity),
		('b', 1::smallint, 'trade', f.base_asset, f.quantity),
		('b', 2::smallint, 'trade', f.quote_asset, -(f.quote_amount + f.buyer_fee)),
		('s', 3::smallint, 'trade', f.quote_asset, f.quote_amount - f.seller_fee),
		('f', 4::smallint, 'fee', f.quote_asset, f.buyer_fee + f.seller_fee)) AS l(role, leg, kind, asset, amount)
	WHERE l.role = f.role AND l.amount <> 0`

// postingsSQL lists an account's postings newest first by (booked_at,
// seq, index, shard, leg): each of the four sources — the fills it bought
// in, sold in and received fees from, and its stored custody postings — is
// an ordered walk down its account index, cut at the page size, as in
// fillsSQL. A fill yields up to two legs for one role, so a walk that stops
// after $2 fills has at least $2 legs. %[1]s is the fills' keyset
// condition (at the cursor's fill or before it), %[2]s the postings'.
const postingsSQL = `
WITH f AS (
	(SELECT *, 'b'::text AS role FROM fills WHERE buyer_account = $1 %[1]s
	ORDER BY executed_at DESC, seq DESC, split_part(id, '-', 2)::bigint DESC, shard DESC LIMIT $2 + 1)
	UNION ALL
	(SELECT *, 's'::text FROM fills WHERE seller_account = $1 %[1]s
	ORDER BY executed_at DESC, seq DESC, split_part(id, '-', 2)::bigint DESC, shard DESC LIMIT $2 + 1)
	UNION ALL
	(SELECT *, 'f'::text FROM fills WHERE fee_account = $1 AND buyer_fee + seller_fee > 0 %[1]s
	ORDER BY executed_at DESC, seq DESC, split_part(id, '-', 2)::bigint DESC, shard DESC LIMIT $2 + 1)
),
p AS (` + accountLegs + `
	UNION ALL
	(SELECT shard, event_id, seq, split_part(event_id, '-', 2)::bigint, leg, kind, asset, amount, booked_at
	FROM ledger_entries WHERE account = $1 %[2]s
	ORDER BY booked_at DESC, seq DESC, split_part(event_id, '-', 2)::bigint DESC, shard DESC, leg DESC LIMIT $2)
)
SELECT shard, event_id, seq, idx, leg, kind, asset, amount::text, booked_at FROM p %[3]s
ORDER BY booked_at DESC, seq DESC, idx DESC, shard DESC, leg DESC LIMIT $2`

var (
	postingsFirstSQL = fmt.Sprintf(postingsSQL, "", "", "")
	postingsNextSQL  = fmt.Sprintf(postingsSQL,
		`AND (executed_at, seq, split_part(id, '-', 2)::bigint, shard) <= ($3::timestamptz, $4::bigint, $5::bigint, $6::text)`,
		`AND (booked_at, seq, split_part(event_id, '-', 2)::bigint, shard, leg)
			< ($3::timestamptz, $4::bigint, $5::bigint, $6::text, $7::smallint)`,
		`WHERE (booked_at, seq, idx, shard, leg) < ($3::timestamptz, $4::bigint, $5::bigint, $6::text, $7::smallint)`)
)

// scanPosting reads a row of postingsSQL or periodSQL (amount as given).
func scanPosting(row pgx.CollectableRow, amount any) (AccountPosting, error) {
	var p AccountPosting
	err := row.Scan(&p.Shard, &p.EventID, &p.Seq, &p.idx, &p.Leg, &p.Kind, &p.Asset, amount, &p.at)
	p.ID, p.BookedAt = postingID(p.Shard, p.EventID, p.Leg), formatTime(p.at)
	return p, err
}

// Postings returns a page of the account's postings, newest first by
// engine time.
func (s *Store) Postings(ctx context.Context, account string, page PageRequest) (PostingPage, error) {
	limit, err := page.limit()
	if err != nil {
		return PostingPage{}, err
	}
	after, err := decodeCursor(page.Cursor, cursorPostings)
	if err != nil {
		return PostingPage{}, err
	}
	if err := requireAccount(ctx, s.db, account); err != nil {
		return PostingPage{}, fmt.Errorf("settlement: postings: %w", err)
	}
	// Two statement texts, not "$3 IS NULL OR …": see fillsNextSQL.
	sql, args := postingsFirstSQL, []any{account, limit + 1}
	if after != nil {
		sql = postingsNextSQL
		args = append(args, time.UnixMicro(after.Time).UTC(), after.Seq, after.Index, after.Shard, after.Leg)
	}
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return PostingPage{}, fmt.Errorf("settlement: postings: %w", err)
	}
	postings, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AccountPosting, error) {
		var amount string
		p, err := scanPosting(row, &amount)
		p.Amount = amount
		return p, err
	})
	if err != nil {
		return PostingPage{}, fmt.Errorf("settlement: postings: %w", err)
	}
	if postings == nil {
		postings = []AccountPosting{}
	}
	out := PostingPage{Postings: postings}
	if len(postings) > limit {
		last := postings[limit-1]
		out.Postings = postings[:limit]
		out.NextCursor = encodeCursor(pageKey{Kind: cursorPostings, Time: last.at.UnixMicro(), Seq: last.Seq,
			Index: last.idx, Shard: last.Shard, Leg: last.Leg})
	}
	return out, nil
}

// periodSQL is every posting of the account booked in [$2, $3) oldest
// first — a statement reads them all — and openingSQL the sums of those
// booked before $2, per asset.
const (
	accountFills = `
WITH f AS (
	SELECT *, 'b'::text AS role FROM fills WHERE buyer_account = $1 AND %[1]s
	UNION ALL
	SELECT *, 's'::text FROM fills WHERE seller_account = $1 AND %[1]s
	UNION ALL
	SELECT *, 'f'::text FROM fills WHERE fee_account = $1 AND buyer_fee + seller_fee > 0 AND %[1]s
),
p AS (` + accountLegs + `
	UNION ALL
	SELECT shard, event_id, seq, split_part(event_id, '-', 2)::bigint, leg, kind, asset, amount, booked_at
	FROM ledger_entries WHERE account = $1 AND %[2]s
)`
)

var (
	periodSQL = fmt.Sprintf(accountFills, "executed_at >= $2 AND executed_at < $3", "booked_at >= $2 AND booked_at < $3") + `
SELECT shard, event_id, seq, idx, leg, kind, asset, amount, booked_at FROM p ORDER BY booked_at, seq, idx, shard, leg`
	openingSQL = fmt.Sprintf(accountFills, "executed_at < $2", "booked_at < $2") + `
SELECT asset, sum(amount) FROM p GROUP BY asset`
)

// Statement is an account's ledger over the half-open period [From, To) of
// engine time, per asset.
type Statement struct {
	Account string           `json:"account"`
	From    string           `json:"from"`
	To      string           `json:"to"`
	Assets  []StatementAsset `json:"assets"`
}

// StatementAsset is one asset's part of a statement. Closing = Opening +
// Credits − Debits = Opening + the sum of the postings' amounts; the last
// posting's Balance is Closing.
type StatementAsset struct {
	Asset    string          `json:"asset"`
	Opening  string          `json:"opening"` // the balance at From: the sum of all postings before it
	Credits  string          `json:"credits"` // the sum of the period's positive amounts
	Debits   string          `json:"debits"`  // the sum of the period's negative amounts, as a magnitude (≥ 0)
	Closing  string          `json:"closing"` // the balance at To
	Postings []StatementLine `json:"postings"`
}

// StatementLine is a posting of the period, oldest first, with the
// running balance after it.
type StatementLine struct {
	AccountPosting
	Balance string `json:"balance"`
}

// Statement returns the account's statement for [from, to): for every
// asset the account has had a posting in before to, the opening balance,
// the period's postings oldest first with running balances, the credits,
// the debits and the closing balance. Both reads see one snapshot, so a
// batch settled meanwhile cannot make the figures disagree.
func (s *Store) Statement(ctx context.Context, account string, from, to time.Time) (Statement, error) {
	if !from.Before(to) {
		return Statement{}, apperr.New(apperr.InvalidParameter, "the period is empty: from %s is not before to %s",
			formatTime(from), formatTime(to))
	}
	if to.Sub(from) > MaxStatementPeriod {
		return Statement{}, apperr.New(apperr.InvalidParameter, "the period from %s to %s is longer than 366 days",
			formatTime(from), formatTime(to))
	}
	st := Statement{Account: account, From: formatTime(from), To: formatTime(to), Assets: []StatementAsset{}}
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := requireAccount(ctx, tx, account); err != nil {
			return err
		}
		opening, err := s.openingBalances(ctx, tx, account, from)
		if err != nil {
			return err
		}
		assets, err := s.periodPostings(ctx, tx, account, from, to, opening)
		if err != nil {
			return err
		}
		st.Assets = assets
		return nil
	})
	if err != nil {
		return Statement{}, fmt.Errorf("settlement: statement: %w", err)
	}
	return st, nil
}

// openingBalances sums the account's postings before from, per asset, in
// minor units. An asset whose postings net to zero is included: it has a
// balance row, zero, like the balances table.
func (s *Store) openingBalances(ctx context.Context, tx pgx.Tx, account string, from time.Time) (map[string]*big.Int, error) {
	rows, err := tx.Query(ctx, openingSQL, account, from)
	if err != nil {
		return nil, fmt.Errorf("opening balances: %w", err)
	}
	out := map[string]*big.Int{}
	var asset string
	var sum pgtype.Numeric
	_, err = pgx.ForEachRow(rows, []any{&asset, &sum}, func() error {
		v, err := s.minorUnits(asset, sum)
		out[asset] = v
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("opening balances: %w", err)
	}
	return out, nil
}

// periodPostings reads the period's postings oldest first and builds each
// asset's part of the statement from its opening balance.
func (s *Store) periodPostings(ctx context.Context, tx pgx.Tx, account string, from, to time.Time,
	opening map[string]*big.Int) ([]StatementAsset, error) {
	type running struct {
		asset                   StatementAsset
		balance, credits, debit *big.Int
	}
	byAsset := map[string]*running{}
	get := func(asset string) *running {
		r := byAsset[asset]
		if r == nil {
			open := opening[asset]
			if open == nil {
				open = new(big.Int)
			}
			scale := s.scales[asset]
			r = &running{asset: StatementAsset{Asset: asset, Opening: formatMinor(open, scale), Postings: []StatementLine{}},
				balance: new(big.Int).Set(open), credits: new(big.Int), debit: new(big.Int)}
			byAsset[asset] = r
		}
		return r
	}
	for asset := range opening {
		if _, ok := s.scales[asset]; !ok {
			return nil, fmt.Errorf("unknown asset %q", asset)
		}
		get(asset)
	}

	rows, err := tx.Query(ctx, periodSQL, account, from, to)
	if err != nil {
		return nil, fmt.Errorf("postings: %w", err)
	}
	var amount pgtype.Numeric
	_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) {
		p, err := scanPosting(row, &amount)
		if err != nil {
			return struct{}{}, err
		}
		v, err := s.minorUnits(p.Asset, amount)
		if err != nil {
			return struct{}{}, err
		}
		r := get(p.Asset)
		scale := s.scales[p.Asset]
		r.balance.Add(r.balance, v)
		if v.Sign() > 0 {
			r.credits.Add(r.credits, v)
		} else {
			r.debit.Sub(r.debit, v)
		}
		p.Amount = formatMinor(v, scale)
		r.asset.Postings = append(r.asset.Postings, StatementLine{AccountPosting: p, Balance: formatMinor(r.balance, scale)})
		return struct{}{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postings: %w", err)
	}

	out := make([]StatementAsset, 0, len(byAsset))
	for _, r := range byAsset {
		scale := s.scales[r.asset.Asset]
		r.asset.Credits, r.asset.Debits, r.asset.Closing = formatMinor(r.credits, scale), formatMinor(r.debit, scale),
			formatMinor(r.balance, scale)
		out = append(out, r.asset)
	}
	slices.SortFunc(out, func(a, b StatementAsset) int { return strings.Compare(a.Asset, b.Asset) })
	return out, nil
}

// minorUnits converts a NUMERIC amount of an asset into minor units,
// exactly; NULL is zero. A value finer than the asset's scale is an error:
// the ledger never holds one.
func (s *Store) minorUnits(asset string, n pgtype.Numeric) (*big.Int, error) {
	scale, ok := s.scales[asset]
	if !ok {
		return nil, fmt.Errorf("unknown asset %q", asset)
	}
	if !n.Valid {
		return new(big.Int), nil
	}
	if n.NaN || n.InfinityModifier != pgtype.Finite {
		return nil, fmt.Errorf("amount of %s is not a finite number", asset)
	}
	v := new(big.Int).Set(n.Int)
	shift := int64(n.Exp) + int64(scale) // v × 10^shift minor units
	if shift >= 0 {
		return v.Mul(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(shift), nil)), nil
	}
	q, r := new(big.Int).QuoRem(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(-shift), nil), new(big.Int))
	if r.Sign() != 0 {
		return nil, fmt.Errorf("amount of %s has more than %d decimal places", asset, scale)
	}
	return q, nil
}

// formatMinor writes minor units as a decimal with exactly scale
// fractional digits, like the ledger's NUMERIC text.
func formatMinor(v *big.Int, scale int32) string {
	digits := new(big.Int).Abs(v).String()
	if pad := int(scale) + 1 - len(digits); pad > 0 {
		digits = strings.Repeat("0", pad) + digits
	}
	out := digits
	if scale > 0 {
		cut := len(digits) - int(scale)
		out = digits[:cut] + "." + digits[cut:]
	}
	if v.Sign() < 0 {
		out = "-" + out
	}
	return out
}

// StatementCSVHeader is the header row WriteStatementCSV writes.
var StatementCSVHeader = []string{"account", "asset", "bookedAt", "eventId", "kind", "amount", "balance"}

// WriteStatementCSV writes a statement as CSV (RFC 4180, comma-separated,
// "\n" line ends). After the header row
//
//	account,asset,bookedAt,eventId,kind,amount,balance
//
// come, for each asset in code order: an "opening" row (bookedAt = the
// period's start, eventId and amount empty, balance = the opening
// balance); one row per posting of the period, oldest first (bookedAt in
// engine time, RFC 3339 UTC to the millisecond; kind trade, fee, deposit
// or withdrawal; amount signed, positive a credit; balance = the running
// balance after it); and a "closing" row (bookedAt = the period's end,
// exclusive; eventId and amount empty; balance = the closing balance).
// Amounts have the asset's scale. An asset without postings in the period
// has just its opening and closing rows.
func WriteStatementCSV(w io.Writer, st Statement) error {
	cw := csv.NewWriter(w)
	write := func(rec ...string) {
		_ = cw.Write(rec) // the first error sticks in cw.Error
	}
	write(StatementCSVHeader...)
	for _, a := range st.Assets {
		write(st.Account, a.Asset, st.From, "", "opening", "", a.Opening)
		for _, p := range a.Postings {
			write(st.Account, a.Asset, p.BookedAt, p.EventID, p.Kind, p.Amount, p.Balance)
		}
		write(st.Account, a.Asset, st.To, "", "closing", "", a.Closing)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("statement csv: %w", err)
	}
	return nil
}
