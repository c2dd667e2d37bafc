package matching

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestCommandCodecCoversEveryField: a field added to Command and not to
// the codec fails here.
func TestCommandCodecCoversEveryField(t *testing.T) {
	typ := reflect.TypeFor[Command]()
	if typ.NumField() != len(commandFields) {
		t.Fatalf("Command has %d fields, the codec %d", typ.NumField(), len(commandFields))
	}
	for i := range typ.NumField() {
		if typ.Field(i).Name != commandFields[i] {
			t.Errorf("field %d: Command has %s, the codec %s", i, typ.Field(i).Name, commandFields[i])
		}
	}
}

// randomFields sets each field of the struct v points to, independently,
// to zero or a random value, through reflection.
func randomFields(rng *rand.Rand, v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		if rng.IntN(3) == 0 {
			continue
		}
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.String:
			f.SetString([]string{"a", "exchange-fees", "ü ₸ q", "x-123"}[rng.IntN(4)])
		case reflect.Uint8, reflect.Uint32, reflect.Uint64:
			x := []uint64{1, 255, 1 << 31, rng.Uint64(), ^uint64(0)}[rng.IntN(5)]
			for f.OverflowUint(x) {
				x >>= 8
			}
			f.SetUint(x)
		case reflect.Int32, reflect.Int64:
			x := []int64{-1, 1, 1 << 40, -(1 << 62), rng.Int64() - rng.Int64()}[rng.IntN(5)]
			for f.OverflowInt(x) {
				x >>= 8
			}
			f.SetInt(x)
		default:
			panic("unhandled field kind " + f.Kind().String())
		}
	}
}

func TestCommandCodecRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		var c Command
		randomFields(rng, reflect.ValueOf(&c).Elem())
		got, err := DecodeCommand(string(AppendCommand(nil, &c)))
		if err != nil || got != c {
			t.Fatalf("round trip of %+v: %+v (%v)", c, got, err)
		}
	}
	for name, in := range map[string]string{"empty": "", "json": `{"kind":"tick"}`, "truncated": "\x02\x08",
		"trailing": string(AppendCommand(nil, &Command{Kind: CmdTick})) + "x"} {
		if _, err := DecodeCommand(in); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(string(AppendCommand(nil, &Command{Kind: CmdPlaceOrder, Account: "a", Price: 5, PostOnly: true})))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeCommand(s)
		if err != nil {
			return
		}
		if again, err := DecodeCommand(string(AppendCommand(nil, &c))); err != nil || again != c {
			t.Fatalf("re-encoding %+v: %+v (%v)", c, again, err)
		}
	})
}
