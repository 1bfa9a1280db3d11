#!/usr/bin/env bash
# Journey benchmark: builds release, then on SQLite and on PostgreSQL starts `omnirail serve`
# on a fresh database, drives 32 concurrent clients through create / advance / complete, and
# measures the raw baseline (single-row durable insert transactions) on the same kind of
# database with the same durability settings. Prints the figures and the ratio.
#
#   bash bench/journeys.sh                 # both databases
#   BENCH_SECONDS=30 bash bench/journeys.sh
#   BENCH_PG=postgres://postgres@127.0.0.1:5432 bash bench/journeys.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_PHASE="${BENCH_SECONDS:-15}"
CLIENTS="${BENCH_CLIENTS:-32}"
PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
PORT="${BENCH_PORT:-18181}"

cargo build --release --features bench --bin omnirail --example loadgen
BIN=target/release/omnirail
LOADGEN=target/release/examples/loadgen
WORK=$(mktemp -d)
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

run() {
    local label=$1 url=$2 raw_url=$3
    echo
    echo "=== $label"
    "$BIN" serve --listen "127.0.0.1:$PORT" --database-url "$url" >"$WORK/out" 2>"$WORK/err" &
    SERVER=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
        sleep 0.1
    done
    local key
    key=$(tail -n 1 "$WORK/out")
    "$LOADGEN" journeys --base "http://127.0.0.1:$PORT" --key "$key" --clients "$CLIENTS" --seconds "$SECONDS_PER_PHASE" | tee "$WORK/journeys.txt"
    kill -TERM "$SERVER"
    wait "$SERVER" || true
    SERVER=""
    "$LOADGEN" baseline --database-url "$raw_url" --clients "$CLIENTS" --seconds "$SECONDS_PER_PHASE" | tee "$WORK/baseline.txt"
    local create base
    create=$(grep -o 'create_throughput=[0-9.]*' "$WORK/journeys.txt" | cut -d= -f2)
    base=$(grep -o 'baseline_tps=[0-9.]*' "$WORK/baseline.txt" | cut -d= -f2)
    awk -v c="$create" -v b="$base" -v l="$label" \
        'BEGIN { printf "%s: journey creates %.1f/s vs raw inserts %.1f/s = %.0f%% of baseline (target >= 40%%)\n", l, c, b, 100 * c / b }'
}

run "SQLite (WAL, synchronous=FULL)" "sqlite://$WORK/bench.db" "sqlite://$WORK/raw.db"

if pg_isready -h 127.0.0.1 -q; then
    DB="omnirail_bench_$$"
    psql "$PG/postgres" -qc "CREATE DATABASE $DB" && psql "$PG/postgres" -qc "CREATE DATABASE ${DB}_raw"
    run "PostgreSQL" "$PG/$DB" "$PG/${DB}_raw"
    psql "$PG/postgres" -qc "DROP DATABASE $DB WITH (FORCE)"
    psql "$PG/postgres" -qc "DROP DATABASE ${DB}_raw WITH (FORCE)"
else
    echo "PostgreSQL not running at 127.0.0.1:5432: skipped"
fi
