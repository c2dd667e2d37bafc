// Package settlement turns the engine's events into double-entry ledger
// postings. It is pure: the PostgreSQL consumer (settlement/postgres) writes
// what this package computes, in one transaction per batch.
//
// Every money-moving event becomes postings that sum to zero per asset:
//   - a deposit moves the amount from the custody-external account to the
//     account; a withdrawal moves it back;
//   - a trade moves the base quantity from seller to buyer; the buyer pays
//     the quote amount plus its fee, the seller receives the quote amount
//     less its fee, and the fee account receives both fees.
//
// A trade's postings are the legs of its fill: the PostgreSQL ledger stores
// the fill row as the journal entry and derives the five legs from it (leg
// numbers as Add books them; see migrations/00007_journal.sql). A custody
// movement's two postings are stored as they are.
//
// Holds are engine state, not ledger state: the ledger records ownership,
// and an account's ledger balance equals the engine's free + held.
package settlement

import (
	"slices"

	"github.com/satu-exchange/satu/matching"
)

// CustodyAccount mirrors assets held in custody outside the exchange: its
// balance is minus everything deposited and not withdrawn, so each asset's
// postings always sum to zero.
const CustodyAccount = "custody-external"

// Posting is one side of a double entry, in minor units of the asset.
type Posting struct {
	EventID string
	Seq     uint64 // the engine sequence of the command that booked it
	Leg     int16  // its place in the event's entry: (shard, EventID, Leg) names it
	Time    int64  // Unix milliseconds, from the sequenced command
	Kind    PostingKind
	Account string
	Asset   string
	Amount  int64 // positive credit, negative debit; never zero
}

// PostingKind says what booked a posting.
type PostingKind string

// The kinds of postings.
const (
	KindTrade      PostingKind = "trade"      // a buyer's or seller's leg of a trade, fees included
	KindFee        PostingKind = "fee"        // the fee account's credit from a trade
	KindDeposit    PostingKind = "deposit"    // both legs of a custody deposit
	KindWithdrawal PostingKind = "withdrawal" // both legs of a custody withdrawal
)

// CustodyMovement is a settled deposit or withdrawal with its external
// reference (e.g. the on-chain transaction hash).
type CustodyMovement struct {
	EventID string
	Seq     uint64
	Time    int64
	Kind    PostingKind // KindDeposit or KindWithdrawal
	Account string
	Asset   string
	Amount  int64
	ExtRef  string
}

// EngineBalance is the engine's view of one balance after a command.
type EngineBalance struct {
	Free, Held int64
	Seq        uint64
}

// Fill is a settled trade.
type Fill struct {
	ID    string // the engine event ID, "seq-index"
	Event matching.Event
}

// Legs returns the fill's postings: its trade's journal entry has them as
// fixed functions of the fill (the PostgreSQL view fill_legs derives the
// same), so a batch does not keep them.
func (f *Fill) Legs() []Posting {
	var out []Posting
	tradeLegs(&f.Event, f.ID, func(p Posting) { out = append(out, p) })
	return out
}

// tradeLegs hands a trade's non-zero legs to book, in leg order: 0 seller
// base, 1 buyer base, 2 buyer quote, 3 seller quote, 4 fee account.
func tradeLegs(ev *matching.Event, id string, book func(Posting)) {
	leg := func(n int16, kind PostingKind, account, asset string, amount int64) {
		if amount != 0 { // a trade whose quote amount rounds to zero moves no quote
			book(Posting{EventID: id, Seq: ev.Seq, Leg: n, Time: ev.Time, Kind: kind, Account: account, Asset: asset, Amount: amount})
		}
	}
	leg(0, KindTrade, ev.SellerAccount, ev.BaseAsset, -ev.Quantity)
	leg(1, KindTrade, ev.BuyerAccount, ev.BaseAsset, ev.Quantity)
	leg(2, KindTrade, ev.BuyerAccount, ev.QuoteAsset, -(ev.QuoteAmount + ev.BuyerFee))
	leg(3, KindTrade, ev.SellerAccount, ev.QuoteAsset, ev.QuoteAmount-ev.SellerFee)
	leg(4, KindFee, ev.FeeAccount, ev.QuoteAsset, ev.BuyerFee+ev.SellerFee)
}

// Batch is what one settlement transaction writes.
type Batch struct {
	After             string // the stream position this batch continues from
	FirstSeq, LastSeq uint64
	LastStreamID      string
	Events            int
	Accounts          []matching.Event // account_opened
	Fills             []Fill
	// Postings are the postings stored as rows: custody movements'. A
	// trade's postings are its fill's legs (Fill.Legs), counted in
	// PostingCount and summed in Net, not kept.
	Postings     []Posting
	PostingCount int      // all the batch's postings, legs included
	FeeAccounts  []string // fee accounts credited in this batch
	Custody      []CustodyMovement
	// EngineBalances is the engine's view, after the batch, of every
	// balance a command of the batch touched (the last balance event wins).
	EngineBalances map[BalanceKey]EngineBalance
	// MaxTime is the latest engine time in the batch (Unix milliseconds):
	// settlement lag is measured from it.
	MaxTime int64

	net map[BalanceKey]int64 // see Net
}

// Add folds one event into the batch.
func (b *Batch) Add(streamID string, ev matching.Event) {
	if b.Events == 0 {
		b.FirstSeq = ev.Seq
	}
	b.Events++
	b.LastSeq = ev.Seq
	b.LastStreamID = streamID
	if ev.Time > b.MaxTime {
		b.MaxTime = ev.Time
	}
	switch ev.Kind {
	case matching.EvAccountOpened:
		b.Accounts = append(b.Accounts, ev)
	case matching.EvBalance:
		if b.EngineBalances == nil {
			b.EngineBalances = make(map[BalanceKey]EngineBalance)
		}
		b.EngineBalances[BalanceKey{ev.Account, ev.Asset}] = EngineBalance{Free: ev.Free, Held: ev.Held, Seq: ev.Seq}
	case matching.EvDeposited, matching.EvWithdrawn:
		id := ev.ID()
		kind, from, to := KindDeposit, CustodyAccount, ev.Account
		if ev.Kind == matching.EvWithdrawn {
			kind, from, to = KindWithdrawal, ev.Account, CustodyAccount
		}
		b.Custody = append(b.Custody, CustodyMovement{EventID: id, Seq: ev.Seq, Time: ev.Time, Kind: kind,
			Account: ev.Account, Asset: ev.Asset, Amount: ev.Amount, ExtRef: ev.ExtRef})
		for i, p := range [2]Posting{{Account: from, Amount: -ev.Amount}, {Account: to, Amount: ev.Amount}} {
			p.EventID, p.Seq, p.Leg, p.Time, p.Kind, p.Asset = id, ev.Seq, int16(i), ev.Time, kind, ev.Asset
			b.book(p)
			b.Postings = append(b.Postings, p)
		}
	case matching.EvTrade:
		id := ev.ID()
		b.Fills = append(b.Fills, Fill{ID: id, Event: ev})
		tradeLegs(&ev, id, b.book)
		if fees := ev.BuyerFee + ev.SellerFee; fees > 0 {
			if !slices.Contains(b.FeeAccounts, ev.FeeAccount) {
				b.FeeAccounts = append(b.FeeAccounts, ev.FeeAccount)
			}
		}
	}
}

// book counts a posting and adds it to its balance's net change.
func (b *Batch) book(p Posting) {
	if b.net == nil {
		b.net = make(map[BalanceKey]int64)
	}
	b.net[BalanceKey{p.Account, p.Asset}] += p.Amount
	b.PostingCount++
}

// BalanceKey names one account's balance in one asset.
type BalanceKey struct{ Account, Asset string }

// Net is the sum of the batch's postings per account and asset: the
// balance updates the batch makes, one row each however many fills touched
// it. The caller must not modify it.
func (b *Batch) Net() map[BalanceKey]int64 { return b.net }
