#!/usr/bin/env bash
# The console's pages with 10,000 journeys in the tenant (issue 24's target: p99 of each page
# under 100 ms): builds release, then on SQLite and on PostgreSQL seeds a tenant through the API
# and times every page, one request at a time, as a signed-in member of staff (bench/console.mjs).
#
#   bash bench/console.sh
#   BENCH_ONLY=sqlite bash bench/console.sh        # or postgres
#   BENCH_JOURNEYS=20000 BENCH_REQUESTS=500 bash bench/console.sh
#
# Needs what the console's browser tests need: tests/console's and tests/oidc's packages
# (npm ci) and Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
ARGS=(--journeys "${BENCH_JOURNEYS:-10000}" --requests "${BENCH_REQUESTS:-200}")
PGDB="omnirail_console_bench_$$"
cleanup() {
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

cargo build --release --bin omnirail
[ -d tests/console/node_modules ] || npm ci --prefix tests/console --no-audit --no-fund
[ -d tests/oidc/node_modules ] || npm ci --prefix tests/oidc --no-audit --no-fund
export OMNIRAIL_BIN=target/release/omnirail

if [ "${BENCH_ONLY:-}" != postgres ]; then
    echo "=== SQLite (WAL, synchronous=FULL)"
    node bench/console.mjs "${ARGS[@]}"
fi
if [ "${BENCH_ONLY:-}" != sqlite ]; then
    if psql "$PG/postgres" -qc "CREATE DATABASE $PGDB" >/dev/null 2>&1; then
        echo "=== PostgreSQL"
        node bench/console.mjs --database-url "$PG/$PGDB" "${ARGS[@]}"
    else
        echo "PostgreSQL at $PG is not reachable: skipped"
    fi
fi
