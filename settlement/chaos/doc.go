// Package chaos holds the failure tests of the running system: the
// settlement process killed with SIGKILL mid-batch, PostgreSQL and Redis
// restarted mid-run, and `satu serve` itself killed while clients place
// orders — and after each, the ledger checked against the engine and the
// events stream, and the engine against a clean replay. It has no code of
// its own; see chaos_test.go and engine_test.go.
package chaos
