// Command satu runs Satu: the exchange-side system for Kazakhstan's
// mandatory sale of mined digital assets.
//
//	satu serve     run the engine, settlement, websocket gateway and HTTP API
//	satu migrate   apply the database migrations and exit
//	satu demo      run the demo market once on a scratch database and print the compliance table
//	satu order     place one order over the websocket API and wait until it is settled
//	satu load      drive a local Satu with orders, idle connections and stream subscribers; print throughput and latency
//	satu signer    issue a websocket signing key (Ed25519 made locally, or HMAC) and write its file
//	satu settle    run only the settlement writer of a shard (and periodic reconciliation)
//	satu engine    run only the engine of a shard (the sequencer; needs Redis only)
//	satu reconcile compare engine and ledger once; exit code 0 clean, 1 differences, 2 error
//	satu keys      create, list and revoke the REST API's keys
//	satu logkey    make the transparency log's signing key pair
//	satu certificate  write an obligation's certificate
//	satu verify    check a certificate offline against the exchange's public key
//	satu witness   follow the log's checkpoints and alarm on a fork or rollback
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signalContext()
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// signalContext is cancelled by the first SIGINT or SIGTERM, which starts a
// graceful shutdown. Then the signals' default action comes back, so a
// second Ctrl-C ends a shutdown that takes too long instead of being
// swallowed.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

const usage = `usage: satu <command> [flags]

commands:
  serve     run Satu (engine, settlement, websocket gateway, HTTP API)
  migrate   apply database migrations
  demo      run the demo market once and print the compliance table
  order     place one order over the websocket API (-signer FILE)
  load      send orders from many websocket connections at a rate and mix for a time (loopback only);
            print progress, then throughput and latency percentiles
  signer    issue a websocket signing key through REST and write its file
  settle    run only the settlement writer of a shard
  engine    run only the engine (sequencer) of a shard; gateways run as 'serve -engine=false'
  reconcile compare engine and ledger once (exit 0 clean, 1 differences, 2 error; -replay, -json)
  keys      create, list and revoke API keys (create prints the key once)
  logkey    make the transparency log's key pair (log.key, log.pub)
  certificate -obligation ID   write an obligation's certificate
  verify CERT... -key log.pub [-entry INDEX] [-witness-state DIR [-url URL]]
                               check certificates offline (several: against one another too),
                               and against a witness's checkpoint
                               (exit 0 valid, 1 invalid or a fork, 2 error, 3 not yet witnessed)
  witness -url URL -key log.pub -state DIR   follow checkpoints; exit 1 on a fork or rollback, 2 error

'satu <command> -h' lists the command's flags.
`

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr, getenv)
	case "migrate":
		err = migrateCmd(ctx, args[1:], stdout, getenv)
	case "demo":
		err = demoCmd(ctx, args[1:], stdout, stderr, getenv)
	case "order":
		err = orderCmd(ctx, args[1:], stdout)
	case "load":
		err = loadCmd(ctx, args[1:], stdout)
	case "signer":
		err = signerCmd(ctx, args[1:], stdout)
	case "settle":
		err = settleCmd(ctx, args[1:], getenv)
	case "engine":
		err = engineCmd(ctx, args[1:], getenv)
	case "reconcile":
		err = reconcileCmd(ctx, args[1:], stdout, stderr, getenv)
	case "keys":
		err = keysCmd(ctx, args[1:], stdout, stderr, getenv)
	case "logkey":
		err = logkeyCmd(args[1:], stdout)
	case "certificate":
		err = certificateCmd(ctx, args[1:], stdout, stderr, getenv)
	case "verify":
		err = verifyCmd(ctx, args[1:], stdout, stderr)
	case "witness":
		err = witnessCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "satu: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	var notRun cannotRun
	if errors.As(err, &notRun) {
		fmt.Fprintf(stderr, "satu %s: %v\n", args[0], err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "satu %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// exitCode makes run return a specific exit code after printing nothing more.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

// cannotRun is an error that kept a command from doing its work at all:
// its flags or configuration, a file it needs, a connection, a database
// schema it cannot read. run prints it and exits 2, so that commands whose
// exit code 1 reports a finding — reconcile's differences, witness's alarm,
// verify's invalid certificate — never report one they did not make.
type cannotRun struct{ err error }

func (e cannotRun) Error() string { return e.err.Error() }
func (e cannotRun) Unwrap() error { return e.err }
