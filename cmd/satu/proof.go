package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/proof"
)

// logOrigin is the name of the exchange's log: its checkpoints' origin and
// its signing key's name.
const logOrigin = "satu/compliance-log"

// loadLogSigner reads the log's signing key (a note private key) from
// SATU_LOG_KEY or the file SATU_LOG_KEY_FILE. Satu never makes one up: with
// neither it returns nil and serving goes on without checkpoints.
func loadLogSigner(cfg Config) (note.Signer, error) {
	skey := strings.TrimSpace(cfg.LogKey)
	if skey == "" && cfg.LogKeyFile != "" {
		b, err := os.ReadFile(cfg.LogKeyFile)
		if err != nil {
			return nil, fmt.Errorf("log key: %w (make one with: satu logkey -out DIR)", err)
		}
		skey = strings.TrimSpace(string(b))
	}
	if skey == "" {
		return nil, nil
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	return s, nil
}

// logkeyCmd makes the exchange's log key pair: DIR/log.key (private, mode
// 0600, for SATU_LOG_KEY_FILE) and DIR/log.pub (the verifier key regulators
// get). It refuses to overwrite a key.
func logkeyCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("satu logkey", flag.ContinueOnError)
	dir := fs.String("out", ".", "directory to write log.key and log.pub into")
	name := fs.String("name", logOrigin, "the log's name (its checkpoints' origin)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	priv, pub := filepath.Join(*dir, "log.key"), filepath.Join(*dir, "log.pub")
	if _, err := os.Stat(priv); err == nil {
		return fmt.Errorf("%s exists: a log's key is never replaced", priv)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, *name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(priv, []byte(skey+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (keep it secret: SATU_LOG_KEY_FILE) and %s (give it to regulators)\n", priv, pub)
	return nil
}

// certificateCmd writes an obligation's certificate from the database. It
// only reads (signing a checkpoint aside): it never migrates the database,
// and one it cannot use — flags, configuration, the log key, a connection,
// a schema older than this binary — ends it with exit code 2.
func certificateCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var id *int64
	var out *string
	cfg, err := parseConfigTo(stderr, "satu certificate", args, getenv, func(fs *flag.FlagSet) {
		id = fs.Int64("obligation", 0, "the obligation's ID")
		out = fs.String("o", "", "write the certificate to this file (default: standard output)")
	})
	if err != nil {
		return cannotRun{err}
	}
	if *id <= 0 {
		return cannotRun{fmt.Errorf("-obligation: the obligation's ID, a positive number, is required")}
	}
	signer, err := loadLogSigner(cfg)
	if err != nil {
		return cannotRun{err}
	}
	cfg.PGMaxConns = 2
	db, registry, _, err := openLedgerReadOnly(ctx, cfg)
	if err != nil {
		return cannotRun{err}
	}
	defer db.Close()
	cert, err := registry.Certificate(ctx, *id, signer)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(cert, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *out != "" {
		return os.WriteFile(*out, b, 0o644)
	}
	_, err = stdout.Write(b)
	return err
}

// verifyCmd checks certificates offline: no database, no network — unless
// -witness-state asks it to compare a certificate's checkpoint with the
// one a witness holds and -url lets it fetch the consistency proof between
// them. Several certificates (of distinct obligations) are verified one by
// one and then against one another: no fill counted, over all of them, for
// more than its quantity (proof.CrossCheck). Exit code 0 is VALID (and
// witnessed, with -witness-state); 1 is INVALID, or an ALARM: a
// certificate's checkpoint and the witness's are of two different logs (a
// fork); 2 is could not run; 3 is UNWITNESSED: the certificates are valid,
// but a checkpoint is newer than the witness's.
func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("satu verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "the exchange's log verifier key file (log.pub)")
	entry := fs.Int64("entry", -1, "after verifying, print the entry at this log index with its RFC 6962 inclusion proof")
	witnessDir := fs.String("witness-state", "", "the witness's state directory: check the certificate's checkpoint against the one the witness holds")
	base := fs.String("url", "", "with -witness-state: the exchange's base URL, to fetch the consistency proof between the two checkpoints")
	// The certificates may come before, between and after the flags.
	var files []string
	for len(args) > 0 {
		if !strings.HasPrefix(args[0], "-") {
			files, args = append(files, args[0]), args[1:]
			continue
		}
		if err := fs.Parse(args); err != nil {
			return cannotRun{err}
		}
		args = fs.Args()
	}
	if len(files) == 0 || *key == "" {
		fmt.Fprintln(stderr, "usage: satu verify CERTIFICATE... -key log.pub [-entry INDEX] [-witness-state DIR [-url URL]]")
		return exitCode(2)
	}
	if *entry >= 0 && len(files) > 1 {
		return cannotRun{fmt.Errorf("-entry is for one certificate")}
	}
	if *base != "" && *witnessDir == "" {
		return cannotRun{fmt.Errorf("-url is only used with -witness-state")}
	}
	fail := func(format string, a ...any) error {
		fmt.Fprintf(stdout, "INVALID: "+format+"\n", a...)
		return exitCode(1)
	}
	// A file that cannot be read is could-not-run (2), not a finding (1)
	// about the certificate.
	vkey, err := os.ReadFile(*key)
	if err != nil {
		return cannotRun{fmt.Errorf("public key: %w", err)}
	}
	// The witness's checkpoint, read before anything is verified: a state
	// the verifier cannot use is could-not-run.
	var seen proof.Checkpoint
	if *witnessDir != "" {
		path := filepath.Join(*witnessDir, "witness.json")
		cp, held, err := readWitnessState(path, string(vkey))
		switch {
		case err != nil:
			return cannotRun{fmt.Errorf("-witness-state: %w", err)}
		case !held:
			return cannotRun{fmt.Errorf("-witness-state: %s holds no checkpoint: run satu witness -state %s first", path, *witnessDir)}
		}
		seen = cp
	}
	// Every file read before any is judged: one that cannot be read is
	// could-not-run, whichever comes first.
	datas := make([][]byte, len(files))
	for i, file := range files {
		if datas[i], err = os.ReadFile(file); err != nil {
			return cannotRun{fmt.Errorf("certificate: %w", err)}
		}
	}
	certs := make([]proof.Certificate, len(files))
	for i, data := range datas {
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&certs[i]); err != nil {
			return fail("%scertificate is not valid JSON: %v", which(files, i), err)
		}
	}
	if *entry >= 0 && !slices.ContainsFunc(certs[0].Entries, func(e proof.Entry) bool { return e.Index == *entry }) {
		return cannotRun{fmt.Errorf("-entry %d: the certificate holds no entry at that log index", *entry)}
	}
	book, err := compliance.LoadRuleBook()
	if err != nil {
		return err
	}
	verdicts := make([]proof.Verdict, len(certs))
	for i, cert := range certs {
		if verdicts[i], err = proof.Verify(cert, string(vkey), book); err != nil {
			return fail("%s%v", which(files, i), err)
		}
	}
	if len(verdicts) > 1 {
		if err := proof.CrossCheck(verdicts); err != nil {
			if errors.Is(err, proof.ErrSameObligation) {
				return cannotRun{err}
			}
			return fail("%v", err)
		}
	}
	// An ALARM (1) outranks a witness check that could not run (2), which
	// outranks an UNWITNESSED (3).
	code, notRun := 0, error(nil)
	for i, v := range verdicts {
		c, err := reportVerdict(ctx, stdout, v, seen, *witnessDir, *base)
		switch {
		case err != nil:
			notRun = cmp.Or(notRun, err)
		case c == 1:
			code = 1
		case c == 3 && code == 0:
			code = 3
		}
		if c == 0 && err == nil && *entry >= 0 {
			if err := printEntryProof(stdout, certs[i], v.Checkpoint, *entry); err != nil {
				return err
			}
		}
	}
	if len(verdicts) > 1 {
		fmt.Fprintf(stdout, "cross-checked: no fill is counted beyond its quantity over the %d certificates\n", len(verdicts))
	}
	switch {
	case code == 1:
		return exitCode(1)
	case notRun != nil:
		return notRun
	case code != 0:
		return exitCode(code)
	}
	return nil
}

// which names certificate i when there are several, for a message.
func which(files []string, i int) string {
	if len(files) == 1 {
		return ""
	}
	return files[i] + ": "
}

// reportVerdict prints a verified certificate's verdict — VALID, or, with
// a witness's state, ALARM (exit code 1) or UNWITNESSED (3) as the
// witness's checkpoint makes it.
func reportVerdict(ctx context.Context, stdout io.Writer, v proof.Verdict, seen proof.Checkpoint, witnessDir, base string) (int, error) {
	witnessed := ""
	if witnessDir != "" {
		x := exchange{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 15 * time.Second}}
		var err error
		witnessed, err = checkWitnessed(ctx, v.Checkpoint, seen, witnessDir, x)
		var alarm witnessAlarm
		var later notWitnessed
		switch {
		case errors.As(err, &alarm):
			fmt.Fprintf(stdout, "ALARM: %v\n", err)
			return 1, nil
		case errors.As(err, &later):
			first, _, _ := strings.Cut(v.String(), "\n")
			fmt.Fprintf(stdout, "UNWITNESSED: %v\n  the certificate itself is valid: %s\n", err, first)
			return 3, nil
		case err != nil:
			return 0, cannotRun{fmt.Errorf("-witness-state: %w", err)}
		}
	}
	fmt.Fprintf(stdout, "VALID: %s%s", v, witnessed)
	return 0, nil
}

// notWitnessed is a certificate whose checkpoint the witness has not
// reached yet: neither valid nor a fork.
type notWitnessed struct{ error }

// checkWitnessed compares a verified certificate's checkpoint c with the
// checkpoint the witness holds (seen, from dir): one log must hold both.
// Of one size, they must be the same checkpoint. An older c must be a
// prefix of the witnessed log: the exchange's consistency proof from c to
// seen (from x, which needs a base URL) must check. A newer c has not been
// witnessed: notWitnessed — when x can ask, after checking the proof that c
// extends seen, which catches a fork early but does not make c witnessed:
// the witness itself must reach c and check that its later checkpoints
// extend it. A mismatch is a witnessAlarm (a fork); on success it returns
// the verdict's line about the witness.
func checkWitnessed(ctx context.Context, c, seen proof.Checkpoint, dir string, x exchange) (string, error) {
	switch {
	case c.Size == seen.Size && c.Root != seen.Root:
		return "", witnessAlarm{fmt.Errorf("fork: the certificate's checkpoint and the witness's (%s) are two different logs of %d entries, both signed by the exchange", dir, c.Size)}
	case c.Size == seen.Size:
		return "  witnessed: the witness holds this very checkpoint\n", nil
	case c.Size < seen.Size:
		if x.base == "" {
			return "", fmt.Errorf("the certificate's checkpoint, of %d entries, is older than the witness's, of %d: give the exchange's -url to fetch the consistency proof between them",
				c.Size, seen.Size)
		}
		var f forked
		if err := x.extends(ctx, c, seen); errors.As(err, &f) {
			return "", witnessAlarm{fmt.Errorf("fork: the witness's log of %d entries (%s) does not extend the certificate's checkpoint of %d: %v", seen.Size, dir, c.Size, f.error)}
		} else if err != nil {
			return "", err
		}
		return fmt.Sprintf("  witnessed: the witness's log of %d entries extends this checkpoint (the exchange's consistency proof checks)\n", seen.Size), nil
	}
	later := fmt.Sprintf("the certificate's checkpoint, of %d entries, is newer than the witness's (%s), of %d: run satu witness, then verify again", c.Size, dir, seen.Size)
	if x.base != "" {
		var f forked
		if err := x.extends(ctx, seen, c); errors.As(err, &f) {
			return "", witnessAlarm{fmt.Errorf("fork: the certificate's log of %d entries does not extend the witness's checkpoint (%s) of %d: %v", c.Size, dir, seen.Size, f.error)}
		} else if err != nil {
			return "", err
		}
		later += " (it does extend the witnessed log)"
	}
	return "", notWitnessed{errors.New(later)}
}

// printEntryProof prints one entry of a verified certificate and its own
// inclusion proof, in GET /v1/proof/inclusion's form plus the entry's data.
func printEntryProof(stdout io.Writer, cert proof.Certificate, cp proof.Checkpoint, index int64) error {
	i := slices.IndexFunc(cert.Entries, func(e proof.Entry) bool { return e.Index == index }) // verifyCmd made sure it is there
	data := cert.Entries[i].Data
	path, err := cert.AuditPath(cp, index)
	if err != nil {
		fmt.Fprintf(stdout, "entry %d: %v\n", index, err)
		return exitCode(1)
	}
	out, err := json.Marshal(struct {
		Index int64            `json:"index"`
		Size  int64            `json:"size"`
		Data  string           `json:"data"`
		Proof tlog.RecordProof `json:"proof"`
	}{index, cp.Size, data, path})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

// witnessState is what the witness keeps: the newest checkpoint it accepted.
type witnessState struct {
	Checkpoint string `json:"checkpoint"`
}

// witnessCmd polls the exchange's checkpoints and checks that each extends
// the newest one it accepted (a consistency proof), keeping the newest in
// DIR/witness.json. A fork, a rollback, a bad signature or a bad proof ends
// it with exit code 1 and the reason; -once checks a single time. Exit code
// 1 is only ever such an alarm: a witness that cannot run — its flags, its
// key file, its state directory or file — exits 2 before polling, having
// changed nothing.
func witnessCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("satu witness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "the exchange's base URL")
	key := fs.String("key", "", "the exchange's log verifier key file (log.pub)")
	dir := fs.String("state", ".", "directory of the witness's state")
	every := fs.Duration("interval", time.Minute, "how often to poll (more than 0)")
	once := fs.Bool("once", false, "check once and exit")
	if err := fs.Parse(args); err != nil {
		return cannotRun{err}
	}
	w, err := newWitness(*base, *key, *dir, *every, fs.Args(), stdout)
	if err != nil {
		return cannotRun{err}
	}
	for {
		err := w.check(ctx)
		var alarm witnessAlarm
		switch {
		case errors.As(err, &alarm):
			fmt.Fprintf(stdout, "ALARM: %v\n", err)
			return exitCode(1)
		case err != nil && *once:
			return cannotRun{err}
		case err != nil:
			fmt.Fprintf(stderr, "satu witness: %v (retrying)\n", err)
		}
		if *once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*every):
		}
	}
}

// newWitness checks the witness's flags and files before it polls: a
// positive interval, a verifier key, a state directory it can write and a
// state file (if any) it can read.
func newWitness(base, keyFile, dir string, every time.Duration, stray []string, out io.Writer) (witness, error) {
	if len(stray) > 0 {
		return witness{}, fmt.Errorf("unexpected arguments: %s", strings.Join(stray, " "))
	}
	if every <= 0 {
		return witness{}, fmt.Errorf("-interval %s: want a positive duration such as 1m", every)
	}
	if keyFile == "" {
		return witness{}, fmt.Errorf("-key: the exchange's log verifier key file (log.pub) is required")
	}
	vkey, err := os.ReadFile(keyFile)
	if err != nil {
		return witness{}, fmt.Errorf("public key: %w", err)
	}
	if _, err := note.NewVerifier(strings.TrimSpace(string(vkey))); err != nil {
		return witness{}, fmt.Errorf("public key %s: %w", keyFile, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return witness{}, fmt.Errorf("state: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".witness-probe-*")
	if err != nil {
		return witness{}, fmt.Errorf("state: %w", err)
	}
	probe.Close()
	if err := os.Remove(probe.Name()); err != nil {
		return witness{}, fmt.Errorf("state: %w", err)
	}
	w := witness{exchange: exchange{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 15 * time.Second}},
		vkey: string(vkey), path: filepath.Join(dir, "witness.json"), out: out}
	if _, _, err := w.held(); err != nil {
		return witness{}, err
	}
	return w, nil
}

// witnessAlarm is a proven misbehaviour of the log, not a network error.
type witnessAlarm struct{ error }

type witness struct {
	exchange
	vkey, path string
	out        io.Writer
}

func (w witness) check(ctx context.Context) error {
	var cur struct {
		Size       int64  `json:"size"`
		Checkpoint string `json:"checkpoint"`
	}
	if err := w.get(ctx, "/v1/proof/checkpoint", &cur); err != nil {
		return err
	}
	next, err := proof.OpenCheckpoint(cur.Checkpoint, w.vkey)
	if err != nil {
		return witnessAlarm{fmt.Errorf("the exchange served a checkpoint its key did not sign: %v", err)}
	}
	prev, held, err := w.held()
	if err != nil {
		return err
	}
	if held {
		switch {
		case next.Size < prev.Size:
			return witnessAlarm{fmt.Errorf("rollback: the log shrank from %d to %d entries", prev.Size, next.Size)}
		case next.Size == prev.Size && next.Root != prev.Root:
			return witnessAlarm{fmt.Errorf("fork: two different logs of %d entries are signed", next.Size)}
		case next.Size > prev.Size:
			var f forked
			if err := w.extends(ctx, prev, next); errors.As(err, &f) {
				return witnessAlarm{fmt.Errorf("fork: the log of %d entries does not extend the one of %d the witness holds: %v", next.Size, prev.Size, f.error)}
			} else if err != nil {
				return err
			}
		}
	}
	b, err := json.Marshal(witnessState{Checkpoint: cur.Checkpoint})
	if err != nil {
		return err
	}
	if err := os.WriteFile(w.path+".tmp", b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(w.path+".tmp", w.path); err != nil {
		return err
	}
	fmt.Fprintf(w.out, "ok: %s at %d entries\n", next.Origin, next.Size)
	return nil
}

// held returns the checkpoint the witness accepted last, if any (held).
func (w witness) held() (cp proof.Checkpoint, held bool, err error) {
	return readWitnessState(w.path, w.vkey)
}

// readWitnessState reads a witness's state file: the checkpoint it accepted
// last, opened with the exchange's key, if any (held).
func readWitnessState(path, vkey string) (cp proof.Checkpoint, held bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return proof.Checkpoint{}, false, nil
	}
	if err != nil {
		return proof.Checkpoint{}, false, fmt.Errorf("state: %w", err)
	}
	var st witnessState
	if err := json.Unmarshal(b, &st); err != nil {
		return proof.Checkpoint{}, false, fmt.Errorf("state %s: %w", path, err)
	}
	if st.Checkpoint == "" {
		return proof.Checkpoint{}, false, nil
	}
	if cp, err = proof.OpenCheckpoint(st.Checkpoint, vkey); err != nil {
		return proof.Checkpoint{}, false, fmt.Errorf("state %s: %w", path, err)
	}
	return cp, true, nil
}

// exchange is the exchange's public log API, as a witness or a verifier
// reads it.
type exchange struct {
	base string
	http *http.Client
}

// forked is a consistency proof that does not check: the two checkpoints,
// both signed by the exchange, are of two different logs.
type forked struct{ error }

// extends checks with the exchange's consistency proof that the log of
// checkpoint newer extends the log of older (older.Size < newer.Size). A
// proof that does not check is forked; a malformed one, a witnessAlarm; an
// exchange that does not answer, another error. Every log extends the empty one: from size 0
// there is nothing to prove, and nothing is asked (RFC 6962 defines no
// proof from 0, and tlog.CheckTree refuses one) — the new checkpoint's
// signature and origin, checked when it was opened, are all there is.
func (x exchange) extends(ctx context.Context, older, newer proof.Checkpoint) error {
	if older.Size == 0 {
		return nil
	}
	var cons struct {
		Proof []string `json:"proof"`
	}
	q := url.Values{"from": {strconv.FormatInt(older.Size, 10)}, "to": {strconv.FormatInt(newer.Size, 10)}}
	if err := x.get(ctx, "/v1/proof/consistency?"+q.Encode(), &cons); err != nil {
		return err
	}
	p := make(tlog.TreeProof, len(cons.Proof))
	for i, s := range cons.Proof {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return witnessAlarm{fmt.Errorf("consistency proof %d → %d: hash %d is malformed", older.Size, newer.Size, i)}
		}
		copy(p[i][:], b)
	}
	if err := tlog.CheckTree(p, newer.Size, newer.Root, older.Size, older.Root); err != nil {
		return forked{err}
	}
	return nil
}

func (x exchange) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", x.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := x.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
