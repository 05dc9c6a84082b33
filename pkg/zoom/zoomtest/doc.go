// Package zoomtest is an in-process simulator of the parts of Zoom's REST API
// v2, Server-to-Server OAuth and webhooks that the connector uses. It is the
// only fake in the project's integration tests and benchmarks, so it follows
// Zoom's published OpenAPI documents (field names, limits, error codes) and
// the facts in shared/zoom-api.md as closely as a fake can.
//
// The pieces:
//
//   - Org is an organisation (users, groups, roles); Generate makes a large,
//     realistic one from a seed, deterministically.
//   - Server serves the API for an Org: New(org, opts).Handler(), or Start on
//     an address, or NewServer(t, …) for tests. It is safe for concurrent use
//     and fast enough for 100,000 users listed in pages of 300 at thousands of
//     requests per second.
//   - Rate limits per label (Light, Medium, Heavy) are off unless configured.
//   - Faults (Server.Faults) inject 5xx errors, latency, token expiry,
//     revoked credentials and broken listings at run time.
//   - Mutation methods (AddUser, DeactivateUser, AddGroupMember, …) change the
//     organisation while it is being served and send the matching signed Zoom
//     webhook notification when a webhook URL is set.
//   - Expected computes, independently of the connector, the Clarity records
//     (CONTRACT.md §4) that an organisation implies: the test oracle.
//   - Requests counts requests by route template and status.
//   - AdminHandler exposes all of this over HTTP under /_sim/ for the zoomsim
//     binary.
package zoomtest
