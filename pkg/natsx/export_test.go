package natsx

import "time"

// SetUnavailableDelay sets the longest wait between attempts at a message
// whose handler found a dependency unavailable, and returns a function
// restoring it. Tests that call it must not run in parallel.
func SetUnavailableDelay(d time.Duration) (restore func()) {
	old := unavailableDelay
	unavailableDelay = d
	return func() { unavailableDelay = old }
}
