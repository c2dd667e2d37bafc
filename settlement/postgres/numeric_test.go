package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/satu-exchange/satu/internal/testenv"
)

// minorCases returns the edge values at every scale 0..18 followed by
// random ones (fixed seed).
func minorCases(random int) []Minor {
	var vs []int64
	for _, v := range []int64{0, 1, 9999, 10000, 10001, 99_999_999, 100_000_000, 123456789,
		math.MaxInt64, math.MaxInt64 - 1, math.MinInt64 + 1} {
		vs = append(vs, v, -v)
	}
	vs = append(vs, math.MinInt64)
	for k := range MaxMinorScale + 1 {
		p := int64(pow10[k])
		vs = append(vs, p, -p, p-1, -(p - 1), p+1, -(p + 1))
	}
	var cases []Minor
	for s := range int32(MaxMinorScale + 1) {
		for _, v := range vs {
			cases = append(cases, Minor{v, s})
		}
	}
	r := rand.New(rand.NewPCG(2024, 11))
	for range random {
		var v int64
		switch r.IntN(4) {
		case 0: // full range
			v = int64(r.Uint64())
		case 1: // random number of decimal digits
			v = r.Int64N(int64(pow10[r.IntN(MaxMinorScale+1)]))
		case 2: // trailing zeros
			k := r.IntN(MaxMinorScale + 1)
			v = r.Int64N(int64(pow10[MaxMinorScale-k])) * int64(pow10[k])
		case 3: // small
			v = r.Int64N(20001)
		}
		if r.IntN(2) == 0 {
			v = -v
		}
		cases = append(cases, Minor{v, int32(r.IntN(MaxMinorScale + 1))})
	}
	return cases
}

// wantText is the exact decimal text of x, computed with big.Int.
func wantText(x Minor) string {
	b := big.NewInt(x.V)
	neg := b.Sign() < 0
	digits := b.Abs(b).String()
	if n := int(x.Scale) + 1; len(digits) < n {
		digits = strings.Repeat("0", n-len(digits)) + digits
	}
	if x.Scale > 0 {
		i := len(digits) - int(x.Scale)
		digits = digits[:i] + "." + digits[i:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// sameValue reports whether n is exactly V × 10^-Scale.
func sameValue(n pgtype.Numeric, x Minor) bool {
	if !n.Valid || n.NaN || n.InfinityModifier != pgtype.Finite || n.Int == nil {
		return false
	}
	e := min(n.Exp, -x.Scale)
	a := new(big.Int).Mul(n.Int, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n.Exp-e)), nil))
	b := new(big.Int).Mul(big.NewInt(x.V), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-x.Scale-e)), nil))
	return a.Cmp(b) == 0
}

type numericHeader struct {
	ndigits, weight int16
	sign            uint16
	dscale          int16
	digits          []int16
}

func parseNumeric(t *testing.T, b []byte) numericHeader {
	t.Helper()
	if len(b) < 8 {
		t.Fatalf("numeric too short: %x", b)
	}
	h := numericHeader{
		ndigits: int16(binary.BigEndian.Uint16(b[0:])),
		weight:  int16(binary.BigEndian.Uint16(b[2:])),
		sign:    binary.BigEndian.Uint16(b[4:]),
		dscale:  int16(binary.BigEndian.Uint16(b[6:])),
	}
	if len(b) != 8+2*int(h.ndigits) {
		t.Fatalf("numeric %x: length %d, want %d", b, len(b), 8+2*int(h.ndigits))
	}
	for i := range int(h.ndigits) {
		h.digits = append(h.digits, int16(binary.BigEndian.Uint16(b[8+2*i:])))
	}
	return h
}

// canonical is PostgreSQL's stored form (strip_var): digits 0..9999, no
// leading or trailing zero digit, zero as ndigits=0, weight=0, positive.
func (h numericHeader) canonical() bool {
	if h.ndigits == 0 {
		return h.weight == 0 && h.sign == 0
	}
	for _, d := range h.digits {
		if d < 0 || d > 9999 {
			return false
		}
	}
	return h.digits[0] != 0 && h.digits[len(h.digits)-1] != 0 && (h.sign == 0 || h.sign == 0x4000)
}

func TestMinorEncode(t *testing.T) {
	std := pgtype.NewMap()
	m := pgtype.NewMap()
	RegisterMinor(m)

	var bytesSame, valueOnly int
	for _, x := range minorCases(50_000) {
		got, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, x, nil)
		if err != nil {
			t.Fatalf("%+v: %v", x, err)
		}
		h := parseNumeric(t, got)
		if !h.canonical() || h.dscale != int16(x.Scale) || (x.V < 0) != (h.sign == 0x4000) {
			t.Fatalf("%+v: not canonical with dscale %d: %+v", x, x.Scale, h)
		}
		var n pgtype.Numeric
		if err := std.Scan(pgtype.NumericOID, pgtype.BinaryFormatCode, got, &n); err != nil {
			t.Fatalf("%+v: pgx cannot decode %x: %v", x, got, err)
		}
		if !sameValue(n, x) {
			t.Fatalf("%+v: encoded %x decodes to %v×10^%d", x, got, n.Int, n.Exp)
		}
		var s string
		if err := std.Scan(pgtype.NumericOID, pgtype.BinaryFormatCode, got, &s); err != nil {
			t.Fatal(err)
		}
		// pgx's decoder keeps the display scale except for zero
		// (ndigits=0 decodes as Numeric{Int: 0, Exp: 0}, text "0").
		if want := wantText(x); s != want && (x.V != 0 || s != "0") {
			t.Fatalf("%+v: decodes to text %q, want %q", x, s, want)
		}

		// Pointer values take the same path.
		gotp, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, &x, nil)
		if err != nil || !bytes.Equal(gotp, got) {
			t.Fatalf("%+v: *Minor encodes to %x, %v; Minor to %x", x, gotp, err, got)
		}

		// pgx's own encoder is exact but not always canonical: it keeps
		// leading zero digits (0.00000001 → 0000 0001, weight -1),
		// trailing zero digits (1.00000000 → 0001 0000 0000) and gives zero
		// weight -1. Where its bytes are canonical they must equal ours
		// byte for byte; elsewhere the decoded values must be equal.
		ref, err := std.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode,
			pgtype.Numeric{Int: big.NewInt(x.V), Exp: -x.Scale, Valid: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rh := parseNumeric(t, ref); rh.canonical() {
			bytesSame++
			if !bytes.Equal(got, ref) {
				t.Fatalf("%+v: encoded %x, pgx %x", x, got, ref)
			}
		} else {
			valueOnly++
			var rn pgtype.Numeric
			if err := std.Scan(pgtype.NumericOID, pgtype.BinaryFormatCode, ref, &rn); err != nil {
				t.Fatal(err)
			}
			if !sameValue(rn, x) || rh.dscale != h.dscale {
				t.Fatalf("%+v: pgx's %x decodes to %v×10^%d", x, ref, rn.Int, rn.Exp)
			}
		}

		txt, err := m.Encode(pgtype.NumericOID, pgtype.TextFormatCode, x, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := wantText(x); string(txt) != want || x.String() != want {
			t.Fatalf("%+v: text %q, String %q, want %q", x, txt, x.String(), want)
		}
		txtp, err := m.Encode(pgtype.NumericOID, pgtype.TextFormatCode, &x, nil)
		if err != nil || !bytes.Equal(txtp, txt) {
			t.Fatalf("%+v: *Minor text %q, %v", x, txtp, err)
		}
	}
	t.Logf("byte-identical to pgx: %d; pgx non-canonical, values compared: %d", bytesSame, valueOnly)
}

func TestMinorEncodeExamples(t *testing.T) {
	m := pgtype.NewMap()
	RegisterMinor(m)
	for _, c := range []struct {
		x    Minor
		bin  string // hex
		text string
	}{
		{Minor{0, 8}, "0000000000000008", "0.00000000"},
		{Minor{0, 0}, "0000000000000000", "0"},
		{Minor{-5, 8}, "0001fffe40000008" + "0005", "-0.00000005"}, // 0.0000|0005: leading 0000 dropped, weight -2
		{Minor{100_000_000, 8}, "0001000000000008" + "0001", "1.00000000"},
		{Minor{12345, 1}, "0002000000000001" + "04d2" + "1388", "1234.5"},
		{Minor{10000, 0}, "0001000100000000" + "0001", "10000"},
		{Minor{math.MinInt64, 0}, "0005000440000000" + "039a0d2c0170156516b0", "-9223372036854775808"},       // 922 3372 0368 5477 5808
		{Minor{math.MinInt64, 18}, "0006000040000012" + "000908b91c231ac61e4e0320", "-9.223372036854775808"}, // 9.2233 7203 6854 7758 0800
		{Minor{1, 18}, "0001fffb00000012" + "0064", "0.000000000000000001"},
	} {
		got, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, c.x, nil)
		if err != nil {
			t.Fatal(err)
		}
		if h := hexOf(got); h != c.bin {
			t.Errorf("%+v: binary %s, want %s", c.x, h, c.bin)
		}
		txt, _ := m.Encode(pgtype.NumericOID, pgtype.TextFormatCode, c.x, nil)
		if string(txt) != c.text {
			t.Errorf("%+v: text %q, want %q", c.x, txt, c.text)
		}
	}
}

func hexOf(b []byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}

func TestMinorBadScale(t *testing.T) {
	m := pgtype.NewMap()
	RegisterMinor(m)
	for _, x := range []Minor{{1, -1}, {1, 19}} {
		if _, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, x, nil); err == nil {
			t.Errorf("%+v encoded (binary)", x)
		}
		if _, err := m.Encode(pgtype.NumericOID, pgtype.TextFormatCode, x, nil); err == nil {
			t.Errorf("%+v encoded (text)", x)
		}
	}
	if b, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, (*Minor)(nil), nil); err != nil || b != nil {
		t.Errorf("nil *Minor: %x, %v; want NULL", b, err)
	}
}

// TestMinorRegisterKeepsNumeric: registering is idempotent and everything
// but encoding Minor behaves as with pgx's own codec.
func TestMinorRegisterKeepsNumeric(t *testing.T) {
	std := pgtype.NewMap()
	m := pgtype.NewMap()
	if MinorRegistered(m) {
		t.Fatal("registered before RegisterMinor")
	}
	RegisterMinor(m)
	first, _ := m.TypeForOID(pgtype.NumericOID)
	RegisterMinor(m)
	if again, _ := m.TypeForOID(pgtype.NumericOID); again != first || !MinorRegistered(m) {
		t.Fatal("RegisterMinor re-registered")
	}
	if tn, ok := m.TypeForName("numeric"); !ok || tn != first {
		t.Fatal("numeric name not mapped to the Minor codec")
	}
	if MinorRegistered(std) {
		t.Fatal("registering one map changed another")
	}

	// Minor also encodes (slowly) on a map without RegisterMinor.
	for _, x := range minorCases(200) {
		a, err1 := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, x, nil)
		b, err2 := std.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, x, nil)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		var na, nb pgtype.Numeric
		if err := std.Scan(pgtype.NumericOID, pgtype.BinaryFormatCode, a, &na); err != nil {
			t.Fatal(err)
		}
		if err := std.Scan(pgtype.NumericOID, pgtype.BinaryFormatCode, b, &nb); err != nil {
			t.Fatal(err)
		}
		if !sameValue(na, x) || !sameValue(nb, x) {
			t.Fatalf("%+v: fast %v×10^%d, standard %v×10^%d", x, na.Int, na.Exp, nb.Int, nb.Exp)
		}
	}

	values := []any{
		pgtype.Numeric{Int: big.NewInt(-12345), Exp: -3, Valid: true},
		pgtype.Numeric{NaN: true, Valid: true},
		pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true},
		pgtype.Numeric{},
		int64(-42), int32(7), 1.25, "3.14159", uint64(math.MaxUint64),
	}
	for _, v := range values {
		for _, f := range []int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode} {
			a, err1 := m.Encode(pgtype.NumericOID, f, v, nil)
			b, err2 := std.Encode(pgtype.NumericOID, f, v, nil)
			if !bytes.Equal(a, b) || (err1 == nil) != (err2 == nil) {
				t.Errorf("encode %T %v format %d: %x, %v; standard %x, %v", v, v, f, a, err1, b, err2)
			}
		}
	}

	src, _ := std.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, pgtype.Numeric{Int: big.NewInt(-123456789), Exp: -4, Valid: true}, nil)
	for _, f := range []struct {
		format int16
		src    []byte
	}{{pgtype.BinaryFormatCode, src}, {pgtype.TextFormatCode, []byte("-12345.6789")}} {
		var n1, n2 pgtype.Numeric
		var s1, s2 string
		var f1, f2 float64
		for _, p := range [][2]any{{&n1, &n2}, {&s1, &s2}, {&f1, &f2}} {
			if err := m.Scan(pgtype.NumericOID, f.format, f.src, p[0]); err != nil {
				t.Fatal(err)
			}
			if err := std.Scan(pgtype.NumericOID, f.format, f.src, p[1]); err != nil {
				t.Fatal(err)
			}
		}
		if n1.Int.Cmp(n2.Int) != 0 || n1.Exp != n2.Exp || s1 != s2 || f1 != f2 {
			t.Errorf("format %d: scans differ: %v/%v %q/%q %v/%v", f.format, n1, n2, s1, s2, f1, f2)
		}
		t1, _ := m.TypeForOID(pgtype.NumericOID)
		t2, _ := std.TypeForOID(pgtype.NumericOID)
		d1, err1 := t1.Codec.DecodeValue(m, pgtype.NumericOID, f.format, f.src)
		d2, err2 := t2.Codec.DecodeValue(std, pgtype.NumericOID, f.format, f.src)
		v1, err3 := t1.Codec.DecodeDatabaseSQLValue(m, pgtype.NumericOID, f.format, f.src)
		v2, err4 := t2.Codec.DecodeDatabaseSQLValue(std, pgtype.NumericOID, f.format, f.src)
		if err3 != nil || err4 != nil || v1 != v2 {
			t.Errorf("DecodeDatabaseSQLValue: %v, %v; %v, %v", v1, err3, v2, err4)
		}
		if err1 != nil || err2 != nil || d1.(pgtype.Numeric).Int.Cmp(d2.(pgtype.Numeric).Int) != 0 {
			t.Errorf("DecodeValue: %v, %v; %v, %v", d1, err1, d2, err2)
		}
	}
	if m.FormatCodeForOID(pgtype.NumericOID) != pgtype.BinaryFormatCode {
		t.Error("numeric no longer prefers binary")
	}
}

// TestMinorPostgres sends Minor values to a real server: as binary query
// parameters, in text, and through COPY.
func TestMinorPostgres(t *testing.T) {
	ctx := context.Background()
	pool := testenv.PG(t)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	RegisterMinor(conn.Conn().TypeMap())
	tm := conn.Conn().TypeMap()

	for _, x := range minorCases(2000) {
		want := wantText(x)
		var got string
		if err := conn.QueryRow(ctx, `SELECT $1::numeric::text`, x).Scan(&got); err != nil {
			t.Fatalf("%+v: %v", x, err)
		}
		if got != want {
			t.Fatalf("%+v: server reads binary as %q, want %q", x, got, want)
		}
		// Our text form parses to the same numeric, and our binary form is
		// byte for byte what the server itself sends for that numeric.
		txt, err := tm.Encode(pgtype.NumericOID, pgtype.TextFormatCode, x, nil)
		if err != nil {
			t.Fatal(err)
		}
		res := conn.Conn().PgConn().ExecParams(ctx, `SELECT $1::text::numeric, $1::text::numeric::text`,
			[][]byte{txt}, []uint32{pgtype.TextOID}, []int16{pgtype.TextFormatCode},
			[]int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode}).Read()
		if res.Err != nil {
			t.Fatalf("%+v: %v", x, res.Err)
		}
		if s := string(res.Rows[0][1]); s != want {
			t.Fatalf("%+v: server reads text %q as %q", x, txt, s)
		}
		bin, _ := tm.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, x, nil)
		if !bytes.Equal(res.Rows[0][0], bin) {
			t.Fatalf("%+v: encoded %x, server sends %x", x, bin, res.Rows[0][0])
		}
	}

	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE minor_copy (i int PRIMARY KEY, x numeric)`); err != nil {
		t.Fatal(err)
	}
	copied := []Minor{{0, 8}, {1, 8}, {-5, 8}, {100_000_000, 8}, {math.MaxInt64, 0}, {math.MinInt64, 18},
		{-99_999_999, 2}, {10_000, 4}, {123_456_789_012, 6}}
	rows := make([][]any, 0, len(copied)+2)
	for i, x := range copied {
		rows = append(rows, []any{i, x})
	}
	p := Minor{-1234567, 3}
	rows = append(rows, []any{len(copied), &p}, []any{len(copied) + 1, (*Minor)(nil)})
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"minor_copy"}, []string{"i", "x"}, pgx.CopyFromRows(rows))
	if err != nil || n != int64(len(rows)) {
		t.Fatalf("copy: %d rows, %v", n, err)
	}
	got, err := pgx.CollectRows(must(conn.Query(ctx, `SELECT x::text FROM minor_copy ORDER BY i`)),
		pgx.RowTo[*string])
	if err != nil {
		t.Fatal(err)
	}
	var want []*string
	for _, x := range append(copied, p) {
		s := wantText(x)
		want = append(want, &s)
	}
	want = append(want, nil)
	if !slices.EqualFunc(got, want, func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }) {
		t.Fatalf("copied back %v, want %v", deref(got), deref(want))
	}
}

func must(r pgx.Rows, err error) pgx.Rows {
	if err != nil {
		panic(err)
	}
	return r
}

func deref(ss []*string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if s == nil {
			out[i] = "NULL"
		} else {
			out[i] = *s
		}
	}
	return out
}

// The encoders alone, per value (ns/op = ns per value), cycling through
// 1,000 settlement-like amounts boxed in advance as a COPY row holds them.
func benchValues() []Minor {
	r := rand.New(rand.NewPCG(7, 7))
	vs := make([]Minor, 1000)
	for i := range vs {
		vs[i] = Minor{r.Int64N(5_000_000_000_000) - 1_000_000_000_000, 8}
	}
	return vs
}

func BenchmarkMinorEncode(b *testing.B) {
	m := pgtype.NewMap()
	RegisterMinor(m)
	var vals []any
	for _, x := range benchValues() {
		vals = append(vals, x)
	}
	benchEncode(b, m, vals)
}

func BenchmarkBigNumericEncode(b *testing.B) {
	var vals []any
	for _, x := range benchValues() {
		vals = append(vals, pgtype.Numeric{Int: big.NewInt(x.V), Exp: -x.Scale, Valid: true})
	}
	benchEncode(b, pgtype.NewMap(), vals)
}

// benchEncode encodes vals in turn as binary numerics through m.
func benchEncode(b *testing.B, m *pgtype.Map, vals []any) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var err error
		buf, err = m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, vals[i%len(vals)], buf[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
}
