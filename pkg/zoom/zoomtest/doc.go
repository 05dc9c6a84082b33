// Package zoomtest is an in-process simulator of the parts of Zoom's REST API
// v2, OAuth (Server-to-Server and account-level apps) and webhooks that the
// connector uses. It is the only fake in the project's integration tests and
// benchmarks, so it follows
// Zoom's published OpenAPI documents (field names, limits, error codes) and
// Zoom's documented behaviour as closely as a fake can.
//
// The pieces:
//
//   - Org is an organisation (users, groups, roles); Generate makes a large,
//     realistic one from a seed, deterministically.
//   - Server serves the API for an Org: New(org, opts).Handler(), or Start on
//     an address, or NewServer(t, …) for tests. It is safe for concurrent use
//     and fast enough for 100,000 users listed in pages of 300 at thousands of
//     requests per second.
//   - Accounts: that Org is the default account; AddAccount serves more
//     behind the same URL, each with its own organisation, rate limits,
//     webhook subscription, Server-to-Server credentials and OAuth apps. An
//     API request acts on the account its access token was issued for. The
//     Server's own mutation and setting methods act on the default account;
//     Account has them for any account.
//   - OAuth apps (Account.AddApp): the authorization-code flow with PKCE,
//     auto-approved or through a consent page, refresh-token rotation,
//     revocation, and the app_deauthorized notification, with counters
//     (Account.TokenStats) for tests of a client's token handling.
//   - Rate limits per label (Light, Medium, Heavy) are off unless configured;
//     daily caps (dailylimit.go) are Zoom's on a free plan (6,000 Light,
//     2,000 Medium, 1,000 Heavy a UTC day) or as RateLimits sets them, and
//     answer 429 with Zoom's daily message, with rate-limit headers only
//     when they are on.
//   - As strict as Zoom where Zoom is unfriendly: GET /users/{userId} of a
//     pending user is its id and a created_at that is the time of the call,
//     nothing else; a free plan is refused every groups and roles route;
//     deactivation removes every licence (a Licensed user becomes Basic, its
//     plan_united_type and license_info_list go) and reactivation gives none
//     back.
//   - Faults (Server.Faults, Account.Faults) inject 5xx errors, latency,
//     token expiry, revoked credentials and broken listings at run time.
//   - Mutation methods (AddUser, DeactivateUser, AddGroupMember, …) change the
//     organisation while it is being served and send the matching signed Zoom
//     webhook notification when a webhook URL is set.
//   - Expected computes, independently of the connector, the Clarity records
//     (README "Subjects and events") that an organisation implies: the test oracle.
//   - Requests counts requests by route template and status.
//   - AdminHandler exposes all of this over HTTP under /_sim/ for the zoomsim
//     binary.
package zoomtest
