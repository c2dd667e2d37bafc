package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/demo"
)

// memLog is a log in memory, as tlog stores its hashes.
type memLog struct{ stored []tlog.Hash }

func (l *memLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(l.stored)) {
			return nil, fmt.Errorf("no stored hash %d", x)
		}
		out[i] = l.stored[x]
	}
	return out, nil
}

// fakeExchange serves a witness what the exchange's public log API does —
// GET /v1/proof/checkpoint and /v1/proof/consistency — for a log in memory
// that the test may replace by another (a fork, a rollback). Like the real
// exchange, it signs the empty log with a zero root, and its
// tlog.ProveTree refuses a proof from size 0.
type fakeExchange struct {
	t      *testing.T
	signer note.Signer
	mu     sync.Mutex
	leaves []string
	log    *memLog
	root0  tlog.Hash // the root it signs for size 0
}

func newFakeExchange(t *testing.T, signer note.Signer) (*fakeExchange, *httptest.Server) {
	x := &fakeExchange{t: t, signer: signer, log: &memLog{}}
	srv := httptest.NewServer(x)
	t.Cleanup(srv.Close)
	return x, srv
}

// serve makes the log leaves (replacing whatever it was).
func (x *fakeExchange) serve(leaves ...string) {
	x.t.Helper()
	l := &memLog{}
	for i, d := range leaves {
		hs, err := tlog.StoredHashes(int64(i), []byte(d), l)
		if err != nil {
			x.t.Fatal(err)
		}
		l.stored = append(l.stored, hs...)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.leaves, x.log = leaves, l
}

func (x *fakeExchange) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x.mu.Lock()
	defer x.mu.Unlock()
	size := int64(len(x.leaves))
	var out any
	switch r.URL.Path {
	case "/v1/proof/checkpoint":
		root := x.root0
		if size > 0 {
			var err error
			if root, err = tlog.TreeHash(size, x.log); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		signed, err := proof.Sign(proof.Checkpoint{Origin: logOrigin, Size: size, Root: root}, x.signer)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out = map[string]any{"size": size, "checkpoint": signed}
	case "/v1/proof/consistency":
		from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
		p, err := tlog.ProveTree(to, from, x.log)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out = map[string]any{"from": from, "to": to, "proof": p}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	must(x.t, json.NewEncoder(w).Encode(out))
}

func leaves(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %d", prefix, i)
	}
	return out
}

// TestWitness_FromEmptyLog: a witness that first saw the log empty follows
// it once it grows — every log extends the empty one, and there is no
// consistency proof from size 0 to ask for (the witness asked, the
// exchange could not answer, and the witness never moved again) — and,
// with the same state, still alarms on a fork or a rollback afterwards.
func TestWitness_FromEmptyLog(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, logOrigin)
	must(t, err)
	signer, err := note.NewSigner(skey)
	must(t, err)
	pub := filepath.Join(t.TempDir(), "log.pub")
	must(t, os.WriteFile(pub, []byte(vkey+"\n"), 0o644))
	x, srv := newFakeExchange(t, signer)
	witness := func(state string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"witness", "-url", srv.URL, "-key", pub, "-state", state, "-once"}, &out, &errOut,
			func(string) string { return "" })
		return code, out.String() + errOut.String()
	}
	held := func(t *testing.T, state string) int64 {
		t.Helper()
		cp, ok, err := readWitnessState(filepath.Join(state, "witness.json"), vkey)
		if err != nil || !ok {
			t.Fatalf("witness state: %v, held %v", err, ok)
		}
		return cp.Size
	}
	expect := func(t *testing.T, state string, wantCode int, want string) {
		t.Helper()
		if code, out := witness(state); code != wantCode || !strings.Contains(out, want) {
			t.Fatalf("exit %d: %s; want exit %d and %q", code, out, wantCode, want)
		}
	}

	t.Run("OK", func(t *testing.T) {
		state := t.TempDir()
		expect(t, state, 0, "ok: satu/compliance-log at 0 entries")
		x.serve(leaves("entry", 3)...)
		expect(t, state, 0, "ok: satu/compliance-log at 3 entries")
		x.serve(leaves("entry", 5)...)
		expect(t, state, 0, "ok: satu/compliance-log at 5 entries")

		// Afterwards, from the state it advanced to: a longer log that
		// does not extend it, a shorter one, another of its size.
		x.serve(leaves("other", 7)...)
		expect(t, state, 1, "ALARM: fork: the log of 7 entries does not extend the one of 5 the witness holds")
		x.serve(leaves("entry", 4)...)
		expect(t, state, 1, "ALARM: rollback: the log shrank from 5 to 4 entries")
		x.serve(leaves("other", 5)...)
		expect(t, state, 1, "ALARM: fork: two different logs of 5 entries are signed")
		if n := held(t, state); n != 5 {
			t.Fatalf("after the alarms the witness holds %d entries, want the 5 it accepted", n)
		}
		x.serve(leaves("entry", 6)...)
		expect(t, state, 0, "ok: satu/compliance-log at 6 entries")
	})

	t.Run("ErrTwoEmptyLogs", func(t *testing.T) {
		x.serve()
		state := t.TempDir()
		expect(t, state, 0, "ok: satu/compliance-log at 0 entries")
		x.mu.Lock()
		x.root0 = tlog.RecordHash([]byte("not empty"))
		x.mu.Unlock()
		t.Cleanup(func() {
			x.mu.Lock()
			defer x.mu.Unlock()
			x.root0 = tlog.Hash{}
		})
		expect(t, state, 1, "ALARM: fork: two different logs of 0 entries are signed")
	})
}

// TestWitness_ExchangeFromEmptyLog: the witness follows the real exchange
// from its empty log: the first checkpoint is of 0 entries, the next of
// the licence event registered since.
func TestWitness_ExchangeFromEmptyLog(t *testing.T) {
	app, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pub := filepath.Join(filepath.Dir(app.Config.KeysDir), "log.pub")
	state := t.TempDir()
	witness := func() (int, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"witness", "-url", "http://" + app.Addr(), "-key", pub, "-state", state, "-once"},
			&out, &errOut, func(string) string { return "" })
		return code, out.String() + errOut.String()
	}
	if code, out := witness(); code != 0 || out != "ok: satu/compliance-log at 0 entries\n" {
		t.Fatalf("first run: exit %d: %s; want the empty log", code, out)
	}
	for i, want := range []int{1, 2} {
		registerLicence(ctx, t, c, fmt.Sprintf("e%d", i))
		if code, out := witness(); code != 0 || out != fmt.Sprintf("ok: satu/compliance-log at %d entries\n", want) {
			t.Fatalf("after licence %d: exit %d: %s", i+1, code, out)
		}
	}
}

// registerLicence adds one entry to the exchange's log — a licence
// registered for a new miner — and signs a checkpoint of it.
func registerLicence(ctx context.Context, t *testing.T, c *demo.Client, ref string) {
	t.Helper()
	var bin int
	for _, r := range ref {
		bin = bin*31 + int(r)
	}
	must(t, c.Call(ctx, "POST", "/v1/operator/miners", compliance.Miner{ID: ref + "-m", Name: "M " + ref, BIN: fmt.Sprintf("%012d", 100003*bin%999999999989),
		EntityKind: compliance.LegalEntity, Accounts: []string{ref + "-m-1"}}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/licences", map[string]string{"miner": ref + "-m", "number": "L-" + ref, "subtype": "II",
		"issuedOn": "2025-01-01", "status": "active"}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/proof/checkpoint", nil, nil))
}

// TestVerify_WitnessState: satu verify -witness-state compares the
// certificate's checkpoint with the one the witness holds — the very one,
// or one the witness's log extends (a consistency proof fetched with -url)
// — and alarms (exit 1) when they are of two different logs; a checkpoint
// newer than the witness's is UNWITNESSED (exit 3); what it cannot check
// is could-not-run (exit 2, nothing on stdout).
func TestVerify_WitnessState(t *testing.T) {
	app, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	must(t, c.Seed(ctx, time.Now().UTC()))
	pub := filepath.Join(filepath.Dir(app.Config.KeysDir), "log.pub")
	signer, err := note.NewSigner(app.Config.LogKey)
	must(t, err)
	url := "http://" + app.Addr()
	witness := func() (string, int64) {
		t.Helper()
		state := t.TempDir()
		var out, errOut bytes.Buffer
		if code := run(ctx, []string{"witness", "-url", url, "-key", pub, "-state", state, "-once"}, &out, &errOut,
			func(string) string { return "" }); code != 0 {
			t.Fatalf("witness: exit %d: %s%s", code, out.String(), errOut.String())
		}
		var cur struct{ Size int64 }
		must(t, c.Call(ctx, "GET", "/v1/proof/checkpoint", nil, &cur))
		return state, cur.Size
	}
	// A state holding a checkpoint the exchange's key signed of a log that
	// is not the exchange's.
	forged := func(size int64) string {
		var root tlog.Hash
		copy(root[:], bytes.Repeat([]byte{7}, tlog.HashSize))
		signed, err := proof.Sign(proof.Checkpoint{Origin: logOrigin, Size: size, Root: root}, signer)
		must(t, err)
		dir := t.TempDir()
		b, _ := json.Marshal(witnessState{Checkpoint: signed})
		must(t, os.WriteFile(filepath.Join(dir, "witness.json"), b, 0o600))
		return dir
	}

	// The witness before the certificate's checkpoint, at it, and after.
	behind, s1 := witness()
	registerLicence(ctx, t, c, "v1")
	var cert proof.Certificate
	must(t, demo.NewClient(app.Addr(), app.Token(access.RoleRegulator)).Call(ctx, "GET", "/v1/regulator/obligations/1/certificate", nil, &cert))
	certFile := filepath.Join(t.TempDir(), "cert.json")
	b, err := json.Marshal(cert)
	must(t, err)
	must(t, os.WriteFile(certFile, b, 0o644))
	at, s2 := witness()
	registerLicence(ctx, t, c, "v2")
	ahead, s3 := witness()
	if cp, err := proof.OpenCheckpoint(cert.Checkpoint, mustRead(t, pub)); err != nil || cp.Size != s2 || s1 >= s2 || s2 >= s3 {
		t.Fatalf("certificate's checkpoint %+v (%v); witnessed sizes %d, %d, %d: want it the middle one", cp, err, s1, s2, s3)
	}
	tampered := filepath.Join(t.TempDir(), "tampered.json")
	must(t, os.WriteFile(tampered, bytes.Replace(b, []byte(`"status":"met"`), []byte(`"status":"open"`), 1), 0o644))
	forkAt, forkAhead, forkBehind := forged(s2), forged(s3), forged(s1)
	otherKey := func() string {
		skey, _, err := note.GenerateKey(rand.Reader, logOrigin)
		must(t, err)
		s, err := note.NewSigner(skey)
		must(t, err)
		signed, err := proof.Sign(proof.Checkpoint{Origin: logOrigin, Size: s2}, s)
		must(t, err)
		dir := t.TempDir()
		b, _ := json.Marshal(witnessState{Checkpoint: signed})
		must(t, os.WriteFile(filepath.Join(dir, "witness.json"), b, 0o600))
		return dir
	}()

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout, or in stderr when code is 2
	}{
		{"OK/SameCheckpoint", []string{"-witness-state", at}, 0, "\n  witnessed: the witness holds this very checkpoint\n"},
		{"OK/SameCheckpointWithURL", []string{"-witness-state", at, "-url", url}, 0, "\n  witnessed: the witness holds this very checkpoint\n"},
		{"OK/WitnessAhead", []string{"-witness-state", ahead, "-url", url}, 0,
			fmt.Sprintf("\n  witnessed: the witness's log of %d entries extends this checkpoint (the exchange's consistency proof checks)\n", s3)},
		{"Unwitnessed", []string{"-witness-state", behind}, 3, fmt.Sprintf("UNWITNESSED: the certificate's checkpoint, of %d entries, is newer than the witness's (%s), of %d: run satu witness, then verify again\n"+
			"  the certificate itself is valid: obligation 1 (", s2, behind, s1)},
		{"UnwitnessedExtends", []string{"-witness-state", behind, "-url", url}, 3, "then verify again (it does extend the witnessed log)\n"},
		{"ErrForkSameSize", []string{"-witness-state", forkAt}, 1,
			fmt.Sprintf("ALARM: fork: the certificate's checkpoint and the witness's (%s) are two different logs of %d entries, both signed by the exchange\n", forkAt, s2)},
		{"ErrForkWitnessAhead", []string{"-witness-state", forkAhead, "-url", url}, 1,
			fmt.Sprintf("ALARM: fork: the witness's log of %d entries (%s) does not extend the certificate's checkpoint of %d: invalid transparency proof\n", s3, forkAhead, s2)},
		{"ErrForkWitnessBehind", []string{"-witness-state", forkBehind, "-url", url}, 1,
			fmt.Sprintf("ALARM: fork: the certificate's log of %d entries does not extend the witness's checkpoint (%s) of %d: invalid transparency proof\n", s2, forkBehind, s1)},
		{"ErrInvalidCertificate", []string{"-witness-state", at}, 1, "INVALID: status: the entries make the obligation met, the claim says open\n"},
		{"ErrWitnessAheadNoURL", []string{"-witness-state", ahead}, 2,
			fmt.Sprintf("the certificate's checkpoint, of %d entries, is older than the witness's, of %d: give the exchange's -url", s2, s3)},
		{"ErrNoWitnessState", []string{"-witness-state", t.TempDir()}, 2, "holds no checkpoint: run satu witness -state "},
		{"ErrWitnessStateOtherKey", []string{"-witness-state", otherKey}, 2, "-witness-state: state " + otherKey + "/witness.json: checkpoint signature"},
		{"ErrURLWithoutState", []string{"-url", url}, 2, "-url is only used with -witness-state"},
		{"ErrExchangeUnreachable", []string{"-witness-state", ahead, "-url", "http://127.0.0.1:1"}, 2, "-witness-state: Get "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := certFile
			if tc.name == "ErrInvalidCertificate" {
				file = tampered
			}
			var out, errOut bytes.Buffer
			code := run(ctx, append([]string{"verify", file, "-key", pub}, tc.args...), &out, &errOut, func(string) string { return "" })
			got := out.String()
			if tc.code == 2 {
				got = errOut.String()
				if out.Len() != 0 {
					t.Errorf("stdout %q, want nothing", out.String())
				}
			}
			if code != tc.code || !strings.Contains(got, tc.want) {
				t.Fatalf("exit %d\nstdout %s\nstderr %s\nwant exit %d and %q", code, out.String(), errOut.String(), tc.code, tc.want)
			}
			if tc.code == 0 && !strings.HasPrefix(got, "VALID: obligation 1 (") {
				t.Errorf("stdout %q, want the VALID verdict first", got)
			}
		})
	}
}

func mustRead(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	must(t, err)
	return string(b)
}
