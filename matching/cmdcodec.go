package matching

import (
	"encoding/binary"
	"fmt"
)

// The compact command encoding, version 1: how gateways append commands to
// the inbox. The first byte is CommandV1 (JSON, which the inbox also
// accepts, starts with '{'); then a uvarint bit mask of the non-zero
// fields in the order of commandFields and each present field's value, as
// in the events encoding (codec.go).

// CommandV1 is the first byte of a version-1 command.
const CommandV1 = 0x02

// commandFields names the fields in encoding order; the bit of field i is
// 1<<i. Fields may be added at the end only.
var commandFields = [...]string{
	"Seq", "Time", "Kind", "Account", "Symbol", "ClientID", "Side", "Type", "TIF", "Price", "Quantity", "QuoteQty", "DisplayQty", "ExpireAt", "PostOnly", "STP", "Purpose", "Obligation", "OrderID", "Asset", "Amount", "ExtRef", "Owner", "AccountKind", "Permission", "Granted", "Phase"}

// AppendCommand appends the version-1 encoding of c to b.
func AppendCommand(b []byte, c *Command) []byte {
	b = append(b, CommandV1)
	var m uint64
	if c.Seq != 0 {
		m |= 1 << 0
	}
	if c.Time != 0 {
		m |= 1 << 1
	}
	if c.Kind != 0 {
		m |= 1 << 2
	}
	if c.Account != "" {
		m |= 1 << 3
	}
	if c.Symbol != "" {
		m |= 1 << 4
	}
	if c.ClientID != "" {
		m |= 1 << 5
	}
	if c.Side != 0 {
		m |= 1 << 6
	}
	if c.Type != 0 {
		m |= 1 << 7
	}
	if c.TIF != 0 {
		m |= 1 << 8
	}
	if c.Price != 0 {
		m |= 1 << 9
	}
	if c.Quantity != 0 {
		m |= 1 << 10
	}
	if c.QuoteQty != 0 {
		m |= 1 << 11
	}
	if c.DisplayQty != 0 {
		m |= 1 << 12
	}
	if c.ExpireAt != 0 {
		m |= 1 << 13
	}
	if c.PostOnly {
		m |= 1 << 14
	}
	if c.STP != 0 {
		m |= 1 << 15
	}
	if c.Purpose != 0 {
		m |= 1 << 16
	}
	if c.Obligation != "" {
		m |= 1 << 17
	}
	if c.OrderID != 0 {
		m |= 1 << 18
	}
	if c.Asset != "" {
		m |= 1 << 19
	}
	if c.Amount != 0 {
		m |= 1 << 20
	}
	if c.ExtRef != "" {
		m |= 1 << 21
	}
	if c.Owner != "" {
		m |= 1 << 22
	}
	if c.AccountKind != 0 {
		m |= 1 << 23
	}
	if c.Permission != 0 {
		m |= 1 << 24
	}
	if c.Granted {
		m |= 1 << 25
	}
	if c.Phase != 0 {
		m |= 1 << 26
	}
	b = binary.AppendUvarint(b, m)
	if m&(1<<0) != 0 {
		b = binary.AppendUvarint(b, c.Seq)
	}
	if m&(1<<1) != 0 {
		b = binary.AppendVarint(b, c.Time)
	}
	if m&(1<<2) != 0 {
		b = append(b, byte(c.Kind))
	}
	if m&(1<<3) != 0 {
		b = binary.AppendUvarint(b, uint64(len(c.Account)))
		b = append(b, c.Account...)
	}
	if m&(1<<4) != 0 {
		b = binary.AppendUvarint(b, uint64(len(c.Symbol)))
		b = append(b, c.Symbol...)
	}
	if m&(1<<5) != 0 {
		b = binary.AppendUvarint(b, uint64(len(c.ClientID)))
		b = append(b, c.ClientID...)
	}
	if m&(1<<6) != 0 {
		b = append(b, byte(c.Side))
	}
	if m&(1<<7) != 0 {
		b = append(b, byte(c.Type))
	}
	if m&(1<<8) != 0 {
		b = append(b, byte(c.TIF))
	}
	if m&(1<<9) != 0 {
		b = binary.AppendVarint(b, c.Price)
	}
	if m&(1<<10) != 0 {
		b = binary.AppendVarint(b, c.Quantity)
	}
	if m&(1<<11) != 0 {
		b = binary.AppendVarint(b, c.QuoteQty)
	}
	if m&(1<<12) != 0 {
		b = binary.AppendVarint(b, c.DisplayQty)
	}
	if m&(1<<13) != 0 {
		b = binary.AppendVarint(b, c.ExpireAt)
	}
	if m&(1<<15) != 0 {
		b = append(b, byte(c.STP))
	}
	if m&(1<<16) != 0 {
		b = append(b, byte(c.Purpose))
	}
	if m&(1<<17) != 0 {
		b = binary.AppendUvarint(b, uint64(len(c.Obligation)))
		b = append(b, c.Obligation...)
	}
	if m&(1<<18) != 0 {
		b = binary.AppendUvarint(b, c.OrderID)
	}
	if m&(1<<19) != 0 {
		b = binary.AppendUvarint(b, uint64(len(c.Asset)))
		b = append(b, c.Asset...)
	}
	if m&(1<<20) != 0 {
		b = binary.AppendVarint(b, c.Amount)
	}
	if m&(1<<21) != 0 {
		b = binary.AppendUvarint(b, uint64(len(c.ExtRef)))
		b = append(b, c.ExtRef...)
	}
	if m&(1<<22) != 0 {
		b = binary.AppendUvarint(b, uint64(len(c.Owner)))
		b = append(b, c.Owner...)
	}
	if m&(1<<23) != 0 {
		b = append(b, byte(c.AccountKind))
	}
	if m&(1<<24) != 0 {
		b = append(b, byte(c.Permission))
	}
	if m&(1<<26) != 0 {
		b = append(b, byte(c.Phase))
	}
	return b
}

// DecodeCommand decodes a version-1 command. Its strings share the memory of s.
func DecodeCommand(s string) (Command, error) {
	var c Command
	if len(s) == 0 || s[0] != CommandV1 {
		return c, fmt.Errorf("%w: not a version-1 command", ErrEventsEncoding)
	}
	d := decoder{s: s, i: 1}
	m := d.uvarint()
	if m>>len(commandFields) != 0 {
		d.fail("unknown field")
	}
	if m&(1<<0) != 0 {
		c.Seq = d.uvarint()
	}
	if m&(1<<1) != 0 {
		c.Time = d.varint()
	}
	if m&(1<<2) != 0 {
		c.Kind = CommandKind(d.byte())
	}
	if m&(1<<3) != 0 {
		c.Account = d.str()
	}
	if m&(1<<4) != 0 {
		c.Symbol = d.str()
	}
	if m&(1<<5) != 0 {
		c.ClientID = d.str()
	}
	if m&(1<<6) != 0 {
		c.Side = Side(d.byte())
	}
	if m&(1<<7) != 0 {
		c.Type = OrderType(d.byte())
	}
	if m&(1<<8) != 0 {
		c.TIF = TimeInForce(d.byte())
	}
	if m&(1<<9) != 0 {
		c.Price = d.varint()
	}
	if m&(1<<10) != 0 {
		c.Quantity = d.varint()
	}
	if m&(1<<11) != 0 {
		c.QuoteQty = d.varint()
	}
	if m&(1<<12) != 0 {
		c.DisplayQty = d.varint()
	}
	if m&(1<<13) != 0 {
		c.ExpireAt = d.varint()
	}
	if m&(1<<14) != 0 {
		c.PostOnly = true
	}
	if m&(1<<15) != 0 {
		c.STP = STPMode(d.byte())
	}
	if m&(1<<16) != 0 {
		c.Purpose = Purpose(d.byte())
	}
	if m&(1<<17) != 0 {
		c.Obligation = d.str()
	}
	if m&(1<<18) != 0 {
		c.OrderID = d.uvarint()
	}
	if m&(1<<19) != 0 {
		c.Asset = d.str()
	}
	if m&(1<<20) != 0 {
		c.Amount = d.varint()
	}
	if m&(1<<21) != 0 {
		c.ExtRef = d.str()
	}
	if m&(1<<22) != 0 {
		c.Owner = d.str()
	}
	if m&(1<<23) != 0 {
		c.AccountKind = AccountKind(d.byte())
	}
	if m&(1<<24) != 0 {
		c.Permission = Permission(d.byte())
	}
	if m&(1<<25) != 0 {
		c.Granted = true
	}
	if m&(1<<26) != 0 {
		c.Phase = Phase(d.byte())
	}
	if d.err == nil && d.i != len(s) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return Command{}, d.err
	}
	return c, nil
}
