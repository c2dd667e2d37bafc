package wsgateway

import (
	"sync"
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching/wsapi"
)

// Limits bound what one gateway accepts; a zero field means no limit. Counts
// are per gateway: behind a load balancer with N gateways a client may get up
// to N times as much.
type Limits struct {
	// MaxConnections is how many websocket connections (API and streams)
	// the gateway holds; more are refused with HTTP 503 before the upgrade.
	MaxConnections int
	// IPRequests is how many requests per second one IP address may send
	// over all its API connections.
	IPRequests int
	// KeyOrders is how many order requests (place, cancel, amend,
	// cancel-all) per second one API key may send; a batch counts as many
	// as it carries.
	KeyOrders int
}

// DefaultLimits are the limits when none are configured.
var DefaultLimits = Limits{MaxConnections: 20000, IPRequests: 1000, KeyOrders: 500}

// Rate limit types as reported in a response's rateLimits.
const (
	limitRequests = "REQUESTS" // per IP address
	limitOrders   = "ORDERS"   // per API key
)

// window counts requests of one client in the current second.
type window struct {
	second int64
	count  int
}

// limiter counts requests per client in fixed one-second windows.
type limiter struct {
	kind  string // the rateLimitType reported
	what  string // what is counted, for the error message
	limit int

	mu      sync.Mutex // guards windows and swept
	windows map[string]*window
	swept   int64 // the second of the last sweep of stale windows
}

// newLimiter returns nil for no limit.
func newLimiter(kind, what string, limit int) *limiter {
	if limit <= 0 {
		return nil
	}
	return &limiter{kind: kind, what: what, limit: limit, windows: map[string]*window{}}
}

// take counts n requests of client at now and reports the allowance; the
// error is RATE_LIMITED when the window has no room for all n (then none
// is counted).
func (l *limiter) take(client string, now time.Time, n int) (wsapi.RateLimit, error) {
	sec := now.Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	if sec != l.swept { // forget the clients of past seconds, once a second
		for k, w := range l.windows {
			if w.second != sec {
				delete(l.windows, k)
			}
		}
		l.swept = sec
	}
	w := l.windows[client]
	if w == nil {
		w = &window{second: sec}
		l.windows[client] = w
	}
	rl := wsapi.RateLimit{Type: l.kind, Interval: "SECOND", IntervalNum: 1, Limit: l.limit, Count: w.count}
	if w.count+n > l.limit {
		return rl, apperr.New(apperr.RateLimited, "more than %d %s per second: wait %d ms", l.limit, l.what,
			time.Unix(sec+1, 0).Sub(now).Milliseconds()+1)
	}
	w.count += n
	rl.Count = w.count
	return rl, nil
}
