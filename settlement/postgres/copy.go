package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// copyRows builds a COPY … FROM STDIN (FORMAT binary) stream by hand. The
// fills of a batch are its hottest write; encoding them through pgx's
// generic path cost a boxed interface and an encode-plan look-up per value
// (21 per fill). Here every value is appended straight to one buffer, in
// PostgreSQL's binary COPY format: a signature header, then per row an
// int16 field count and per field an int32 length (-1 for NULL) and the
// value in the type's binary send format. The column types must be exactly
// those of the table (binary COPY converts nothing): text, bigint,
// smallint, boolean, timestamptz, numeric.
type copyRows struct {
	buf []byte
}

// copySignature is the binary COPY header: signature, flags, extension length.
var copySignature = []byte("PGCOPY\n\377\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

var copyBuffers = sync.Pool{New: func() any { return &copyRows{} }}

// newCopyRows returns an empty stream (header written) from the pool.
func newCopyRows() *copyRows {
	c := copyBuffers.Get().(*copyRows)
	c.buf = append(c.buf[:0], copySignature...)
	return c
}

func (c *copyRows) release() {
	if cap(c.buf) <= 16<<20 { // keep ordinary batches' buffers, not a giant's
		copyBuffers.Put(c)
	}
}

// row starts a row of n fields.
func (c *copyRows) row(n int) { c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(n)) }

func (c *copyRows) text(s string) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(s)))
	c.buf = append(c.buf, s...)
}

// textOrNull writes "" as NULL.
func (c *copyRows) textOrNull(s string) {
	if s == "" {
		c.buf = binary.BigEndian.AppendUint32(c.buf, 0xFFFFFFFF)
		return
	}
	c.text(s)
}

func (c *copyRows) int8(v int64) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 8)
	c.buf = binary.BigEndian.AppendUint64(c.buf, uint64(v))
}

func (c *copyRows) int2(v int16) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 2)
	c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(v))
}

func (c *copyRows) bool(v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	c.buf = append(binary.BigEndian.AppendUint32(c.buf, 1), b)
}

// pgEpochMillis is 2000-01-01T00:00:00Z, PostgreSQL's epoch, in Unix milliseconds.
const pgEpochMillis = 946_684_800_000

// timestamptz writes an engine time (Unix milliseconds) as microseconds
// since PostgreSQL's epoch.
func (c *copyRows) timestamptz(unixMillis int64) {
	c.int8((unixMillis - pgEpochMillis) * 1000)
}

// numeric writes an amount of minor units at the asset's scale.
func (c *copyRows) numeric(x Minor) error {
	at := len(c.buf)
	c.buf = append(c.buf, 0, 0, 0, 0) // the length, patched below
	var err error
	if c.buf, err = appendMinorBinary(c.buf, x); err != nil {
		return err
	}
	binary.BigEndian.PutUint32(c.buf[at:], uint32(len(c.buf)-at-4))
	return nil
}

// copyTo sends the stream into table's columns in tx; the trailer is added
// here.
func (c *copyRows) copyTo(ctx context.Context, tx pgx.Tx, table string, columns []string) error {
	c.buf = binary.BigEndian.AppendUint16(c.buf, 0xFFFF)
	sql := "COPY " + pgx.Identifier{table}.Sanitize() + " (" + quoteColumns(columns) + ") FROM STDIN (FORMAT binary)"
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(c.buf), sql); err != nil {
		return fmt.Errorf("copy %s: %w", table, err)
	}
	return nil
}

func quoteColumns(columns []string) string {
	q := make([]string, len(columns))
	for i, col := range columns {
		q[i] = pgx.Identifier{col}.Sanitize()
	}
	return strings.Join(q, ", ")
}
