package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/apperr"
)

// CreateMiner registers a miner and the exchange accounts it trades through.
func (s *Store) CreateMiner(ctx context.Context, m compliance.Miner, a compliance.Actor) error {
	return s.CreateMinerThen(ctx, m, a, nil)
}

// CreateMinerThen is CreateMiner that runs then, when not nil, inside the
// registration's transaction once the registry has taken the miner (its ID,
// BIN and accounts are free) and before it commits; an error from then
// undoes the registration. The API opens the miner's engine accounts
// there: a miner the registry refuses opens none, and a registration
// racing another for the same ID waits on it and is refused.
func (s *Store) CreateMinerThen(ctx context.Context, m compliance.Miner, a compliance.Actor, then func(context.Context) error) error {
	if err := m.Validate(); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO miners (id, name, bin, entity_kind, email, phone, address) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			m.ID, m.Name, m.BIN, string(m.EntityKind), m.Email, m.Phone, m.Address)
		if isUniqueViolation(err) {
			return apperr.New(apperr.Conflict, "a miner with id %q or BIN %s is already registered", m.ID, m.BIN)
		}
		if err != nil {
			return fmt.Errorf("compliance: create miner: %w", err)
		}
		for _, acc := range m.Accounts {
			_, err := tx.Exec(ctx, `INSERT INTO miner_accounts (account, miner_id) VALUES ($1, $2)`, acc, m.ID)
			if isUniqueViolation(err) {
				return apperr.New(apperr.Conflict, "account %q already belongs to a miner", acc)
			}
			if err != nil {
				return fmt.Errorf("compliance: link account: %w", err)
			}
		}
		if then != nil {
			if err := then(ctx); err != nil {
				return err
			}
		}
		return s.audit(ctx, tx, a, "miner.register", m.ID, m)
	})
}

// Miner returns a miner's registry record with its accounts, or UNKNOWN_MINER.
func (s *Store) Miner(ctx context.Context, id string) (compliance.Miner, error) {
	ms, err := s.miners(ctx, id)
	if err != nil {
		return compliance.Miner{}, err
	}
	if len(ms) == 0 {
		return compliance.Miner{}, apperr.New(apperr.UnknownMiner, "unknown miner %q", id)
	}
	return ms[0], nil
}

// Miners returns every miner, by ID.
func (s *Store) Miners(ctx context.Context) ([]compliance.Miner, error) { return s.miners(ctx, "") }

func (s *Store) miners(ctx context.Context, id string) ([]compliance.Miner, error) {
	rows, err := s.db.Query(ctx, `SELECT m.id, m.name, m.bin, m.entity_kind, m.email, m.phone, m.address,
			coalesce(array_agg(ma.account ORDER BY ma.account) FILTER (WHERE ma.account IS NOT NULL), '{}')
		FROM miners m LEFT JOIN miner_accounts ma ON ma.miner_id = m.id
		WHERE $1 = '' OR m.id = $1 GROUP BY m.id ORDER BY m.id`, id)
	if err != nil {
		return nil, fmt.Errorf("compliance: miners: %w", err)
	}
	out := []compliance.Miner{}
	var m compliance.Miner
	var kind string
	if _, err := pgx.ForEachRow(rows, []any{&m.ID, &m.Name, &m.BIN, &kind, &m.Email, &m.Phone, &m.Address, &m.Accounts}, func() error {
		m.EntityKind = compliance.EntityKind(kind)
		out = append(out, m)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("compliance: miners: %w", err)
	}
	return out, nil
}

// MinerAccounts returns a miner's exchange accounts, or UNKNOWN_MINER.
func (s *Store) MinerAccounts(ctx context.Context, minerID string) ([]string, error) {
	m, err := s.Miner(ctx, minerID)
	if err != nil {
		return nil, err
	}
	return m.Accounts, nil
}

// AddLicence records a licence for a miner.
func (s *Store) AddLicence(ctx context.Context, minerID string, l compliance.Licence, a compliance.Actor) error {
	if len(l.Changes) > 0 {
		return apperr.New(apperr.InvalidParameter, "a new licence has no status changes yet; change it after registering it")
	}
	if err := l.Validate(); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := lockLog(ctx, tx); err != nil {
			return err
		}
		if err := s.minerExists(ctx, tx, minerID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO licences (miner_id, number, subtype, issued_on, expires_on, status)
			VALUES ($1, $2, $3, $4, $5, $6)`, minerID, l.Number, string(l.Subtype), l.IssuedOn.UTC(), l.ExpiresOn.UTC(), string(l.Status))
		if isUniqueViolation(err) {
			return apperr.New(apperr.Conflict, "licence number %q is already registered", l.Number)
		}
		if err != nil {
			return fmt.Errorf("compliance: add licence: %w", err)
		}
		if err := s.appendLog(ctx, tx, "", nil, []logItem{licenceItem(minerID, l.Number, "registered", string(l.Subtype),
			l.IssuedOn, l.ExpiresOn, "")}); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "licence.register", minerID, map[string]any{"number": l.Number, "subtype": l.Subtype,
			"issuedOn": day(l.IssuedOn), "expiresOn": day(l.ExpiresOn), "status": l.Status})
	})
}

// ChangeLicence suspends, reinstates or revokes a licence from a date, with
// the regulator's reason, and returns the miner it belongs to. The change is
// checked against the licence's history (compliance.Licence.CheckChange).
func (s *Store) ChangeLicence(ctx context.Context, number string, c compliance.StatusChange, a compliance.Actor) (string, error) {
	var minerID string
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := lockLog(ctx, tx); err != nil {
			return err
		}
		var id int64
		err := tx.QueryRow(ctx, `SELECT id, miner_id FROM licences WHERE number = $1 FOR UPDATE`, number).Scan(&id, &minerID)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.InvalidParameter, "unknown licence %q", number)
		}
		if err != nil {
			return fmt.Errorf("compliance: licence: %w", err)
		}
		lics, err := s.licences(ctx, tx, minerID)
		if err != nil {
			return err
		}
		for _, l := range lics {
			if l.Number == number {
				if err := l.CheckChange(c); err != nil {
					return err
				}
			}
		}
		var until *time.Time
		if !c.Until.IsZero() {
			until = &c.Until
		}
		if _, err := tx.Exec(ctx, `INSERT INTO licence_changes (licence_id, kind, from_day, until_day, reason, actor, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, string(c.Kind), c.From, until, c.Reason, a.ID, s.Clock().UTC()); err != nil {
			return fmt.Errorf("compliance: licence change: %w", err)
		}
		if err := s.appendLog(ctx, tx, "", nil, []logItem{licenceItem(minerID, number, string(c.Kind), "", c.From, c.Until, c.Reason)}); err != nil {
			return err
		}
		return s.audit(ctx, tx, compliance.Actor{ID: a.ID, Reason: c.Reason}, "licence."+string(c.Kind), minerID, map[string]any{
			"number": number, "from": day(c.From), "until": optDay(c.Until)})
	})
	return minerID, err
}

func optDay(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return day(t)
}

// Licences returns a miner's licences with their status history.
func (s *Store) Licences(ctx context.Context, minerID string) ([]compliance.Licence, error) {
	return s.licences(ctx, s.db, minerID)
}

func (s *Store) licences(ctx context.Context, q querier, minerID string) ([]compliance.Licence, error) {
	rows, err := q.Query(ctx, `SELECT l.number, l.subtype, l.issued_on, l.expires_on, l.status,
			coalesce(json_agg(json_build_object('kind', c.kind, 'from', c.from_day, 'until', c.until_day, 'reason', c.reason)
				ORDER BY c.id) FILTER (WHERE c.id IS NOT NULL), '[]')
		FROM licences l LEFT JOIN licence_changes c ON c.licence_id = l.id
		WHERE l.miner_id = $1 GROUP BY l.id ORDER BY l.issued_on, l.id`, minerID)
	if err != nil {
		return nil, fmt.Errorf("compliance: licences: %w", err)
	}
	var out []compliance.Licence
	var l compliance.Licence
	var subtype, status string
	var changes []struct {
		Kind   string  `json:"kind"`
		From   string  `json:"from"`
		Until  *string `json:"until"`
		Reason string  `json:"reason"`
	}
	_, err = pgx.ForEachRow(rows, []any{&l.Number, &subtype, &l.IssuedOn, &l.ExpiresOn, &status, &changes}, func() error {
		l.Subtype, l.Status, l.Changes = compliance.LicenceSubtype(subtype), compliance.LicenceStatus(status), nil
		for _, c := range changes {
			sc := compliance.StatusChange{Kind: compliance.ChangeKind(c.Kind), Reason: c.Reason}
			var err error
			if sc.From, err = time.Parse(time.DateOnly, c.From); err != nil {
				return err
			}
			if c.Until != nil {
				if sc.Until, err = time.Parse(time.DateOnly, *c.Until); err != nil {
					return err
				}
			}
			l.Changes = append(l.Changes, sc)
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compliance: licences: %w", err)
	}
	return out, nil
}

// LicenceView is a licence as the API shows it: its status today, its
// history and its fee.
type LicenceView struct {
	Miner       string                    `json:"miner"`
	Number      string                    `json:"number"`
	Subtype     compliance.LicenceSubtype `json:"subtype"`
	IssuedOn    string                    `json:"issuedOn"`
	ExpiresOn   string                    `json:"expiresOn"`
	StatusToday compliance.LicenceStatus  `json:"statusToday"`
	Changes     []compliance.StatusChange `json:"changes"`
	// FeeMCI is the licence fee in MCI; FeeTenge converts it at the MCI of
	// the issue year when the rule set confirms that year's MCI ("" else).
	FeeMCI   int64  `json:"feeMci"`
	FeeTenge string `json:"feeTenge"`
}

// LicenceViews returns the licences of one miner, or of all ("").
func (s *Store) LicenceViews(ctx context.Context, minerID string) ([]LicenceView, error) {
	ids := []string{minerID}
	if minerID == "" {
		ms, err := s.Miners(ctx)
		if err != nil {
			return nil, err
		}
		ids = ids[:0]
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
	} else if err := s.minerExists(ctx, s.db, minerID); err != nil {
		return nil, err
	}
	today := s.Today()
	out := []LicenceView{}
	for _, id := range ids {
		lics, err := s.Licences(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, l := range lics {
			v := LicenceView{Miner: id, Number: l.Number, Subtype: l.Subtype, IssuedOn: day(l.IssuedOn), ExpiresOn: day(l.ExpiresOn),
				StatusToday: l.StatusOn(today), Changes: nonNil(l.Changes)}
			if v.FeeMCI, err = s.rules.LicenceFeeMCI(l.Subtype); err == nil {
				if tenge, err := s.rules.InTenge(v.FeeMCI, l.IssuedOn.Year()); err == nil {
					v.FeeTenge = fmt.Sprintf("%d.00", tenge)
				}
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// CreateDataCentre registers a data centre.
func (s *Store) CreateDataCentre(ctx context.Context, d compliance.DataCentre, a compliance.Actor) error {
	if err := d.Validate(); err != nil {
		return err
	}
	return s.insert(ctx, a, "datacentre.register", d.ID, d, "data centre "+d.ID,
		`INSERT INTO data_centres (id, name, operator, miner_id, location, capacity_kw, created_at) VALUES ($1, $2, $3, nullif($4, ''), $5, $6, $7)`,
		d.ID, d.Name, d.Operator, d.MinerID, d.Location, d.CapacityKW, s.Clock().UTC())
}

// CreatePool registers an accredited mining pool.
func (s *Store) CreatePool(ctx context.Context, p compliance.Pool, a compliance.Actor) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return s.insert(ctx, a, "pool.register", p.ID, p, "pool "+p.ID+" (or its accreditation "+p.Accreditation+")",
		`INSERT INTO mining_pools (id, name, accreditation, accredited_on, location, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		p.ID, p.Name, p.Accreditation, p.AccreditedOn, p.Location, s.Clock().UTC())
}

// RegisterEquipment adds a machine to the equipment register.
func (s *Store) RegisterEquipment(ctx context.Context, e compliance.Equipment, a compliance.Actor) error {
	if err := e.Validate(); err != nil {
		return err
	}
	return s.insert(ctx, a, "equipment.register", e.MinerID, e, "equipment "+e.Serial,
		`INSERT INTO equipment (serial, model, hash_rate_ths, rated_power_w, location, data_centre, pool, miner_id, created_at)
		VALUES ($1, $2, $3::numeric, $4, $5, nullif($6, ''), nullif($7, ''), $8, $9)`,
		e.Serial, e.Model, e.HashRate, e.RatedPower, e.Location, e.DataCentre, e.Pool, e.MinerID, s.Clock().UTC())
}

// insert runs one registry INSERT with its audit entry: a duplicate is
// CONFLICT naming what, a missing reference (miner, data centre, pool) is
// INVALID_PARAMETER.
func (s *Store) insert(ctx context.Context, a compliance.Actor, action, subject string, detail any, what, sql string, args ...any) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, sql, args...)
		switch {
		case isUniqueViolation(err):
			return apperr.New(apperr.Conflict, "%s is already registered", what)
		case isForeignKeyViolation(err):
			return apperr.New(apperr.InvalidParameter, "%s refers to a miner, data centre or pool that is not registered", what)
		case err != nil:
			return fmt.Errorf("compliance: %s: %w", action, err)
		}
		return s.audit(ctx, tx, a, action, subject, detail)
	})
}

// DataCentres lists the data centres.
func (s *Store) DataCentres(ctx context.Context) ([]compliance.DataCentre, error) {
	return list(ctx, s.db, `SELECT id, name, operator, coalesce(miner_id, ''), location, capacity_kw FROM data_centres ORDER BY id`,
		func(rows pgx.Rows) (compliance.DataCentre, error) {
			var d compliance.DataCentre
			err := rows.Scan(&d.ID, &d.Name, &d.Operator, &d.MinerID, &d.Location, &d.CapacityKW)
			return d, err
		})
}

// Pools lists the accredited pools.
func (s *Store) Pools(ctx context.Context) ([]compliance.Pool, error) {
	return list(ctx, s.db, `SELECT id, name, accreditation, accredited_on, location FROM mining_pools ORDER BY id`,
		func(rows pgx.Rows) (compliance.Pool, error) {
			var p compliance.Pool
			err := rows.Scan(&p.ID, &p.Name, &p.Accreditation, &p.AccreditedOn, &p.Location)
			return p, err
		})
}

// Equipment lists the equipment register, of one miner or all ("").
func (s *Store) Equipment(ctx context.Context, minerID string) ([]compliance.Equipment, error) {
	return list(ctx, s.db, `SELECT serial, model, hash_rate_ths::text, rated_power_w, location, coalesce(data_centre, ''),
			coalesce(pool, ''), miner_id FROM equipment WHERE $1 = '' OR miner_id = $1 ORDER BY miner_id, serial`,
		func(rows pgx.Rows) (compliance.Equipment, error) {
			var e compliance.Equipment
			err := rows.Scan(&e.Serial, &e.Model, &e.HashRate, &e.RatedPower, &e.Location, &e.DataCentre, &e.Pool, &e.MinerID)
			return e, err
		}, minerID)
}

// list runs a query and collects its rows, never returning a nil slice.
func list[T any](ctx context.Context, q querier, sql string, scan func(pgx.Rows) (T, error), args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("compliance: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(rows) })
	if err != nil {
		return nil, fmt.Errorf("compliance: list: %w", err)
	}
	return nonNil(out), nil
}

// licenceItem is the log entry of a licence event.
func licenceItem(miner, number, event, subtype string, from, until time.Time, reason string) logItem {
	return logItem{kind: proof.KindLicence, ref: number, miner: miner, keepData: true,
		data: proof.MustEncode(proof.KindLicence, proof.Licence{Miner: miner, Number: number, Event: event, Subtype: subtype,
			From: day(from), Until: optDay(until), Reason: reason})}
}
