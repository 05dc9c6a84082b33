#!/usr/bin/env bash
# Runs the pipeline benchmark: the real services, embedded NATS, a throwaway
# PostgreSQL and the simulator without rate limits, for organisations of
# 10,000 and 100,000 users (override with BENCH_USERS=5000,20000), each
# measured BENCH_REPEAT times (default 1; the table shows the medians).
# Prints a table and writes bench-results/bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bin/zoomctl bench --users "${BENCH_USERS:-10000,100000}" --repeat "${BENCH_REPEAT:-1}" --json bench-results/bench.json
