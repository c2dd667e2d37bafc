package streamid_test

import (
	"testing"

	"github.com/satu-exchange/satu/internal/streamid"
)

func TestLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{
		{"9-0", "10-0", true}, {"10-0", "9-0", false}, {"5-1", "5-2", true}, {"5-2", "5-10", true},
		{"5-10", "5-2", false}, {"5", "5-1", true}, {"5", "5-0", false}, {"0", "1-0", true}, {"-", "0-1", true},
		{"7-3", "7-3", false},
	} {
		if got := streamid.Less(c.a, c.b); got != c.less {
			t.Errorf("Less(%q, %q) = %v, want %v", c.a, c.b, got, c.less)
		}
	}
}
