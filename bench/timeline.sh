#!/usr/bin/env bash
# Timeline scale benchmark: builds release, then on SQLite and on PostgreSQL seeds a tenant with
# 1,000,000 events (100,000 on one customer), starts `omnirail serve` on it, and measures the
# first page and a filtered page of that customer's timeline (p50/p99 over sequential requests)
# and `verify` of its 100,000-event chain. Prints the query plans of the page queries.
#
#   bash bench/timeline.sh
#   BENCH_BIG=100000 BENCH_CUSTOMERS=9000 bash bench/timeline.sh
#   BENCH_ONLY=postgres bash bench/timeline.sh      # or sqlite
set -euo pipefail
cd "$(dirname "$0")/.."

PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
PORT="${BENCH_PORT:-18182}"
BIG="${BENCH_BIG:-100000}"
CUSTOMERS="${BENCH_CUSTOMERS:-9000}"

cargo build --release --features bench --bin omnirail --example timeline_bench
BENCH=target/release/examples/timeline_bench
NAME=timeline
SEED_ARGS=(--big "$BIG" --customers "$CUSTOMERS")
PLANS_TITLE="query plans"
# shellcheck source=bench/harness.sh
source bench/harness.sh

# The page query as src/timeline/store.rs builds it, with literal values.
PAGE="SELECT e.id FROM events e WHERE e.seq IN (SELECT x.event_seq FROM event_entities x
  WHERE x.tenant_id = '%T' AND x.entity_type = 'customer' AND x.entity_id = 'ent_big'
  ORDER BY x.occurred_at, x.event_seq LIMIT 50 OFFSET 0) ORDER BY e.occurred_at, e.seq"
FILTERED="SELECT e.id FROM events e WHERE e.seq IN (SELECT x.event_seq FROM event_entities x
  WHERE x.tenant_id = '%T' AND x.entity_type = 'customer' AND x.entity_id = 'ent_big'
  AND x.occurred_at >= %F AND x.occurred_at <= %U AND (x.event_type LIKE 'omni.approval.%')
  ORDER BY x.occurred_at, x.event_seq LIMIT 50 OFFSET 0) ORDER BY e.occurred_at, e.seq"
# One of verify's pages (it reads the chain 2,000 links at a time by chain_seq).
VERIFY="SELECT hash FROM events WHERE tenant_id = '%T' AND chain_key = 'customer:ent_big'
  AND chain_seq > 50000 ORDER BY chain_seq LIMIT 2000"

sqlite_plans() {
    local db=$WORK/timeline.db t range from to
    t=$(sqlite3 "$db" "SELECT tenant_id FROM event_chains WHERE chain_key = 'customer:ent_big'")
    range=$(sqlite3 "$db" "SELECT MIN(occurred_at), MAX(occurred_at) FROM event_entities WHERE tenant_id = '$t' AND entity_type = 'customer' AND entity_id = 'ent_big'")
    from=${range%|*}; to=${range#*|}
    for q in "$PAGE" "$FILTERED" "$VERIFY"; do
        q=${q//%T/$t}; q=${q//%F/$from}; q=${q//%U/$to}
        sqlite3 "$db" "EXPLAIN QUERY PLAN $q"
    done
}

pg_plans() {
    local t range from to
    t=$(psql "$PG/$PGDB" -Atc "SELECT tenant_id FROM event_chains WHERE chain_key = 'customer:ent_big'")
    range=$(psql "$PG/$PGDB" -Atc "SELECT MIN(occurred_at), MAX(occurred_at) FROM event_entities WHERE tenant_id = '$t' AND entity_type = 'customer' AND entity_id = 'ent_big'")
    from=${range%|*}; to=${range#*|}
    for q in "$PAGE" "$FILTERED" "$VERIFY"; do
        q=${q//%T/$t}; q=${q//%F/$from}; q=${q//%U/$to}
        psql "$PG/$PGDB" -Atc "EXPLAIN (ANALYZE, COSTS OFF) $q" | grep -v '^Planning\|^Execution' || true
    done
}

run_both
