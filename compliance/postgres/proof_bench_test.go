package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/settlement"
)

// The certificate benchmarks' log: one miner (alpha, account alpha-1) with
// January 2024's BTC obligation (4 BTC mined: 2.0 BTC required by 1 March
// 2024), 10,000 mandatory sales of 0.0001 BTC counted towards it (1.0 BTC:
// the obligation stays open) settled in batches of 1,000 as the settlement
// writer does, and after each batch 300 sales between traders that
// compliance logs as fills and attributes to nothing — about 23,000 leaves.
// All at the default price, one sale every 4 minutes from 2 January 2024, so
// every counted sale is within tolerance of its VWAP reference.
const (
	proofBenchCounted   = 10_000
	proofBenchBatch     = 1_000
	proofBenchUnrelated = 300 // after each batch
	proofBenchOrigin    = "satu.example/log"
)

// proofBenchLog is a settled log and its store.
type proofBenchLog struct {
	db     *pgxpool.Pool
	rules  *compliance.RuleSet
	signer note.Signer
	vkey   string
	id     int64 // the obligation
}

// newProofBenchLog builds the log on a fresh database.
func newProofBenchLog(b *testing.B) *proofBenchLog {
	b.Helper()
	ctx := context.Background()
	book, err := compliance.LoadRuleBook()
	if err != nil {
		b.Fatal(err)
	}
	rules, err := book.Get(compliance.DefaultRuleSet)
	if err != nil {
		b.Fatal(err)
	}
	db := testenv.PG(b)
	s, err := postgres.NewStore(ctx, db, rules)
	if err != nil {
		b.Fatal(err)
	}
	setClock(s, time.Date(2026, 1, 10, 12, 0, 0, 0, compliance.Zone))
	if err := s.CreateMiner(ctx, miner("alpha", "111111111111", "alpha-1"), regulator); err != nil {
		b.Fatal(err)
	}
	on := time.Date(2023, 6, 15, 0, 0, 0, 0, time.UTC)
	if err := s.AddLicence(ctx, "alpha", compliance.Licence{Number: "KZ-DM-alpha", Subtype: compliance.SubtypeOwnDataCentre,
		IssuedOn: on, ExpiresOn: compliance.LicenceExpiresOn(on), Status: compliance.LicenceActive}, regulator); err != nil {
		b.Fatal(err)
	}
	for _, a := range [][3]string{{"buyer-1", "trader-x", "trader"}, {"trader-2", "trader-y", "trader"}} {
		if _, err := db.Exec(ctx, `INSERT INTO accounts (id, owner, kind, opened_seq) VALUES ($1, $2, $3, 1)`, a[0], a[1], a[2]); err != nil {
			b.Fatal(err)
		}
	}
	setClock(s, time.Date(2024, 2, 5, 12, 0, 0, 0, compliance.Zone))
	ob, err := submit(s, "alpha", "BTC", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 4*btc)
	if err != nil {
		b.Fatal(err)
	}
	if ob.Required != "2.00000000" || ob.Deadline != "2024-03-01" {
		b.Fatalf("January: %+v, want 2.00000000 required by 2024-03-01", ob)
	}
	start := time.Date(2024, 1, 2, 0, 0, 0, 0, compliance.Zone)
	seq := 0
	next := func(seller string) settlement.Fill {
		seq++
		return sale(fmt.Sprintf("%d-0", seq), seller, "BTC", 10_000*sat, start.Add(time.Duration(seq)*4*time.Minute))
	}
	for done := 0; done < proofBenchCounted; done += proofBenchBatch {
		var batch []settlement.Fill
		for range proofBenchBatch {
			batch = append(batch, next("alpha-1"))
		}
		if err := settle(ctx, s, db, "s1", batch...); err != nil {
			b.Fatalf("settle: %v", err)
		}
		batch = batch[:0]
		for range proofBenchUnrelated {
			batch = append(batch, next("trader-2"))
		}
		if err := settle(ctx, s, db, "s1", batch...); err != nil {
			b.Fatalf("settle: %v", err)
		}
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, proofBenchOrigin)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		b.Fatal(err)
	}
	return &proofBenchLog{db: db, rules: rules, signer: signer, vkey: vkey, id: ob.ID}
}

// store returns a fresh store on the log's database: an empty cache of
// stored hashes.
func (l *proofBenchLog) store(b *testing.B) *postgres.Store {
	b.Helper()
	s, err := postgres.NewStore(context.Background(), l.db, l.rules)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// certificate builds the obligation's certificate on s, timing the call.
func (l *proofBenchLog) certificate(b *testing.B, s *postgres.Store) (proof.Certificate, time.Duration) {
	b.Helper()
	t0 := time.Now()
	cert, err := s.Certificate(context.Background(), l.id, l.signer)
	if err != nil {
		b.Fatalf("Certificate: %v", err)
	}
	return cert, time.Since(t0)
}

// proofBenchCert is a certificate as `satu certificate` writes it, and the
// key that verifies it: built once per process, shared by the benchmarks
// (verification needs no database).
var proofBenchCert struct {
	data []byte
	vkey string
}

// checkProofBenchCert checks, outside any timer, that the certificate
// carries every counted fill and verifies, and keeps it for BenchmarkVerify10k.
func checkProofBenchCert(b *testing.B, cert proof.Certificate, vkey string) {
	b.Helper()
	fills := 0
	for _, e := range cert.Entries {
		if strings.HasPrefix(e.Data, proof.Version+" "+proof.KindFill+"\n") {
			fills++
		}
	}
	if fills < proofBenchCounted {
		b.Fatalf("certificate has %d fill entries, want ≥ %d", fills, proofBenchCounted)
	}
	book, err := compliance.LoadRuleBook()
	if err != nil {
		b.Fatal(err)
	}
	v, err := proof.Verify(cert, vkey, book)
	if err != nil {
		b.Fatalf("Verify: %v", err)
	}
	if v.Counted != proofBenchCounted || cert.Obligation.Sold != "1.00000000" || cert.Obligation.Status != "open" {
		b.Fatalf("verdict: %d counted, sold %s, %s; want %d counted, sold 1.00000000, open", v.Counted,
			cert.Obligation.Sold, cert.Obligation.Status, proofBenchCounted)
	}
	data, err := json.MarshalIndent(cert, "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	proofBenchCert.data, proofBenchCert.vkey = data, vkey
}

// BenchmarkCertificate10k builds the certificate of an obligation with
// 10,000 counted fills (20,000-odd entries and their batch inclusion proof) in
// a log of about 23,000 entries. The log is settled before the timer; then
// two figures are reported once — cold-sign-ms, the first call on a fresh
// store when the log has no checkpoint yet (it signs one: the tree hash),
// and cold-ms, the first call on another fresh store (the checkpoint now
// exists; the store's cache of stored hashes is empty) — and the timer runs
// over further calls on that store (cache warm): ns/op and ms/cert.
// PostgreSQL's own buffers are warm in all three (the log was just written).
//
//	go test -run xxx -bench 'Certificate10k|Verify10k' -benchtime 5x -count 3 ./compliance/postgres/
func BenchmarkCertificate10k(b *testing.B) {
	l := newProofBenchLog(b)
	_, coldSign := l.certificate(b, l.store(b))
	s := l.store(b)
	cert, cold := l.certificate(b, s)
	checkProofBenchCert(b, cert, l.vkey)
	n := 0
	for b.Loop() {
		if _, err := s.Certificate(context.Background(), l.id, l.signer); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(n), "ms/cert")
	b.ReportMetric(float64(cold.Microseconds())/1000, "cold-ms")
	b.ReportMetric(float64(coldSign.Microseconds())/1000, "cold-sign-ms")
	b.ReportMetric(float64(len(cert.Entries)), "entries")
	b.ReportMetric(float64(base64.StdEncoding.DecodedLen(len(cert.Proof))/32), "proof-hashes")
	b.ReportMetric(float64(len(proofBenchCert.data))/1e6, "MB")
}

// BenchmarkVerify10k verifies that certificate as `satu verify` does, from
// its JSON bytes: decoding (unknown fields refused) and proof.Verify — the
// checkpoint's signature, every entry's leaf hash and canonical decoding,
// the batch inclusion proof, the computation and the counted sum — per
// iteration. The
// certificate is BenchmarkCertificate10k's, or built here when run alone.
//
//	go test -run xxx -bench 'Verify10k' -benchtime 5x -count 3 ./compliance/postgres/
func BenchmarkVerify10k(b *testing.B) {
	if proofBenchCert.data == nil {
		l := newProofBenchLog(b)
		cert, _ := l.certificate(b, l.store(b))
		checkProofBenchCert(b, cert, l.vkey)
	}
	data, vkey := proofBenchCert.data, proofBenchCert.vkey
	book, err := compliance.LoadRuleBook()
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		var cert proof.Certificate
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cert); err != nil {
			b.Fatal(err)
		}
		if _, err := proof.Verify(cert, vkey, book); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(n), "ms/verify")
	b.ReportMetric(float64(len(data))/1e6, "MB")
}
