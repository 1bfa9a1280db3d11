#!/usr/bin/env bash
# Webhooks benchmark: builds release, then on SQLite and on PostgreSQL
# 1. seeds a tenant with BENCH_ENDPOINTS endpoints (default 8), all at a local receiver;
# 2. builds a backlog of BENCH_EVENTS journeys (default 5,000) through a server that delivers
#    nothing (webhooks.max_in_flight = 0, an API-only node): events x endpoints messages;
# 3. starts the receiver and a delivering server, and measures how fast the backlog drains
#    (deliveries/s), then journeys created at BENCH_RATE per second (default 250, so 2,000
#    deliveries/s with 8 endpoints) for BENCH_SECONDS (default 15), with every message's
#    latency from its event's commit to its arrival (p50/p99).
#
#   bash bench/webhooks.sh
#   BENCH_ONLY=postgres bash bench/webhooks.sh      # or sqlite
set -euo pipefail
cd "$(dirname "$0")/.."

PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
PORT="${BENCH_PORT:-18185}"
RPORT="${BENCH_RECEIVER_PORT:-18186}"
ENDPOINTS="${BENCH_ENDPOINTS:-8}"
RATE="${BENCH_RATE:-250}"
EVENTS="${BENCH_EVENTS:-5000}"
SECONDS_STEADY="${BENCH_SECONDS:-15}"

cargo build --release --features bench --bin omnirail --example webhooks_bench
BIN=target/release/omnirail
BENCH=target/release/examples/webhooks_bench
WORK=$(mktemp -d)
SERVER=""
MEASURE=""
PGDB="omnirail_webhooks_bench_$$"
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    [ -n "$MEASURE" ] && kill "$MEASURE" 2>/dev/null || true
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

export OMNIRAIL_WEBHOOKS__ALLOW_HTTP=true
export OMNIRAIL_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true
export OMNIRAIL_DOCUMENT_STORE="$WORK/documents"

serve() {
    "$BIN" serve --listen "127.0.0.1:$PORT" --database-url "$1" >"$WORK/out" 2>"$WORK/err" &
    SERVER=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0
        sleep 0.1
    done
    echo "server did not start" >&2
    cat "$WORK/err" >&2
    exit 1
}

stop() {
    kill -TERM "$SERVER"
    wait "$SERVER" || true
    SERVER=""
}

run() {
    local label=$1 url=$2
    echo
    echo "=== $label: $ENDPOINTS endpoints, $EVENTS events in the backlog"
    "$BENCH" seed --database-url "$url" --receiver "http://127.0.0.1:$RPORT/hook" \
        --endpoints "$ENDPOINTS" >"$WORK/key"
    local key base="http://127.0.0.1:$PORT"
    key=$(tail -n 1 "$WORK/key")
    OMNIRAIL_WEBHOOKS__MAX_IN_FLIGHT=0 serve "$url"
    "$BENCH" backlog --base "$base" --key "$key" --events "$EVENTS"
    stop
    # The backlog: every journey's event and the template's, for every endpoint.
    local backlog=$(( (EVENTS + 1) * ENDPOINTS ))
    "$BENCH" measure --listen "127.0.0.1:$RPORT" --base "$base" --key "$key" \
        --backlog "$backlog" --endpoints "$ENDPOINTS" --rate "$RATE" --seconds "$SECONDS_STEADY" &
    MEASURE=$!
    sleep 0.5
    serve "$url"
    wait "$MEASURE"
    MEASURE=""
    stop
}

if [ "${BENCH_ONLY:-}" != postgres ]; then
    run "SQLite (WAL, synchronous=FULL)" "sqlite://$WORK/webhooks.db"
fi
if [ "${BENCH_ONLY:-}" != sqlite ]; then
    if psql "$PG/postgres" -qc "CREATE DATABASE $PGDB" >/dev/null 2>&1; then
        run "PostgreSQL" "$PG/$PGDB"
    else
        echo "PostgreSQL at $PG is not reachable: skipped"
    fi
fi
