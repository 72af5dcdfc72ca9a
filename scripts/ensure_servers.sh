#!/usr/bin/env bash
# Makes sure the servers the test suite starts are installed: redis-server, PostgreSQL, Debian's Chromium.
set -euo pipefail

pg_bindir() {  # initdb's folder: PATH first, else the newest /usr/lib/postgresql/*/bin (not in PATH on Debian)
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then dirname "$(command -v initdb)"; return; fi
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]] && echo "$d"
}

missing() {
    command -v redis-server >/dev/null || echo redis-server
    pg_bindir >/dev/null || echo postgresql
    [[ -x /usr/bin/chromium ]] || echo chromium
}

mapfile -t packages < <(missing)
[[ ${#packages[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 && -f /etc/debian_version ]]; then
    echo "ensure_servers: installing ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y "${packages[@]}"
    mapfile -t packages < <(missing)
    [[ ${#packages[@]} -eq 0 ]] && exit 0
fi
echo "ensure_servers: the tests need these Debian packages, which are missing: ${packages[*]}" >&2
echo "ensure_servers: install them with: sudo apt-get install -y ${packages[*]}" >&2
exit 1
