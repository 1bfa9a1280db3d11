-- Tamper-evident timeline: every event is a link of a hash chain (one chain per customer, or per
-- root entity without a customer), and the entity index carries the event type for filtering.
-- Customers and their preferences.

ALTER TABLE events ADD COLUMN chain_key TEXT;
ALTER TABLE events ADD COLUMN chain_seq INTEGER;
ALTER TABLE events ADD COLUMN prev_hash TEXT;
ALTER TABLE events ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX events_chain ON events(tenant_id, chain_key, chain_seq);

CREATE TABLE event_chains (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    chain_key   TEXT NOT NULL,
    length      INTEGER NOT NULL,
    head_hash   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, chain_key)
);

ALTER TABLE event_entities ADD COLUMN event_type TEXT NOT NULL DEFAULT '';
CREATE INDEX event_entities_time
    ON event_entities(tenant_id, entity_type, entity_id, occurred_at, event_seq, event_type);

-- How many events concern each entity: the unfiltered timeline's total without counting.
CREATE TABLE entity_event_counts (
    tenant_id   TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    events      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, entity_type, entity_id)
);
INSERT INTO entity_event_counts (tenant_id, entity_type, entity_id, events)
    SELECT tenant_id, entity_type, entity_id, COUNT(*) FROM event_entities
    GROUP BY tenant_id, entity_type, entity_id;
UPDATE event_entities SET event_type =
    (SELECT e.event_type FROM events e WHERE e.seq = event_entities.event_seq);

CREATE TABLE customers (
    tenant_id            TEXT NOT NULL REFERENCES tenants(id),
    id                   TEXT NOT NULL,
    name                 TEXT,
    email                TEXT,
    phone                TEXT,
    notification_channel TEXT,
    preferred_language   TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
