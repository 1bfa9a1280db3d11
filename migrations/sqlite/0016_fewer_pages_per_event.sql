-- Fewer pages written per event (issue 23): an entity's index of its events, the per-entity
-- event counts and the chains' heads each become one B-tree keyed by what they are read by
-- (WITHOUT ROWID), instead of a table with one index or two beside it. The entity index is
-- keyed in the order the timeline reads it (time, then the order of recording) and carries
-- the event type, so a page, a date range and the type filter are ranges of it alone.

CREATE TABLE event_entities_new (
    tenant_id   TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    event_seq   INTEGER NOT NULL REFERENCES events(seq),
    event_type  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, entity_type, entity_id, occurred_at, event_seq)
) WITHOUT ROWID;
INSERT INTO event_entities_new
    (tenant_id, entity_type, entity_id, occurred_at, event_seq, event_type)
    SELECT tenant_id, entity_type, entity_id, occurred_at, event_seq, event_type
    FROM event_entities;
DROP TABLE event_entities;
ALTER TABLE event_entities_new RENAME TO event_entities;

CREATE TABLE entity_event_counts_new (
    tenant_id   TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    events      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, entity_type, entity_id)
) WITHOUT ROWID;
INSERT INTO entity_event_counts_new (tenant_id, entity_type, entity_id, events)
    SELECT tenant_id, entity_type, entity_id, events FROM entity_event_counts;
DROP TABLE entity_event_counts;
ALTER TABLE entity_event_counts_new RENAME TO entity_event_counts;

CREATE TABLE event_chains_new (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    chain_key   TEXT NOT NULL,
    length      INTEGER NOT NULL,
    head_hash   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, chain_key)
) WITHOUT ROWID;
INSERT INTO event_chains_new (tenant_id, chain_key, length, head_hash)
    SELECT tenant_id, chain_key, length, head_hash FROM event_chains;
DROP TABLE event_chains;
ALTER TABLE event_chains_new RENAME TO event_chains;
