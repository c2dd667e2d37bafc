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

// Batch is what one settlement transaction writes.
type Batch struct {
	After             string // the stream position this batch continues from
	FirstSeq, LastSeq uint64
	LastStreamID      string
	Events            int
	Accounts          []matching.Event // account_opened
	Fills             []Fill
	Postings          []Posting
	FeeAccounts       []string // fee accounts credited in this batch
	Custody           []CustodyMovement
	// EngineBalances is the engine's view, after the batch, of every
	// balance a command of the batch touched (the last balance event wins).
	EngineBalances map[BalanceKey]EngineBalance
	// MaxTime is the latest engine time in the batch (Unix milliseconds):
	// settlement lag is measured from it.
	MaxTime int64
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
		b.addPosting(&ev, id, 0, kind, from, ev.Asset, -ev.Amount)
		b.addPosting(&ev, id, 1, kind, to, ev.Asset, ev.Amount)
	case matching.EvTrade:
		id := ev.ID()
		b.Fills = append(b.Fills, Fill{ID: id, Event: ev})
		b.addPosting(&ev, id, 0, KindTrade, ev.SellerAccount, ev.BaseAsset, -ev.Quantity)
		b.addPosting(&ev, id, 1, KindTrade, ev.BuyerAccount, ev.BaseAsset, ev.Quantity)
		b.addPosting(&ev, id, 2, KindTrade, ev.BuyerAccount, ev.QuoteAsset, -(ev.QuoteAmount + ev.BuyerFee))
		b.addPosting(&ev, id, 3, KindTrade, ev.SellerAccount, ev.QuoteAsset, ev.QuoteAmount-ev.SellerFee)
		if fees := ev.BuyerFee + ev.SellerFee; fees > 0 {
			b.addPosting(&ev, id, 4, KindFee, ev.FeeAccount, ev.QuoteAsset, fees)
			if !slices.Contains(b.FeeAccounts, ev.FeeAccount) {
				b.FeeAccounts = append(b.FeeAccounts, ev.FeeAccount)
			}
		}
	}
}

// addPosting appends a posting unless its amount is zero (a trade whose
// quote amount rounds to zero moves no quote).
func (b *Batch) addPosting(ev *matching.Event, eventID string, leg int16, kind PostingKind, account, asset string, amount int64) {
	if amount != 0 {
		b.Postings = append(b.Postings, Posting{EventID: eventID, Seq: ev.Seq, Leg: leg, Time: ev.Time, Kind: kind,
			Account: account, Asset: asset, Amount: amount})
	}
}

// BalanceKey names one account's balance in one asset.
type BalanceKey struct{ Account, Asset string }

// Net sums the batch's postings per account and asset: the balance updates
// the batch makes, one row each however many fills touched it.
func (b *Batch) Net() map[BalanceKey]int64 {
	out := make(map[BalanceKey]int64)
	for _, p := range b.Postings {
		out[BalanceKey{p.Account, p.Asset}] += p.Amount
	}
	return out
}
