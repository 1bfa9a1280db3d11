# The harness bench/timeline.sh, bench/analytics.sh and bench/notifications.sh share: for SQLite, then PostgreSQL,
# seed a fresh database with the benchmark's example binary, serve it with the release
# `omnirail`, measure over HTTP, and print the query plans.
#
# The sourcing script sets NAME (the database's name), PG, PORT, BENCH (its example binary),
# SEED_ARGS (an array, the seed's own arguments), optionally MEASURE_ARGS, and PLANS_TITLE,
# defines sqlite_plans and pg_plans, then calls run_both. Sourced after `cargo build --release`.

BIN=target/release/omnirail
MEASURE_ARGS=("${MEASURE_ARGS[@]+"${MEASURE_ARGS[@]}"}")
WORK=$(mktemp -d)
SERVER=""
PGDB="omnirail_${NAME}_bench_$$"
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

run() {
    local label=$1 url=$2 plan=$3 settle=$4
    echo
    echo "=== $label"
    "$BENCH" seed --database-url "$url" "${SEED_ARGS[@]}" >"$WORK/key"
    $settle
    local key
    key=$(tail -n 1 "$WORK/key")
    "$BIN" serve --listen "127.0.0.1:$PORT" --database-url "$url" >"$WORK/out" 2>"$WORK/err" &
    SERVER=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
        sleep 0.1
    done
    BENCH_URL="$url" "$BENCH" measure --base "http://127.0.0.1:$PORT" --key "$key" "${MEASURE_ARGS[@]}"
    kill -TERM "$SERVER"
    wait "$SERVER" || true
    SERVER=""
    echo "--- $PLANS_TITLE"
    $plan
}

# A million rows loaded in minutes are measured as they would stand after the hours or months
# such a history takes to build: PostgreSQL's autovacuum would by then have set the visibility
# map (so counts are index-only scans); here VACUUM does it at once. SQLite needs nothing.
pg_settle() {
    psql "$PG/$PGDB" -qc "VACUUM ANALYZE"
}

# SQLite, then PostgreSQL; BENCH_ONLY=sqlite or BENCH_ONLY=postgres runs one.
run_both() {
    if [ "${BENCH_ONLY:-}" != postgres ]; then
        run "SQLite (WAL, synchronous=FULL)" "sqlite://$WORK/$NAME.db" sqlite_plans true
    fi
    if [ "${BENCH_ONLY:-}" = sqlite ]; then
        return 0
    fi
    if psql "$PG/postgres" -qc "CREATE DATABASE $PGDB" >/dev/null 2>&1; then
        psql "$PG/$PGDB" -qc "SELECT 1" >/dev/null
        run "PostgreSQL" "$PG/$PGDB" pg_plans pg_settle
    else
        echo "PostgreSQL at $PG is not reachable: skipped"
    fi
}
