package postgres_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/compliance"
	compliancepg "github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
	"github.com/satu-exchange/satu/settlement"
	"github.com/satu-exchange/satu/settlement/postgres"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

const btc = 100_000_000

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestSettleExactlyOnce runs real commands through Redis and the engine,
// settles them into PostgreSQL and checks the ledger against the engine,
// the obligation's progress, and that nothing settles twice.
func TestSettleExactlyOnce(t *testing.T) {
	ctx := context.Background()
	db := testenv.PG(t)
	rdb, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)

	rules, err := compliance.LoadRuleBook()
	if err != nil {
		t.Fatal(err)
	}
	law, _ := rules.Get(compliance.DefaultRuleSet)
	reg, err := compliancepg.NewStore(ctx, db, law)
	if err != nil {
		t.Fatal(err)
	}
	test := compliance.Actor{ID: "test"}
	if err := reg.CreateMiner(ctx, compliance.Miner{ID: "miner-a", Name: "Miner A LLP", BIN: "123456789012",
		EntityKind: compliance.LegalEntity, Accounts: []string{"miner-a-1"}}, test); err != nil {
		t.Fatal(err)
	}
	if err := reg.AddLicence(ctx, "miner-a", compliance.Licence{Number: "L-1", Subtype: compliance.SubtypeOwnDataCentre,
		IssuedOn: day("2024-06-01"), ExpiresOn: day("2027-06-01"), Status: compliance.LicenceActive}, test); err != nil {
		t.Fatal(err)
	}
	// Last month: the sales below happen now, inside its window (its month to
	// 30 days after it).
	now := time.Now().UTC()
	lastMonth := time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC)
	ob, err := reg.SubmitReport(ctx, compliance.Report{MinerID: "miner-a", Asset: "BTC", PeriodStart: lastMonth, Mined: btc,
		Wallets: []string{"bc1qminera"}, Source: compliance.FromMiner}, test) // 1 BTC mined, 75 % due
	if err != nil {
		t.Fatal(err)
	}
	if ob.Required != "0.75000000" || ob.Status != compliance.StatusOpen {
		t.Fatalf("obligation = %+v", ob)
	}

	engine, _ := matching.New(matching.DefaultSymbols())
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runnerDone := make(chan error, 1)
	go func() { runnerDone <- redisbus.NewRunner(rdb, keys, engine, zap.NewNop(), nil).Run(runCtx) }()
	client := redisbus.NewClient(rdb, keys, zap.NewNop())
	go client.Run(runCtx)
	do := func(c matching.Command) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		evs, err := client.Do(cctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if evs[0].Kind == matching.EvRejected {
			t.Fatalf("%s rejected: %s %s", c.Kind, evs[0].Code, evs[0].Message)
		}
	}
	do(matching.Command{Kind: matching.CmdOpenAccount, Account: "miner-a-1", Owner: "miner-a", AccountKind: matching.KindMiner})
	do(matching.Command{Kind: matching.CmdOpenAccount, Account: "buyer", Owner: "buyer", AccountKind: matching.KindTrader})
	do(matching.Command{Kind: matching.CmdDeposit, Account: "miner-a-1", Asset: "BTC", Amount: btc, ExtRef: "tx-btc"})
	do(matching.Command{Kind: matching.CmdDeposit, Account: "buyer", Asset: "KZT", Amount: 100_000_000_00, ExtRef: "tx-kzt"})
	do(matching.Command{Kind: matching.CmdSetPermission, Account: "miner-a-1", Permission: matching.PermMandatorySell, Granted: true})
	for i, cid := range []string{"1", "2"} {
		do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "buyer", Symbol: "BTCKZT", ClientID: "b" + cid,
			Side: matching.Buy, Type: matching.Limit, TIF: matching.GTC, Price: int64(30_000_000+i) * 100, Quantity: btc / 2})
		do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "miner-a-1", Symbol: "BTCKZT", ClientID: "s" + cid,
			Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: 29_000_000_00, Quantity: btc / 2, Purpose: matching.PurposeMandatory})
	}
	stop()
	<-runnerDone

	store, err := postgres.NewStore(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	var batches []*settlement.Batch
	consumer := &settlement.Consumer{Shard: ns, Source: redisbus.EventReader{RDB: rdb, Keys: keys}, Store: store,
		Log: zap.NewNop(), BatchSize: 7, Wait: time.Millisecond, Settled: func(b *settlement.Batch) { batches = append(batches, b) }}
	for {
		n, err := consumer.SettleOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if len(batches) < 2 {
		t.Fatalf("settled in %d batches; the test wants several", len(batches))
	}

	// The ledger equals the engine: free + held per account and asset, the
	// fee account included (it received both sides' fees).
	if free, _ := engine.Balance(matching.DefaultFeeAccount, "KZT"); free == 0 {
		t.Fatal("the trades charged no fees")
	}
	for _, acct := range []string{"miner-a-1", "buyer", matching.DefaultFeeAccount} {
		for _, asset := range []string{"BTC", "KZT"} {
			free, held := engine.Balance(acct, asset)
			if got := ledgerBalance(t, db, acct, asset); got != free+held {
				t.Errorf("%s %s: ledger %d, engine %d", acct, asset, got, free+held)
			}
		}
	}
	assertZeroSum(t, db)
	var fills int
	db.QueryRow(ctx, `SELECT count(*) FROM fills`).Scan(&fills)
	if fills != 2 {
		t.Fatalf("fills = %d; want 2", fills)
	}
	obs, err := reg.Obligations(ctx, compliancepg.ObligationFilter{Miner: "miner-a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 1 || obs[0].Sold != "0.75000000" || obs[0].Remaining != "0.00000000" || obs[0].Status != compliance.StatusMet {
		t.Fatalf("obligations = %+v", obs)
	}

	// Exactly once: replaying the first batch is refused and changes nothing.
	var entries int
	db.QueryRow(ctx, `SELECT count(*) FROM postings`).Scan(&entries)
	err = store.Settle(ctx, ns, batches[0])
	if !errors.Is(err, settlement.ErrPositionMoved) {
		t.Fatalf("re-settling a batch: %v; want ErrPositionMoved", err)
	}
	var entries2 int
	db.QueryRow(ctx, `SELECT count(*) FROM postings`).Scan(&entries2)
	if entries2 != entries {
		t.Fatalf("ledger grew from %d to %d on a refused batch", entries, entries2)
	}
	// A fresh consumer resumes after the stored position and finds nothing new.
	if n, err := consumer.SettleOnce(ctx); err != nil || n != 0 {
		t.Fatalf("resume settled %d, %v", n, err)
	}

	// The ledger is append-only.
	if _, err := db.Exec(ctx, `UPDATE ledger_entries SET amount = amount * 2`); err == nil {
		t.Fatal("UPDATE of ledger_entries succeeded")
	}
	if _, err := db.Exec(ctx, `DELETE FROM ledger_entries`); err == nil {
		t.Fatal("DELETE of ledger_entries succeeded")
	}
	// A trade's postings are its fill's legs: the fill is as immutable.
	for _, stmt := range []string{`UPDATE fills SET quantity = quantity * 2`, `DELETE FROM fills`,
		`UPDATE postings SET amount = amount * 2`} {
		if _, err := db.Exec(ctx, stmt); err == nil {
			t.Fatalf("%s succeeded", stmt)
		}
	}
}

func ledgerBalance(t *testing.T, db *pgxpool.Pool, acct, asset string) int64 {
	t.Helper()
	var v int64
	err := db.QueryRow(context.Background(), `SELECT COALESCE((SELECT (amount * 10 ^ a.scale)::bigint FROM balances b
		WHERE b.account = $1 AND b.asset = $2), 0) FROM assets a WHERE a.code = $2`, acct, asset).Scan(&v)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	err = db.QueryRow(context.Background(), `SELECT COALESCE((SUM(amount) * 10 ^ (SELECT scale FROM assets WHERE code = $2))::bigint, 0)
		FROM postings WHERE account = $1 AND asset = $2`, acct, asset).Scan(&sum)
	if err != nil {
		t.Fatal(err)
	}
	if sum != v {
		t.Fatalf("%s %s: balance %d but postings sum to %d", acct, asset, v, sum)
	}
	return v
}

func assertZeroSum(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT asset, SUM(amount)::text FROM postings GROUP BY asset HAVING SUM(amount) <> 0`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var asset, sum string
		rows.Scan(&asset, &sum)
		t.Errorf("postings of %s sum to %s", asset, sum)
	}
}

// TestBalancesIndependentOfBatching settles the same events once as one
// batch and once as two: the balance rows must be identical, including a
// balance whose postings net to zero inside one batch.
func TestBalancesIndependentOfBatching(t *testing.T) {
	ctx := context.Background()
	events := []matching.Event{
		{Seq: 1, Kind: matching.EvDeposited, Account: "a", Asset: "BTC", Amount: 30_000_000, ExtRef: "d"},
		{Seq: 2, Kind: matching.EvWithdrawn, Account: "a", Asset: "BTC", Amount: 30_000_000, ExtRef: "w"},
	}
	balances := func(split int) string {
		db := testenv.PG(t)
		store, err := postgres.NewStore(ctx, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		after := "0"
		for _, part := range [][]matching.Event{events[:split], events[split:]} {
			if len(part) == 0 {
				continue
			}
			b := &settlement.Batch{After: after}
			for _, ev := range part {
				b.Add(ev.ID(), ev)
			}
			if err := store.Settle(ctx, "s1", b); err != nil {
				t.Fatal(err)
			}
			after = b.LastStreamID
		}
		var got string
		if err := db.QueryRow(ctx, `SELECT string_agg(account || ' ' || asset || ' ' || amount::text, ', ' ORDER BY account, asset)
			FROM balances`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	one, two := balances(2), balances(1)
	if want := "a BTC 0.00000000, custody-external BTC 0.00000000"; one != want || two != want {
		t.Fatalf("balances: one batch %q, two batches %q; want %q both", one, two, want)
	}
}
