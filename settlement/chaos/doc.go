// Package chaos holds settlement's failure tests: the settlement process
// killed with SIGKILL mid-batch, PostgreSQL and Redis restarted mid-run,
// under a steady load of real engine commands — and after each, the ledger
// checked against the engine and the events stream. It has no code of its
// own; see chaos_test.go.
package chaos
