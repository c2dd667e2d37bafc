package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/demo"
)

// docStep is one command of docs/proof.md and the text it prints ("" when
// the doc shows none).
type docStep struct{ command, output string }

func proofDocSteps(t *testing.T) []docStep {
	t.Helper()
	b, err := os.ReadFile("../../docs/proof.md")
	must(t, err)
	text := string(b)
	text = text[strings.Index(text, "## Step by step"):]
	text = text[:strings.Index(text, "\n## What each failure means")]
	var steps []docStep
	for {
		i := strings.Index(text, "```sh\n")
		if i < 0 {
			return steps
		}
		text = text[i+len("```sh\n"):]
		j := strings.Index(text, "\n```\n")
		s := docStep{command: strings.TrimSpace(text[:j])}
		text = text[j+len("\n```\n"):]
		if k := strings.Index(text, "```"); k >= 0 && strings.TrimSpace(text[:k]) == "" && strings.HasPrefix(text[k:], "```text\n") {
			text = text[k+len("```text\n"):]
			l := strings.Index(text, "```")
			s.output, text = text[:l], text[l+3:]
		}
		steps = append(steps, s)
	}
}

// TestProofDocSteps follows docs/proof.md's steps exactly, in a scratch
// directory standing for the regulator's: the witness, the certificate
// fetched over the API, the offline verification, the witness again after
// the log has grown, the certificate's checkpoint checked against the
// witness's — and checks each prints what the doc shows.
func TestProofDocSteps(t *testing.T) {
	app, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	must(t, c.Seed(ctx, time.Now().UTC()))
	work := t.TempDir()
	satuDir := filepath.Dir(app.Config.KeysDir)
	steps := proofDocSteps(t)
	if len(steps) != 5 {
		t.Fatalf("docs/proof.md has %d steps; this test knows 5", len(steps))
	}
	for i, s := range steps {
		if i == 3 { // the log grows after the certificate, before the witness runs again
			registerLicence(ctx, t, c, "doc")
		}
		cmd := strings.ReplaceAll(s.command, "127.0.0.1:8080", app.Addr())
		cmd = strings.ReplaceAll(cmd, ".satu/", satuDir+"/")
		words, err := shellWords(cmd)
		must(t, err)
		for k, w := range words[2:] { // the regulator's files live in its working directory
			if w == "cert.json" || w == "witness" {
				words[k+2] = filepath.Join(work, w)
			}
		}
		var out string
		switch words[0] {
		case "satu":
			var stdout, stderr bytes.Buffer
			if code := run(ctx, words[1:], &stdout, &stderr, func(string) string { return "" }); code != 0 {
				t.Fatalf("step %d: %s: exit %d\n%s%s", i+1, s.command, code, stdout.String(), stderr.String())
			}
			out = stdout.String()
		case "curl":
			out = curlToFile(t, words)
		default:
			t.Fatalf("step %d: the doc test cannot run %q", i+1, s.command)
		}
		if !matchText(s.output, out) {
			t.Fatalf("step %d: %s\ndocs/proof.md shows:\n%s\nit printed:\n%s", i+1, s.command, s.output, out)
		}
	}
	checkEntryProofDoc(ctx, t, app.Addr(), filepath.Join(work, "cert.json"), filepath.Join(satuDir, "log.pub"))
}

// checkEntryProofDoc runs docs/proof.md's `satu verify … -entry INDEX` on
// an entry of the certificate the steps fetched: it prints what the doc
// shows, and the proof is the one GET /v1/proof/inclusion answers.
func checkEntryProofDoc(ctx context.Context, t *testing.T, addr, certFile, pub string) {
	t.Helper()
	b, err := os.ReadFile("../../docs/proof.md")
	must(t, err)
	text := string(b)
	const command = "satu verify cert.json -key .satu/log.pub -entry 3\n```\n```text\n"
	i := strings.Index(text, command)
	if i < 0 {
		t.Fatal("docs/proof.md no longer shows satu verify -entry 3")
	}
	want := text[i+len(command):]
	want = want[:strings.Index(want, "```")]
	var cert proof.Certificate
	b, err = os.ReadFile(certFile)
	must(t, err)
	must(t, json.Unmarshal(b, &cert))
	e := cert.Entries[len(cert.Entries)/2]
	want = strings.Replace(want, `"index":3,`, fmt.Sprintf(`"index":%d,`, e.Index), 1)
	// Several certificates are cross-checked, so they must be of distinct
	// obligations; -entry is for one.
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"verify", certFile, "-key", pub, certFile}, "two certificates of obligation: "},
		{[]string{"verify", "-key", pub, certFile, "-witness-state", pub + ".nowhere", certFile}, "-witness-state: "},
		{[]string{"verify", certFile, "-key", pub, "-entry", "1", certFile}, "-entry is for one certificate"},
		{[]string{"verify", certFile, "-key", pub, "-entry", "999999"}, "-entry 999999: the certificate holds no entry at that log index"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(ctx, tc.args, &stdout, &stderr, func(string) string { return "" }); code != 2 || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("satu %s: exit %d, %q; want 2 and %q", strings.Join(tc.args, " "), code, stderr.String(), tc.msg)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"verify", certFile, "-key", pub, "-entry", fmt.Sprint(e.Index)}, &stdout, &stderr,
		func(string) string { return "" }); code != 0 {
		t.Fatalf("satu verify -entry %d: exit %d\n%s%s", e.Index, code, stdout.String(), stderr.String())
	}
	if !matchText(want, stdout.String()) {
		t.Fatalf("satu verify -entry %d printed:\n%s\ndocs/proof.md shows:\n%s", e.Index, stdout.String(), want)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var got, api struct {
		Index, Size int64
		Data        string
		Proof       []string
	}
	must(t, json.Unmarshal([]byte(lines[len(lines)-1]), &got))
	must(t, demo.NewClient(addr, "").Call(ctx, "GET", fmt.Sprintf("/v1/proof/inclusion?index=%d&size=%d", e.Index, got.Size), nil, &api))
	if got.Data != e.Data || got.Index != e.Index || len(got.Proof) == 0 || strings.Join(got.Proof, ",") != strings.Join(api.Proof, ",") {
		t.Fatalf("satu verify -entry %d: %+v; the certificate's entry %q, the API's proof %v", e.Index, got, e.Data, api.Proof)
	}
}

// curlToFile runs the doc's `curl -s -H @file -o FILE URL` through net/http.
func curlToFile(t *testing.T, words []string) string {
	t.Helper()
	var header, file, url string
	for i := 1; i < len(words); i++ {
		switch words[i] {
		case "-s":
		case "-H":
			i++
			b, err := os.ReadFile(strings.TrimPrefix(words[i], "@"))
			must(t, err)
			header = strings.TrimSpace(string(b))
		case "-o":
			i++
			file = words[i]
		default:
			url = words[i]
		}
	}
	req, err := http.NewRequest("GET", url, nil)
	must(t, err)
	name, value, _ := strings.Cut(header, ":")
	req.Header.Set(name, strings.TrimSpace(value))
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	must(t, os.WriteFile(file, body, 0o644))
	return ""
}

// matchText compares printed text with the doc's, where "…" stands for any
// run of characters within a line.
func matchText(want, got string) bool {
	pattern := "^" + strings.ReplaceAll(regexp.QuoteMeta(want), "…", ".*") + "$"
	return regexp.MustCompile(pattern).MatchString(got)
}

// TestWitnessAlarms: the witness accepts a log that grows consistently and
// alarms (exit 1, the reason) on a rollback, on a fork of the same size and
// on a checkpoint that does not extend the one it holds, and on a
// checkpoint its key did not sign.
func TestWitnessAlarms(t *testing.T) {
	app, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	satuDir := filepath.Dir(app.Config.KeysDir)
	signer, err := note.NewSigner(app.Config.LogKey)
	must(t, err)
	deposit := func(ref string) {
		must(t, c.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": ref, "owner": ref, "kind": "trader"}, nil))
		must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": ref, "asset": "KZT", "amount": "1.00", "extRef": ref}, nil))
		must(t, c.Call(ctx, "POST", "/v1/operator/miners", compliance.Miner{ID: ref + "-m", Name: "M", BIN: fmt.Sprintf("%012d", 7919*int(ref[1]-'0')),
			EntityKind: compliance.LegalEntity, Accounts: []string{ref + "-m-1"}}, nil))
		must(t, c.Call(ctx, "POST", "/v1/operator/licences", map[string]string{"miner": ref + "-m", "number": "L-" + ref, "subtype": "II",
			"issuedOn": "2025-01-01", "status": "active"}, nil))
		must(t, c.WaitSettled(ctx))
		must(t, c.Call(ctx, "POST", "/v1/operator/proof/checkpoint", nil, nil))
	}
	witness := func(state string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"witness", "-url", "http://" + app.Addr(), "-key", filepath.Join(satuDir, "log.pub"), "-state", state, "-once"},
			&out, &errOut, func(string) string { return "" })
		return code, out.String() + errOut.String()
	}
	// A forged checkpoint: the right key, a log that is not the exchange's.
	forge := func(size int64) string {
		var root tlog.Hash
		copy(root[:], bytes.Repeat([]byte{7}, tlog.HashSize))
		signed, err := proof.Sign(proof.Checkpoint{Origin: logOrigin, Size: size, Root: root}, signer)
		must(t, err)
		return signed
	}
	state := func(checkpoint string) string {
		dir := t.TempDir()
		b, _ := json.Marshal(witnessState{Checkpoint: checkpoint})
		must(t, os.WriteFile(filepath.Join(dir, "witness.json"), b, 0o600))
		return dir
	}

	deposit("w1")
	good := t.TempDir()
	if code, out := witness(good); code != 0 || !strings.HasPrefix(out, "ok: satu/compliance-log at ") {
		t.Fatalf("first run: exit %d: %s", code, out)
	}
	deposit("w2")
	if code, out := witness(good); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("a consistent extension: exit %d: %s", code, out)
	}
	var cur struct{ Size int64 }
	must(t, c.Call(ctx, "GET", "/v1/proof/checkpoint", nil, &cur))
	for _, tc := range []struct {
		name, checkpoint, want string
	}{
		{"Rollback", forge(cur.Size + 5), "ALARM: rollback: the log shrank"},
		{"ForkSameSize", forge(cur.Size), "ALARM: fork: two different logs of"},
		{"NotAnExtension", forge(cur.Size - 1), "does not extend the one of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, out := witness(state(tc.checkpoint)); code != 1 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d: %s; want exit 1 and %q", code, out, tc.want)
			}
		})
	}
	t.Run("OtherKey", func(t *testing.T) {
		_, vkey, err := note.GenerateKey(rand.Reader, logOrigin)
		must(t, err)
		other := filepath.Join(t.TempDir(), "other.pub")
		must(t, os.WriteFile(other, []byte(vkey), 0o644))
		var out bytes.Buffer
		code := run(ctx, []string{"witness", "-url", "http://" + app.Addr(), "-key", other, "-state", t.TempDir(), "-once"},
			&out, io.Discard, func(string) string { return "" })
		if code != 1 || !strings.Contains(out.String(), "ALARM: the exchange served a checkpoint its key did not sign") {
			t.Fatalf("exit %d: %s", code, out.String())
		}
	})
}
