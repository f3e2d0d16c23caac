#!/usr/bin/env bash
# tools/pg.sh: a throwaway PostgreSQL for the tests and for trying the
# PostgreSQL backend, from Debian's binaries (package postgresql, which
# tools/bootstrap.sh --test installs).
#
#   tools/pg.sh start   start it (idempotent) and print its URL
#   tools/pg.sh stop    stop it and remove its data
#   tools/pg.sh url     print its URL
#
# It listens on 127.0.0.1:$RP_PG_PORT (default 55432) and on a private socket
# directory, keeps its data under /tmp/rapidphoto-pg-<port> (owned by the
# 'postgres' system user when run as root: PostgreSQL refuses to run as root),
# runs with fsync on (the durability tests rely on it), and has a role and a
# database both named rapidphoto:
#   postgresql://rapidphoto:rapidphoto@127.0.0.1:55432/rapidphoto
set -euo pipefail

port=${RP_PG_PORT:-55432}
base=/tmp/rapidphoto-pg-$port
data=$base/data
sock=$base/run
log=$base/postgresql.log
url="postgresql://rapidphoto:rapidphoto@127.0.0.1:$port/rapidphoto"

die() { echo "tools/pg.sh: $*" >&2; exit 1; }

case "$port" in
    ''|*[!0-9]*) die "RP_PG_PORT must be a port number, not \"$port\"" ;;
esac

# The newest installed server, unless RP_PG_BIN names one
bin=${RP_PG_BIN:-}
if [ -z "$bin" ]; then
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && bin=$dir
    done
fi

# Run a PostgreSQL program as the user that owns the cluster
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

need_server() {
    [ -n "$bin" ] && [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] \
        || die "no PostgreSQL server in /usr/lib/postgresql/*/bin: install the postgresql package (tools/bootstrap.sh --test)"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 \
            || die "running as root needs the 'postgres' system user to own the server: install the postgresql package (tools/bootstrap.sh --test)"
        command -v runuser >/dev/null || die "runuser is missing (package util-linux)"
    fi
}

running() {
    [ -f "$data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

psql_admin() {
    as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres "$@"
}

start() {
    need_server
    if running; then
        echo "$url"
        return 0
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        # A fresh cluster (a half-made one from an interrupted start goes)
        rm -rf "$base"
        mkdir -p "$base"
        [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$base"
        chmod 700 "$base"
        as_owner mkdir -p "$sock"
        as_owner "$bin/initdb" -D "$data" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
            --auth-local=trust --auth-host=scram-sha-256 >"$base/initdb.log" 2>&1 \
            || die "initdb failed in $data: $(tail -n 3 "$base/initdb.log" | tr '\n' ' ')"
        cat <<CONF | as_owner tee -a "$data/postgresql.conf" >/dev/null
# tools/pg.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 300
logging_collector = off
CONF
    fi
    if command -v ss >/dev/null && ss -ltn "sport = :$port" 2>/dev/null | grep -q LISTEN; then
        die "port $port on 127.0.0.1 is taken by another program: set RP_PG_PORT to a free one"
    fi
    as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null 2>&1 \
        || die "PostgreSQL did not start: $(tail -n 3 "$log" 2>/dev/null | tr '\n' ' ')(log: $log)"
    local tries=0
    until as_owner "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; do
        tries=$((tries + 1))
        [ "$tries" -lt 60 ] || die "PostgreSQL started but does not accept connections on 127.0.0.1:$port (log: $log)"
        sleep 0.5
    done
    # The role and database, once
    psql_admin <<'SQL' || die "cannot create the rapidphoto role and database (log: $log)"
SELECT 'CREATE ROLE rapidphoto LOGIN PASSWORD ''rapidphoto'''
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rapidphoto') \gexec
SELECT 'CREATE DATABASE rapidphoto OWNER rapidphoto ENCODING ''UTF8'''
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'rapidphoto') \gexec
SQL
    echo "$url"
}

stop() {
    if [ -n "$bin" ] && [ -f "$data/PG_VERSION" ] && running; then
        as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null \
            || die "PostgreSQL in $data did not stop (log: $log)"
    fi
    rm -rf "$base"
}

case "${1:-}" in
    start) start ;;
    stop)  stop ;;
    url)   echo "$url" ;;
    *)     echo "usage: tools/pg.sh start|stop|url" >&2; exit 2 ;;
esac
