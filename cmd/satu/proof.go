package main

import (
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

// verifyCmd checks a certificate offline: no database, no network.
func verifyCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("satu verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "the exchange's log verifier key file (log.pub)")
	entry := fs.Int64("entry", -1, "after verifying, print the entry at this log index with its RFC 6962 inclusion proof")
	// The certificate may come before or after the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return cannotRun{err}
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	}
	if file == "" || *key == "" {
		fmt.Fprintln(stderr, "usage: satu verify CERTIFICATE -key log.pub [-entry INDEX]")
		return exitCode(2)
	}
	fail := func(format string, a ...any) error {
		fmt.Fprintf(stdout, "INVALID: "+format+"\n", a...)
		return exitCode(1)
	}
	vkey, err := os.ReadFile(*key)
	if err != nil {
		return fail("public key: %v", err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fail("certificate: %v", err)
	}
	var cert proof.Certificate
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cert); err != nil {
		return fail("certificate is not valid JSON: %v", err)
	}
	book, err := compliance.LoadRuleBook()
	if err != nil {
		return err
	}
	v, err := proof.Verify(cert, string(vkey), book)
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "VALID: %s", v)
	if *entry >= 0 {
		return printEntryProof(stdout, cert, v.Checkpoint, *entry)
	}
	return nil
}

// printEntryProof prints one entry of a verified certificate and its own
// inclusion proof, in GET /v1/proof/inclusion's form plus the entry's data.
func printEntryProof(stdout io.Writer, cert proof.Certificate, cp proof.Checkpoint, index int64) error {
	var data string
	for _, e := range cert.Entries {
		if e.Index == index {
			data = e.Data
		}
	}
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
	w := witness{base: strings.TrimRight(base, "/"), vkey: string(vkey), path: filepath.Join(dir, "witness.json"), out: out,
		http: &http.Client{Timeout: 15 * time.Second}}
	if _, _, err := w.held(); err != nil {
		return witness{}, err
	}
	return w, nil
}

// witnessAlarm is a proven misbehaviour of the log, not a network error.
type witnessAlarm struct{ error }

type witness struct {
	base, vkey, path string
	out              io.Writer
	http             *http.Client
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
			var cons struct {
				Proof []string `json:"proof"`
			}
			q := url.Values{"from": {strconv.FormatInt(prev.Size, 10)}, "to": {strconv.FormatInt(next.Size, 10)}}
			if err := w.get(ctx, "/v1/proof/consistency?"+q.Encode(), &cons); err != nil {
				return err
			}
			p := make(tlog.TreeProof, len(cons.Proof))
			for i, s := range cons.Proof {
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil || len(b) != tlog.HashSize {
					return witnessAlarm{fmt.Errorf("consistency proof %d → %d: hash %d is malformed", prev.Size, next.Size, i)}
				}
				copy(p[i][:], b)
			}
			if err := tlog.CheckTree(p, next.Size, next.Root, prev.Size, prev.Root); err != nil {
				return witnessAlarm{fmt.Errorf("fork: the log of %d entries does not extend the one of %d the witness holds: %v", next.Size, prev.Size, err)}
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
	b, err := os.ReadFile(w.path)
	if errors.Is(err, os.ErrNotExist) {
		return proof.Checkpoint{}, false, nil
	}
	if err != nil {
		return proof.Checkpoint{}, false, fmt.Errorf("state: %w", err)
	}
	var st witnessState
	if err := json.Unmarshal(b, &st); err != nil {
		return proof.Checkpoint{}, false, fmt.Errorf("state %s: %w", w.path, err)
	}
	if st.Checkpoint == "" {
		return proof.Checkpoint{}, false, nil
	}
	if cp, err = proof.OpenCheckpoint(st.Checkpoint, w.vkey); err != nil {
		return proof.Checkpoint{}, false, fmt.Errorf("state %s: %w", w.path, err)
	}
	return cp, true, nil
}

func (w witness) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", w.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := w.http.Do(req)
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
