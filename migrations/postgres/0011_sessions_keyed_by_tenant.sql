-- A session id is the client's choice (`session_id` on POST /sessions), so it is unique
-- within its tenant only: tenant B may use `sess_web_123` while tenant A holds it (issue 20).
-- The handoffs name their source session by tenant and id.

ALTER TABLE handoffs DROP CONSTRAINT handoffs_source_session_id_fkey;
ALTER TABLE channel_sessions DROP CONSTRAINT channel_sessions_pkey;
ALTER TABLE channel_sessions ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE handoffs ADD FOREIGN KEY (tenant_id, source_session_id)
    REFERENCES channel_sessions(tenant_id, id);
CREATE INDEX handoffs_source ON handoffs(tenant_id, source_session_id);
