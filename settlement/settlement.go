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
	Account string
	Asset   string
	Amount  int64 // positive credit, negative debit; never zero
}

// Fill is a settled trade.
type Fill struct {
	ID    string // the engine event ID, "seq-index"
	Event matching.Event
}

// MandatoryFill is the part of a fill that counts towards a miner's
// mandatory-sale obligation: the seller's account and the base quantity.
type MandatoryFill struct {
	FillID        string
	SellerAccount string
	Asset         string
	Quantity      int64
	ExecutedAt    int64 // Unix milliseconds, from the sequenced command
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
	Mandatory         []MandatoryFill
	FeeAccounts       []string // fee accounts credited in this batch
}

// Add folds one event into the batch.
func (b *Batch) Add(streamID string, ev matching.Event) {
	if b.Events == 0 {
		b.FirstSeq = ev.Seq
	}
	b.Events++
	b.LastSeq = ev.Seq
	b.LastStreamID = streamID
	id := ev.ID()
	switch ev.Kind {
	case matching.EvAccountOpened:
		b.Accounts = append(b.Accounts, ev)
	case matching.EvDeposited:
		b.Postings = append(b.Postings,
			Posting{EventID: id, Account: CustodyAccount, Asset: ev.Asset, Amount: -ev.Amount},
			Posting{EventID: id, Account: ev.Account, Asset: ev.Asset, Amount: ev.Amount})
	case matching.EvWithdrawn:
		b.Postings = append(b.Postings,
			Posting{EventID: id, Account: ev.Account, Asset: ev.Asset, Amount: -ev.Amount},
			Posting{EventID: id, Account: CustodyAccount, Asset: ev.Asset, Amount: ev.Amount})
	case matching.EvTrade:
		b.Fills = append(b.Fills, Fill{ID: id, Event: ev})
		b.Postings = append(b.Postings,
			Posting{EventID: id, Account: ev.SellerAccount, Asset: ev.BaseAsset, Amount: -ev.Quantity},
			Posting{EventID: id, Account: ev.BuyerAccount, Asset: ev.BaseAsset, Amount: ev.Quantity})
		b.addPosting(id, ev.BuyerAccount, ev.QuoteAsset, -(ev.QuoteAmount + ev.BuyerFee))
		b.addPosting(id, ev.SellerAccount, ev.QuoteAsset, ev.QuoteAmount-ev.SellerFee)
		if fees := ev.BuyerFee + ev.SellerFee; fees > 0 {
			b.addPosting(id, ev.FeeAccount, ev.QuoteAsset, fees)
			if !slices.Contains(b.FeeAccounts, ev.FeeAccount) {
				b.FeeAccounts = append(b.FeeAccounts, ev.FeeAccount)
			}
		}
		if ev.Purpose == matching.PurposeMandatory {
			b.Mandatory = append(b.Mandatory, MandatoryFill{FillID: id, SellerAccount: ev.SellerAccount,
				Asset: ev.BaseAsset, Quantity: ev.Quantity, ExecutedAt: ev.Time})
		}
	}
}

// addPosting appends a posting unless its amount is zero (a trade whose
// quote amount rounds to zero moves no quote).
func (b *Batch) addPosting(eventID, account, asset string, amount int64) {
	if amount != 0 {
		b.Postings = append(b.Postings, Posting{EventID: eventID, Account: account, Asset: asset, Amount: amount})
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
