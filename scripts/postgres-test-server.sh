#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite.
#
# Usage: scripts/postgres-test-server.sh start|stop|url|run CMD [ARGS...]
#   start   create a fresh cluster (wiping any stale one) and start it, unless ours already
#           runs; prints the server URL (postgresql://postgres@127.0.0.1:PORT/postgres)
#   stop    stop it (no-op when it is not running); the directory is left for its log
#   url     print the URL; exit 1 when the server is not running
#   run     hold a lock, start the server, run CMD with TEST_POSTGRES_URL set, then stop the
#           server again (also when CMD fails) unless it was already running; exits with
#           CMD's status. Concurrent `run`s on one machine take turns instead of stopping
#           each other's server.
#
# Environment: PG_TEST_DIR (default /tmp/playground-pg: data/, socket, server.log),
#   PG_TEST_PORT (default 55432), PG_TEST_TIMEZONE (default Asia/Kolkata: deliberately not
#   UTC, so code that assumes the server's time zone shows up), PG_BIN (folder holding
#   initdb/pg_ctl; default the newest /usr/lib/postgresql/*/bin).
#
# The cluster trusts every local connection, keeps nothing durable (fsync off) and listens on
# 127.0.0.1 only: for tests, never for data. PostgreSQL refuses to run as root, so as root the
# cluster belongs to the `postgres` system user (else a `pgtest` user created here, else
# `nobody`); otherwise to whoever runs this. When no server binaries are found and we are
# root (or have sudo), they are installed with apt-get.
set -euo pipefail

DIR="${PG_TEST_DIR:-/tmp/playground-pg}"
PORT="${PG_TEST_PORT:-55432}"
TIMEZONE="${PG_TEST_TIMEZONE:-Asia/Kolkata}"
DATA="$DIR/data"
LOG="$DIR/server.log"
SUPERUSER=postgres
URL="postgresql://$SUPERUSER@127.0.0.1:$PORT/postgres"

say() { echo "postgres-test-server: $*" >&2; }
die() {
    say "ERROR: $*"
    exit 1
}

find_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then
        [[ -x "$PG_BIN/initdb" ]] || die "PG_BIN=$PG_BIN holds no initdb"
        echo "$PG_BIN"
        return
    fi
    local dir
    dir="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null |
        sort -V | tail -n 1)"
    if [[ -n "$dir" ]]; then
        dirname "$dir"
    elif command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
        pg_config --bindir
    fi
}

install_server() {
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null || die "no PostgreSQL server binaries (initdb) found, and \
not root: install postgresql-15 (or postgresql), or set PG_BIN"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null || die "no PostgreSQL server binaries found and no apt-get"
    say "no PostgreSQL server binaries found; installing them with apt-get ..."
    # Debian's postgresql-common would create and start a "main" cluster on :5432; we never use it.
    "${sudo[@]}" mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" |
        "${sudo[@]}" tee /etc/postgresql-common/createcluster.d/50-playground-tests.conf >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    local pkg
    for pkg in postgresql-15 postgresql; do
        if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "$pkg" >&2; then
            return
        fi
    done
    die "apt-get could not install postgresql-15 or postgresql"
}

# Who owns and runs the cluster, and how to run a command as them.
pick_user() {
    if [[ "$(id -u)" -ne 0 ]]; then
        RUN_USER="$(id -un)"
        return
    fi
    if id postgres >/dev/null 2>&1; then
        RUN_USER=postgres
    elif id pgtest >/dev/null 2>&1 ||
        useradd --system --no-create-home --shell /usr/sbin/nologin pgtest >/dev/null 2>&1; then
        RUN_USER=pgtest
    else
        RUN_USER=nobody
    fi
}

as_user() {
    if [[ "$(id -u)" -ne 0 ]]; then
        (cd / && "$@")
    elif command -v runuser >/dev/null; then
        (cd / && runuser -u "$RUN_USER" -- "$@")
    else
        (cd / && setpriv --reuid="$RUN_USER" --regid="$(id -g "$RUN_USER")" --init-groups -- "$@")
    fi
}

# The pid in postmaster.pid, when that process is alive and really a postgres server.
live_postmaster_pid() {
    local pid
    [[ -f "$DATA/postmaster.pid" ]] || return 1
    pid="$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres ]] || return 1
    echo "$pid"
}

ready() {
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U "$SUPERUSER" -d postgres -t 2
}

is_running() {
    live_postmaster_pid >/dev/null && ready
}

port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

stop_server() {
    local pid
    pid="$(live_postmaster_pid)" || return 0
    say "stopping the server in $DATA (pid $pid)"
    as_user "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 20 stop >/dev/null 2>&1 ||
        as_user "$BIN/pg_ctl" -D "$DATA" -m immediate -w -t 10 stop >/dev/null 2>&1 ||
        kill -KILL "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        live_postmaster_pid >/dev/null || return 0
        sleep 0.1
    done
    die "the server in $DATA (pid $pid) did not stop"
}

start_server() {
    if is_running; then
        echo "$URL"
        return
    fi
    # Whatever is left is stale (a killed session, a crashed server, another user's run).
    stop_server
    if port_taken; then
        die "something else listens on 127.0.0.1:$PORT; set PG_TEST_PORT to a free port"
    fi
    rm -rf "$DIR" 2>/dev/null || die "cannot remove the stale $DIR; remove it or set PG_TEST_DIR"
    mkdir -p "$DIR"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown "$RUN_USER": "$DIR"
    fi
    chmod 700 "$DIR"
    as_user "$BIN/initdb" -D "$DATA" -U "$SUPERUSER" --auth=trust --encoding=UTF8 --no-locale \
        --no-sync --no-instructions >"$DIR/initdb.log" 2>&1 ||
        die "initdb failed (as $RUN_USER): $(tail -n 5 "$DIR/initdb.log")"
    as_user tee -a "$DATA/postgresql.conf" >/dev/null <<EOF

# Added by scripts/postgres-test-server.sh: a throwaway test server, nothing durable.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 200
timezone = '$TIMEZONE'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    if ! as_user "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 30 start >/dev/null 2>&1; then
        die "the server did not start (as $RUN_USER); $LOG says: $(tail -n 5 "$LOG" 2>/dev/null)"
    fi
    local i
    for ((i = 0; i < 100; i++)); do
        if ready; then
            say "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') ready on port $PORT \
(cluster $DATA, owner $RUN_USER)"
            echo "$URL"
            return
        fi
        sleep 0.1
    done
    die "the server started but never accepted connections; see $LOG"
}

run_with_server() {
    [[ $# -gt 0 ]] || die "usage: $0 run CMD [ARGS...]"
    # One user of the fixed port at a time; the lock goes when this process ends.
    local lock="$DIR.lock"
    if { exec 9>>"$lock"; } 2>/dev/null || { exec 9<"$lock"; } 2>/dev/null; then
        if command -v flock >/dev/null && ! flock -n 9; then
            say "waiting for another run to finish with the server ($lock) ..."
            flock 9
        fi
    fi
    local was_running=0 status=0
    is_running && was_running=1
    TEST_POSTGRES_URL="$(start_server)"
    export TEST_POSTGRES_URL
    if [[ "$was_running" -eq 0 ]]; then
        trap stop_server EXIT
        trap 'exit 130' INT TERM
    fi
    "$@" || status=$?
    return "$status"
}

main() {
    local command="${1:-}"
    case "$command" in
        start | stop | url | run) ;;
        *) die "usage: $0 start|stop|url|run CMD [ARGS...]" ;;
    esac
    shift
    BIN="$(find_bin)"
    if [[ -z "$BIN" ]]; then
        [[ "$command" == stop || "$command" == url ]] && die "no PostgreSQL server binaries"
        install_server
        BIN="$(find_bin)"
        [[ -n "$BIN" ]] || die "installed PostgreSQL, yet found no initdb"
    fi
    pick_user
    case "$command" in
        start) start_server ;;
        stop) stop_server ;;
        url)
            is_running || die "no test server runs on port $PORT (start it first)"
            echo "$URL"
            ;;
        run) run_with_server "$@" ;;
    esac
}

main "$@"
