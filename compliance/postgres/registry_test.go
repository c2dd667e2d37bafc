package postgres_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
)

// wantAudit fails unless the audit entry has the actor, action, subject and
// reason.
func wantAudit(t *testing.T, e postgres.AuditEntry, actor, action, subject, reason string) {
	t.Helper()
	if e.Actor != actor || e.Action != action || e.Subject != subject || e.Reason != reason {
		t.Errorf("audit entry = (actor %q, action %q, subject %q, reason %q), want (%q, %q, %q, %q)",
			e.Actor, e.Action, e.Subject, e.Reason, actor, action, subject, reason)
	}
	if e.At.IsZero() || !json.Valid(e.Detail) {
		t.Errorf("audit entry at %v with detail %s: want a time and a JSON detail", e.At, e.Detail)
	}
}

func TestRegistry_Miner(t *testing.T) {
	registry := []string{"miners", "miner_accounts", "registry_audit"}

	t.Run("OKContacts", func(t *testing.T) {
		s, _ := newStore(t, compliance.DefaultRuleSet)
		ctx := context.Background()
		onboarding := compliance.Actor{ID: "regulator-key-7", Reason: "licence application 42"}
		kaz := compliance.Miner{ID: "kaz-mining", Name: "Kaz Mining LLP", BIN: "123456789012", EntityKind: compliance.LegalEntity,
			Accounts: []string{"kaz-2", "kaz-1"}, Email: "ops@kaz.example", Phone: "+7 727 000 00 00",
			Address: "Ekibastuz, Pavlodar region"}
		if err := s.CreateMiner(ctx, kaz, onboarding); err != nil {
			t.Fatalf("CreateMiner: %v", err)
		}
		if err := s.CreateMiner(ctx, miner("alpha", "111111111111", "alpha-1"), regulator); err != nil {
			t.Fatalf("CreateMiner(alpha): %v", err)
		}

		want := kaz
		want.Accounts = []string{"kaz-1", "kaz-2"} // by account ID
		got, err := s.Miner(ctx, "kaz-mining")
		if err != nil {
			t.Fatalf("Miner: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Miner =\n%+v, want\n%+v", got, want)
		}
		all, err := s.Miners(ctx)
		if err != nil {
			t.Fatalf("Miners: %v", err)
		}
		if len(all) != 2 || all[0].ID != "alpha" || !reflect.DeepEqual(all[1], want) {
			t.Errorf("Miners = %+v, want alpha then %+v", all, want)
		}
		if all[0].Email != "" || all[0].Phone != "" || all[0].Address != "" {
			t.Errorf("alpha's contacts = %q, %q, %q; want none", all[0].Email, all[0].Phone, all[0].Address)
		}

		e := lastAudit(t, s, "kaz-mining")
		wantAudit(t, e, "regulator-key-7", "miner.register", "kaz-mining", "licence application 42")
		var detail compliance.Miner
		if err := json.Unmarshal(e.Detail, &detail); err != nil || detail.BIN != kaz.BIN || detail.Email != kaz.Email {
			t.Errorf("audit detail = %s (%v), want the miner's record", e.Detail, err)
		}
		// Audit("") is the whole log, newest first.
		es, err := s.Audit(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 || es[0].Subject != "alpha" || es[1].Subject != "kaz-mining" {
			t.Errorf("Audit(\"\") = %+v, want alpha's entry then kaz-mining's", es)
		}
	})

	t.Run("ErrUnknownMiner", func(t *testing.T) {
		s, _ := newStore(t, compliance.DefaultRuleSet)
		_, err := s.Miner(context.Background(), "nobody")
		wantCode(t, err, apperr.UnknownMiner)
	})

	for _, tc := range []struct {
		name  string
		miner compliance.Miner
		actor compliance.Actor
		want  apperr.Code
	}{
		// The miner and its accounts are written before the audit entry is
		// refused: the transaction must take them back.
		{"ErrNoActor", miner("beta", "222222222222", "beta-1"), compliance.Actor{Reason: "who?"}, apperr.InvalidParameter},
		{"ErrEmailNotAddress", func() compliance.Miner {
			m := miner("beta", "222222222222", "beta-1")
			m.Email = "not-an-address"
			return m
		}(), regulator, apperr.InvalidParameter},
		{"ErrDuplicate", miner("alpha", "222222222222", "beta-1"), regulator, apperr.Conflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db := newStore(t, compliance.DefaultRuleSet)
			register(t, s, "alpha", "111111111111", "", "alpha-1")
			unchanged(t, db, registry, func() {
				wantCode(t, s.CreateMiner(context.Background(), tc.miner, tc.actor), tc.want)
			})
		})
	}
}

func TestRegistry_DataCentresPoolsEquipment(t *testing.T) {
	ctx := context.Background()
	tables := []string{"data_centres", "mining_pools", "equipment", "registry_audit"}
	setup := func(t *testing.T) *postgres.Store {
		t.Helper()
		s, _ := newStore(t, compliance.DefaultRuleSet)
		register(t, s, "alpha", "111111111111", "", "alpha-1")
		return s
	}
	dc := compliance.DataCentre{ID: "dc-ekibastuz", Name: "Ekibastuz DC", Operator: "Alpha Mining LLP", MinerID: "alpha",
		Location: "Pavlodar region, Ekibastuz", CapacityKW: 20_000}
	hosted := compliance.DataCentre{ID: "dc-almaty", Name: "Almaty Hosting", Operator: "Hosting JSC", Location: "Almaty", CapacityKW: 5_000}
	pool := compliance.Pool{ID: "pool-kz", Name: "KZ Pool", Accreditation: "ACC-142-001", AccreditedOn: day(t, "2023-09-01"),
		Location: "Astana"}
	rig := compliance.Equipment{Serial: "S19-0001", Model: "Antminer S19 XP", HashRate: "140.5", RatedPower: 3010,
		Location: "Ekibastuz", DataCentre: "dc-ekibastuz", Pool: "pool-kz", MinerID: "alpha"}
	loose := compliance.Equipment{Serial: "M30-0001", Model: "Whatsminer M30S", HashRate: "88", RatedPower: 3344,
		Location: "Almaty", MinerID: "alpha"}
	registerAll := func(t *testing.T, s *postgres.Store) {
		t.Helper()
		for _, err := range []error{
			s.CreateDataCentre(ctx, dc, compliance.Actor{ID: "regulator-1", Reason: "inspection 2024-01"}),
			s.CreateDataCentre(ctx, hosted, regulator),
			s.CreatePool(ctx, pool, compliance.Actor{ID: "regulator-1", Reason: "accreditation order 142"}),
			s.RegisterEquipment(ctx, rig, compliance.Actor{ID: "miner-key-alpha", Reason: "new rig"}),
			s.RegisterEquipment(ctx, loose, regulator),
		} {
			if err != nil {
				t.Fatalf("register: %v", err)
			}
		}
	}

	t.Run("OK", func(t *testing.T) {
		s := setup(t)
		registerAll(t, s)
		dcs, err := s.DataCentres(ctx)
		if err != nil {
			t.Fatalf("DataCentres: %v", err)
		}
		if want := []compliance.DataCentre{hosted, dc}; !slices.Equal(dcs, want) { // by ID
			t.Errorf("DataCentres =\n%+v, want\n%+v", dcs, want)
		}
		pools, err := s.Pools(ctx)
		if err != nil {
			t.Fatalf("Pools: %v", err)
		}
		if len(pools) != 1 || pools[0].ID != pool.ID || pools[0].Accreditation != pool.Accreditation ||
			!pools[0].AccreditedOn.Equal(pool.AccreditedOn) || pools[0].Name != pool.Name || pools[0].Location != pool.Location {
			t.Errorf("Pools = %+v, want [%+v]", pools, pool)
		}
		for _, miner := range []string{"alpha", ""} {
			eq, err := s.Equipment(ctx, miner)
			if err != nil {
				t.Fatalf("Equipment(%q): %v", miner, err)
			}
			if want := []compliance.Equipment{loose, rig}; !slices.Equal(eq, want) { // by serial
				t.Errorf("Equipment(%q) =\n%+v, want\n%+v", miner, eq, want)
			}
		}

		wantAudit(t, lastAudit(t, s, "dc-ekibastuz"), "regulator-1", "datacentre.register", "dc-ekibastuz", "inspection 2024-01")
		wantAudit(t, lastAudit(t, s, "pool-kz"), "regulator-1", "pool.register", "pool-kz", "accreditation order 142")
		// Equipment is audited under its miner.
		es, err := s.Audit(ctx, "alpha", 10)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range es {
			actions = append(actions, e.Action+" by "+e.Actor)
		}
		want := []string{"equipment.register by regulator-1", "equipment.register by miner-key-alpha", "miner.register by regulator-1"}
		if !slices.Equal(actions, want) {
			t.Errorf("alpha's audit = %q, want %q", actions, want)
		}
	})

	t.Run("OKEmpty", func(t *testing.T) {
		s := setup(t)
		dcs, err1 := s.DataCentres(ctx)
		pools, err2 := s.Pools(ctx)
		eq, err3 := s.Equipment(ctx, "")
		b, _ := json.Marshal([]any{dcs, pools, eq})
		if err1 != nil || err2 != nil || err3 != nil || string(b) != "[[],[],[]]" {
			t.Errorf("empty registry = %s (%v, %v, %v), want [[],[],[]]", b, err1, err2, err3)
		}
	})

	for _, tc := range []struct {
		name  string
		write func(s *postgres.Store) error
		want  apperr.Code
	}{
		{"ErrDataCentreDuplicate", func(s *postgres.Store) error {
			d := hosted
			d.ID = dc.ID
			return s.CreateDataCentre(ctx, d, regulator)
		}, apperr.Conflict},
		{"ErrDataCentreUnknownMiner", func(s *postgres.Store) error {
			d := dc
			d.ID, d.MinerID = "dc-new", "nobody"
			return s.CreateDataCentre(ctx, d, regulator)
		}, apperr.InvalidParameter},
		{"ErrDataCentreNoCapacity", func(s *postgres.Store) error {
			d := dc
			d.ID, d.CapacityKW = "dc-new", 0
			return s.CreateDataCentre(ctx, d, regulator)
		}, apperr.InvalidQuantity},
		{"ErrDataCentreNoActor", func(s *postgres.Store) error {
			d := dc
			d.ID = "dc-new"
			return s.CreateDataCentre(ctx, d, compliance.Actor{})
		}, apperr.InvalidParameter},
		{"ErrPoolDuplicateID", func(s *postgres.Store) error {
			p := pool
			p.Accreditation = "ACC-142-999"
			return s.CreatePool(ctx, p, regulator)
		}, apperr.Conflict},
		{"ErrPoolDuplicateAccreditation", func(s *postgres.Store) error {
			p := pool
			p.ID = "pool-other"
			return s.CreatePool(ctx, p, regulator)
		}, apperr.Conflict},
		{"ErrPoolDateNotDay", func(s *postgres.Store) error {
			p := pool
			p.ID, p.Accreditation, p.AccreditedOn = "pool-other", "ACC-2", p.AccreditedOn.Add(3600e9)
			return s.CreatePool(ctx, p, regulator)
		}, apperr.InvalidParameter},
		{"ErrEquipmentDuplicate", func(s *postgres.Store) error {
			e := loose
			e.Serial = rig.Serial
			return s.RegisterEquipment(ctx, e, regulator)
		}, apperr.Conflict},
		{"ErrEquipmentUnknownDataCentre", func(s *postgres.Store) error {
			e := rig
			e.Serial, e.DataCentre = "S19-0002", "dc-nowhere"
			return s.RegisterEquipment(ctx, e, regulator)
		}, apperr.InvalidParameter},
		{"ErrEquipmentUnknownPool", func(s *postgres.Store) error {
			e := rig
			e.Serial, e.Pool = "S19-0002", "pool-nowhere"
			return s.RegisterEquipment(ctx, e, regulator)
		}, apperr.InvalidParameter},
		{"ErrEquipmentUnknownMiner", func(s *postgres.Store) error {
			e := rig
			e.Serial, e.MinerID = "S19-0002", "nobody"
			return s.RegisterEquipment(ctx, e, regulator)
		}, apperr.InvalidParameter},
		{"ErrEquipmentHashRate", func(s *postgres.Store) error {
			e := rig
			e.Serial, e.HashRate = "S19-0002", "0.0"
			return s.RegisterEquipment(ctx, e, regulator)
		}, apperr.InvalidQuantity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db := newStore(t, compliance.DefaultRuleSet)
			register(t, s, "alpha", "111111111111", "", "alpha-1")
			registerAll(t, s)
			unchanged(t, db, tables, func() { wantCode(t, tc.write(s), tc.want) })
		})
	}
}
