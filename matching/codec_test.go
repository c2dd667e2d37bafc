package matching

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestCodecCoversEveryField: the encoding names every field of Event, in
// the struct's order, so a field added to Event and not to the codec fails here.
func TestCodecCoversEveryField(t *testing.T) {
	typ := reflect.TypeFor[Event]()
	if typ.NumField() != len(eventFields) {
		t.Fatalf("Event has %d fields, the codec %d", typ.NumField(), len(eventFields))
	}
	for i := range typ.NumField() {
		if typ.Field(i).Name != eventFields[i] {
			t.Errorf("field %d: Event has %s, the codec %s", i, typ.Field(i).Name, eventFields[i])
		}
	}
}

// randomEvent sets each field, independently, to zero or a random value
// (extremes included), through reflection so that no field is forgotten.
func randomEvent(rng *rand.Rand) Event {
	var e Event
	randomFields(rng, reflect.ValueOf(&e).Elem())
	return e
}

func TestCodecRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 2000 {
		evs := make([]Event, n%7)
		for i := range evs {
			evs[i] = randomEvent(rng)
		}
		b := AppendEvents(nil, evs)
		got, err := DecodeEvents(string(b), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 && len(got) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, evs) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, evs)
		}
	}
	// The extremes of every integer survive.
	e := Event{Seq: ^uint64(0), Time: -1 << 63, Index: 1<<32 - 1, Orders: -1 << 31, Price: 1<<63 - 1, OrderID: ^uint64(0)}
	got, err := DecodeEvents(string(AppendEvents(nil, []Event{e})), nil)
	if err != nil || got[0] != e {
		t.Fatalf("extremes: %+v (%v)", got, err)
	}
	e.Index = 0 // one command's only event: version 2
	b := AppendEvents(nil, []Event{e})
	if got, err := DecodeEvents(string(b), nil); b[0] != EventsV2 || err != nil || got[0] != e {
		t.Fatalf("extremes, version %d: %+v (%v)", b[0], got, err)
	}
}

// TestCodecVersion2: one command's events — sharing sequence and time,
// numbered from 0 — are written as version 2, which states those once;
// anything else as version 1. Both round-trip; a version-2 event that
// carries a field of the head is refused, so each entry has one encoding.
func TestCodecVersion2(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 1; n < 500; n++ {
		evs := make([]Event, 1+n%7)
		for i := range evs {
			evs[i] = randomEvent(rng)
			evs[i].Seq, evs[i].Time, evs[i].Index = evs[0].Seq, evs[0].Time, uint32(i)
		}
		b := AppendEvents(nil, evs)
		if b[0] != EventsV2 {
			t.Fatalf("one command's events written as version %d", b[0])
		}
		got, err := DecodeEvents(string(b), nil)
		if err != nil || !reflect.DeepEqual(got, evs) {
			t.Fatalf("round trip (%v):\n got %+v\nwant %+v", err, got, evs)
		}
		if len(evs) > 1 {
			evs[1].Index = 7 // not numbered in order: version 1
			if b := AppendEvents(nil, evs); b[0] != EventsV1 {
				t.Fatalf("events numbered out of order written as version %d", b[0])
			}
		}
	}
	typical := typicalEvents()
	v2 := AppendEvents(nil, typical)
	v1 := []byte{EventsV1, byte(len(typical))}
	for i := range typical {
		v1 = appendEvent(v1, &typical[i], 0)
	}
	if got, err := DecodeEvents(string(v1), nil); err != nil || !reflect.DeepEqual(got, typical) {
		t.Fatalf("version 1 no longer decodes: %v", err)
	}
	t.Logf("a one-maker match's %d events: %d bytes in version 2, %d in version 1", len(typical), len(v2), len(v1))
	if len(v2) >= len(v1) {
		t.Fatalf("version 2 is %d bytes, version 1 %d", len(v2), len(v1))
	}
	for name, in := range map[string]string{
		"no events":      string([]byte{EventsV2, 0, 1, 2}),
		"seq in event":   string([]byte{EventsV2, 1, 1, 2, 0x01, 5}),
		"index in event": string([]byte{EventsV2, 1, 1, 2, 0x04, 5}),
		"truncated head": string([]byte{EventsV2, 1, 0x80}),
	} {
		if _, err := DecodeEvents(in, nil); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestCodecRefusesBadInput(t *testing.T) {
	good := AppendEvents(nil, []Event{{Seq: 7, Kind: EvTrade, Account: "abc", Price: 5}})
	for name, in := range map[string]string{
		"empty":         "",
		"json":          `[{"seq":1}]`,
		"truncated":     string(good[:len(good)-2]),
		"trailing":      string(good) + "x",
		"unknown field": string([]byte{EventsV1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}),
		"huge count":    string([]byte{EventsV1, 0xff, 0xff, 0x03}),
		"long string":   string([]byte{EventsV1, 1, 0x80, 0x80, 0x20, 0x7f}),
	} {
		if _, err := DecodeEvents(in, nil); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzDecodeEvents(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 8 {
		f.Add(AppendEvents(nil, []Event{randomEvent(rng), randomEvent(rng)}))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := DecodeEvents(string(b), nil)
		if err != nil {
			return
		}
		again, err := DecodeEvents(string(AppendEvents(nil, evs)), nil)
		if err != nil || !reflect.DeepEqual(again, evs) && len(evs) > 0 {
			t.Fatalf("re-encoding %+v: %+v (%v)", evs, again, err)
		}
	})
}

// typical is a one-maker match's events, as the engine emits them.
func typicalEvents() []Event {
	e, _ := New(DefaultSymbols())
	var evs []Event
	apply := func(c Command) {
		c.Seq, c.Time = e.Seq()+1, 1_700_000_000_000
		evs, _ = e.Apply(c, evs[:0])
	}
	for _, a := range []string{"maker", "taker"} {
		apply(Command{Kind: CmdOpenAccount, Account: a, Owner: a, AccountKind: KindTrader})
		apply(Command{Kind: CmdDeposit, Account: a, Asset: "BTC", Amount: 100_000_000, ExtRef: "b" + a})
		apply(Command{Kind: CmdDeposit, Account: a, Asset: "KZT", Amount: 100_000_000_000, ExtRef: "k" + a})
	}
	apply(Command{Kind: CmdPlaceOrder, Account: "maker", Symbol: "BTCKZT", ClientID: "m1", Side: Sell, Type: Limit, TIF: GTC,
		Price: 30_000_000_00, Quantity: 1_000_000})
	apply(Command{Kind: CmdPlaceOrder, Account: "taker", Symbol: "BTCKZT", ClientID: "t1", Side: Buy, Type: Limit, TIF: GTC,
		Price: 30_000_000_00, Quantity: 1_000_000})
	return append([]Event(nil), evs...)
}

// BenchmarkEventsCodec compares the compact encoding with JSON on the
// events of one crossing order (a trade, order and level updates, balances).
func BenchmarkEventsCodec(b *testing.B) {
	evs := typicalEvents()
	bin := AppendEvents(nil, evs)
	js, _ := json.Marshal(evs)
	b.Run("binary/encode", func(b *testing.B) {
		b.ReportMetric(float64(len(bin)), "bytes")
		var buf []byte
		for b.Loop() {
			buf = AppendEvents(buf[:0], evs)
		}
	})
	b.Run("binary/decode", func(b *testing.B) {
		s := string(bin)
		var out []Event
		for b.Loop() {
			out, _ = DecodeEvents(s, out[:0])
		}
	})
	b.Run("json/encode", func(b *testing.B) {
		b.ReportMetric(float64(len(js)), "bytes")
		for b.Loop() {
			_, _ = json.Marshal(evs)
		}
	})
	b.Run("json/decode", func(b *testing.B) {
		for b.Loop() {
			var out []Event
			_ = json.Unmarshal(js, &out)
		}
	})
}
