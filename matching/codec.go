package matching

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The compact event encoding, version 1: what the events stream carries.
// An entry is the version byte, the number of events (uvarint), then each
// event: a uvarint bit mask of its non-zero fields, in the order of
// eventFields, then each present field's value — unsigned integers as
// uvarints, signed as zig-zag varints, one-byte enums as a byte, strings as
// a uvarint length and the bytes; a true bool is its bit alone. Zero fields
// cost nothing, so an event is typically 20–60 bytes against 150–300 as
// JSON, and decoding takes no allocation but the output slice: strings are
// slices of the encoded input.

// EventsV1 is the first byte of a version-1 entry.
const EventsV1 = 0x01

// Version 2 is version 1 for the events of one command, which share their
// sequence and time and are numbered 0, 1, 2, …: the version byte, the
// number of events, the sequence (uvarint) and the time (zig-zag varint),
// then each event as in version 1 without those three fields (its mask
// never has their bits). A command's events are 40 bytes each on average,
// and the three fields were ten of them. AppendEvents writes version 2
// whenever its events qualify; DecodeEvents reads both.
const EventsV2 = 0x02

// sharedFields are the bits of the fields a version-2 entry states once:
// Seq, Time and Index.
const sharedFields = 1<<0 | 1<<1 | 1<<2

// eventFields names the fields in encoding order; the bit of field i is 1<<i.
// Fields may be added at the end only.
var eventFields = [...]string{
	"Seq", "Time", "Index", "Orders", "Kind", "Timer", "AccountKind", "Side", "Type", "TIF", "Status", "Purpose", "KeepsPriority", "TakerSide", "Permission", "Granted", "STP", "Phase", "Halted", "Account", "Owner", "Symbol", "OrderID", "ClientID", "Price", "Quantity", "Remaining", "Filled", "Reason", "Obligation", "BaseAsset", "QuoteAsset", "QuoteAmount", "BuyerFee", "SellerFee", "FeeAccount", "BuyerAccount", "SellerAccount", "BuyOrderID", "SellOrderID", "Asset", "Amount", "Free", "Held", "ExtRef", "Until", "Code", "Message"}

// AppendEvents appends the encoding of evs to b: version 2 when they are
// one command's events, version 1 otherwise.
func AppendEvents(b []byte, evs []Event) []byte {
	if !oneCommand(evs) {
		b = append(b, EventsV1)
		b = binary.AppendUvarint(b, uint64(len(evs)))
		for i := range evs {
			b = appendEvent(b, &evs[i], 0)
		}
		return b
	}
	b = append(b, EventsV2)
	b = binary.AppendUvarint(b, uint64(len(evs)))
	b = binary.AppendUvarint(b, evs[0].Seq)
	b = binary.AppendVarint(b, evs[0].Time)
	for i := range evs {
		b = appendEvent(b, &evs[i], sharedFields)
	}
	return b
}

// oneCommand says whether evs share their sequence and time and are
// numbered from 0 in order, as one command's events are.
func oneCommand(evs []Event) bool {
	if len(evs) == 0 {
		return false
	}
	for i := range evs {
		if evs[i].Seq != evs[0].Seq || evs[i].Time != evs[0].Time || evs[i].Index != uint32(i) {
			return false
		}
	}
	return true
}

// appendEvent appends one event, leaving out the fields whose bits are in
// omit.
func appendEvent(b []byte, e *Event, omit uint64) []byte {
	var m uint64
	if e.Seq != 0 {
		m |= 1 << 0
	}
	if e.Time != 0 {
		m |= 1 << 1
	}
	if e.Index != 0 {
		m |= 1 << 2
	}
	if e.Orders != 0 {
		m |= 1 << 3
	}
	if e.Kind != 0 {
		m |= 1 << 4
	}
	if e.Timer {
		m |= 1 << 5
	}
	if e.AccountKind != 0 {
		m |= 1 << 6
	}
	if e.Side != 0 {
		m |= 1 << 7
	}
	if e.Type != 0 {
		m |= 1 << 8
	}
	if e.TIF != 0 {
		m |= 1 << 9
	}
	if e.Status != 0 {
		m |= 1 << 10
	}
	if e.Purpose != 0 {
		m |= 1 << 11
	}
	if e.KeepsPriority {
		m |= 1 << 12
	}
	if e.TakerSide != 0 {
		m |= 1 << 13
	}
	if e.Permission != 0 {
		m |= 1 << 14
	}
	if e.Granted {
		m |= 1 << 15
	}
	if e.STP != 0 {
		m |= 1 << 16
	}
	if e.Phase != 0 {
		m |= 1 << 17
	}
	if e.Halted {
		m |= 1 << 18
	}
	if e.Account != "" {
		m |= 1 << 19
	}
	if e.Owner != "" {
		m |= 1 << 20
	}
	if e.Symbol != "" {
		m |= 1 << 21
	}
	if e.OrderID != 0 {
		m |= 1 << 22
	}
	if e.ClientID != "" {
		m |= 1 << 23
	}
	if e.Price != 0 {
		m |= 1 << 24
	}
	if e.Quantity != 0 {
		m |= 1 << 25
	}
	if e.Remaining != 0 {
		m |= 1 << 26
	}
	if e.Filled != 0 {
		m |= 1 << 27
	}
	if e.Reason != "" {
		m |= 1 << 28
	}
	if e.Obligation != "" {
		m |= 1 << 29
	}
	if e.BaseAsset != "" {
		m |= 1 << 30
	}
	if e.QuoteAsset != "" {
		m |= 1 << 31
	}
	if e.QuoteAmount != 0 {
		m |= 1 << 32
	}
	if e.BuyerFee != 0 {
		m |= 1 << 33
	}
	if e.SellerFee != 0 {
		m |= 1 << 34
	}
	if e.FeeAccount != "" {
		m |= 1 << 35
	}
	if e.BuyerAccount != "" {
		m |= 1 << 36
	}
	if e.SellerAccount != "" {
		m |= 1 << 37
	}
	if e.BuyOrderID != 0 {
		m |= 1 << 38
	}
	if e.SellOrderID != 0 {
		m |= 1 << 39
	}
	if e.Asset != "" {
		m |= 1 << 40
	}
	if e.Amount != 0 {
		m |= 1 << 41
	}
	if e.Free != 0 {
		m |= 1 << 42
	}
	if e.Held != 0 {
		m |= 1 << 43
	}
	if e.ExtRef != "" {
		m |= 1 << 44
	}
	if e.Until != 0 {
		m |= 1 << 45
	}
	if e.Code != "" {
		m |= 1 << 46
	}
	if e.Message != "" {
		m |= 1 << 47
	}
	m &^= omit
	b = binary.AppendUvarint(b, m)
	if m&(1<<0) != 0 {
		b = binary.AppendUvarint(b, uint64(e.Seq))
	}
	if m&(1<<1) != 0 {
		b = binary.AppendVarint(b, int64(e.Time))
	}
	if m&(1<<2) != 0 {
		b = binary.AppendUvarint(b, uint64(e.Index))
	}
	if m&(1<<3) != 0 {
		b = binary.AppendVarint(b, int64(e.Orders))
	}
	if m&(1<<4) != 0 {
		b = append(b, byte(e.Kind))
	}
	if m&(1<<6) != 0 {
		b = append(b, byte(e.AccountKind))
	}
	if m&(1<<7) != 0 {
		b = append(b, byte(e.Side))
	}
	if m&(1<<8) != 0 {
		b = append(b, byte(e.Type))
	}
	if m&(1<<9) != 0 {
		b = append(b, byte(e.TIF))
	}
	if m&(1<<10) != 0 {
		b = append(b, byte(e.Status))
	}
	if m&(1<<11) != 0 {
		b = append(b, byte(e.Purpose))
	}
	if m&(1<<13) != 0 {
		b = append(b, byte(e.TakerSide))
	}
	if m&(1<<14) != 0 {
		b = append(b, byte(e.Permission))
	}
	if m&(1<<16) != 0 {
		b = append(b, byte(e.STP))
	}
	if m&(1<<17) != 0 {
		b = append(b, byte(e.Phase))
	}
	if m&(1<<19) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Account)))
		b = append(b, e.Account...)
	}
	if m&(1<<20) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Owner)))
		b = append(b, e.Owner...)
	}
	if m&(1<<21) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Symbol)))
		b = append(b, e.Symbol...)
	}
	if m&(1<<22) != 0 {
		b = binary.AppendUvarint(b, uint64(e.OrderID))
	}
	if m&(1<<23) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.ClientID)))
		b = append(b, e.ClientID...)
	}
	if m&(1<<24) != 0 {
		b = binary.AppendVarint(b, int64(e.Price))
	}
	if m&(1<<25) != 0 {
		b = binary.AppendVarint(b, int64(e.Quantity))
	}
	if m&(1<<26) != 0 {
		b = binary.AppendVarint(b, int64(e.Remaining))
	}
	if m&(1<<27) != 0 {
		b = binary.AppendVarint(b, int64(e.Filled))
	}
	if m&(1<<28) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Reason)))
		b = append(b, e.Reason...)
	}
	if m&(1<<29) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Obligation)))
		b = append(b, e.Obligation...)
	}
	if m&(1<<30) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.BaseAsset)))
		b = append(b, e.BaseAsset...)
	}
	if m&(1<<31) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.QuoteAsset)))
		b = append(b, e.QuoteAsset...)
	}
	if m&(1<<32) != 0 {
		b = binary.AppendVarint(b, int64(e.QuoteAmount))
	}
	if m&(1<<33) != 0 {
		b = binary.AppendVarint(b, int64(e.BuyerFee))
	}
	if m&(1<<34) != 0 {
		b = binary.AppendVarint(b, int64(e.SellerFee))
	}
	if m&(1<<35) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.FeeAccount)))
		b = append(b, e.FeeAccount...)
	}
	if m&(1<<36) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.BuyerAccount)))
		b = append(b, e.BuyerAccount...)
	}
	if m&(1<<37) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.SellerAccount)))
		b = append(b, e.SellerAccount...)
	}
	if m&(1<<38) != 0 {
		b = binary.AppendUvarint(b, uint64(e.BuyOrderID))
	}
	if m&(1<<39) != 0 {
		b = binary.AppendUvarint(b, uint64(e.SellOrderID))
	}
	if m&(1<<40) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Asset)))
		b = append(b, e.Asset...)
	}
	if m&(1<<41) != 0 {
		b = binary.AppendVarint(b, int64(e.Amount))
	}
	if m&(1<<42) != 0 {
		b = binary.AppendVarint(b, int64(e.Free))
	}
	if m&(1<<43) != 0 {
		b = binary.AppendVarint(b, int64(e.Held))
	}
	if m&(1<<44) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.ExtRef)))
		b = append(b, e.ExtRef...)
	}
	if m&(1<<45) != 0 {
		b = binary.AppendVarint(b, int64(e.Until))
	}
	if m&(1<<46) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Code)))
		b = append(b, e.Code...)
	}
	if m&(1<<47) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Message)))
		b = append(b, e.Message...)
	}
	return b
}

// ErrEventsEncoding reports input that is not a valid version-1 or
// version-2 entry.
var ErrEventsEncoding = errors.New("matching: bad events encoding")

// DecodeEvents appends the events of a version-1 or version-2 entry to
// out. The events' strings share the memory of s.
func DecodeEvents(s string, out []Event) ([]Event, error) {
	if len(s) == 0 || s[0] != EventsV1 && s[0] != EventsV2 {
		return out, fmt.Errorf("%w: not version 1 or 2", ErrEventsEncoding)
	}
	d := decoder{s: s, i: 1}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(s)) {
		return out, fmt.Errorf("%w: event count", ErrEventsEncoding)
	}
	var omit uint64
	var seq uint64
	var at int64
	if s[0] == EventsV2 {
		if n == 0 {
			return out, fmt.Errorf("%w: a version-2 entry without events", ErrEventsEncoding)
		}
		omit, seq, at = sharedFields, d.uvarint(), d.varint()
		if d.err != nil {
			return out, d.err
		}
	}
	for i := range n {
		out = append(out, Event{})
		e := &out[len(out)-1]
		d.event(e)
		if d.err != nil {
			return out[:len(out)-1], d.err
		}
		if omit != 0 {
			// Checked here, not in event: a larger event no longer
			// inlines its varint reads, and decoding got a fifth slower.
			if e.Seq != 0 || e.Time != 0 || e.Index != 0 {
				return out[:len(out)-1], fmt.Errorf("%w: event %d states a field of the entry's head", ErrEventsEncoding, i)
			}
			e.Seq, e.Time, e.Index = seq, at, uint32(i)
		}
	}
	if d.i != len(s) {
		return out, fmt.Errorf("%w: %d trailing bytes", ErrEventsEncoding, len(s)-d.i)
	}
	return out, nil
}

type decoder struct {
	s   string
	i   int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", ErrEventsEncoding, what, d.i)
	}
	d.i = len(d.s)
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if d.i >= len(d.s) {
			d.fail("truncated varint")
			return 0
		}
		c := d.s[d.i]
		d.i++
		if c < 0x80 {
			if shift == 63 && c > 1 {
				d.fail("varint overflow")
				return 0
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
	}
	d.fail("varint overflow")
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) byte() uint8 {
	if d.i >= len(d.s) {
		d.fail("truncated")
		return 0
	}
	c := d.s[d.i]
	d.i++
	return c
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.s)-d.i) {
		d.fail("truncated string")
		return ""
	}
	v := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return v
}

func (d *decoder) event(e *Event) {
	m := d.uvarint()
	if m>>len(eventFields) != 0 {
		d.fail("unknown field")
		return
	}
	if m&(1<<0) != 0 {
		e.Seq = d.uvarint()
	}
	if m&(1<<1) != 0 {
		e.Time = d.varint()
	}
	if m&(1<<2) != 0 {
		v := d.uvarint()
		if v > 1<<32-1 {
			d.fail("Index out of range")
		}
		e.Index = uint32(v)
	}
	if m&(1<<3) != 0 {
		v := d.varint()
		if v != int64(int32(v)) {
			d.fail("Orders out of range")
		}
		e.Orders = int32(v)
	}
	if m&(1<<4) != 0 {
		e.Kind = EventKind(d.byte())
	}
	if m&(1<<5) != 0 {
		e.Timer = true
	}
	if m&(1<<6) != 0 {
		e.AccountKind = AccountKind(d.byte())
	}
	if m&(1<<7) != 0 {
		e.Side = Side(d.byte())
	}
	if m&(1<<8) != 0 {
		e.Type = OrderType(d.byte())
	}
	if m&(1<<9) != 0 {
		e.TIF = TimeInForce(d.byte())
	}
	if m&(1<<10) != 0 {
		e.Status = OrderStatus(d.byte())
	}
	if m&(1<<11) != 0 {
		e.Purpose = Purpose(d.byte())
	}
	if m&(1<<12) != 0 {
		e.KeepsPriority = true
	}
	if m&(1<<13) != 0 {
		e.TakerSide = Side(d.byte())
	}
	if m&(1<<14) != 0 {
		e.Permission = Permission(d.byte())
	}
	if m&(1<<15) != 0 {
		e.Granted = true
	}
	if m&(1<<16) != 0 {
		e.STP = STPMode(d.byte())
	}
	if m&(1<<17) != 0 {
		e.Phase = Phase(d.byte())
	}
	if m&(1<<18) != 0 {
		e.Halted = true
	}
	if m&(1<<19) != 0 {
		e.Account = d.str()
	}
	if m&(1<<20) != 0 {
		e.Owner = d.str()
	}
	if m&(1<<21) != 0 {
		e.Symbol = d.str()
	}
	if m&(1<<22) != 0 {
		e.OrderID = d.uvarint()
	}
	if m&(1<<23) != 0 {
		e.ClientID = d.str()
	}
	if m&(1<<24) != 0 {
		e.Price = d.varint()
	}
	if m&(1<<25) != 0 {
		e.Quantity = d.varint()
	}
	if m&(1<<26) != 0 {
		e.Remaining = d.varint()
	}
	if m&(1<<27) != 0 {
		e.Filled = d.varint()
	}
	if m&(1<<28) != 0 {
		e.Reason = d.str()
	}
	if m&(1<<29) != 0 {
		e.Obligation = d.str()
	}
	if m&(1<<30) != 0 {
		e.BaseAsset = d.str()
	}
	if m&(1<<31) != 0 {
		e.QuoteAsset = d.str()
	}
	if m&(1<<32) != 0 {
		e.QuoteAmount = d.varint()
	}
	if m&(1<<33) != 0 {
		e.BuyerFee = d.varint()
	}
	if m&(1<<34) != 0 {
		e.SellerFee = d.varint()
	}
	if m&(1<<35) != 0 {
		e.FeeAccount = d.str()
	}
	if m&(1<<36) != 0 {
		e.BuyerAccount = d.str()
	}
	if m&(1<<37) != 0 {
		e.SellerAccount = d.str()
	}
	if m&(1<<38) != 0 {
		e.BuyOrderID = d.uvarint()
	}
	if m&(1<<39) != 0 {
		e.SellOrderID = d.uvarint()
	}
	if m&(1<<40) != 0 {
		e.Asset = d.str()
	}
	if m&(1<<41) != 0 {
		e.Amount = d.varint()
	}
	if m&(1<<42) != 0 {
		e.Free = d.varint()
	}
	if m&(1<<43) != 0 {
		e.Held = d.varint()
	}
	if m&(1<<44) != 0 {
		e.ExtRef = d.str()
	}
	if m&(1<<45) != 0 {
		e.Until = d.varint()
	}
	if m&(1<<46) != 0 {
		e.Code = d.str()
	}
	if m&(1<<47) != 0 {
		e.Message = d.str()
	}
}
