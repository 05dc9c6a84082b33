package store

// SetChunks sets the chunk sizes of run completion and the spill threshold
// of exclusive transactions, and returns a function restoring them. Tests
// that call it must not run in parallel.
func SetChunks(spill, users, entitlements int) (restore func()) {
	s, u, e := spillAt, userChunk, entitlementChunk
	spillAt, userChunk, entitlementChunk = spill, users, entitlements
	return func() { spillAt, userChunk, entitlementChunk = s, u, e }
}

// SetProbeUsers sets how many users a run completion probes for their stale
// records before it hashes them instead, and returns a function restoring it.
func SetProbeUsers(n int64) (restore func()) {
	p := probeUsers
	probeUsers = n
	return func() { probeUsers = p }
}
