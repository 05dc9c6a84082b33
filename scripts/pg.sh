#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL cluster for tests, benchmarks and the
# dev stack.
#
#   scripts/pg.sh start DIR   initdb in DIR (if new), start on a free loopback
#                             port, print the DATABASE_URL on stdout
#   scripts/pg.sh stop DIR    stop the cluster in DIR
#
# As root, the server runs as the postgres user (PostgreSQL refuses root).
# Where initdb is missing and apt is usable, the postgresql package is installed.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

find_bin() {
	local name=$1
	if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
	local c
	for c in /usr/lib/postgresql/*/bin/"$name"; do
		[ -x "$c" ] && { echo "$c"; return; }
	done
	return 1
}

ensure_binaries() {
	if find_bin initdb >/dev/null && find_bin pg_ctl >/dev/null; then return; fi
	if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
		echo "pg.sh: PostgreSQL binaries missing; installing the postgresql package" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2 ||
			{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2; }
	fi
	find_bin initdb >/dev/null && find_bin pg_ctl >/dev/null || {
		echo "pg.sh: initdb and pg_ctl not found; install PostgreSQL 15 (e.g. apt-get install postgresql)" >&2
		exit 1
	}
}

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "pg.sh: no free port found" >&2
	exit 1
}

case "$cmd" in
start)
	ensure_binaries
	initdb=$(find_bin initdb)
	pg_ctl=$(find_bin pg_ctl)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_owner "$initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			as_owner "$initdb" -D "$dir/data" -U postgres -A trust -E UTF8 >"$dir/initdb.log" 2>&1 || {
			cat "$dir/initdb.log" >&2
			exit 1
		}
	fi
	port=$(free_port)
	# Settings for a throwaway cluster: durability is not wanted, speed is.
	as_owner "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=1GB" \
		start >&2 || { cat "$dir/server.log" >&2; exit 1; }
	echo "$port" >"$dir/port"
	echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	;;
stop)
	pg_ctl=$(find_bin pg_ctl) || exit 0
	[ -f "$dir/data/PG_VERSION" ] || exit 0
	as_owner "$pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
	;;
*)
	echo "usage: $0 start|stop DIR" >&2
	exit 2
	;;
esac
