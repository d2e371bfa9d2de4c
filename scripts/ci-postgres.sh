#!/bin/sh
# Start a throwaway PostgreSQL for CI and the PostgreSQL tests; print the line to export.
#
#   eval "$(scripts/ci-postgres.sh start)"   # sets ESCRUTINIO_TEST_PG and ESCRUTINIO_PG_DIR
#   ...run the tests...
#   scripts/ci-postgres.sh stop               # stops the server and deletes its folder
#
# The server lives in a fresh temporary folder, listens on 127.0.0.1 only (no Unix socket)
# on a free port, trusts local connections and runs with fsync off: it is for tests,
# never for data. PostgreSQL refuses to run as root, so when run as root the server runs as
# the 'postgres' system user (or $ESCRUTINIO_PG_OS_USER) through runuser/su.
# initdb and pg_ctl are taken from PATH or /usr/lib/postgresql/<newest>/bin
# (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql).
set -eu

find_bindir() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    done
    return 1
}

as_pg() {  # run a command as the server's OS user
    if [ "$(id -u)" -eq 0 ]; then
        u="${ESCRUTINIO_PG_OS_USER:-postgres}"
        if command -v runuser >/dev/null 2>&1; then runuser -u "$u" -- "$@"
        else su "$u" -s /bin/sh -c "$(printf "'%s' " "$@")"; fi
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd="${1:-start}"
case "$cmd" in
start)
    bindir="$(find_bindir)" || {
        echo "ci-postgres: initdb/pg_ctl not found (apt-get install postgresql)" >&2; exit 1; }
    dir="$(mktemp -d "${TMPDIR:-/tmp}/escrutinio-ci-pg.XXXXXX")"
    if [ "$(id -u)" -eq 0 ]; then chown "${ESCRUTINIO_PG_OS_USER:-postgres}" "$dir"; fi
    chmod 700 "$dir"
    as_pg "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    port="$(free_port)"
    as_pg sh -c "cat >> '$dir/data/postgresql.auto.conf'" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null || {
        cat "$dir/server.log" >&2; exit 1; }
    echo "export ESCRUTINIO_TEST_PG='postgresql://postgres@127.0.0.1:$port/postgres'"
    echo "export ESCRUTINIO_PG_DIR='$dir'"
    ;;
stop)
    dir="${2:-${ESCRUTINIO_PG_DIR:-}}"
    [ -n "$dir" ] && [ -d "$dir/data" ] || { echo "ci-postgres: nothing to stop" >&2; exit 0; }
    bindir="$(find_bindir)"
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start | stop [DIR]" >&2; exit 2 ;;
esac
