"""The floor of a journey create on SQLite: a create's writes with no server in the way.

    python3 bench/floor/sqlite_floor.py --from migrated.db --path floor.db --mode create --batch 32

Copies `--from` (a database `omnirail serve` migrated, holding template `tmpl_bench_run`) to
`--path`, then for `--seconds` runs journey creates from one thread on one connection (WAL,
synchronous=FULL, the server's pragmas), `--batch` creates per commit: the best a perfect
group commit could do. `--mode create` writes every row a create writes today (journey,
assignee, customer, chain head, event, entity rows and counts, channel-day counter, touch);
`--mode minimal` only the journey, its customer and its event, as if every consumer and the
chain's seal ran after the commit. Prints JSON: mode, batch, creates, seconds, per_s.
"""

import argparse
import json
import os
import secrets
import shutil
import sqlite3
import time

parser = argparse.ArgumentParser()
parser.add_argument("--from", dest="source", required=True)
parser.add_argument("--path", required=True)
parser.add_argument("--mode", choices=["create", "minimal"], default="create")
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--seconds", type=float, default=10)
args = parser.parse_args()
mode = args.mode
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(args.path + suffix):
        os.remove(args.path + suffix)
shutil.copy(args.source, args.path)
c = sqlite3.connect(args.path, isolation_level=None)
for p in ["journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON", "temp_store = MEMORY", "cache_size = -16384"]:
    c.execute("PRAGMA " + p)
T = 'ten_default'
ctx = '{"productType":"murabaha","requestedAmount":{"amount":2000000,"currency":"SAR"}}'
def nid(prefix):
    return prefix + '%012x' % int(time.time() * 1000) + secrets.token_hex(16)
def create(n):
    now = int(time.time() * 1000)
    j, cus, e = nid('jrn_'), 'ent_new_%03d_%07d' % (n % 32, n), nid('evt_')
    chain = 'customer:' + cus
    c.execute("INSERT INTO journeys (tenant_id, id, template_id, template_version, customer_id, channel, status, current_step_index, current_step_status, assignee_id, assignee_type, priority, due_at, context, outcome, notes, approval_id, row_version, created_at, updated_at) SELECT ?1, ?2, t.id, t.version, ?4, 'web', 'created', 0, 'pending', 'usr_rm_001', 'user', 'normal', 1706202000000, ?5, NULL, NULL, NULL, 1, ?6, ?6 FROM journey_templates t WHERE t.tenant_id = ?1 AND t.id = ?3 AND t.status = 'active'", (T, j, 'tmpl_bench_run', cus, ctx, now))
    c.execute("INSERT INTO customers (tenant_id, id, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, id) DO NOTHING", (T, cus, now, now))
    if mode == 'minimal':
        c.execute("INSERT INTO events (id, tenant_id, event_type, occurred_at, actor_id, channel, summary, metadata, payload) VALUES (?, ?, 'journey.created', ?, 'usr_rm_001', 'web', 'Journey created', '{}', ?)", (e, T, now, '{"journeyId":"%s","customerId":"%s"}' % (j, cus)))
        return
    c.execute("INSERT INTO users (tenant_id, id, created_at, updated_at) VALUES (?, 'usr_rm_001', ?, ?) ON CONFLICT (tenant_id, id) DO NOTHING", (T, now, now))
    c.execute("INSERT INTO event_chains (tenant_id, chain_key, length, head_hash) VALUES (?, ?, 0, ?) ON CONFLICT (tenant_id, chain_key) DO UPDATE SET length = event_chains.length RETURNING length, head_hash", (T, chain, '0' * 64)).fetchall()
    h = secrets.token_hex(32)
    seq = c.execute("INSERT INTO events (id, tenant_id, event_type, occurred_at, actor_id, channel, summary, metadata, payload, chain_key, chain_seq, prev_hash, hash) VALUES (?, ?, 'journey.created', ?, 'usr_rm_001', 'web', 'Journey created', '{}', ?, ?, 1, ?, ?) RETURNING seq", (e, T, now, '{"journeyId":"%s","customerId":"%s"}' % (j, cus), chain, '0' * 64, h)).fetchone()[0]
    c.execute("UPDATE event_chains SET length = 1, head_hash = ? WHERE tenant_id = ? AND chain_key = ?", (h, T, chain))
    for (t, i) in (('journey', j), ('customer', cus)):
        c.execute("INSERT INTO entity_event_counts (tenant_id, entity_type, entity_id, events) VALUES (?, ?, ?, 1) ON CONFLICT (tenant_id, entity_type, entity_id) DO UPDATE SET events = events + 1", (T, t, i))
        c.execute("INSERT INTO event_entities (tenant_id, entity_type, entity_id, occurred_at, event_seq, event_type) VALUES (?, ?, ?, ?, ?, 'journey.created')", (T, t, i, now, seq))
    day = now // 86400000
    c.execute("INSERT INTO channel_daily (tenant_id, day, channel, chain_key, transactions) VALUES (?, ?, 'web', ?, 1) ON CONFLICT (tenant_id, day, channel, chain_key) DO UPDATE SET transactions = transactions + 1", (T, day, chain))
    c.execute("INSERT INTO journey_touches (tenant_id, journey_id, channel, day) VALUES (?, ?, 'web', ?) ON CONFLICT (tenant_id, journey_id) DO UPDATE SET channel = excluded.channel, day = excluded.day", (T, j, day))


n = 0
started = time.monotonic()
stop = started + args.seconds
while time.monotonic() < stop:
    c.execute("BEGIN IMMEDIATE")
    for _ in range(args.batch):
        create(n)
        n += 1
    c.execute("COMMIT")
seconds = time.monotonic() - started
print(json.dumps({"mode": mode, "batch": args.batch, "creates": n, "seconds": seconds, "per_s": n / seconds}))
