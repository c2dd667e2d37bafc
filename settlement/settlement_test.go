package settlement_test

import (
	"testing"

	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/settlement"
)

func TestBatchPostingsBalance(t *testing.T) {
	var b settlement.Batch
	b.Add("1-0", matching.Event{Seq: 1, Kind: matching.EvAccountOpened, Account: "m", Owner: "m", AccountKind: matching.KindMiner})
	b.Add("2-0", matching.Event{Seq: 2, Kind: matching.EvDeposited, Account: "m", Asset: "BTC", Amount: 100})
	b.Add("3-0", matching.Event{Seq: 3, Kind: matching.EvDeposited, Account: "b", Asset: "KZT", Amount: 5000})
	b.Add("4-1", matching.Event{Seq: 4, Index: 1, Kind: matching.EvTrade, BaseAsset: "BTC", QuoteAsset: "KZT",
		Quantity: 60, QuoteAmount: 3000, BuyerAccount: "b", SellerAccount: "m", Purpose: matching.PurposeMandatory, Time: 99})
	b.Add("5-0", matching.Event{Seq: 5, Kind: matching.EvWithdrawn, Account: "m", Asset: "KZT", Amount: 1000})
	b.Add("6-0", matching.Event{Seq: 6, Kind: matching.EvOrderAccepted})

	if b.FirstSeq != 1 || b.LastSeq != 6 || b.LastStreamID != "6-0" || b.Events != 6 {
		t.Fatalf("batch bounds = %d..%d %s %d", b.FirstSeq, b.LastSeq, b.LastStreamID, b.Events)
	}
	perAsset := map[string]int64{}
	all := append([]settlement.Posting(nil), b.Postings...)
	for i := range b.Fills {
		all = append(all, b.Fills[i].Legs()...)
	}
	if len(all) != b.PostingCount || len(b.Postings) != 6 {
		t.Fatalf("%d postings (%d stored), PostingCount %d", len(all), len(b.Postings), b.PostingCount)
	}
	for _, p := range all {
		if p.Amount == 0 {
			t.Fatalf("zero posting %+v", p)
		}
		perAsset[p.Asset] += p.Amount
	}
	for asset, sum := range perAsset {
		if sum != 0 {
			t.Errorf("%s postings sum to %d", asset, sum)
		}
	}
	net := b.Net()
	want := map[settlement.BalanceKey]int64{
		{Account: "m", Asset: "BTC"}:                       40,
		{Account: "m", Asset: "KZT"}:                       2000,
		{Account: "b", Asset: "BTC"}:                       60,
		{Account: "b", Asset: "KZT"}:                       2000,
		{Account: settlement.CustodyAccount, Asset: "BTC"}: -100,
		{Account: settlement.CustodyAccount, Asset: "KZT"}: -4000,
	}
	for k, v := range want {
		if net[k] != v {
			t.Errorf("net %v = %d; want %d", k, net[k], v)
		}
	}
	if len(b.Fills) != 1 || b.Fills[0].ID != "4-1" {
		t.Fatalf("fills = %+v", b.Fills)
	}
	if f := b.Fills[0].Event; f.SellerAccount != "m" || f.Quantity != 60 || f.Time != 99 || f.Purpose != matching.PurposeMandatory {
		t.Fatalf("fill event = %+v", f)
	}
	if len(b.Accounts) != 1 {
		t.Fatalf("accounts = %+v", b.Accounts)
	}
}

// TestTradeFeesPosted: the buyer pays the quote amount plus its fee, the
// seller receives the quote amount less its fee, the fee account both fees;
// each asset still sums to zero.
func TestTradeFeesPosted(t *testing.T) {
	var b settlement.Batch
	b.Add("7-1", matching.Event{Seq: 7, Index: 1, Kind: matching.EvTrade, BaseAsset: "BTC", QuoteAsset: "KZT",
		Quantity: 60, QuoteAmount: 3000, BuyerFee: 3, SellerFee: 6, FeeAccount: "exchange-fees",
		BuyerAccount: "b", SellerAccount: "m", TakerSide: matching.Sell})
	net := b.Net()
	want := map[settlement.BalanceKey]int64{
		{Account: "m", Asset: "BTC"}:             -60,
		{Account: "b", Asset: "BTC"}:             60,
		{Account: "b", Asset: "KZT"}:             -3003,
		{Account: "m", Asset: "KZT"}:             2994,
		{Account: "exchange-fees", Asset: "KZT"}: 9,
	}
	if len(net) != len(want) {
		t.Fatalf("net = %v", net)
	}
	for k, v := range want {
		if net[k] != v {
			t.Errorf("net %v = %d; want %d", k, net[k], v)
		}
	}
	legs := b.Fills[0].Legs()
	if len(legs) != 5 || b.PostingCount != 5 || len(b.Postings) != 0 || len(b.FeeAccounts) != 1 || b.FeeAccounts[0] != "exchange-fees" {
		t.Fatalf("legs %+v, %d postings counted, %d stored, fee accounts %v", legs, b.PostingCount, len(b.Postings), b.FeeAccounts)
	}
	for i, p := range legs {
		if p.Leg != int16(i) || p.EventID != "7-1" || p.Seq != 7 {
			t.Fatalf("leg %d = %+v", i, p)
		}
	}
}
