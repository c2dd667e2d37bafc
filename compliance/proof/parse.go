package proof

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"unicode/utf8"
)

// A canonical entry body is exactly what encoding/json writes for the
// entry's struct: its fields in declaration order, no spaces. parseCanonical
// reads only that layout, a field at a time, about ten times faster than
// encoding/json's decoder — a certificate of 10,000 fills has 20,000
// entries to read. It is an optimisation, not a second definition of the
// format: Decode still re-encodes what it read and compares the bytes, and
// anything this parser refuses is decoded again by encoding/json, whose
// error is the one reported.

// errNotCanonicalLayout makes Decode fall back to encoding/json.
var errNotCanonicalLayout = errors.New("not in the canonical layout")

// layout is an entry struct's fields: the `"name":` each starts with, and
// its kind.
type layoutField struct {
	key  []byte
	kind reflect.Kind
}

var layouts = map[reflect.Type][]layoutField{}

func init() {
	for _, v := range []any{Fill{}, Report{}, Computation{}, Attribution{}, State{}, Licence{}} {
		t := reflect.TypeOf(v)
		fs := make([]layoutField, t.NumField())
		for i := range fs {
			f := t.Field(i)
			name, _, _ := bytes.Cut([]byte(f.Tag.Get("json")), []byte(","))
			kind := f.Type.Kind()
			if kind == reflect.Slice && f.Type.Elem().Kind() != reflect.String {
				panic("proof: entry field " + f.Name + " is a slice of other than strings")
			}
			fs[i] = layoutField{key: []byte(`"` + string(name) + `":`), kind: kind}
		}
		layouts[t] = fs
	}
}

// parseCanonical reads body into v, a pointer to an entry struct.
func parseCanonical(body []byte, v any) error {
	rv := reflect.ValueOf(v).Elem()
	p, ok := bytes.CutPrefix(body, []byte("{"))
	if !ok {
		return errNotCanonicalLayout
	}
	var err error
	for i, f := range layouts[rv.Type()] {
		if i > 0 {
			if p, ok = bytes.CutPrefix(p, []byte(",")); !ok {
				return errNotCanonicalLayout
			}
		}
		if p, ok = bytes.CutPrefix(p, f.key); !ok {
			return errNotCanonicalLayout
		}
		fv := rv.Field(i)
		switch f.kind {
		case reflect.String:
			var s string
			if s, p, err = parseString(p); err != nil {
				return err
			}
			fv.SetString(s)
		case reflect.Int, reflect.Int64:
			n, rest := number(p)
			x, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil || fv.OverflowInt(x) {
				return errNotCanonicalLayout
			}
			fv.SetInt(x)
			p = rest
		case reflect.Uint64:
			n, rest := number(p)
			x, err := strconv.ParseUint(string(n), 10, 64)
			if err != nil {
				return errNotCanonicalLayout
			}
			fv.SetUint(x)
			p = rest
		case reflect.Bool:
			if rest, ok := bytes.CutPrefix(p, []byte("true")); ok {
				fv.SetBool(true)
				p = rest
			} else if p, ok = bytes.CutPrefix(p, []byte("false")); !ok {
				return errNotCanonicalLayout
			}
		case reflect.Slice:
			if p, err = parseStrings(p, fv); err != nil {
				return err
			}
		default:
			return errNotCanonicalLayout
		}
	}
	if string(p) != "}" {
		return errNotCanonicalLayout
	}
	return nil
}

// number splits off a leading JSON integer's bytes: -?(0|[1-9][0-9]*);
// anything else leaves nothing that parses.
func number(p []byte) ([]byte, []byte) {
	i := 0
	if i < len(p) && p[i] == '-' {
		i++
	}
	if i < len(p) && p[i] == '0' {
		return p[:i+1], p[i+1:]
	}
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	return p[:i], p[i:]
}

// plain reports whether a string's bytes are its value: no escapes, no
// control characters, valid UTF-8.
func plain(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c == '\\' || c >= utf8.RuneSelf {
			return utf8.Valid(s) && bytes.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == '\\' }) < 0
		}
	}
	return true
}

// parseString reads a JSON string; one with escapes is unquoted by
// encoding/json.
func parseString(p []byte) (string, []byte, error) {
	if len(p) == 0 || p[0] != '"' {
		return "", nil, errNotCanonicalLayout
	}
	end := bytes.IndexByte(p[1:], '"') + 1
	if end == 0 {
		return "", nil, errNotCanonicalLayout
	}
	if plain(p[1:end]) {
		return string(p[1:end]), p[end+1:], nil
	}
	for end = 1; end < len(p) && p[end] != '"'; end++ {
		if p[end] == '\\' {
			end++
		}
	}
	if end >= len(p) {
		return "", nil, errNotCanonicalLayout
	}
	var s string
	if err := json.Unmarshal(p[:end+1], &s); err != nil {
		return "", nil, errNotCanonicalLayout
	}
	return s, p[end+1:], nil
}

// parseStrings reads a JSON array of strings (or null) into a []string.
func parseStrings(p []byte, fv reflect.Value) ([]byte, error) {
	if rest, ok := bytes.CutPrefix(p, []byte("null")); ok {
		return rest, nil
	}
	p, ok := bytes.CutPrefix(p, []byte("["))
	if !ok {
		return nil, errNotCanonicalLayout
	}
	list := []string{}
	for len(p) > 0 && p[0] != ']' {
		if len(list) > 0 {
			if p, ok = bytes.CutPrefix(p, []byte(",")); !ok {
				return nil, errNotCanonicalLayout
			}
		}
		var s string
		var err error
		if s, p, err = parseString(p); err != nil {
			return nil, err
		}
		list = append(list, s)
	}
	if p, ok = bytes.CutPrefix(p, []byte("]")); !ok {
		return nil, errNotCanonicalLayout
	}
	fv.Set(reflect.ValueOf(list))
	return p, nil
}
