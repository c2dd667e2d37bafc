package compliance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// lineOf returns the 1-based line of the JSON value at path in data ("" is
// the whole document; "steps[1].share" is the share of the second step), or
// 0 when data is not JSON up to there or has no such value. Rule-set files
// are small and only read at start-up, so a second pass over the tokens to
// point at the broken line is cheap.
func lineOf(data []byte, path string) int {
	line := 0
	walkJSON(data, func(p string, off int) bool {
		if p == path {
			line = 1 + bytes.Count(data[:off], []byte("\n"))
			return false
		}
		return true
	})
	return line
}

// findKey returns the path of the first object member named key in data,
// or "".
func findKey(data []byte, key string) string {
	found := ""
	walkJSON(data, func(p string, _ int) bool {
		if p == key || strings.HasSuffix(p, "."+key) {
			found = p
			return false
		}
		return true
	})
	return found
}

// walkJSON calls visit with the path and starting offset of every value in
// data, an object member at its key, in document order, until visit returns
// false or the input ends or breaks.
func walkJSON(data []byte, visit func(path string, off int) bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	// stack holds, per open container, its path and either the key of the
	// member to come (objects) or the next index (arrays).
	type frame struct {
		path   string
		object bool
		key    string
		index  int
		atKey  bool
	}
	var stack []frame
	valuePath := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.object {
			if f.path == "" {
				return f.key
			}
			return f.path + "." + f.key
		}
		return f.path + "[" + strconv.Itoa(f.index) + "]"
	}
	advance := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].atKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
	for {
		// A value starts at the first byte after whitespace, commas and
		// colons: that is the line a reader looks for.
		off := int(dec.InputOffset())
		for off < len(data) && strings.IndexByte(" \t\r\n,:", data[off]) >= 0 {
			off++
		}
		tok, err := dec.Token()
		if err != nil {
			return
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			advance()
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].atKey {
			stack[n-1].key, stack[n-1].atKey = tok.(string), false
			if !visit(valuePath(), off) {
				return
			}
			continue
		}
		p := valuePath()
		if len(stack) == 0 || !stack[len(stack)-1].object {
			if !visit(p, off) { // array elements and the document itself
				return
			}
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{path: p, object: d == '{', atKey: d == '{'})
			continue
		}
		advance()
	}
}

// fieldError is a problem with one field of a rule set, named by its JSON
// path in the file.
type fieldError struct {
	path, msg string
	line      int // when known without the path (decoding errors)
}

// lineAt returns the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	return 1 + bytes.Count(data[:min(max(off, 0), int64(len(data)))], []byte("\n"))
}

func fieldErr(path, format string, args ...any) *fieldError {
	return &fieldError{path: strings.TrimSuffix(path, "."), msg: fmt.Sprintf(format, args...)}
}

func (e *fieldError) String() string {
	if e.path == "" {
		return e.msg
	}
	return e.path + ": " + e.msg
}

func itoa(i int) string { return strconv.Itoa(i) }

// validate checks that exactly one of Confirmed and SatuDefault holds and
// that there is a source.
func (m Mark) validate(at string) *fieldError {
	switch {
	case m.Confirmed == m.SatuDefault:
		return fieldErr(at+"confirmed", "must be either confirmed or satu_default")
	case strings.TrimSpace(m.Source) == "":
		return fieldErr(at+"source", "is empty")
	}
	return nil
}
