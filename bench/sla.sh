#!/usr/bin/env bash
# SLA analytics benchmark: builds release, then on SQLite and on PostgreSQL seeds a tenant with
# 1,000,000 journeys over a year (examples/sla_bench.rs says how), starts `omnirail serve` on it,
# waits for its fold worker to fold every journey into the per-day figures (and reports how
# long that took), and measures GET /api/v1/omni/analytics/sla for a bank's dashboards (p50/p99
# over sequential requests). Prints the query plans.
#
#   bash bench/sla.sh
#   BENCH_JOURNEYS=100000 bash bench/sla.sh
#   BENCH_ONLY=postgres bash bench/sla.sh      # or sqlite
set -euo pipefail
cd "$(dirname "$0")/.."

PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
PORT="${BENCH_PORT:-18187}"
JOURNEYS="${BENCH_JOURNEYS:-1000000}"

cargo build --release --features bench --bin omnirail --example sla_bench
BENCH=target/release/examples/sla_bench
NAME=sla
SEED_ARGS=(--journeys "$JOURNEYS")
PLANS_TITLE="query plans (90 days, per template and team; open journeys at risk now)"
# shellcheck source=bench/harness.sh
source bench/harness.sh

# The report's statements as src/journeys/sla_analytics.rs writes them, with literal values
# (%T tenant, %F and %U the first and last day, %N now).
QUERIES=(
"SELECT period_start, template_id, team_id, started, completed, met, breached, cancelled FROM sla_figures WHERE tenant_id = '%T' AND period = 'week' AND period_start >= %F AND period_start <= %U AND template_id <> '*' AND team_id <> '*'"
"SELECT period_start, template_id, team_id, bucket, journeys FROM sla_durations WHERE tenant_id = '%T' AND period = 'week' AND period_start >= %F AND period_start <= %U AND template_id <> '*' AND team_id <> '*'"
"SELECT template_id, assignee_type, assignee_id, SUM(CASE WHEN sla_due_at > %N THEN 1 ELSE 0 END), SUM(CASE WHEN sla_due_at <= %N THEN 1 ELSE 0 END) FROM journeys WHERE tenant_id = '%T' AND status IN ('created', 'in_progress', 'assigned') AND sla_at_risk_at IS NOT NULL AND sla_at_risk_at <= %N GROUP BY template_id, assignee_type, assignee_id"
)

literal() {
    local q=$1 t=$2 today now
    now=$(( $(date +%s) * 1000 ))
    today=$(( now / 86400000 ))
    q=${q//%T/$t}; q=${q//%F/$((today - 89))}; q=${q//%U/$today}; q=${q//%N/$now}
    printf '%s' "$q"
}

sqlite_plans() {
    local db=$WORK/sla.db t
    t=$(sqlite3 "$db" "SELECT tenant_id FROM sla_figures LIMIT 1")
    for q in "${QUERIES[@]}"; do
        sqlite3 "$db" "EXPLAIN QUERY PLAN $(literal "$q" "$t")"
    done
}

pg_plans() {
    local t
    t=$(psql "$PG/$PGDB" -Atc "SELECT tenant_id FROM sla_figures LIMIT 1")
    for q in "${QUERIES[@]}"; do
        psql "$PG/$PGDB" -Atc "EXPLAIN (ANALYZE, COSTS OFF) $(literal "$q" "$t")" | grep -v '^Planning' || true
    done
}

run_both
