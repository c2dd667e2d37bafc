package matching

import "github.com/satu-exchange/satu/internal/apperr"

// allowed lists the phase changes an operator may make (CmdSetPhase). A
// schedule may move a symbol to any phase; the uncross rule is the same.
var allowed = map[Phase][]Phase{
	PhaseClosed:            {PhasePreOpen, PhaseContinuous},
	PhasePreOpen:           {PhaseOpeningAuction, PhaseClosed},
	PhaseOpeningAuction:    {PhaseContinuous, PhaseClosed},
	PhaseContinuous:        {PhasePreClose, PhaseClosed},
	PhasePreClose:          {PhaseClosingAuction, PhaseClosed},
	PhaseClosingAuction:    {PhaseTradingAtLast, PhaseClosed},
	PhaseTradingAtLast:     {PhaseClosed},
	PhaseVolatilityAuction: {PhaseContinuous, PhaseClosed},
}

// AllowedTransitions returns the phases an operator may move a symbol to
// from phase p.
func AllowedTransitions(p Phase) []Phase { return append([]Phase(nil), allowed[p]...) }

func (e *Engine) phaseCommand(c *Command) *apperr.Error {
	m, err := e.market(c.Symbol)
	if err != nil {
		return err
	}
	switch c.Kind {
	case CmdHalt:
		if m.halted {
			return apperr.New(apperr.InvalidTransition, "%s is already halted", m.Name)
		}
		m.halted = true
		e.phaseEvent(m)
	case CmdResume:
		if !m.halted {
			return apperr.New(apperr.InvalidTransition, "%s is not halted", m.Name)
		}
		m.halted = false
		if m.phase.matches() {
			// Phase changes during the halt may have left it crossed; an
			// uncross deferred into trading-at-last sets the closing price.
			if p := e.uncross(m); p != 0 && m.phase == PhaseTradingAtLast {
				m.closePrice = p
			}
		}
		e.phaseEvent(m)
	default:
		ok := false
		for _, p := range allowed[m.phase] {
			ok = ok || p == c.Phase
		}
		if !ok {
			return apperr.New(apperr.InvalidTransition, "%s cannot go from %s to %s", m.Name, m.phase, c.Phase)
		}
		e.transition(m, c.Phase)
	}
	return nil
}

// transition moves m to phase to. Entering a matching phase from one that
// does not match (a call phase, or closed after a call) uncrosses the book
// first — unless halted: then at the resume; entering trading-at-last fixes
// the closing price: the uncross price, else the last trade price.
func (e *Engine) transition(m *market, to Phase) {
	from := m.phase
	if from == to {
		return
	}
	m.phase = to
	var p int64
	if !from.matches() && to.matches() && !m.halted {
		p = e.uncross(m)
	}
	if to == PhaseTradingAtLast {
		m.closePrice = p
		if p == 0 {
			m.closePrice = m.lastPrice
		}
	}
	e.phaseEvent(m)
}

func (e *Engine) phaseEvent(m *market) {
	ev := e.emit(EvPhase)
	ev.Symbol, ev.Phase, ev.Halted, ev.Price = m.Name, m.phase, m.halted, m.refPrice
	if m.phase == PhaseVolatilityAuction {
		ev.Until = m.volUntil
	}
	if m.phase == PhaseTradingAtLast {
		ev.Price = m.closePrice
	}
}

// uncross executes a crossed book at single prices until it is no longer
// crossed, and returns the (last) uncross price, 0 if nothing traded (a
// round that only expired self-trading orders sets no price).
// Normally one round suffices; self-trade prevention between the crossing
// orders can leave a smaller cross for another round.
func (e *Engine) uncross(m *market) int64 {
	var last int64
	for {
		p, vol := m.auctionPrice()
		if vol == 0 {
			break
		}
		if e.auctionExecute(m, p) {
			last = p
		}
	}
	if last != 0 {
		m.lastPrice = last
		m.setRef(last)
	}
	return last
}

// auctionPrice chooses the uncross price among the crossing levels' prices:
// the maximum executable volume, then the minimum imbalance, then the
// nearest to the reference price (when there is one), then the lowest. It
// returns the executable volume at that price (0: the book is not crossed).
// Hidden iceberg quantity takes part.
func (m *market) auctionPrice() (price, volume int64) {
	bb, ba := m.bids.best(), m.asks.best()
	if bb == nil || ba == nil || bb.price < ba.price {
		return 0, 0
	}
	var bestImb, bestDist int64
	consider := func(p int64) {
		var bv, sv int64
		for i := len(m.bids.levels) - 1; i >= 0 && m.bids.levels[i].price >= p; i-- {
			bv += m.bids.levels[i].total
		}
		for i := len(m.asks.levels) - 1; i >= 0 && m.asks.levels[i].price <= p; i-- {
			sv += m.asks.levels[i].total
		}
		vol, imb, dist := min(bv, sv), abs(bv-sv), int64(0)
		if m.refPrice > 0 {
			dist = abs(p - m.refPrice)
		}
		switch {
		case vol > volume,
			vol == volume && imb < bestImb,
			vol == volume && imb == bestImb && dist < bestDist,
			vol == volume && imb == bestImb && dist == bestDist && p < price:
			price, volume, bestImb, bestDist = p, vol, imb, dist
		}
	}
	for i := len(m.bids.levels) - 1; i >= 0 && m.bids.levels[i].price >= ba.price; i-- {
		consider(m.bids.levels[i].price)
	}
	for i := len(m.asks.levels) - 1; i >= 0 && m.asks.levels[i].price <= bb.price; i-- {
		consider(m.asks.levels[i].price)
	}
	return price, volume
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// auctionExecute matches every bid at or above p with every ask at or below
// p, in price-time priority, all at p. Both sides pay the maker fee. When
// the next bid and ask share an owner, the later order (higher ID) expires.
func (e *Engine) auctionExecute(m *market, p int64) (traded bool) {
	for {
		bl, al := m.bids.best(), m.asks.best()
		if bl == nil || al == nil || bl.price < p || al.price > p {
			return traded
		}
		b, a := bl.head, al.head
		if b.acct.ownerID == a.acct.ownerID {
			later := b
			if a.id > b.id {
				later = a
			}
			e.done(later, StatusExpired, ReasonAuctionSTP)
			continue
		}
		q := min(b.remaining, a.remaining)
		e.trade(m, b, a, p, q, 0)
		traded = true
		e.auctionReduce(b, q)
		e.auctionReduce(a, q)
	}
}

// auctionReduce takes an auction fill off a resting order: from its visible
// part first, then its hidden part.
func (e *Engine) auctionReduce(o *order, q int64) {
	l := o.lvl
	o.remaining -= q
	l.total -= q
	v := o.visible - min(q, o.visible)
	if v == 0 && o.remaining > 0 { // an iceberg shows its next slice
		v = min(o.display, o.remaining)
	}
	l.visible += v - o.visible
	o.visible = v
	e.touchLevel(o.sym, o.side, l)
	if o.remaining == 0 {
		e.done(o, StatusFilled, "")
		return
	}
	e.releaseExcess(o)
}
