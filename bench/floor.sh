#!/usr/bin/env bash
# Issue 23's floors: what the database alone allows a journey create, with no server in the way,
# against the same run's reference (Python sqlite3 / pgbench single-row commits).
#
#   bash bench/floor.sh                       # both databases, about 4 minutes after the build
#   FLOOR_ONLY=sqlite bash bench/floor.sh     # or postgres
#   FLOOR_SECONDS=20 FLOOR_CLIENTS=32 bash bench/floor.sh
#   FLOOR_PG=postgres://postgres@127.0.0.1:5432 bash bench/floor.sh
#
# Each database is migrated by `omnirail serve` and given seed 001's template through the API.
# SQLite: bench/floor/sqlite_floor.py runs creates from one thread, 1, 16 or 32 per commit.
# PostgreSQL: pgbench runs bench/floor/*.sql from 32 clients, one statement (its own commit)
# per transaction: a journey row alone (without, then with, its indexes), a create's three
# rows (journey, customer, event), and every row a create writes today.
set -euo pipefail
cd "$(dirname "$0")/.."

PG="${FLOOR_PG:-postgres://postgres@127.0.0.1:5432}"
SECS="${FLOOR_SECONDS:-15}"
CLIENTS="${FLOOR_CLIENTS:-32}"
PORT=18391
BIN=target/release/omnirail
# The same build as bench/run, so that one serves both.
cargo build --release --features bench --bin omnirail

WORK=$(mktemp -d)
PGDB="omnirail_floor_$$"
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Migrates the database at $1 and creates the bench template through the API.
prepare() {
    "$BIN" serve --listen "127.0.0.1:$PORT" --database-url "$1" >"$WORK/out" 2>"$WORK/err" &
    SERVER=$!
    for _ in $(seq 1 300); do
        curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
        sleep 0.1
    done
    local key
    key=$(grep -o 'omk_[A-Za-z0-9_-]*' "$WORK/out" "$WORK/err" | head -n 1 | cut -d: -f2)
    curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/omni/templates" \
        -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d '{"id": "tmpl_bench_run", "name": "Bench onboarding", "category": "onboarding", "steps": [
              {"id": "step_kyc", "name": "KYC Verification", "type": "kyc_check", "order": 1},
              {"id": "step_docs", "name": "Document Collection", "type": "document_upload", "order": 2},
              {"id": "step_review", "name": "Credit Review", "type": "review", "order": 3}]}' \
        >/dev/null
    kill -TERM "$SERVER"
    wait "$SERVER" || true
    SERVER=""
}

if [ "${FLOOR_ONLY:-}" != postgres ]; then
    echo "=== SQLite ($SECS s each)"
    prepare "sqlite://$WORK/migrated.db"
    ref=$(python3 bench/raw_sqlite.py --path "$WORK/raw.db" --clients "$CLIENTS" --seconds "$SECS" |
        python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["commits"]/r["seconds"]))')
    echo "reference: single-row commits, $CLIENTS threads: $ref/s"
    for mode in create minimal; do
        for batch in 1 16 32; do
            python3 bench/floor/sqlite_floor.py --from "$WORK/migrated.db" --path "$WORK/floor.db" \
                --mode "$mode" --batch "$batch" --seconds "$SECS" |
                python3 -c "import json,sys; r=json.load(sys.stdin); print(f'{r[\"mode\"]}, {r[\"batch\"]} per commit: {r[\"per_s\"]:.0f}/s ({100*r[\"per_s\"]/$ref:.0f}%)')"
        done
    done
fi

if [ "${FLOOR_ONLY:-}" != sqlite ]; then
    echo "=== PostgreSQL ($CLIENTS clients, $SECS s each)"
    psql "$PG/postgres" -qc "CREATE DATABASE $PGDB"
    prepare "$PG/$PGDB"
    psql "$PG/$PGDB" -q \
        -c "CREATE TABLE bench_reference (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL, created_at BIGINT NOT NULL)" \
        -c "CREATE TABLE journey_floor (LIKE journeys INCLUDING DEFAULTS)" \
        -c "ALTER TABLE journey_floor ADD PRIMARY KEY (id)"
    ref=""
    for script in reference journey_row journey_indexed minimal create; do
        tps=$(pgbench -n -c "$CLIENTS" -j 2 -T "$SECS" -f "bench/floor/$script.sql" "$PG/$PGDB" |
            awk '/^tps = / { printf "%.0f", $3 }')
        [ -z "$ref" ] && ref=$tps
        echo "$script: $tps/s ($((100 * tps / ref))%)"
    done
fi
