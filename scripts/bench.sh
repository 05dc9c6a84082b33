#!/usr/bin/env bash
# Runs the pipeline benchmark: the real services, embedded NATS, a throwaway
# PostgreSQL and the simulator without rate limits, for organisations of
# 10,000 and 100,000 users (override with BENCH_USERS=5000,20000), each
# measured BENCH_REPEAT times (default 1; the table shows the medians).
#
# BENCH_CONNECTORS=1 adds the many-connectors section: the services' memory
# with 1,000 idle registered connectors against none, and 200 connectors of
# 500 users synced at once against one connector of 100,000 users. It is on
# by default, and off by default when BENCH_USERS is set, so that such runs
# stay as they were; BENCH_CONNECTORS=0 turns it off, and BENCH_USERS=none
# with BENCH_CONNECTORS=1 runs it alone (it then syncs the one 100,000-user
# connector itself).
#
# BENCH_SNAPSHOT=N adds the snapshot section: a downstream consumer
# (zoomctl follow) loads the snapshot of an N-user account while no-op
# resyncs run (its time, its peak memory, the resyncs' slowdown), written to
# bench-results/snapshot.json. 100000 by default, 0 (off) by default when
# BENCH_USERS is set.
#
# Prints the tables and writes bench-results/bench.json: the list of sizes,
# or, with the section, {"sizes": [...], "connectors": {...}}.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${BENCH_USERS:-}" ]]; then
	connectors="${BENCH_CONNECTORS:-0}"
else
	connectors="${BENCH_CONNECTORS:-1}"
fi
case "$connectors" in
1 | true | yes) connectors=true ;;
0 | false | no | "") connectors=false ;;
*)
	echo "BENCH_CONNECTORS must be 1 or 0, not $connectors" >&2
	exit 2
	;;
esac
if [[ -n "${BENCH_USERS:-}" ]]; then
	snapshot="${BENCH_SNAPSHOT:-0}"
else
	snapshot="${BENCH_SNAPSHOT:-100000}"
fi
bin/zoomctl bench --users "${BENCH_USERS:-10000,100000}" --repeat "${BENCH_REPEAT:-1}" \
	--connectors="$connectors" --snapshot "$snapshot" --json bench-results/bench.json
# BENCH_PROVISION=N (default 100000; "off", the default when BENCH_USERS is set, skips
# it) adds the provisioning figures: requests per second through the worker
# under the Pro plan's limits against the limit, and one request's latency
# during a full sync of an N-user account (0: the rate only), written to
# bench-results/provision.json.
if [[ -n "${BENCH_USERS:-}" ]]; then
	provision="${BENCH_PROVISION:-off}"
else
	provision="${BENCH_PROVISION:-100000}"
fi
if [[ "$provision" != off ]]; then
	bin/zoomctl bench --provision --provision-sync-users "$provision" --json bench-results/provision.json
fi
