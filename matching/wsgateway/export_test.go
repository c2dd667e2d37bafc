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
