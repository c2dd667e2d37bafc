package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/transparency-dev/merkle/compact"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/settlement"
)

// logOrigin is the log's name: its signing key's.
const logOrigin = "satu/compliance-log"

// logKey returns a new signing key of the log's name and its verifier key.
func logKey(t *testing.T) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, logOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return signer, vkey
}

// fedFill is a fill the test settled, in the order it did.
type fedFill struct {
	shard string
	fill  settlement.Fill
}

// proofLog is the proof tests' log, built by newProofLog, and what the test
// fed it.
type proofLog struct {
	s       *postgres.Store
	db      *pgxpool.Pool
	signer  note.Signer
	vkey    string
	book    *compliance.RuleBook
	met     compliance.ObligationView // alpha, January 2024
	overdue compliance.ObligationView // gamma, January 2024
	open    compliance.ObligationView // beta, February 2024, amended
	// metReport is the report the met obligation was computed from.
	metReport int64
	fills     []fedFill
}

// newProofLog builds, on a fresh database, a log of 36 entries, signing a
// checkpoint after each step. All trades are BTC-KZT at 30,000,000 ₸ unless
// said otherwise; kz-law-193 v2 requires half of what was mined in 2024,
// by the end of the month after next (month end + 30 days). Log indices:
//
//	0–2   licences of alpha, beta, gamma registered (issued 2023-06-15)
//	3, 4  alpha's January report (2 BTC) and computation: 1.0 BTC by 2024-03-01
//	5, 6  gamma's January report (4 BTC) and computation: 2.0 BTC by 2024-03-01
//	7–13  s1 batch, 10 Feb: fills 1-0 (trader-2, 1 BTC, not mandatory,
//	      10:00), 2-0 (alpha 0.4, 11:00), 3-0 (gamma 0.3, 11:30), 4-0 (alpha
//	      0.05 not mandatory, 12:00); attributions: 2-0 → alpha 0.4 and 3-0 →
//	      gamma 0.3 (reference: VWAP 30,000,000 ₸), 4-0 excluded not_mandatory
//	14–16 s1 batch, 20 Feb 10:00: fill 5-0 (alpha 0.6); attribution 0.6 (no
//	      trade in 24 hours, no auction: basis none); alpha met, sold 1.0
//	17–19 s1 batch, 25 Feb: fills 6-0 (trader-2, 1 BTC, 09:00), 7-0 (gamma 0.5
//	      at 40,000,000 ₸, 10:00); 7-0 excluded: 33 % above the VWAP
//	      30,000,000 ₸, the tolerance is 5 %
//	20, 21 s2 batch, 26 Feb 10:00: fill 1-0 (gamma 0.2); counted (basis none)
//	22, 23 beta's February report (1 BTC, on 1 March): 0.5 BTC by 2024-03-30
//	24    the sweep of 2 March: gamma overdue with 0.5 of 2.0 sold
//	25–32 s1 batch, 5 Mar: fills 8-0 (beta 0.1, 10:00), 9-0 (beta 0.2,
//	      10:30), 10-0 (alpha 0.1, 11:00), 11-0 (gamma 0.1, 11:30);
//	      attributions: 8-0 → beta 0.1 (basis none), 9-0 → beta 0.2 (VWAP),
//	      10-0 excluded no_open_obligation, 11-0 excluded outside_window
//	33, 34 beta's amendment on 6 March (0.8 BTC): 0.4 BTC required, 0.3 sold
//	35    alpha's licence suspended from 2024-04-01 until 2024-05-01
func newProofLog(t *testing.T) *proofLog {
	t.Helper()
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	book, err := compliance.LoadRuleBook()
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey := logKey(t)
	l := &proofLog{s: s, db: db, signer: signer, vkey: vkey, book: book}

	register(t, s, "alpha", "111111111111", "2023-06-15", "alpha-1")
	register(t, s, "beta", "222222222222", "2023-06-15", "beta-1")
	register(t, s, "gamma", "333333333333", "2023-06-15", "gamma-1")
	openAccount(t, db, "buyer-1", "trader-x", "trader")
	openAccount(t, db, "trader-2", "trader-y", "trader")
	l.checkpoint(t)

	setNow(t, s, "2024-02-05 12:00")
	l.met = report(t, s, "alpha", "BTC", "2024-01-01", 2*btc)
	l.overdue = report(t, s, "gamma", "BTC", "2024-01-01", 4*btc)
	l.checkpoint(t)

	at := func(wall string) time.Time { return almaty(t, wall) }
	l.settle(t, "s1",
		sale("1-0", "trader-2", "BTC", btc, at("2024-02-10 10:00"), notMandatory),
		sale("2-0", "alpha-1", "BTC", 40_000_000, at("2024-02-10 11:00")),
		sale("3-0", "gamma-1", "BTC", 30_000_000, at("2024-02-10 11:30")),
		sale("4-0", "alpha-1", "BTC", 5_000_000, at("2024-02-10 12:00"), notMandatory))
	l.settle(t, "s1", sale("5-0", "alpha-1", "BTC", 60_000_000, at("2024-02-20 10:00")))
	l.settle(t, "s1",
		sale("6-0", "trader-2", "BTC", btc, at("2024-02-25 09:00"), notMandatory),
		sale("7-0", "gamma-1", "BTC", 50_000_000, at("2024-02-25 10:00"), atPrice(40_000_000*tenge)))
	l.settle(t, "s2", sale("1-0", "gamma-1", "BTC", 20_000_000, at("2024-02-26 10:00")))

	setNow(t, s, "2024-03-01 10:00")
	l.open = report(t, s, "beta", "BTC", "2024-02-01", btc)
	l.checkpoint(t)
	setNow(t, s, "2024-03-02 10:00")
	if vs := sweep(t, s); len(vs) != 1 || vs[0].ObligationID != l.overdue.ID {
		t.Fatalf("Sweep = %+v, want gamma's January overdue", vs)
	}
	l.checkpoint(t)
	l.settle(t, "s1",
		sale("8-0", "beta-1", "BTC", 10_000_000, at("2024-03-05 10:00")),
		sale("9-0", "beta-1", "BTC", 20_000_000, at("2024-03-05 10:30")),
		sale("10-0", "alpha-1", "BTC", 10_000_000, at("2024-03-05 11:00")),
		sale("11-0", "gamma-1", "BTC", 10_000_000, at("2024-03-05 11:30")))

	setNow(t, s, "2024-03-06 12:00")
	amended, err := s.AmendReport(ctx, compliance.Report{MinerID: "beta", Asset: "BTC", PeriodStart: day(t, "2024-02-01"),
		Mined: 80_000_000, Wallets: []string{"wallet-beta"}, Source: compliance.FromMiner},
		compliance.Actor{ID: regulator.ID, Reason: "pool statement corrected"})
	if err != nil {
		t.Fatalf("AmendReport: %v", err)
	}
	l.open = amended
	l.metReport = l.reportID(t, l.met.ID)
	changeLicence(t, s, "KZ-DM-alpha", change(t, compliance.ChangeSuspend, "2024-04-01", "2024-05-01", "inspection"))
	l.checkpoint(t)

	// The figures the certificates will claim.
	for _, c := range []struct {
		ob                               compliance.ObligationView
		required, sold, deadline, status string
	}{
		{l.met, "1.00000000", "1.00000000", "2024-03-01", "met"},
		{l.overdue, "2.00000000", "0.50000000", "2024-03-01", "overdue"},
		{l.open, "0.40000000", "0.30000000", "2024-03-30", "open"},
	} {
		d := obligation(t, s, c.ob.ID)
		if d.Required != c.required || d.Sold != c.sold || d.Deadline != c.deadline || string(d.Status) != c.status {
			t.Fatalf("obligation %d of %s: required %s, sold %s by %s, %s; want %s, %s by %s, %s", d.ID, d.Miner,
				d.Required, d.Sold, d.Deadline, d.Status, c.required, c.sold, c.deadline, c.status)
		}
	}
	if size := l.size(t); size != 36 {
		t.Fatalf("log size = %d, want 36", size)
	}
	return l
}

// settle settles a batch of fills and remembers them.
func (l *proofLog) settle(t *testing.T, shard string, fills ...settlement.Fill) {
	t.Helper()
	mustSettle(t, l.s, l.db, shard, fills...)
	for _, f := range fills {
		l.fills = append(l.fills, fedFill{shard, f})
	}
	l.checkpoint(t)
}

func (l *proofLog) checkpoint(t *testing.T) postgres.StoredCheckpoint {
	t.Helper()
	cp, err := l.s.Checkpoint(context.Background(), l.signer)
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return cp
}

func (l *proofLog) size(t *testing.T) int64 {
	t.Helper()
	n, err := l.s.LogSize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// certificate builds an obligation's certificate, failing the test on error.
func (l *proofLog) certificate(t *testing.T, id int64) proof.Certificate {
	t.Helper()
	cert, err := l.s.Certificate(context.Background(), id, l.signer)
	if err != nil {
		t.Fatalf("Certificate(%d): %v", id, err)
	}
	return cert
}

// reportID is the report an obligation was computed from.
func (l *proofLog) reportID(t *testing.T, obligationID int64) int64 {
	t.Helper()
	var id int64
	if err := l.db.QueryRow(context.Background(), `SELECT report_id FROM obligations WHERE id = $1`, obligationID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// fillLeaf is a settled fill's leaf data as the test computes it from the
// event it fed, independently of the store (which re-encodes fills from
// their rows): compliance/postgres/log.go's fillEntry, written out again.
func fillLeaf(shard string, f settlement.Fill) []byte {
	ev := f.Event
	return proof.MustEncode(proof.KindFill, proof.Fill{Shard: shard, ID: f.ID, Seq: ev.Seq, Symbol: ev.Symbol,
		Base: ev.BaseAsset, Quote: ev.QuoteAsset, Price: money.Format(ev.Price, scales[ev.QuoteAsset]),
		Quantity: money.Format(ev.Quantity, scales[ev.BaseAsset]), QuoteAmount: money.Format(ev.QuoteAmount, scales[ev.QuoteAsset]),
		Buyer: ev.BuyerAccount, Seller: ev.SellerAccount, Mandatory: ev.Purpose == matching.PurposeMandatory,
		ExecutedAt: time.UnixMilli(ev.Time).UTC().Format("2006-01-02T15:04:05.000Z")})
}

// leaves reads back every leaf of the log: the data log_entries keeps
// (attributions, states, licences), report versions and computations as
// the certificates of the obligations (all of them) carry them, and in every other
// position the fills, in the order the test settled them, encoded by the
// test. A certificate's fill must be the test's encoding.
func (l *proofLog) leaves(t *testing.T, obligations ...int64) [][]byte {
	t.Helper()
	ctx := context.Background()
	size := l.size(t)
	fromCerts := map[int64]string{}
	for _, id := range obligations {
		for _, e := range l.certificate(t, id).Entries {
			fromCerts[e.Index] = e.Data
		}
	}
	rows, err := l.db.Query(ctx, `SELECT index, kind, data FROM log_entries ORDER BY index`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		index int64
		kind  string
		data  []byte
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.index, &x.kind, &x.data)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, size)
	for _, r := range list {
		switch {
		case r.index < 0 || r.index >= size:
			t.Fatalf("log_entries index %d is outside the log of %d", r.index, size)
		case r.data != nil:
			out[r.index] = r.data
		case r.kind == proof.KindReport || r.kind == proof.KindComputation:
			d, ok := fromCerts[r.index]
			if !ok {
				t.Fatalf("%s at index %d is in no certificate", r.kind, r.index)
			}
			out[r.index] = []byte(d)
		default:
			t.Fatalf("log_entries index %d (%s) keeps no data", r.index, r.kind)
		}
	}
	next := 0
	for i := range out {
		if out[i] != nil {
			continue
		}
		if next == len(l.fills) {
			t.Fatalf("leaf %d is neither in log_entries nor one of the %d fills settled", i, len(l.fills))
		}
		out[i] = fillLeaf(l.fills[next].shard, l.fills[next].fill)
		next++
	}
	if next != len(l.fills) {
		t.Fatalf("the log holds %d fills, the test settled %d", next, len(l.fills))
	}
	for index, d := range fromCerts {
		if d != string(out[index]) {
			t.Errorf("certificate entry %d =\n%s\nthe log's leaf is\n%s", index, d, out[index])
		}
	}
	return out
}

// roots returns the RFC 6962 root of every prefix of leaves, computed with
// transparency-dev/merkle's compact range: roots[n] is the root of the
// first n leaves.
func roots(t *testing.T, leaves [][]byte) [][]byte {
	t.Helper()
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	out := [][]byte{rfc6962.DefaultHasher.EmptyRoot()}
	for _, d := range leaves {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(d), nil); err != nil {
			t.Fatal(err)
		}
		root, err := r.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, root)
	}
	return out
}

func hashes[H ~[]tlog.Hash](p H) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// checkpoints returns every archived checkpoint, opened with the key.
func (l *proofLog) checkpoints(t *testing.T) []proof.Checkpoint {
	t.Helper()
	rows, err := l.db.Query(context.Background(), `SELECT size, root, note FROM log_checkpoints ORDER BY size`)
	if err != nil {
		t.Fatal(err)
	}
	var out []proof.Checkpoint
	var size int64
	var root []byte
	var signed string
	if _, err := pgx.ForEachRow(rows, []any{&size, &root, &signed}, func() error {
		cp, err := proof.OpenCheckpoint(signed, l.vkey)
		if err != nil {
			return fmt.Errorf("checkpoint of size %d: %w", size, err)
		}
		if cp.Size != size || !bytes.Equal(cp.Root[:], root) || cp.Origin != logOrigin {
			return fmt.Errorf("checkpoint %+v is archived as size %d, root %x", cp, size, root)
		}
		out = append(out, cp)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestProof_IndependentRFC6962: an independent RFC 6962 implementation
// (github.com/transparency-dev/merkle) agrees with the store on every
// checkpoint's root, every inclusion proof and every consistency proof.
func TestProof_IndependentRFC6962(t *testing.T) {
	ctx := context.Background()
	l := newProofLog(t)
	leaves := l.leaves(t, l.met.ID, l.overdue.ID, l.open.ID)
	rts := roots(t, leaves)
	cps := l.checkpoints(t)
	h := rfc6962.DefaultHasher

	t.Run("OK/GoldenLeaves", func(t *testing.T) {
		a, g, b := l.met.ID, l.overdue.ID, l.open.ID
		for index, want := range map[int]string{
			8: "fill\n" + `{"shard":"s1","id":"2-0","seq":2,"symbol":"BTC-KZT","base":"BTC","quote":"KZT","price":"30000000.00",` +
				`"quantity":"0.40000000","quoteAmount":"12000000.00","buyer":"buyer-1","seller":"alpha-1","mandatory":true,` +
				`"executedAt":"2024-02-10T06:00:00.000Z"}`,
			20: "fill\n" + `{"shard":"s2","id":"1-0","seq":1,"symbol":"BTC-KZT","base":"BTC","quote":"KZT","price":"30000000.00",` +
				`"quantity":"0.20000000","quoteAmount":"6000000.00","buyer":"buyer-1","seller":"gamma-1","mandatory":true,` +
				`"executedAt":"2024-02-26T05:00:00.000Z"}`,
			3: "report\n" + `{"miner":"alpha","asset":"BTC","period":"2024-01","version":1,"mined":"2.00000000",` +
				`"wallets":["wallet-alpha"],"source":"miner","pool":"","reason":"submitted"}`,
			4: "computation\n" + fmt.Sprintf(`{"obligation":%d,"version":1,"miner":"alpha","asset":"BTC","period":"2024-01",`+
				`"deadline":"2024-03-01","reportVersion":1,"mined":"2.00000000","share":"0.5","ruleSet":"kz-law-193",`+
				`"ruleSetVersion":2,"required":"1.00000000"}`, a),
			11: "attribution\n" + fmt.Sprintf(`{"shard":"s1","fill":"2-0","miner":"alpha","obligation":%d,"quantity":"0.40000000",`+
				`"counted":true,"reason":"","reference":"30000000.00","basis":"vwap"}`, a),
			13: "attribution\n" + `{"shard":"s1","fill":"4-0","miner":"alpha","obligation":0,"quantity":"0.05000000",` +
				`"counted":false,"reason":"not_mandatory","reference":"","basis":"none"}`,
			15: "attribution\n" + fmt.Sprintf(`{"shard":"s1","fill":"5-0","miner":"alpha","obligation":%d,"quantity":"0.60000000",`+
				`"counted":true,"reason":"","reference":"","basis":"none"}`, a),
			16: "state\n" + fmt.Sprintf(`{"obligation":%d,"status":"met","sold":"1.00000000","at":"2024-02-20T05:00:00.000Z"}`, a),
			19: "attribution\n" + `{"shard":"s1","fill":"7-0","miner":"gamma","obligation":0,"quantity":"0.50000000",` +
				`"counted":false,"reason":"price_out_of_tolerance","reference":"30000000.00","basis":"vwap"}`,
			// The violation arose on 3 March in Kazakhstan: 2 March 19:00 UTC.
			24: "state\n" + fmt.Sprintf(`{"obligation":%d,"status":"overdue","sold":"0.50000000","at":"2024-03-01T19:00:00.000Z"}`, g),
			31: "attribution\n" + `{"shard":"s1","fill":"10-0","miner":"alpha","obligation":0,"quantity":"0.10000000",` +
				`"counted":false,"reason":"no_open_obligation","reference":"30000000.00","basis":"vwap"}`,
			32: "attribution\n" + `{"shard":"s1","fill":"11-0","miner":"gamma","obligation":0,"quantity":"0.10000000",` +
				`"counted":false,"reason":"outside_window","reference":"30000000.00","basis":"vwap"}`,
			33: "report\n" + `{"miner":"beta","asset":"BTC","period":"2024-02","version":2,"mined":"0.80000000",` +
				`"wallets":["wallet-beta"],"source":"miner","pool":"","reason":"pool statement corrected"}`,
			34: "computation\n" + fmt.Sprintf(`{"obligation":%d,"version":2,"miner":"beta","asset":"BTC","period":"2024-02",`+
				`"deadline":"2024-03-30","reportVersion":2,"mined":"0.80000000","share":"0.5","ruleSet":"kz-law-193",`+
				`"ruleSetVersion":2,"required":"0.40000000"}`, b),
			35: "licence\n" + `{"miner":"alpha","number":"KZ-DM-alpha","event":"suspend","subtype":"","from":"2024-04-01",` +
				`"until":"2024-05-01","reason":"inspection"}`,
		} {
			if got := string(leaves[index]); got != proof.Version+" "+want {
				t.Errorf("leaf %d =\n%s\nwant\n%s %s", index, got, proof.Version, want)
			}
		}
		kinds := make([]string, len(leaves))
		for i, d := range leaves {
			kind, _, err := proof.Decode(d)
			if err != nil {
				t.Fatalf("leaf %d: %v", i, err)
			}
			kinds[i] = kind
		}
		want := strings.Fields(`licence licence licence report computation report computation
			fill fill fill fill attribution attribution attribution
			fill attribution state
			fill fill attribution
			fill attribution
			report computation
			state
			fill fill fill fill attribution attribution attribution attribution
			report computation
			licence`)
		if !slices.Equal(kinds, want) {
			t.Errorf("leaf kinds =\n%v\nwant\n%v", kinds, want)
		}
	})

	t.Run("OK/LeafHash", func(t *testing.T) {
		for i, d := range leaves {
			if lh := proof.LeafHash(d); !bytes.Equal(lh[:], h.HashLeaf(d)) {
				t.Errorf("leaf %d: proof.LeafHash %x, rfc6962 %x", i, lh, h.HashLeaf(d))
			}
		}
	})

	t.Run("OK/CheckpointRoots", func(t *testing.T) {
		// One per step of newProofLog (3, 7, 14, 17, 20, 22, 24, 25, 33,
		// 36): every checkpoint the store signed has the independent root.
		var sizes []int64
		for _, cp := range cps {
			sizes = append(sizes, cp.Size)
			if !bytes.Equal(cp.Root[:], rts[cp.Size]) {
				t.Errorf("checkpoint of size %d: root %x, rfc6962 gives %x", cp.Size, cp.Root, rts[cp.Size])
			}
		}
		if want := []int64{3, 7, 14, 17, 20, 22, 24, 25, 33, 36}; !slices.Equal(sizes, want) {
			t.Errorf("checkpoint sizes = %v, want %v", sizes, want)
		}
	})

	t.Run("OK/InclusionProofs", func(t *testing.T) {
		for _, cp := range cps {
			n := uint64(cp.Size)
			for i := range n {
				p, err := l.s.InclusionProof(ctx, int64(i), cp.Size)
				if err != nil {
					t.Fatalf("InclusionProof(%d, %d): %v", i, n, err)
				}
				if err := mproof.VerifyInclusion(h, i, n, h.HashLeaf(leaves[i]), hashes(p), cp.Root[:]); err != nil {
					t.Errorf("InclusionProof(%d, %d) does not verify: %v", i, n, err)
				}
				// The proof is of that leaf at that place only.
				other := (i + 1) % uint64(len(leaves))
				if err := mproof.VerifyInclusion(h, i, n, h.HashLeaf(leaves[other]), hashes(p), cp.Root[:]); err == nil {
					t.Errorf("InclusionProof(%d, %d) verifies leaf %d too", i, n, other)
				}
				if n > 1 {
					if err := mproof.VerifyInclusion(h, (i+1)%n, n, h.HashLeaf(leaves[i]), hashes(p), cp.Root[:]); err == nil {
						t.Errorf("InclusionProof(%d, %d) verifies at index %d too", i, n, (i+1)%n)
					}
				}
			}
		}
	})

	t.Run("OK/ConsistencyProofs", func(t *testing.T) {
		for _, from := range cps {
			for _, to := range cps {
				if from.Size > to.Size {
					continue
				}
				p, err := l.s.ConsistencyProof(ctx, from.Size, to.Size)
				if err != nil {
					t.Fatalf("ConsistencyProof(%d, %d): %v", from.Size, to.Size, err)
				}
				if err := mproof.VerifyConsistency(h, uint64(from.Size), uint64(to.Size), hashes(p), from.Root[:], to.Root[:]); err != nil {
					t.Errorf("ConsistencyProof(%d, %d) does not verify: %v", from.Size, to.Size, err)
				}
				if err := tlog.CheckTree(p, to.Size, to.Root, from.Size, from.Root); err != nil {
					t.Errorf("ConsistencyProof(%d, %d): tlog.CheckTree: %v", from.Size, to.Size, err)
				}
			}
		}
	})

	t.Run("OK/CertificateProofs", func(t *testing.T) {
		for _, id := range []int64{l.met.ID, l.overdue.ID, l.open.ID} {
			cert := l.certificate(t, id)
			cp, err := proof.OpenCheckpoint(cert.Checkpoint, l.vkey)
			if err != nil {
				t.Fatal(err)
			}
			// Every entry's own audit path, derived from the batch proof,
			// verifies with the independent implementation and is the
			// path the log itself proves.
			for _, e := range cert.Entries {
				p, err := cert.AuditPath(cp, e.Index)
				if err != nil {
					t.Fatalf("obligation %d, entry %d: %v", id, e.Index, err)
				}
				if err := mproof.VerifyInclusion(h, uint64(e.Index), uint64(cp.Size), h.HashLeaf([]byte(e.Data)), hashes(p), cp.Root[:]); err != nil {
					t.Errorf("obligation %d, entry %d: %v", id, e.Index, err)
				}
				want, err := l.s.InclusionProof(ctx, e.Index, cp.Size)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(p, want) {
					t.Errorf("obligation %d, entry %d: audit path from the batch proof %v, the log's %v", id, e.Index, p, want)
				}
			}
		}
	})

	t.Run("ErrSizes", func(t *testing.T) {
		size := l.size(t)
		for _, c := range []struct{ index, size int64 }{{size, size}, {0, size + 1}, {-1, size}, {3, 3}, {0, 0}} {
			_, err := l.s.InclusionProof(ctx, c.index, c.size)
			wantCode(t, err, apperr.InvalidParameter)
		}
		for _, c := range []struct{ from, to int64 }{{5, 4}, {1, size + 1}, {-1, 3}} {
			_, err := l.s.ConsistencyProof(ctx, c.from, c.to)
			wantCode(t, err, apperr.InvalidParameter)
		}
		_, err := l.s.CheckpointAt(ctx, 4)
		wantCode(t, err, apperr.InvalidParameter)
	})
}

// TestProof_CertificateRoundTrip: the certificates of a met, an overdue and
// an open obligation verify offline, also after a trip through JSON, and
// the verdict is what the test settled.
func TestProof_CertificateRoundTrip(t *testing.T) {
	l := newProofLog(t)
	for _, tc := range []struct {
		name     string
		ob       compliance.ObligationView
		indices  []int64
		verdict  proof.Verdict
		required string
	}{
		{name: "OK/Met", ob: l.met, indices: []int64{3, 4, 8, 10, 11, 13, 14, 15, 16},
			verdict: proof.Verdict{Obligation: proof.Claim{Miner: "alpha", Asset: "BTC", Period: "2024-01",
				Required: "1.00000000", Sold: "1.00000000", Status: "met"}, Mined: "2.00000000", Computations: 1, Counted: 2,
				Excluded: []string{"s1/4-0: 0.05000000 BTC (not_mandatory)"}}},
		// 11-0 was sold after the window closed: not in the certificate.
		{name: "OK/Overdue", ob: l.overdue, indices: []int64{5, 6, 9, 12, 18, 19, 20, 21, 24},
			verdict: proof.Verdict{Obligation: proof.Claim{Miner: "gamma", Asset: "BTC", Period: "2024-01",
				Required: "2.00000000", Sold: "0.50000000", Status: "overdue"}, Mined: "4.00000000", Computations: 1, Counted: 2,
				Excluded: []string{"s1/7-0: 0.50000000 BTC (price_out_of_tolerance)"}}},
		{name: "OK/OpenAmended", ob: l.open, indices: []int64{22, 23, 25, 26, 29, 30, 33, 34},
			verdict: proof.Verdict{Obligation: proof.Claim{Miner: "beta", Asset: "BTC", Period: "2024-02",
				Required: "0.40000000", Sold: "0.30000000", Status: "open"}, Mined: "0.80000000", Computations: 2, Counted: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := l.certificate(t, tc.ob.ID)
			var indices []int64
			for _, e := range cert.Entries {
				indices = append(indices, e.Index)
			}
			slices.Sort(indices)
			if !slices.Equal(indices, tc.indices) {
				t.Errorf("certificate entries at %v, want %v", indices, tc.indices)
			}
			want := tc.verdict
			want.Obligation.ID = tc.ob.ID
			want.RuleSet, want.RuleSetVersion, want.Share = "kz-law-193", 2, "0.5"
			want.Checkpoint = proof.Checkpoint{Origin: logOrigin, Size: 36}
			data, err := json.Marshal(cert)
			if err != nil {
				t.Fatal(err)
			}
			var again proof.Certificate
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&again); err != nil {
				t.Fatal(err)
			}
			for _, c := range []proof.Certificate{cert, again} {
				v, err := proof.Verify(c, l.vkey, l.book)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				want.Checkpoint.Root = v.Checkpoint.Root
				if v.Obligation != want.Obligation || v.Checkpoint != want.Checkpoint || v.RuleSet != want.RuleSet ||
					v.RuleSetVersion != want.RuleSetVersion || v.Share != want.Share || v.Mined != want.Mined ||
					v.Computations != want.Computations || v.Counted != want.Counted || !slices.Equal(v.Excluded, want.Excluded) {
					t.Errorf("verdict =\n%+v\nwant\n%+v", v, want)
				}
			}
			// A second certificate at the same checkpoint is the same bytes.
			if data2, _ := json.Marshal(l.certificate(t, tc.ob.ID)); !bytes.Equal(data, data2) {
				t.Errorf("two certificates of obligation %d differ", tc.ob.ID)
			}
		})
	}

	t.Run("OK/SignsCheckpointWhenNoneHoldsTheEntries", func(t *testing.T) {
		// A new entry (a licence event) after the newest checkpoint; the
		// met obligation's entries are all in the newest checkpoint, which
		// it keeps using.
		changeLicence(t, l.s, "KZ-DM-beta", change(t, compliance.ChangeSuspend, "2024-06-01", "2024-07-01", "inspection"))
		if _, err := proof.Verify(l.certificate(t, l.met.ID), l.vkey, l.book); err != nil {
			t.Fatal(err)
		}
		if n := len(l.checkpoints(t)); n != 10 {
			t.Errorf("%d checkpoints, want 10: the newest holds the met obligation's entries", n)
		}
		setNow(t, l.s, "2024-03-10 12:00")
		_, err := l.s.AmendReport(context.Background(), compliance.Report{MinerID: "beta", Asset: "BTC",
			PeriodStart: day(t, "2024-02-01"), Mined: 60_000_000, Wallets: []string{"wallet-beta"}, Source: compliance.FromMiner},
			compliance.Actor{ID: regulator.ID, Reason: "second correction"})
		if err != nil {
			t.Fatal(err)
		}
		// 0.6 mined: 0.3 required, 0.3 sold: met (report, computation, state).
		cert := l.certificate(t, l.open.ID)
		v, err := proof.Verify(cert, l.vkey, l.book)
		if err != nil {
			t.Fatal(err)
		}
		if v.Checkpoint.Size != 40 || v.Obligation.Status != "met" || v.Obligation.Required != "0.30000000" || v.Computations != 3 {
			t.Errorf("verdict %+v: want a new checkpoint of 40, met, 0.30000000 required, 3 computations", v)
		}
	})
}

// tamper runs statements as a malicious database administrator would:
// with the append-only triggers (and foreign keys) lifted.
func tamper(t *testing.T, db *pgxpool.Pool, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

// TestProof_TamperedDatabase: a row edited or deleted behind the log's back
// makes the certificate fail, naming the row.
func TestProof_TamperedDatabase(t *testing.T) {
	const noMatch = "the database no longer matches what the log recorded"
	for _, tc := range []struct {
		name  string
		stmts func(l *proofLog) []string
		// want is the error of Certificate(the met obligation).
		want func(l *proofLog) string
	}{
		{name: "ErrFillQuantity",
			stmts: func(*proofLog) []string {
				return []string{`UPDATE fills SET quantity = 0.5 WHERE shard = 's1' AND id = '2-0'`}
			},
			want: func(*proofLog) string { return "fill s1/2-0 (log index 8): " + noMatch }},
		{name: "ErrFillPrice",
			stmts: func(*proofLog) []string {
				return []string{`UPDATE fills SET price = 29000000 WHERE shard = 's1' AND id = '5-0'`}
			},
			want: func(*proofLog) string { return "fill s1/5-0 (log index 14): " + noMatch }},
		{name: "ErrExcludedFillMadeMandatory",
			stmts: func(*proofLog) []string {
				return []string{`UPDATE fills SET mandatory = true WHERE shard = 's1' AND id = '4-0'`}
			},
			want: func(*proofLog) string { return "fill s1/4-0 (log index 10): " + noMatch }},
		{name: "ErrCountedFillDeleted",
			stmts: func(*proofLog) []string { return []string{`DELETE FROM fills WHERE shard = 's1' AND id = '5-0'`} },
			want:  func(*proofLog) string { return "fill s1/5-0 is in the log but not in the database" }},
		// Deleting a fill in the middle of a run moves the ones after it.
		{name: "ErrEarlierFillOfRunDeleted",
			stmts: func(*proofLog) []string { return []string{`DELETE FROM fills WHERE shard = 's1' AND id = '1-0'`} },
			want:  func(*proofLog) string { return "fill s1/2-0 (log index 7): " + noMatch }},
		{name: "ErrFillIDsSwapped",
			stmts: func(*proofLog) []string {
				return []string{`UPDATE fills SET id = 'x' WHERE shard = 's1' AND id = '2-0'`,
					`UPDATE fills SET id = '2-0' WHERE shard = 's1' AND id = '4-0'`,
					`UPDATE fills SET id = '4-0' WHERE shard = 's1' AND id = 'x'`}
			},
			// The row of sequence 2 (0.4, mandatory) is now called 4-0.
			want: func(*proofLog) string { return "fill s1/4-0 (log index 8): " + noMatch }},
		{name: "ErrFillRunMoved",
			stmts: func(*proofLog) []string {
				return []string{`UPDATE log_fill_runs SET first_index = 15 WHERE first_index = 14`}
			},
			want: func(*proofLog) string { return "fill s1/5-0 (log index 15): " + noMatch }},
		{name: "ErrReportMined",
			stmts: func(l *proofLog) []string {
				return []string{fmt.Sprintf(`UPDATE report_versions SET mined = 3 WHERE report_id = %d`, l.metReport)}
			},
			want: func(l *proofLog) string {
				return fmt.Sprintf("report %d/1 (log index 3): %s", l.metReport, noMatch)
			}},
		{name: "ErrReportDeleted",
			stmts: func(l *proofLog) []string {
				return []string{fmt.Sprintf(`DELETE FROM report_versions WHERE report_id = %d`, l.metReport)}
			},
			want: func(l *proofLog) string {
				return fmt.Sprintf("report version %d/1 is in the log but not in the database", l.metReport)
			}},
		{name: "ErrComputationShare",
			stmts: func(l *proofLog) []string {
				return []string{fmt.Sprintf(`UPDATE obligation_computations SET share = 0.25, required = 0.5 WHERE obligation_id = %d`, l.met.ID)}
			},
			want: func(l *proofLog) string { return fmt.Sprintf("computation %d/1 (log index 4): %s", l.met.ID, noMatch) }},
		{name: "ErrRuleSetSwapped",
			stmts: func(l *proofLog) []string {
				return []string{fmt.Sprintf(`UPDATE obligation_computations SET ruleset = 'kz-paper-2024' WHERE obligation_id = %d`, l.met.ID)}
			},
			want: func(l *proofLog) string { return fmt.Sprintf("computation %d/1 (log index 4): %s", l.met.ID, noMatch) }},
		{name: "ErrDeadlineMoved",
			stmts: func(l *proofLog) []string {
				return []string{fmt.Sprintf(`UPDATE obligations SET deadline = '2024-03-31' WHERE id = %d`, l.met.ID)}
			},
			want: func(l *proofLog) string { return fmt.Sprintf("computation %d/1 (log index 4): %s", l.met.ID, noMatch) }},
		{name: "ErrComputationDeleted",
			stmts: func(l *proofLog) []string {
				return []string{fmt.Sprintf(`DELETE FROM obligation_computations WHERE obligation_id = %d`, l.met.ID)}
			},
			want: func(l *proofLog) string {
				return fmt.Sprintf("computation %d/1 is in the log but not in the database", l.met.ID)
			}},
		{name: "ErrAttributionEdited",
			stmts: func(*proofLog) []string {
				return []string{`UPDATE log_entries SET data = convert_to(replace(convert_from(data, 'UTF8'), '0.40000000', '0.50000000'), 'UTF8')
					WHERE index = 11`}
			},
			want: func(*proofLog) string { return "attribution s1/2-0 (log index 11): " + noMatch }},
		// The two counted attributions trade places in the log.
		{name: "ErrLogEntriesReordered",
			stmts: func(*proofLog) []string {
				return []string{`UPDATE log_entries SET index = -1 WHERE index = 11`,
					`UPDATE log_entries SET index = 11 WHERE index = 15`,
					`UPDATE log_entries SET index = 15 WHERE index = -1`}
			},
			want: func(*proofLog) string { return "attribution s1/5-0 (log index 11): " + noMatch }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newProofLog(t)
			l.certificate(t, l.met.ID) // builds before
			want := tc.want(l)
			tamper(t, l.db, tc.stmts(l)...)
			_, err := l.s.Certificate(context.Background(), l.met.ID, l.signer)
			wantCode(t, err, apperr.Conflict)
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("Certificate error = %q, want it to contain %q", err, want)
			}
		})
	}

	// The claim is the obligations row, which the exchange updates as
	// sales settle: a false claim still builds, and verification refuses it.
	for _, tc := range []struct {
		name, set, want string
	}{
		{"ErrClaimSold", "sold = 1.2, status = 'overdue'", "sold: the counted attributions sum to 0.50000000, the claim says 1.20000000"},
		{"ErrClaimMet", "sold = 2.0, status = 'met'", "sold: the counted attributions sum to 0.50000000, the claim says 2.00000000"},
		{"ErrClaimOpen", "status = 'open'", "status: the entries make the obligation overdue, the claim says open"},
		{"ErrClaimRequired", "required = 0.5, status = 'met'",
			"required: ceil(4.00000000 × 0.5) is 2.00000000, the computation says 2.00000000 and the claim 0.50000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newProofLog(t)
			tamper(t, l.db, fmt.Sprintf(`UPDATE obligations SET %s WHERE id = %d`, tc.set, l.overdue.ID))
			_, err := proof.Verify(l.certificate(t, l.overdue.ID), l.vkey, l.book)
			wantErrText(t, err, tc.want)
		})
	}

	t.Run("ErrAppendOnly", func(t *testing.T) {
		l := newProofLog(t)
		ctx := context.Background()
		for _, c := range []struct{ stmt, want string }{
			{`UPDATE fills SET quantity = 0.5 WHERE shard = 's1' AND id = '2-0'`, "fills is append-only: UPDATE refused"},
			{`DELETE FROM report_versions`, "report_versions is append-only: DELETE refused"},
			{`UPDATE obligation_computations SET share = 0.25`, "obligation_computations is append-only: UPDATE refused"},
			{`UPDATE log_entries SET index = index + 100`, "log_entries is append-only: UPDATE refused"},
			{`DELETE FROM log_fill_runs`, "log_fill_runs is append-only: DELETE refused"},
			{`DELETE FROM log_hashes`, "log_hashes is append-only: DELETE refused"},
			{`DELETE FROM log_checkpoints`, "log_checkpoints is append-only: DELETE refused"},
		} {
			_, err := l.db.Exec(ctx, c.stmt)
			wantErrText(t, err, c.want)
		}
	})
}

func wantErrText(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil, want %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %q, want it to contain %q", err, want)
	}
}

// TestProof_TamperedCertificate: a certificate edited after it was built
// fails verification with the reason.
func TestProof_TamperedCertificate(t *testing.T) {
	l := newProofLog(t)
	certs := map[string]proof.Certificate{"met": l.certificate(t, l.met.ID), "overdue": l.certificate(t, l.overdue.ID),
		"open": l.certificate(t, l.open.ID)}
	// An older checkpoint of the same log, signed by the exchange.
	older, err := l.s.CheckpointAt(context.Background(), 33)
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, otherVkey := logKey(t)
	cp, err := proof.OpenCheckpoint(certs["met"].Checkpoint, l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	a, b := l.met.ID, l.open.ID

	// at is the position of the entry with a log index; drop removes it.
	at := func(c *proof.Certificate, index int64) int {
		for i, e := range c.Entries {
			if e.Index == index {
				return i
			}
		}
		t.Fatalf("no entry at index %d", index)
		return -1
	}
	// reprove replaces the batch proof with the log's proof of the entries
	// the certificate now has, at size.
	reprove := func(c *proof.Certificate, size int64) {
		var indexes []int64
		for _, e := range c.Entries {
			indexes = append(indexes, e.Index)
		}
		hs, err := l.s.BatchProof(context.Background(), size, indexes)
		if err != nil {
			t.Fatal(err)
		}
		c.Proof = proof.EncodeHashes(hs)
	}
	drop := func(indices ...int64) func(c *proof.Certificate) {
		return func(c *proof.Certificate) {
			for _, x := range indices {
				i := at(c, x)
				c.Entries = slices.Delete(c.Entries, i, i+1)
			}
			reprove(c, cp.Size)
		}
	}
	const notInLog = "entries: not in the log at the checkpoint: with the batch proof they lead to root"
	for _, tc := range []struct {
		name, cert string
		edit       func(c *proof.Certificate)
		vkey       string
		want       string
	}{
		{name: "ErrFillQuantity", cert: "met", edit: func(c *proof.Certificate) {
			e := &c.Entries[at(c, 8)]
			e.Data = strings.Replace(e.Data, `"quantity":"0.40000000"`, `"quantity":"0.50000000"`, 1)
		}, want: notInLog},
		{name: "ErrAttributionQuantity", cert: "met", edit: func(c *proof.Certificate) {
			e := &c.Entries[at(c, 15)]
			e.Data = strings.Replace(e.Data, `"quantity":"0.60000000"`, `"quantity":"0.70000000"`, 1)
		}, want: notInLog},
		{name: "ErrEntryIndex", cert: "met", edit: func(c *proof.Certificate) { c.Entries[at(c, 8)].Index = 9 },
			want: notInLog},
		{name: "ErrEntryIndexOutside", cert: "met", edit: func(c *proof.Certificate) { c.Entries[at(c, 16)].Index = 36 },
			want: "index 36 is outside the log of 36"},
		{name: "ErrEntryTwice", cert: "met", edit: func(c *proof.Certificate) { c.Entries = slices.Insert(c.Entries, 1, c.Entries[0]) },
			want: fmt.Sprintf("entry 1: index %d appears twice", certs["met"].Entries[0].Index)},
		{name: "ErrEntriesReordered", cert: "met", edit: func(c *proof.Certificate) {
			i, j := at(c, 8), at(c, 10)
			c.Entries[i], c.Entries[j] = c.Entries[j], c.Entries[i]
		}, want: "index 8 comes after index 10: entries must be in log order"},
		{name: "ErrProofNotBase64", cert: "met", edit: func(c *proof.Certificate) { c.Proof = "AAAA" },
			want: "proof: not base64 of 32-byte hashes"},
		{name: "ErrProofEdited", cert: "met", edit: func(c *proof.Certificate) {
			b, _ := base64.StdEncoding.DecodeString(c.Proof)
			b[0] ^= 1
			c.Proof = base64.StdEncoding.EncodeToString(b)
		}, want: notInLog},
		{name: "ErrProofShortened", cert: "met", edit: func(c *proof.Certificate) {
			b, _ := base64.StdEncoding.DecodeString(c.Proof)
			c.Proof = base64.StdEncoding.EncodeToString(b[:len(b)-32])
		}, want: "entries: the batch proof is too short"},
		{name: "ErrProofLengthened", cert: "met", edit: func(c *proof.Certificate) {
			b, _ := base64.StdEncoding.DecodeString(c.Proof)
			c.Proof = base64.StdEncoding.EncodeToString(append(b, b[:32]...))
		}, want: "hashes, the entries use"},
		// Dropping entries without a new proof breaks the proof; the cases
		// below drop them and prove the rest again, as an exchange hiding
		// something would: the content checks catch those.
		{name: "ErrEntryDroppedProofKept", cert: "met", edit: func(c *proof.Certificate) {
			i := at(c, 8)
			c.Entries = slices.Delete(c.Entries, i, i+1)
		}, want: notInLog},
		{name: "ErrCountedAttributionDropped", cert: "met", edit: drop(15),
			want: "sold: the counted attributions sum to 0.40000000, the claim says 1.00000000"},
		{name: "ErrFillDropped", cert: "met", edit: drop(8), want: "attribution of fill s1/2-0: the fill is not in the certificate"},
		{name: "ErrReportDropped", cert: "met", edit: drop(3), want: "report version 1 of alpha BTC 2024-01 is missing"},
		{name: "ErrComputationDropped", cert: "met", edit: drop(4), want: fmt.Sprintf("no computation of obligation %d", a)},
		{name: "ErrFirstComputationDropped", cert: "open", edit: drop(23),
			want: fmt.Sprintf("computation 1 of obligation %d is missing", b)},
		// Hiding the amendment brings back the first figure, 0.5 required.
		{name: "ErrAmendmentDropped", cert: "open", edit: drop(33, 34),
			want: "required: ceil(1.00000000 × 0.5) is 0.50000000, the computation says 0.50000000 and the claim 0.40000000"},
		{name: "ErrOverdueStateDropped", cert: "overdue", edit: drop(24),
			want: "status: the entries make the obligation open, the claim says overdue"},
		{name: "ErrClaimRequired", cert: "met", edit: func(c *proof.Certificate) { c.Obligation.Required = "0.90000000" },
			want: "required: ceil(2.00000000 × 0.5) is 1.00000000, the computation says 1.00000000 and the claim 0.90000000"},
		{name: "ErrClaimSold", cert: "met", edit: func(c *proof.Certificate) { c.Obligation.Sold = "1.10000000" },
			want: "sold: the counted attributions sum to 1.00000000, the claim says 1.10000000"},
		{name: "ErrClaimStatusMetAsOpen", cert: "met", edit: func(c *proof.Certificate) { c.Obligation.Status = "open" },
			want: "status: the entries make the obligation met, the claim says open"},
		{name: "ErrClaimStatusOpenAsMet", cert: "open", edit: func(c *proof.Certificate) { c.Obligation.Status = "met" },
			want: "status: the entries make the obligation open, the claim says met"},
		{name: "ErrClaimStatusOverdueAsOpen", cert: "overdue", edit: func(c *proof.Certificate) { c.Obligation.Status = "open" },
			want: "status: the entries make the obligation overdue, the claim says open"},
		{name: "ErrClaimOtherMiner", cert: "met", edit: func(c *proof.Certificate) { c.Obligation.Miner = "beta" },
			want: "computation 1 is of alpha BTC 2024-01, not the claim's beta BTC 2024-01"},
		{name: "ErrClaimOtherObligation", cert: "met", edit: func(c *proof.Certificate) { c.Obligation.ID = b },
			want: fmt.Sprintf("no computation of obligation %d", b)},
		{name: "ErrCheckpointOtherKey", cert: "met", edit: func(c *proof.Certificate) {
			c.Checkpoint = must(proof.Sign(cp, otherSigner))
		}, want: "checkpoint signature: note has no verifiable signatures"},
		{name: "ErrCheckpointSize", cert: "met", edit: func(c *proof.Certificate) {
			c.Checkpoint = strings.Replace(c.Checkpoint, "\n36\n", "\n37\n", 1)
		}, want: "checkpoint signature: invalid signature for key " + logOrigin + "+"},
		// A genuine older checkpoint, but not the one the proof is to.
		{name: "ErrOlderCheckpoint", cert: "open", edit: func(c *proof.Certificate) {
			c.Checkpoint = older.Note
			c.Entries = slices.DeleteFunc(c.Entries, func(e proof.Entry) bool { return e.Index >= 33 })
		}, want: "entries: the batch proof has 9 hashes, the entries use 8"},
		// Of the entries, the amendment's (33, 34) are not in it at all.
		{name: "ErrOlderCheckpointOutside", cert: "open", edit: func(c *proof.Certificate) { c.Checkpoint = older.Note },
			want: "index 33 is outside the log of 33"},
		// The log as it was before the amendment, proved properly: the old
		// computation does not give the claimed requirement.
		{name: "ErrOlderCheckpointProved", cert: "open", edit: func(c *proof.Certificate) {
			c.Checkpoint = older.Note
			c.Entries = slices.DeleteFunc(c.Entries, func(e proof.Entry) bool { return e.Index >= 33 })
			reprove(c, 33)
		}, want: "required: ceil(1.00000000 × 0.5) is 0.50000000, the computation says 0.50000000 and the claim 0.40000000"},
		{name: "ErrOtherVerifierKey", cert: "met", edit: func(*proof.Certificate) {}, vkey: otherVkey,
			want: "checkpoint signature: note has no verifiable signatures"},
		{name: "ErrFormat", cert: "met", edit: func(c *proof.Certificate) { c.Format = "satu-certificate/v1" },
			want: `format "satu-certificate/v1" is not "satu-certificate/v2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clone(t, certs[tc.cert])
			tc.edit(&c)
			vkey := l.vkey
			if tc.vkey != "" {
				vkey = tc.vkey
			}
			_, err := proof.Verify(c, vkey, l.book)
			wantErrText(t, err, tc.want)
			// The original still verifies.
			if _, err := proof.Verify(certs[tc.cert], l.vkey, l.book); err != nil {
				t.Fatalf("the untouched certificate: %v", err)
			}
		})
	}
}

func clone(t *testing.T, c proof.Certificate) proof.Certificate {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var out proof.Certificate
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// TestProof_Consistency: a checkpoint is proved a prefix of one much later;
// a checkpoint of a forked log of the same size, signed by the same key, is
// not — what a witness relies on.
func TestProof_Consistency(t *testing.T) {
	ctx := context.Background()
	signer, vkey := logKey(t)
	// build registers a miner and settles small batches of trades between
	// traders until the log has n entries past its licence event; price
	// changes the trades' price from the first.
	build := func(t *testing.T, price int64) (*postgres.Store, *pgxpool.Pool, func(n int) proof.Checkpoint) {
		s, db := newStore(t, compliance.DefaultRuleSet)
		register(t, s, "alpha", "111111111111", "2023-06-15", "alpha-1")
		openAccount(t, db, "buyer-1", "trader-x", "trader")
		seq := 0
		grow := func(n int) proof.Checkpoint {
			t.Helper()
			for seq < n {
				var batch []settlement.Fill
				for range min(100, n-seq) {
					seq++
					batch = append(batch, sale(fmt.Sprintf("%d-0", seq), "trader-2", "BTC", btc,
						almaty(t, "2024-02-10 10:00").Add(time.Duration(seq)*time.Minute), notMandatory, atPrice(price)))
				}
				mustSettle(t, s, db, "s1", batch...)
			}
			st, err := s.Checkpoint(ctx, signer)
			if err != nil {
				t.Fatal(err)
			}
			cp, err := proof.OpenCheckpoint(st.Note, vkey)
			if err != nil {
				t.Fatal(err)
			}
			return cp
		}
		return s, db, grow
	}
	s, _, grow := build(t, defaultPrice["BTC"])
	old := grow(4)
	recent := grow(1000)
	if old.Size != 5 || recent.Size != 1001 {
		t.Fatalf("checkpoint sizes %d and %d, want 5 and 1001", old.Size, recent.Size)
	}
	p, err := s.ConsistencyProof(ctx, old.Size, recent.Size)
	if err != nil {
		t.Fatalf("ConsistencyProof: %v", err)
	}

	t.Run("OK", func(t *testing.T) {
		if err := tlog.CheckTree(p, recent.Size, recent.Root, old.Size, old.Root); err != nil {
			t.Errorf("tlog.CheckTree: %v", err)
		}
		if err := mproof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old.Size), uint64(recent.Size), hashes(p),
			old.Root[:], recent.Root[:]); err != nil {
			t.Errorf("rfc6962 VerifyConsistency: %v", err)
		}
		// The archived checkpoint of the old size is the one signed then.
		st, err := s.CheckpointAt(ctx, old.Size)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := proof.OpenCheckpoint(st.Note, vkey); err != nil || again != old {
			t.Errorf("CheckpointAt(%d) = %+v, %v; want %+v", old.Size, again, err, old)
		}
	})

	t.Run("ErrForkedLog", func(t *testing.T) {
		// Another log, signed by the same key: the same licence event and
		// four trades, at another price.
		_, _, fork := build(t, defaultPrice["BTC"]+1)
		forked := fork(4)
		if forked.Size != old.Size || forked.Root == old.Root {
			t.Fatalf("forked checkpoint %+v, want size %d and another root than %x", forked, old.Size, old.Root)
		}
		err := tlog.CheckTree(p, recent.Size, recent.Root, forked.Size, forked.Root)
		wantErrText(t, err, "invalid transparency proof")
		err = mproof.VerifyConsistency(rfc6962.DefaultHasher, uint64(forked.Size), uint64(recent.Size), hashes(p),
			forked.Root[:], recent.Root[:])
		if err == nil {
			t.Error("rfc6962 VerifyConsistency accepts the forked checkpoint")
		}
	})
}

// TestProof_RolledBack: a transaction that appended to the log twice and
// then rolled back leaves no trace — the next entries take its places and
// the signed roots are RFC 6962's over what was committed. (The store once
// cached the first append's stored hashes, read back by the second append
// before the transaction committed, and kept serving them.)
func TestProof_RolledBack(t *testing.T) {
	ctx := context.Background()
	// check settles two batches on the log and compares the signed root
	// with the independent one.
	check := func(t *testing.T, l *proofLog) {
		t.Helper()
		at := almaty(t, "2024-03-10 10:00")
		l.settle(t, "s1", sale("101-0", "trader-2", "BTC", btc, at, notMandatory),
			sale("102-0", "trader-2", "BTC", 2*btc, at, notMandatory))
		l.settle(t, "s1", sale("103-0", "trader-2", "BTC", 3*btc, at, notMandatory))
		leaves := l.leaves(t)
		rts := roots(t, leaves)
		cps := l.checkpoints(t)
		last := cps[len(cps)-1]
		if last.Size != int64(len(leaves)) {
			t.Fatalf("newest checkpoint of size %d, the log has %d leaves", last.Size, len(leaves))
		}
		for _, cp := range cps {
			if !bytes.Equal(cp.Root[:], rts[cp.Size]) {
				t.Errorf("checkpoint of size %d: root %x, rfc6962 gives %x", cp.Size, cp.Root[:], rts[cp.Size])
			}
		}
	}
	newLog := func(t *testing.T) *proofLog {
		s, db := newStore(t, compliance.DefaultRuleSet)
		signer, vkey := logKey(t)
		l := &proofLog{s: s, db: db, signer: signer, vkey: vkey}
		register(t, s, "alpha", "111111111111", "2023-06-15", "alpha-1") // leaf 0
		openAccount(t, db, "buyer-1", "trader-x", "trader")
		return l
	}

	t.Run("OK/TwoBatchesInOneTransaction", func(t *testing.T) {
		l := newLog(t)
		at := almaty(t, "2024-03-01 10:00")
		f1, f2, f3 := sale("1-0", "trader-2", "BTC", btc, at, notMandatory), sale("2-0", "trader-2", "BTC", btc, at, notMandatory),
			sale("3-0", "trader-2", "BTC", btc, at, notMandatory)
		// Leaves 1 and 2, then leaf 3, which reads leaf 2's hash back.
		err := pgx.BeginFunc(ctx, l.db, func(tx pgx.Tx) error {
			if err := insertFills(ctx, tx, "s1", f1, f2, f3); err != nil {
				return err
			}
			if err := l.s.ApplyFills(ctx, tx, "s1", []settlement.Fill{f1, f2}); err != nil {
				return err
			}
			if err := l.s.ApplyFills(ctx, tx, "s1", []settlement.Fill{f3}); err != nil {
				return err
			}
			return errors.New("the position moved")
		})
		wantErrText(t, err, "the position moved")
		if size := l.size(t); size != 1 {
			t.Fatalf("log size = %d after the rollback, want 1", size)
		}
		check(t, l)
	})

	t.Run("OK/LateReportFailingAfterItsOverdueState", func(t *testing.T) {
		l := newLog(t)
		// The audit of the violation fails (as a cancelled request would),
		// after the report (leaf 1), its computation (2) and its overdue
		// state (3, which reads 2 back) were appended.
		if _, err := l.db.Exec(ctx, `CREATE FUNCTION refuse_overdue() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.action = 'obligation.overdue' THEN RAISE EXCEPTION 'audit unavailable'; END IF;
				RETURN NEW;
			END $$;
			CREATE TRIGGER refuse_overdue BEFORE INSERT ON registry_audit FOR EACH ROW EXECUTE FUNCTION refuse_overdue()`); err != nil {
			t.Fatal(err)
		}
		setNow(t, l.s, "2025-03-10 12:00")
		_, err := submit(l.s, "alpha", "BTC", day(t, "2024-01-01"), btc)
		wantErrText(t, err, "audit unavailable")
		if size := l.size(t); size != 1 {
			t.Fatalf("log size = %d after the rollback, want 1", size)
		}
		if _, err := l.db.Exec(ctx, `DROP TRIGGER refuse_overdue ON registry_audit`); err != nil {
			t.Fatal(err)
		}
		check(t, l)
	})
}

// TestProof_VerifierWithALaterRuleSetVersion: a verifier that knows a
// later version of the rule set than the one an obligation was computed
// under still checks its certificate (recomputing under the later version
// must give the same share and deadline); one that knows only an older
// version refuses it.
func TestProof_VerifierWithALaterRuleSetVersion(t *testing.T) {
	l := newProofLog(t)
	cert := l.certificate(t, l.met.ID)
	at := func(version int) *compliance.RuleBook {
		var sets []*compliance.RuleSet
		for _, id := range l.book.IDs() {
			r, err := l.book.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			c := *r
			if id == compliance.DefaultRuleSet {
				c.Version = version
			}
			sets = append(sets, &c)
		}
		b, err := compliance.NewRuleBook(sets...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	current, err := l.book.Get(compliance.DefaultRuleSet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proof.Verify(cert, l.vkey, at(current.Version+1)); err != nil {
		t.Fatalf("a verifier with version %d of %s: %v", current.Version+1, current.ID, err)
	}
	if _, err := proof.Verify(cert, l.vkey, at(current.Version-1)); err == nil || !strings.Contains(err.Error(), "knows only version") {
		t.Fatalf("a verifier with version %d of %s: %v; want a refusal", current.Version-1, current.ID, err)
	}
}
