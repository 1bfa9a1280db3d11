#!/usr/bin/env bash
# Channel analytics benchmark: builds release, then on SQLite and on PostgreSQL seeds a tenant
# with 1,000,000 events (20,000 customers, 50 events each, all of today), starts
# `omnirail serve` on it, and measures GET /api/v1/analytics/channels for the default window and
# for a year (p50/p99 over sequential requests). Prints the query plans.
#
#   bash bench/analytics.sh
#   BENCH_CUSTOMERS=20000 bash bench/analytics.sh
#   BENCH_ONLY=postgres bash bench/analytics.sh      # or sqlite
set -euo pipefail
cd "$(dirname "$0")/.."

PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
PORT="${BENCH_PORT:-18183}"
CUSTOMERS="${BENCH_CUSTOMERS:-20000}"

cargo build --release --features bench --bin omnirail --example analytics_bench
BENCH=target/release/examples/analytics_bench
NAME=analytics
SEED_ARGS=(--customers "$CUSTOMERS")
PLANS_TITLE="query plans (last 30 days)"
# shellcheck source=bench/harness.sh
source bench/harness.sh

# The three queries as src/analytics/mod.rs writes them, with literal values (%T tenant,
# %F and %U the first and last day).
QUERIES=(
"SELECT channel, SUM(transactions) FROM channel_daily WHERE tenant_id = '%T' AND day >= %F AND day <= %U GROUP BY channel"
"SELECT channel, COUNT(DISTINCT customer_id) FROM channel_daily_users WHERE tenant_id = '%T' AND day >= %F AND day <= %U GROUP BY channel"
"SELECT COUNT(DISTINCT journey_id) FROM journey_switches WHERE tenant_id = '%T' AND from_day >= %F AND to_day <= %U"
)

literal() {
    local q=$1 t=$2 today
    today=$(( $(date +%s) / 86400 ))
    q=${q//%T/$t}; q=${q//%F/$((today - 29))}; q=${q//%U/$today}
    printf '%s' "$q"
}

sqlite_plans() {
    local db=$WORK/analytics.db t
    t=$(sqlite3 "$db" "SELECT tenant_id FROM channel_daily LIMIT 1")
    for q in "${QUERIES[@]}"; do
        sqlite3 "$db" "EXPLAIN QUERY PLAN $(literal "$q" "$t")"
    done
}

pg_plans() {
    local t
    t=$(psql "$PG/$PGDB" -Atc "SELECT tenant_id FROM channel_daily LIMIT 1")
    for q in "${QUERIES[@]}"; do
        psql "$PG/$PGDB" -Atc "EXPLAIN (ANALYZE, COSTS OFF) $(literal "$q" "$t")" | grep -v '^Planning' || true
    done
}

run_both
