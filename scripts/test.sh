#!/usr/bin/env bash
# Runs every test of every module against a throwaway PostgreSQL (started
# here, stopped at exit) and NATS servers embedded in the tests.
#   scripts/test.sh [go test flags…]
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
# The cluster runs as the postgres user when this runs as root: it must reach $tmp.
chmod 755 "$tmp"
cleanup() {
	scripts/pg.sh stop "$tmp/pg" || true
	rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "${DATABASE_URL:-}" ]; then
	DATABASE_URL=$(scripts/pg.sh start "$tmp/pg")
	export DATABASE_URL
fi

# The end-to-end tests run the real service binaries.
make --no-print-directory build
export ZOOM_BIN_DIR="$PWD/bin"

modules=$(go list -m -f '{{.Dir}}')
status=0
for m in $modules; do
	(cd "$m" && go vet ./...) || status=1
done
[ $status = 0 ] || { echo "go vet failed" >&2; exit 1; }
# shellcheck disable=SC2086
unformatted=$(gofmt -l $modules)
[ -z "$unformatted" ] || { printf 'not gofmt-formatted (run gofmt -w):\n%s\n' "$unformatted" >&2; exit 1; }
# shellcheck disable=SC2086
go test -count=1 -timeout 20m "$@" $(for m in $modules; do echo "$m/..."; done)
