-- Staff identity (issue 21): each tenant's OpenID Connect provider, and what each event and
-- approval decision proves about its actor.
CREATE TABLE identity_providers (
    tenant_id     TEXT PRIMARY KEY REFERENCES tenants(id),
    issuer        TEXT NOT NULL,
    audience      TEXT NOT NULL,
    user_claim    TEXT NOT NULL,
    roles_claim   TEXT,
    actor_tokens  TEXT NOT NULL,
    jwks_uri      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- The proof of an event's actor, as JSON text ({"verified":true,"issuer":...,"subject":...,
-- "tokenId":...}), hashed into the event's link; NULL when the actor was only named.
ALTER TABLE events ADD COLUMN actor_proof TEXT;

-- The same proof for the person who made a decision.
ALTER TABLE approval_decisions ADD COLUMN actor_proof TEXT;
