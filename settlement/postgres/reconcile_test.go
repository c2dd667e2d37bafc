package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/settlement"
	"github.com/satu-exchange/satu/settlement/postgres"
)

// settledFlow settles a random flow of commands from a real engine into a
// new database and returns the store, the pool and the engine.
func settledFlow(t *testing.T, commands int, seed uint64) (*postgres.Store, *pgxpool.Pool, *matching.Engine, []matching.Event) {
	t.Helper()
	db := testenv.PG(t)
	store, err := postgres.NewStore(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, evs := newFlow(t, 8, seed)
	for range commands {
		evs = f.step(t, evs)
	}
	if trades(evs) < commands/4 {
		t.Fatalf("the flow made %d trades from %d commands; the test wants more", trades(evs), commands)
	}
	settleAll(t, store, "s1", evs, 37)
	return store, db, f.e, evs
}

// TestLedgerEqualsEngine settles a random flow and compares every ledger
// balance with the engine's own state (not its events): free + held, per
// account and asset; and reconciliation finds nothing.
func TestLedgerEqualsEngine(t *testing.T) {
	ctx := context.Background()
	store, _, engine, _ := settledFlow(t, 1500, 7)
	diffs, seen, err := store.CompareWithEngine(ctx, engine.Balance)
	if err != nil || len(diffs) != 0 || seen < 9 {
		t.Fatalf("compared %d balances: %+v (%v)", seen, diffs, err)
	}
	r, err := store.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Clean() {
		t.Fatalf("reconciliation of a clean ledger:\n%s", r)
	}
	if len(r.Positions) != 1 || r.Positions[0].Seq != engine.Seq() || len(r.Checks) != len(settlement.Checks) {
		t.Fatalf("report positions %+v, %d checks; want seq %d, %d checks", r.Positions, len(r.Checks), engine.Seq(), len(settlement.Checks))
	}
}

// TestReconcileFindsTampering breaks the ledger in one way per case — with
// the append-only triggers bypassed, as someone with the database's
// superuser could — and checks that the named checks report it.
func TestReconcileFindsTampering(t *testing.T) {
	cases := []struct {
		name  string
		sql   string
		found []string // checks that must report a difference
	}{
		{"engine view drifts", `UPDATE engine_balances SET held = held + 1 WHERE account = 't001' AND asset = 'KZT'`,
			[]string{settlement.CheckEngine}},
		{"balance edited", `UPDATE balances SET amount = amount + 0.01 WHERE account = 't002' AND asset = 'KZT'`,
			[]string{settlement.CheckEngine, settlement.CheckBalances}},
		{"posting added", `INSERT INTO ledger_entries (batch_id, shard, event_id, seq, leg, booked_at, kind, account, asset, amount)
			SELECT batch_id, shard, event_id, seq, 2, booked_at, kind, 't003', asset, 5 FROM ledger_entries
			WHERE kind = 'deposit' AND asset = 'BTC' ORDER BY id LIMIT 1`,
			[]string{settlement.CheckBalances, settlement.CheckAssetZeroSum, settlement.CheckEventZeroSum,
				settlement.CheckCustodyPosted, settlement.CheckBatches}},
		{"posting amount edited", `UPDATE ledger_entries SET amount = amount * 2 WHERE id = (SELECT min(id) FROM ledger_entries WHERE kind = 'deposit')`,
			[]string{settlement.CheckBalances, settlement.CheckAssetZeroSum, settlement.CheckEventZeroSum, settlement.CheckCustodyPosted}},
		// A fill is its trade's journal entry: editing it moves its legs,
		// which the settled balances no longer match.
		{"fill quantity edited", `UPDATE fills SET quantity = quantity + 0.00000001 WHERE id = (SELECT min(id) FROM fills)`,
			[]string{settlement.CheckBalances}},
		{"fill deleted", `DELETE FROM fills WHERE id = (SELECT max(id) FROM fills)`,
			[]string{settlement.CheckBalances, settlement.CheckBatches}},
		{"fees credited to a trader", `UPDATE fills SET fee_account = 't001'
			WHERE id = (SELECT min(id) FROM fills WHERE buyer_fee + seller_fee > 0)`,
			[]string{settlement.CheckFills, settlement.CheckBalances}},
		{"fill of an unknown buyer", `UPDATE fills SET buyer_account = 'nobody' WHERE id = (SELECT min(id) FROM fills)`,
			[]string{settlement.CheckFills, settlement.CheckBalances}},
		{"negative balance", `UPDATE balances SET amount = -1 WHERE account = 't004' AND asset = 'BTC'`,
			[]string{settlement.CheckNegative, settlement.CheckBalances, settlement.CheckEngine}},
		{"deposit amount edited", `UPDATE custody_movements SET amount = amount + 1 WHERE direction = 'deposit' AND ext_ref = 'dep-1'`,
			[]string{settlement.CheckCustodyPosted}},
		{"withdrawal posting deleted", `DELETE FROM ledger_entries WHERE id = (SELECT min(id) FROM ledger_entries WHERE kind = 'withdrawal')`,
			[]string{settlement.CheckCustodyPosted, settlement.CheckEventZeroSum, settlement.CheckBatches}},
		{"posting of no batch", `UPDATE ledger_entries SET batch_id = 999999 WHERE id = (SELECT max(id) FROM ledger_entries)`,
			[]string{settlement.CheckBatches}},
		{"fill in an unknown asset", `UPDATE fills SET base_asset = 'XBT' WHERE id = (SELECT min(id) FROM fills)`,
			[]string{settlement.CheckBatches, settlement.CheckBalances}},
		{"custody movement of no batch", `UPDATE custody_movements SET batch_id = 999999
			WHERE event_id = (SELECT min(event_id) FROM custody_movements)`,
			[]string{settlement.CheckBatches}},
		{"position rewound", `UPDATE settlement_positions SET seq = seq - 1`,
			[]string{settlement.CheckBatches}},
		// Commands never settled between two batches, or before the first.
		{"batch skipped", `UPDATE settlement_batches SET first_seq = first_seq + 1
			WHERE id = (SELECT max(id) FROM settlement_batches)`,
			[]string{settlement.CheckBatches}},
		{"first batch after 1", `UPDATE settlement_batches SET first_seq = 2
			WHERE id = (SELECT min(id) FROM settlement_batches) AND last_seq >= 2`,
			[]string{settlement.CheckBatches}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			store, db, _, _ := settledFlow(t, 300, 11)
			err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
					return err
				}
				tag, err := tx.Exec(ctx, tc.sql)
				if err == nil && tag.RowsAffected() == 0 {
					t.Fatalf("%s changed nothing", tc.sql)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			r, err := store.Reconcile(ctx)
			if err != nil {
				t.Fatal(err)
			}
			text := r.String()
			for _, c := range r.Checks {
				want := false
				for _, name := range tc.found {
					want = want || name == c.Name
				}
				if want && c.Differences == 0 {
					t.Errorf("check %s found nothing\n%s", c.Name, text)
				}
				if want && len(c.Examples) == 0 {
					t.Errorf("check %s counts %d but lists none", c.Name, c.Differences)
				}
			}
			if r.Clean() || !strings.Contains(text, "NOT CLEAN") {
				t.Fatalf("report is clean after tampering:\n%s", text)
			}
		})
	}
}

// TestCompareWithEngineIsExact: balances are compared in whole minor units,
// exactly — not through floating point, which rounds past 2^53 — so a
// balance of 2^53 + 1 equals the engine's 2^53 + 1, and differs from 2^53.
func TestCompareWithEngineIsExact(t *testing.T) {
	ctx := context.Background()
	db := testenv.PG(t)
	store, err := postgres.NewStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	const big = 1<<53 + 1
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC).UnixMilli()
	settleAll(t, store, "s1", []matching.Event{
		{Seq: 1, Time: at, Kind: matching.EvDeposited, Account: "whale", Asset: "KZT", Amount: big, ExtRef: "big-1"},
	}, 10)
	for _, c := range []struct {
		engine int64
		diffs  int
	}{{big, 0}, {big - 1, 1}} {
		diffs, _, err := store.CompareWithEngine(ctx, func(account, asset string) (int64, int64) {
			if account == "whale" && asset == "KZT" {
				return c.engine, 0
			}
			return 0, 0
		})
		if err != nil || len(diffs) != c.diffs {
			t.Errorf("engine balance %d against the ledger's %d: %d differences %+v (%v); want %d", c.engine, int64(big), len(diffs), diffs, err, c.diffs)
		}
	}
}

// TestReplayCheckRefusesAnotherShardsLedger: the replay check of a shard
// that settled nothing into this ledger — another shard did — is refused,
// not run against sequence 0 (every balance a difference).
func TestReplayCheckRefusesAnotherShardsLedger(t *testing.T) {
	ctx := context.Background()
	store, _, _, _ := settledFlow(t, 50, 3) // settled by s1
	asked := false
	_, err := store.ReplayCheck(ctx, "s2", func(context.Context, uint64) (func(string, string) (int64, int64), error) {
		asked = true
		return func(string, string) (int64, int64) { return 0, 0 }, nil
	})
	if err == nil || !strings.Contains(err.Error(), "another shard") || asked {
		t.Fatalf("ReplayCheck of s2 on s1's ledger: %v (engine asked: %v); want a refusal", err, asked)
	}
}
