#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL cluster (temp dir, free loopback port), always removed after.
# Usage: scripts/with_postgres.sh COMMAND [ARGS...]   (the command sees DATABASE_URL)
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

bindir=$(command -v initdb >/dev/null && dirname "$(command -v initdb)" ||
         ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -n "$bindir" && -x "$bindir/initdb" ]] || {
    echo "with_postgres: initdb not found; install PostgreSQL: apt-get install -y postgresql" >&2; exit 1; }

as_pg=()
if [[ $(id -u) -eq 0 ]]; then  # initdb refuses to run as root: the cluster belongs to the postgres user
    id postgres >/dev/null 2>&1 || { echo "with_postgres: no 'postgres' user; install postgresql" >&2; exit 1; }
    as_pg=(runuser -u postgres --)
fi
tmp=$(mktemp -d -t loupe-pg.XXXXXX)
[[ ${#as_pg[@]} -eq 0 ]] || chown postgres: "$tmp"
pgdata=$tmp/data

cleanup() {
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$bindir/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >"$tmp/initdb.log" ||
    { cat "$tmp/initdb.log" >&2; exit 1; }
# Speed over durability: the cluster is thrown away.
"${as_pg[@]}" tee -a "$pgdata/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$tmp'
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
"${as_pg[@]}" "$bindir/pg_ctl" -D "$pgdata" -l "$tmp/server.log" -w -t 60 start >/dev/null ||
    { cat "$tmp/server.log" >&2; exit 1; }

export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
# For the tests that restart the cluster during their run (tests/integration/test_faults.py).
export LOUPE_TEST_PGDATA=$pgdata LOUPE_TEST_PG_BINDIR=$bindir
echo "with_postgres: PostgreSQL $("$bindir/postgres" -V | awk '{print $3}') at $DATABASE_URL"
rc=0
"$@" || rc=$?
exit "$rc"
