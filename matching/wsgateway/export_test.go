package wsgateway

import "time"

// SetSessionSweep sets how often the gateway sweeps the sessions, for
// the duration of a test; it returns the function that restores it.
func SetSessionSweep(d time.Duration) (restore func()) {
	old := sessionSweep
	sessionSweep = d
	return func() { sessionSweep = old }
}

// SetMaxQueuedBytes sets the bytes a connection may have queued, for the
// duration of a test; it returns the function that restores it.
func SetMaxQueuedBytes(n int64) (restore func()) {
	old := maxQueuedBytes
	maxQueuedBytes = n
	return func() { maxQueuedBytes = old }
}

// UserSubscribers is how many connections follow some account's user data.
func UserSubscribers(g *Gateway) int {
	g.hub.mu.Lock()
	defer g.hub.mu.Unlock()
	n := 0
	for _, subs := range g.hub.users {
		n += len(subs)
	}
	return n
}
