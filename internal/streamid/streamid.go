// Package streamid orders Redis stream IDs ("ms-seq"), which the engine's
// adapters and settlement keep as positions. A string comparison does not
// order them: "10-0" sorts before "9-0".
package streamid

import (
	"strconv"
	"strings"
)

// Less reports whether stream ID a sorts before b. "ms" alone is "ms-0";
// "0" and "-" (anything that is not a number) are the start.
func Less(a, b string) bool {
	am, as := Split(a)
	bm, bs := Split(b)
	return am < bm || am == bm && as < bs
}

// Split returns a stream ID's millisecond and sequence parts (0 for a part
// that is missing or not a number).
func Split(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}
