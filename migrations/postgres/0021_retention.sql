-- Retention and erasure (issue 26).
--
-- A tenant's retention periods, in days (NULL: kept until the tenant sets a period), for what
-- the retention sweep deletes: webhook messages with their attempts (once delivered or failed;
-- never kept without bound: 30 days unless the tenant says otherwise), notifications with their
-- deliveries (once nothing is pending), ended sessions with their handoffs, and the documents of
-- onboardings that finished or expired. Events, journeys and approvals are the bank's record
-- and are never swept.
CREATE TABLE retention_policies (
    tenant_id                  TEXT PRIMARY KEY REFERENCES tenants(id),
    webhook_messages_days      BIGINT NOT NULL,
    notifications_days         BIGINT,
    ended_sessions_days        BIGINT,
    onboarding_documents_days  BIGINT,
    -- Idempotency records: their replay window and how long they are kept, in hours (at
    -- least 24); NULL: the configuration's idempotency_ttl_hours.
    idempotency_hours          BIGINT,
    updated_at                 BIGINT NOT NULL
);

-- Work one node at a time does: the node holding a lease until `until` (ms) does it.
CREATE TABLE worker_leases (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    until   BIGINT NOT NULL
);

-- The sweep reads each tenant's oldest final messages.
CREATE INDEX webhook_messages_age ON webhook_messages(tenant_id, created_at);

-- An event's content (summary, metadata, payload) stored so that it can be erased without
-- breaking its chain: its link (`omnirail.event.v4`) hashes a salted commitment to the content
-- (content_hash), and the salt is kept beside it. Erasing a customer removes the content and
-- the salt (erased_at), and keeps the commitment, which still verifies the chain and no longer
-- reveals anything. Events recorded before have no commitment (their links hash the content).
ALTER TABLE events ADD COLUMN content_salt TEXT;
ALTER TABLE events ADD COLUMN content_hash TEXT;
ALTER TABLE events ADD COLUMN erased_at BIGINT;

-- What every process holds of an endpoint's messages (their leases), counted at each claim:
-- together the processes never hold more than the per-endpoint limit.
CREATE INDEX webhook_messages_held ON webhook_messages(endpoint_id, lease_until)
    WHERE lease_until IS NOT NULL;
