-- Fewer pages written per event (issue 23): an entity's index of its events is its primary
-- key, in the order the timeline reads it (time, then the order of recording) and carrying
-- the event type, instead of a primary key and a second index beside it.

ALTER TABLE event_entities DROP CONSTRAINT event_entities_pkey;
DROP INDEX event_entities_time;
ALTER TABLE event_entities ADD PRIMARY KEY
    (tenant_id, entity_type, entity_id, occurred_at, event_seq) INCLUDE (event_type);
