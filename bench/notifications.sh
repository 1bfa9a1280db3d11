#!/usr/bin/env bash
# Notifications benchmark: builds release, then on SQLite and on PostgreSQL starts
# `omnirail serve` on a fresh database and measures
# - notifications accepted per second (32 clients, in-app, 20,000 in all), and
# - end-to-end in-app latency: POST to `notification.delivered` on the customer's live stream,
#   one at a time (p50/p99 over 200).
#
#   bash bench/notifications.sh
#   BENCH_REQUESTS=5000 bash bench/notifications.sh
#   BENCH_ONLY=postgres bash bench/notifications.sh      # or sqlite
set -euo pipefail
cd "$(dirname "$0")/.."

PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
PORT="${BENCH_PORT:-18184}"
REQUESTS="${BENCH_REQUESTS:-20000}"

cargo build --release --features bench --bin omnirail --example notifications_bench
BENCH=target/release/examples/notifications_bench
NAME=notifications
SEED_ARGS=()
MEASURE_ARGS=(--requests "$REQUESTS")
PLANS_TITLE="the delivery worker's claim"
# shellcheck source=bench/harness.sh
source bench/harness.sh

CLAIM="SELECT id FROM notification_deliveries WHERE next_attempt_at <= 0 AND (lease_until IS NULL OR lease_until < 0) ORDER BY next_attempt_at LIMIT 64"

sqlite_plans() {
    sqlite3 "$WORK/notifications.db" "EXPLAIN QUERY PLAN $CLAIM"
}

pg_plans() {
    psql "$PG/$PGDB" -Atc "EXPLAIN (ANALYZE, COSTS OFF) $CLAIM FOR UPDATE SKIP LOCKED" | grep -v '^Planning' || true
}

run_both
