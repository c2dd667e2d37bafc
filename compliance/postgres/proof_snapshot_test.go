package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/apperr"
)

// TestProof_CertificateWhileSettling: certificates built while sales keep
// settling towards the obligation always verify — the claim (the
// obligation's sold volume and status) and the entries are read from one
// snapshot, and the checkpoint holds them. (They were read separately: a
// batch committing in between gave a claim that disagreed with its
// entries, and an honest certificate was INVALID.)
func TestProof_CertificateWhileSettling(t *testing.T) {
	l := newProofLog(t)
	// beta's amended February obligation: 0.4 BTC required, 0.3 sold, due
	// 2024-03-30. Each sale of 100 satoshi on a shard of its own counts
	// towards it (the remaining 0.1 BTC is far more than a few seconds of
	// sales), changing its sold volume and adding an attribution.
	// Bounded in time: at least 2 seconds and until the claim has moved a
	// few times, at most 10.
	start := almaty(t, "2024-03-07 10:00")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	enough := time.Now().Add(2 * time.Second)
	var settled atomic.Int64
	done := make(chan error, 1)
	go func() {
		for seq := 1; ctx.Err() == nil; seq++ {
			f := sale(fmt.Sprintf("%d-0", seq), "beta-1", "BTC", 100, start.Add(time.Duration(seq)*time.Second))
			if err := settle(context.Background(), l.s, l.db, "s3", f); err != nil {
				done <- fmt.Errorf("settle %d: %w", seq, err)
				return
			}
			settled.Add(1)
		}
		done <- nil
	}()
	seen := map[string]bool{} // the claimed sold volumes
	builds := 0
	for ctx.Err() == nil {
		cert, err := l.s.Certificate(context.Background(), l.open.ID, l.signer)
		if err != nil {
			cancel()
			<-done
			t.Fatalf("Certificate after %d builds: %v", builds, err)
		}
		if _, err := proof.Verify(cert, l.vkey, l.book); err != nil {
			cancel()
			<-done
			t.Fatalf("certificate %d, claiming %s sold, with %d sales settled: %v", builds+1, cert.Obligation.Sold, settled.Load(), err)
		}
		seen[cert.Obligation.Sold] = true
		builds++
		if time.Now().After(enough) && len(seen) >= 5 {
			cancel()
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The certificates saw the claim move, or the test proved nothing.
	if len(seen) < 5 {
		t.Fatalf("%d certificates saw %d sold volumes with %d sales settled; want the claim to change while they were built", builds, len(seen), settled.Load())
	}
	t.Logf("%d certificates verified, %d sold volumes claimed, %d sales settled", builds, len(seen), settled.Load())
	// After the sales, the certificate is of everything they counted.
	d := obligation(t, l.s, l.open.ID)
	cert := l.certificate(t, l.open.ID)
	if cert.Obligation.Sold != d.Sold {
		t.Fatalf("certificate claims %s sold, the obligation has %s", cert.Obligation.Sold, d.Sold)
	}
	if _, err := proof.Verify(cert, l.vkey, l.book); err != nil {
		t.Fatal(err)
	}
}

// TestProof_ConsistencyFromEmpty: every log extends the empty one: the
// proof from size 0 is empty, not an error, so a witness that first saw
// the log empty can follow it; the size-0 checkpoint is signed as it always
// was (a zero root), and still opens.
func TestProof_ConsistencyFromEmpty(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	signer, vkey := logKey(t)
	l := &proofLog{s: s, db: db, signer: signer, vkey: vkey}
	empty := l.checkpoint(t)
	cp, err := proof.OpenCheckpoint(empty.Note, vkey)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 0 || cp.Root != (tlog.Hash{}) {
		t.Fatalf("checkpoint of the empty log: %+v, want size 0 and a zero root", cp)
	}
	if p, err := s.ConsistencyProof(ctx, 0, 0); err != nil || len(p) != 0 {
		t.Fatalf("ConsistencyProof(0, 0) = %v, %v; want an empty proof", p, err)
	}
	register(t, s, "alpha", "111111111111", "2023-06-15", "alpha-1")
	register(t, s, "beta", "222222222222", "2023-06-15", "beta-1")
	grown := l.checkpoint(t)
	if grown.Size != 2 {
		t.Fatalf("checkpoint of %d entries, want 2", grown.Size)
	}
	for _, to := range []int64{1, 2} {
		p, err := s.ConsistencyProof(ctx, 0, to)
		if err != nil || p == nil || len(p) != 0 {
			t.Fatalf("ConsistencyProof(0, %d) = %#v, %v; want an empty proof", to, p, err)
		}
	}
	// The other sizes are as before: from 1 to 2 is tlog's proof.
	p, err := s.ConsistencyProof(ctx, 1, 2)
	if err != nil || len(p) != 1 {
		t.Fatalf("ConsistencyProof(1, 2) = %v, %v; want one hash", p, err)
	}
	for _, c := range []struct{ from, to int64 }{{0, 3}, {-1, 2}, {3, 2}} {
		_, err := s.ConsistencyProof(ctx, c.from, c.to)
		wantCode(t, err, apperr.InvalidParameter)
	}
	if again, err := s.CheckpointAt(ctx, 0); err != nil || again.Note != empty.Note {
		t.Fatalf("CheckpointAt(0) = %+v, %v; want the size-0 checkpoint as signed", again, err)
	}
}
