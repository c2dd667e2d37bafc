package proof_test

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/money"
)

// The verifier's rules on counted sales, on certificates crafted here and
// signed with a test key: a log of exactly the certificate's entries. The
// exchange would never write these entries; a verifier must refuse them
// all the same, since it trusts nothing but the rules.

// crafted is an obligation of alpha's, January 2024, BTC at scale 8, with
// the rule book the verifier holds.
type crafted struct {
	t      *testing.T
	signer note.Signer
	vkey   string
	book   *compliance.RuleBook
	rules  *compliance.RuleSet
	id     int64 // the obligation's ID: craftedID unless a test sets another
}

const craftedID = 7

func newCrafted(t *testing.T) *crafted {
	t.Helper()
	book, err := compliance.LoadRuleBook()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := book.Get(compliance.DefaultRuleSet)
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey := newKey(t, origin)
	return &crafted{t: t, signer: signer, vkey: vkey, book: book, rules: rules, id: craftedID}
}

// obligation returns the report and computation entries of the obligation
// for mined BTC (minor units) and its required volume.
func (c *crafted) obligation(mined int64) ([][]byte, int64) {
	c.t.Helper()
	ob, err := c.rules.Obligation("alpha", "BTC", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), mined)
	if err != nil {
		c.t.Fatal(err)
	}
	m := money.Format(mined, 8)
	return [][]byte{
		proof.MustEncode(proof.KindReport, proof.Report{Miner: "alpha", Asset: "BTC", Period: "2024-01", Version: 1, Mined: m,
			Wallets: []string{"w1"}, Source: "miner", Reason: "submitted"}),
		proof.MustEncode(proof.KindComputation, proof.Computation{Obligation: c.id, Version: 1, Miner: "alpha", Asset: "BTC",
			Period: "2024-01", Deadline: ob.Deadline.Format(time.DateOnly), ReportVersion: 1, Mined: m, Share: ob.Share.String(),
			RuleSet: c.rules.ID, RuleSetVersion: c.rules.Version, Required: money.Format(ob.Required, 8)}),
	}, ob.Required
}

// fill is a mandatory BTC-KZT sale by alpha inside the obligation's window.
func fill(id, quantity, price string) []byte {
	return proof.MustEncode(proof.KindFill, proof.Fill{Shard: "s1", ID: id, Seq: 1, Symbol: "BTC-KZT", Base: "BTC", Quote: "KZT",
		Price: price, Quantity: quantity, QuoteAmount: "30000000.00", Buyer: "buyer-1", Seller: "alpha-1", Mandatory: true,
		ExecutedAt: "2024-02-10T06:00:00.000Z"})
}

// counted is an attribution of a fill's quantity to the obligation.
func counted(id, quantity, reference, basis string) []byte {
	return countedTo(craftedID, id, quantity, reference, basis)
}

// countedTo is an attribution of a fill's quantity to obligation ob.
func countedTo(ob int64, id, quantity, reference, basis string) []byte {
	return proof.MustEncode(proof.KindAttribution, proof.Attribution{Shard: "s1", Fill: id, Miner: "alpha", Obligation: ob,
		Quantity: quantity, Counted: true, Reference: reference, Basis: basis})
}

// certificate signs a checkpoint of a log of exactly entries and proves
// them all in it, under the claim.
func (c *crafted) certificate(required int64, sold, status string, entries ...[]byte) proof.Certificate {
	c.t.Helper()
	l := &memLog{}
	cert := proof.Certificate{Format: proof.Format, Obligation: proof.Claim{ID: c.id, Miner: "alpha", Asset: "BTC", Period: "2024-01",
		Required: money.Format(required, 8), Sold: sold, Status: status}}
	indexes := make([]int64, len(entries))
	for i, data := range entries {
		hs, err := tlog.StoredHashes(int64(i), data, l)
		if err != nil {
			c.t.Fatal(err)
		}
		l.stored = append(l.stored, hs...)
		cert.Entries = append(cert.Entries, proof.Entry{Index: int64(i), Data: string(data)})
		indexes[i] = int64(i)
	}
	size := int64(len(entries))
	root, err := tlog.TreeHash(size, l)
	if err != nil {
		c.t.Fatal(err)
	}
	if cert.Checkpoint, err = proof.Sign(proof.Checkpoint{Origin: origin, Size: size, Root: root}, c.signer); err != nil {
		c.t.Fatal(err)
	}
	hs, err := proof.ProveEntries(size, indexes, l)
	if err != nil {
		c.t.Fatal(err)
	}
	cert.Proof = proof.EncodeHashes(hs)
	return cert
}

func (c *crafted) verify(cert proof.Certificate) (proof.Verdict, error) {
	return proof.Verify(cert, c.vkey, c.book)
}

// maxQty is the largest quantity money.Parse accepts at scale 8.
var maxQty = money.Format(math.MaxInt64, 8)

// TestVerify_CountedQuantities: each counted part of a sale is more than
// zero and at most what is left of its fill, and the sum never wraps. (The
// verifier once added int64 quantities unchecked: the attributions below
// made two real 1-BTC sales count 5 BTC, and the certificate was VALID.)
func TestVerify_CountedQuantities(t *testing.T) {
	c := newCrafted(t)
	const price, ref = "30000000.00", "30000000.00"
	two := func(mined int64, sold, status string, attributions ...[]byte) proof.Certificate {
		ob, required := c.obligation(mined)
		entries := append(ob, fill("1-0", "1.00000000", price), fill("2-0", "1.00000000", price))
		return c.certificate(required, sold, status, append(entries, attributions...)...)
	}

	t.Run("OK", func(t *testing.T) {
		cert := two(10*btc, "2.00000000", "open", counted("1-0", "1.00000000", ref, "vwap"),
			counted("2-0", "0.60000000", ref, "vwap"), counted("2-0", "0.40000000", ref, "vwap"))
		v, err := c.verify(cert)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if v.Counted != 3 || v.Obligation.Required != "5.00000000" {
			t.Errorf("verdict %+v: want 3 counted, 5.00000000 required", v)
		}
	})

	for _, tc := range []struct {
		name string
		cert func() proof.Certificate
		want string
	}{
		// 1 + MaxInt64 wraps the count of fill 1-0 below its quantity; on
		// 2-0 a third part brings the wrapped sum to 5 BTC: MET.
		{"ErrWrappedCount", func() proof.Certificate {
			return two(10*btc, "5.00000000", "met",
				counted("1-0", "1.00000000", ref, "vwap"), counted("1-0", maxQty, ref, "vwap"),
				counted("2-0", "1.00000000", ref, "vwap"), counted("2-0", maxQty, ref, "vwap"), counted("2-0", "3.00000002", ref, "vwap"))
		}, "fill s1/1-0 of 1.00000000 is counted for more than its quantity"},
		{"ErrCountedBeyondQuantity", func() proof.Certificate {
			return two(10*btc, "2.00000001", "open", counted("1-0", "1.00000000", ref, "vwap"),
				counted("2-0", "1.00000000", ref, "vwap"), counted("1-0", "0.00000001", ref, "vwap"))
		}, "fill s1/1-0 of 1.00000000 is counted for more than its quantity"},
		{"ErrZeroCounted", func() proof.Certificate {
			return two(10*btc, "1.00000000", "open", counted("1-0", "1.00000000", ref, "vwap"), counted("2-0", "0.00000000", ref, "vwap"))
		}, "attribution of fill s1/2-0 counts 0.00000000: a counted part of a sale is more than zero"},
		// Two sales of the largest quantity and one of 3.00000002 BTC: each
		// counted in full, their sum wraps to 3 BTC, which 6 mined requires.
		{"ErrSoldOverflows", func() proof.Certificate {
			ob, required := c.obligation(6 * btc)
			entries := append(ob, fill("1-0", maxQty, price), fill("2-0", maxQty, price), fill("3-0", "3.00000002", price),
				counted("1-0", maxQty, ref, "vwap"), counted("2-0", maxQty, ref, "vwap"), counted("3-0", "3.00000002", ref, "vwap"))
			return c.certificate(required, "3.00000000", "met", entries...)
		}, "sold: the counted attributions sum to more than " + maxQty + ", the largest amount this verifier holds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := c.verify(tc.cert())
			if err == nil {
				t.Fatalf("Verify = VALID (%s), want %q", strings.TrimSpace(v.String()), tc.want)
			}
			wantErr(t, err, tc.want)
		})
	}
}

const btc = 100_000_000

// TestVerify_PriceTolerance: a counted sale's price is within the rule
// set's tolerance of the reference price its attribution records, as
// compliance.Attribution.Attribute decides it: |price − reference| ≤
// tolerance × reference, the boundary included; a VWAP recorded rounded to
// the minor unit admits what some VWAP that rounds to it admits.
func TestVerify_PriceTolerance(t *testing.T) {
	c := newCrafted(t)
	if tol := c.rules.Attribution.PriceTolerance; tol.Num*100 != 5*tol.Den {
		t.Fatalf("%s's price tolerance is %s; this test's prices are for 0.05", c.rules.ID, tol)
	}
	one := func(price, reference, basis string) proof.Certificate {
		ob, required := c.obligation(2 * btc)
		entries := append(ob, fill("1-0", "1.00000000", price), counted("1-0", "1.00000000", reference, basis))
		return c.certificate(required, "1.00000000", "met", entries...)
	}
	for _, tc := range []struct {
		name, price, reference, basis string
		want                          string // "" valid
	}{
		{"OK/AtReference", "30000000.00", "30000000.00", "vwap", ""},
		{"OK/UpperBoundary", "31500000.00", "30000000.00", "vwap", ""},
		{"OK/LowerBoundary", "28500000.00", "30000000.00", "vwap", ""},
		{"OK/LastAuctionUpperBoundary", "31500000.00", "30000000.00", "last_auction", ""},
		{"OK/LastAuctionLowerBoundary", "28500000.00", "30000000.00", "last_auction", ""},
		// No reference price (a new market): the price is not checked.
		{"OK/BasisNone", "90000000.00", "", "none", ""},
		// A VWAP of 100.1049 ₸ is recorded as 100.10; 105.11 is within 5 %
		// of it (100.1049 × 1.05 = 105.110145), not of 100.10 (105.105).
		{"OK/VWAPRecordedRounded", "105.11", "100.10", "vwap", ""},
		// No VWAP below 100.105 admits 105.12 (it needs 100.1143).
		{"ErrVWAPBeyondRounding", "105.12", "100.10", "vwap", "fill s1/1-0 at 105.12 is counted, but its price is more than 0.05 away from the vwap reference 100.10"},
		// An auction price is recorded exactly.
		{"ErrLastAuctionExact", "105.11", "100.10", "last_auction", "more than 0.05 away from the last_auction reference 100.10"},
		{"ErrAboveUpperBoundary", "31500000.01", "30000000.00", "vwap", "fill s1/1-0 at 31500000.01 is counted, but its price is more than 0.05 away from the vwap reference 30000000.00"},
		{"ErrBelowLowerBoundary", "28499999.99", "30000000.00", "vwap", "more than 0.05 away from the vwap reference 30000000.00"},
		{"ErrLastAuctionAbove", "31500000.01", "30000000.00", "last_auction", "more than 0.05 away from the last_auction reference"},
		{"ErrFarAbove", "40000000.00", "30000000.00", "vwap", "more than 0.05 away"},
		{"ErrNoReference", "30000000.00", "", "vwap", "attribution of fill s1/1-0: basis vwap without its reference price"},
		{"ErrReferenceWithBasisNone", "30000000.00", "30000000.00", "none", `attribution of fill s1/1-0: reference "30000000.00" with basis none`},
		{"ErrUnknownBasis", "30000000.00", "30000000.00", "median", `attribution of fill s1/1-0: reference price basis "median" is unknown`},
		{"ErrReferenceScale", "30000000.00", "30000000.0", "vwap", `reference "30000000.0" is not written to the 2 decimals of the fill's price 30000000.00`},
		{"ErrReferenceZero", "30000000.00", "0.00", "vwap", `attribution of fill s1/1-0: reference "0.00" is not a positive amount`},
		{"ErrReferenceNegative", "30000000.00", "-1.00", "vwap", `attribution of fill s1/1-0: reference "-1.00" is not a positive amount`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := c.verify(one(tc.price, tc.reference, tc.basis))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify = VALID (%s), want %q", strings.TrimSpace(v.String()), tc.want)
			}
			wantErr(t, err, tc.want)
		})
	}
}

// TestVerify_PriceToleranceMatchesAttribution: on prices around both ends
// of the tolerance, the verifier decides as compliance.Attribution.Attribute
// did — exactly, for a last auction price (recorded exactly); for a VWAP,
// which the log records rounded to the minor unit, it never refuses a sale
// Attribute counted.
func TestVerify_PriceToleranceMatchesAttribution(t *testing.T) {
	c := newCrafted(t)
	rules := c.rules.Attribution
	ob, err := c.rules.Obligation("alpha", "BTC", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 2*btc)
	if err != nil {
		t.Fatal(err)
	}
	open := []compliance.OpenObligation{{ID: craftedID, PeriodStart: ob.PeriodStart, Deadline: ob.Deadline, Remaining: ob.Required}}
	at, _ := time.Parse(time.RFC3339, "2024-02-10T06:00:00Z")
	// counts is Attribute's decision on a sale of 1 BTC at price with the
	// exact reference ref (tiyn per BTC).
	counts := func(price int64, ref *big.Rat) bool {
		_, excluded := rules.Attribute(compliance.Sale{FillID: "1-0", Asset: "BTC", Proceeds: "KZT", Quantity: btc, Price: price,
			ExecutedAt: at, Mandatory: true, Miner: "alpha", BuyerOwner: "trader", Reference: ref, Basis: compliance.BasisVWAP}, open)
		for _, x := range excluded {
			if x.Reason == compliance.ExcludedPrice {
				return false
			}
		}
		return true
	}
	verifies := func(price int64, reference, basis string) bool {
		ents, required := c.obligation(2 * btc)
		ents = append(ents, fill("1-0", "1.00000000", money.Format(price, 2)), counted("1-0", "1.00000000", reference, basis))
		_, err := c.verify(c.certificate(required, "1.00000000", "met", ents...))
		if err != nil && !strings.Contains(err.Error(), "is counted, but its price is more than") {
			t.Fatalf("Verify: %v", err)
		}
		return err == nil
	}
	tol := big.NewRat(rules.PriceTolerance.Num, rules.PriceTolerance.Den)
	rng := rand.New(rand.NewPCG(3, 4))
	// near is a price within a few tiyn of an end of the tolerance of ref.
	near := func(ref *big.Rat) int64 {
		f := new(big.Rat).Add(big.NewRat(1, 1), tol)
		if rng.IntN(2) == 0 {
			f.Sub(big.NewRat(1, 1), tol)
		}
		end := new(big.Rat).Mul(ref, f)
		q := new(big.Int).Quo(end.Num(), end.Denom())
		return q.Int64() + int64(rng.IntN(5)) - 2
	}
	agreeExact, refusedBoth := 0, 0
	for range 300 {
		// An auction price, recorded exactly.
		r := int64(1000 + rng.IntN(10_000_000))
		ref := big.NewRat(r, 1)
		p := near(ref)
		want := counts(p, ref)
		if got := verifies(p, money.Format(r, 2), compliance.BasisLastAuction); got != want {
			t.Fatalf("price %d, last auction %d: Attribute counts it %v, the verifier %v", p, r, want, got)
		}
		agreeExact++
		// A VWAP: a fraction of a tiyn, recorded rounded.
		vwap := big.NewRat(int64(100_000+rng.IntN(1_000_000_000)), int64(1+rng.IntN(1000)))
		p = near(vwap)
		recorded := new(big.Rat).Quo(vwap, big.NewRat(100, 1)).FloatString(2)
		if counts(p, vwap) {
			if !verifies(p, recorded, compliance.BasisVWAP) {
				t.Fatalf("price %d, VWAP %s (recorded %s): Attribute counted it, the verifier refuses it", p, vwap.FloatString(6), recorded)
			}
		} else if !verifies(p, recorded, compliance.BasisVWAP) {
			refusedBoth++
		}
	}
	if refusedBoth == 0 {
		t.Fatal("no VWAP sample was refused by both: the samples do not test the boundary")
	}
	t.Logf("%d auction prices decided alike; %d VWAP samples refused by both", agreeExact, refusedBoth)
}

// TestCrossCheck: certificates of two obligations, each valid alone, that
// count one fill for more than its quantity between them are refused
// together; a fill split between them is not; two checkpoints of one size
// and different roots are a fork; and two certificates of one obligation
// cannot be summed.
func TestCrossCheck(t *testing.T) {
	c := newCrafted(t)
	const price, ref = "30000000.00", "30000000.00"
	verdict := func(id int64, parts ...string) proof.Verdict { // parts: quantities of fill 1-0 counted
		t.Helper()
		c.id = id
		ob, required := c.obligation(10 * btc)
		entries := append(ob, fill("1-0", "1.00000000", price))
		for range id - 7 { // each its own log (crafted): of its own size, not a fork of the other's
			entries = append(entries, fill(fmt.Sprint(id, "-0"), "1.00000000", price))
		}
		var sold int64
		for _, q := range parts {
			entries = append(entries, countedTo(id, "1-0", q, ref, "vwap"))
			n, _ := money.Parse(q, 8)
			sold += n
		}
		v, err := c.verify(c.certificate(required, money.Format(sold, 8), "open", entries...))
		if err != nil {
			t.Fatalf("obligation %d alone: %v", id, err)
		}
		return v
	}
	if err := proof.CrossCheck([]proof.Verdict{verdict(7, "0.60000000"), verdict(8, "0.30000000", "0.10000000")}); err != nil {
		t.Fatalf("a fill split between two obligations: %v", err)
	}
	err := proof.CrossCheck([]proof.Verdict{verdict(7, "1.00000000"), verdict(8, "0.00000001")})
	wantErr(t, err, "fill s1/1-0 is counted for more than its quantity over obligations [7 8]")
	// Two logs of one size with different roots: a fork, whatever they count.
	v7, v9 := verdict(7, "0.5"), verdict(9, "0.5")
	v9.Checkpoint.Size = v7.Checkpoint.Size
	wantErr(t, proof.CrossCheck([]proof.Verdict{v7, v9}), fmt.Sprintf("two checkpoints of %s at size %d with different roots", origin, v7.Checkpoint.Size))
	err = proof.CrossCheck([]proof.Verdict{verdict(7, "0.5"), verdict(7, "0.5")})
	wantErr(t, err, "two certificates of obligation: 7")
	if !errors.Is(err, proof.ErrSameObligation) {
		t.Fatalf("%v is not ErrSameObligation", err)
	}
}
