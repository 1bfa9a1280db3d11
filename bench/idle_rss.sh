#!/usr/bin/env bash
# Idle memory: builds release, starts `omnirail serve` on a fresh SQLite file and on a fresh
# PostgreSQL database, lets it settle (migrations run, workers polling, no request), and prints
# its resident set size (VmRSS) with the target (under 30 MB).
#
#   bash bench/idle_rss.sh
#   BENCH_SETTLE=30 bash bench/idle_rss.sh      # seconds to wait before reading (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."

SETTLE="${BENCH_SETTLE:-10}"
PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
cargo build --release --bin omnirail
BIN=target/release/omnirail
WORK=$(mktemp -d)
SERVER=""
DB=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    [ -n "$DB" ] && psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

measure() {
    local label=$1 url=$2 port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    OMNIRAIL_DOCUMENT_STORE="$WORK/documents" "$BIN" serve --listen "127.0.0.1:$port" \
        --database-url "$url" >"$WORK/out" 2>"$WORK/err" &
    SERVER=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
        sleep 0.1
    done
    sleep "$SETTLE"
    local rss
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$SERVER/status")
    kill -TERM "$SERVER"
    wait "$SERVER" || true
    SERVER=""
    awk -v l="$label" -v r="$rss" \
        'BEGIN { printf "%s: idle RSS %.1f MB (target < 30 MB): %s\n", l, r / 1024, (r < 30 * 1024 ? "met" : "MISSED") }'
}

measure "SQLite" "sqlite://$WORK/idle.db"
if pg_isready -h 127.0.0.1 -q; then
    DB="omnirail_idle_$$"
    psql -q "$PG/postgres" -c "CREATE DATABASE $DB"
    measure "PostgreSQL" "$PG/$DB"
else
    echo "PostgreSQL not running at 127.0.0.1:5432: skipped"
fi
