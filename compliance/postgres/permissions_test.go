package postgres_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
)

// TestPermissions follows alpha's permission to place mandatory orders: granted
// while licensed, kept after the licence is revoked while an obligation is
// unmet, revoked once everything is met. beta never had a licence.
func TestPermissions(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2023-06-15", "alpha-2", "alpha-1")
	register(t, s, "beta", "222222222222", "", "beta-1")
	openAccount(t, db, "buyer-1", "trader-x", "trader")
	setNow(t, s, "2024-03-01 10:00")

	changes := func(t *testing.T) []postgres.PermissionChange {
		t.Helper()
		cs, err := s.PermissionChanges(ctx)
		if err != nil {
			t.Fatalf("PermissionChanges: %v", err)
		}
		return cs
	}
	mark := func(t *testing.T, cs ...postgres.PermissionChange) {
		t.Helper()
		for _, c := range cs {
			if err := s.MarkPermission(ctx, c); err != nil {
				t.Fatalf("MarkPermission(%+v): %v", c, err)
			}
		}
	}
	granted := postgres.PermissionChange{Miner: "alpha", Accounts: []string{"alpha-1", "alpha-2"}, Granted: true}

	t.Run("OK/FirstRun", func(t *testing.T) {
		want := []postgres.PermissionChange{granted, {Miner: "beta", Accounts: []string{"beta-1"}, Granted: false}}
		if got := changes(t); !reflect.DeepEqual(got, want) {
			t.Errorf("PermissionChanges =\n%+v, want\n%+v", got, want)
		}
	})

	t.Run("OK/MarkedChangesDisappear", func(t *testing.T) {
		mark(t, changes(t)...)
		if got := changes(t); len(got) != 0 {
			t.Errorf("PermissionChanges after marking = %+v, want none", got)
		}
		sum, err := s.Summary(ctx, "alpha")
		if err != nil || sum.MandatorySell == nil || !*sum.MandatorySell {
			t.Errorf("Summary.MandatorySell = %v (%v), want true", sum.MandatorySell, err)
		}
		wantAudit(t, lastAudit(t, s, "beta"), "system", "permission.mandatory_sell", "beta", "licence status and open obligations")
	})

	var feb compliance.ObligationView
	t.Run("OK/KeptAfterRevocationWhileUnmet", func(t *testing.T) {
		feb = report(t, s, "alpha", "BTC", "2024-02-01", 2*btc) // 1.0 required by 2024-03-30
		changeLicence(t, s, "KZ-DM-alpha", change(t, compliance.ChangeRevoke, "2024-03-01", "", "breach"))
		if got := changes(t); len(got) != 0 {
			t.Errorf("PermissionChanges with a revoked licence and an unmet obligation = %+v, want none (granted stays)", got)
		}
	})

	t.Run("OK/PartlySoldStillKept", func(t *testing.T) {
		mustSettle(t, s, db, "s1", sale("10-0", "alpha-1", "BTC", 60_000_000, almaty(t, "2024-03-01 11:00")))
		if got := changes(t); len(got) != 0 {
			t.Errorf("PermissionChanges with 0.4 BTC still to sell = %+v, want none", got)
		}
	})

	t.Run("OK/RevokedOnceMet", func(t *testing.T) {
		mustSettle(t, s, db, "s1", sale("11-0", "alpha-2", "BTC", 40_000_000, almaty(t, "2024-03-01 12:00")))
		if got := storedProgress(t, db, feb.ID); got.status != "met" {
			t.Fatalf("February = %+v, want met", got)
		}
		revoked := granted
		revoked.Granted = false
		got := changes(t)
		if want := []postgres.PermissionChange{revoked}; !reflect.DeepEqual(got, want) {
			t.Fatalf("PermissionChanges = %+v, want %+v", got, want)
		}
		mark(t, got...)
		if got := changes(t); len(got) != 0 {
			t.Errorf("PermissionChanges after marking = %+v, want none", got)
		}
		sum, err := s.Summary(ctx, "alpha")
		if err != nil || sum.MandatorySell == nil || *sum.MandatorySell || sum.Licensed {
			t.Errorf("Summary = mandatory sell %v, licensed %v (%v); want false, false", sum.MandatorySell, sum.Licensed, err)
		}
	})

	t.Run("ErrUnknownMiner", func(t *testing.T) {
		unchanged(t, db, []string{"registry_audit"}, func() {
			wantCode(t, s.MarkPermission(ctx, postgres.PermissionChange{Miner: "nobody", Granted: true}), apperr.UnknownMiner)
		})
	})
}

// TestPermissions_SuspendedAndExpired: a suspension revokes the permission
// for its duration and it comes back by itself; an expired licence with
// nothing owed revokes it.
func TestPermissions_SuspendedAndExpired(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2023-06-15", "alpha-1")
	changeLicence(t, s, "KZ-DM-alpha", change(t, compliance.ChangeSuspend, "2024-04-01", "2024-05-01", "inspection"))
	for _, step := range []struct {
		now  string
		want bool
	}{
		{"2024-03-31 23:00", true},
		{"2024-04-01 00:00", false},
		{"2024-05-01 00:00", true},  // the suspension ended by itself
		{"2026-06-15 00:00", false}, // expired on 2026-06-15
	} {
		t.Run("OK/"+step.now[:10], func(t *testing.T) {
			setNow(t, s, step.now)
			cs, err := s.PermissionChanges(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := []postgres.PermissionChange{{Miner: "alpha", Accounts: []string{"alpha-1"}, Granted: step.want}}
			if !reflect.DeepEqual(cs, want) {
				t.Fatalf("PermissionChanges = %+v, want %+v", cs, want)
			}
			if err := s.MarkPermission(ctx, cs[0]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPermissionSyncsTakeTurns: a second permission sync — of this process
// or another, on the same database — waits for the first to record what it
// sent before it reads the changes.
func TestPermissionSyncsTakeTurns(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, compliance.DefaultRuleSet)
	unlock, err := s.LockPermissions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	go func() {
		u, err := s.LockPermissions(ctx)
		if err != nil {
			t.Error(err)
			u = func() {}
		}
		got <- u
	}()
	select {
	case u := <-got:
		u()
		t.Fatal("a second sync took the lock while the first held it")
	case <-time.After(300 * time.Millisecond):
	}
	unlock()
	select {
	case u := <-got:
		u()
	case <-time.After(10 * time.Second):
		t.Fatal("the second sync never got the lock after the first let it go")
	}
	// Released: a third takes it at once.
	u, err := s.LockPermissions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u()
}
