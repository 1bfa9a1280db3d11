-- Every row a journey create writes today, in one statement (one round trip, its own commit):
-- the journey, its assignee in the directory, its new customer, the customer's chain head, the
-- event, its entity rows and their counts, the channel-day counter and the journey's touch.
\set r random(1, 999999999999)
WITH ids AS (
    SELECT 'jrn_' || lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0') || md5(random()::text) AS jid,
           'evt_' || lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0') || md5(random()::text) AS eid,
           'ent_new_' || :client_id || '_' || :r AS cid,
           md5(random()::text) || md5(random()::text) AS hash
),
j AS (INSERT INTO journeys (tenant_id, id, template_id, template_version, customer_id, channel, status, current_step_index, current_step_status, assignee_id, assignee_type, priority, due_at, context, outcome, notes, approval_id, row_version, created_at, updated_at)
      SELECT 'ten_default', ids.jid, t.id, t.version, ids.cid, 'web', 'created', 0, 'pending', 'usr_rm_001', 'user', 'normal', 1706202000000, '{"productType":"murabaha","requestedAmount":{"amount":2000000,"currency":"SAR"}}', NULL, NULL, NULL, 1, 1764800000000, 1764800000000
      FROM journey_templates t, ids WHERE t.tenant_id = 'ten_default' AND t.id = 'tmpl_bench_run' AND t.status = 'active' RETURNING template_version),
u AS (INSERT INTO users (tenant_id, id, created_at, updated_at) VALUES ('ten_default', 'usr_rm_001', 1, 1) ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id),
cu AS (INSERT INTO customers (tenant_id, id, created_at, updated_at) SELECT 'ten_default', ids.cid, 1, 1 FROM ids ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id),
ch AS (INSERT INTO event_chains (tenant_id, chain_key, length, head_hash) SELECT 'ten_default', 'customer:' || ids.cid, 1, ids.hash FROM ids ON CONFLICT (tenant_id, chain_key) DO UPDATE SET length = event_chains.length + 1 RETURNING length),
v(t, i) AS (SELECT 'journey', ids.jid FROM ids UNION ALL SELECT 'customer', ids.cid FROM ids),
e AS (INSERT INTO events (id, tenant_id, event_type, occurred_at, actor_id, channel, summary, metadata, payload, chain_key, chain_seq, prev_hash, hash)
      SELECT ids.eid, 'ten_default', 'journey.created', 1764800000000, 'usr_rm_001', 'web', 'Journey created', '{}', '{"journeyId":"x","templateId":"tmpl_bench_run","customerId":"c","channel":"web","assigneeId":"usr_rm_001"}', 'customer:' || ids.cid, 1, repeat('0', 64), ids.hash FROM ids RETURNING seq),
n AS (INSERT INTO entity_event_counts (tenant_id, entity_type, entity_id, events) SELECT 'ten_default', v.t, v.i, 1 FROM v ON CONFLICT (tenant_id, entity_type, entity_id) DO UPDATE SET events = entity_event_counts.events + 1),
x AS (INSERT INTO event_entities (tenant_id, event_seq, occurred_at, event_type, entity_type, entity_id) SELECT 'ten_default', e.seq, 1764800000000, 'journey.created', v.t, v.i FROM e, v RETURNING event_seq),
c AS (INSERT INTO channel_daily (tenant_id, day, channel, chain_key, transactions) SELECT 'ten_default', 20426, 'web', 'customer:' || ids.cid, 1 FROM ids ON CONFLICT (tenant_id, day, channel, chain_key) DO UPDATE SET transactions = channel_daily.transactions + 1),
tt AS (INSERT INTO journey_touches (tenant_id, journey_id, channel, day) SELECT 'ten_default', ids.jid, 'web', 20426 FROM ids)
SELECT (SELECT count(*) FROM x), (SELECT count(*) FROM j), (SELECT count(*) FROM cu), (SELECT count(*) FROM ch), (SELECT count(*) FROM u);
