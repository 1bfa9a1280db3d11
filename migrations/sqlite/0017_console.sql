-- The operator console (issue 24): staff sign in through the tenant's own OpenID Connect
-- provider, as the public client `console_client_id` (authorization code with PKCE), at the
-- endpoints its discovery document named when the settings were put.
ALTER TABLE identity_providers ADD COLUMN console_client_id TEXT;
ALTER TABLE identity_providers ADD COLUMN authorization_endpoint TEXT;
ALTER TABLE identity_providers ADD COLUMN token_endpoint TEXT;
ALTER TABLE identity_providers ADD COLUMN console_scope TEXT;

-- A sign-in under way: the browser holds `state` (also in a cookie), the server the PKCE
-- verifier. Used once, and only within ten minutes.
CREATE TABLE console_sign_ins (
    state_hash   TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    verifier     TEXT NOT NULL,
    return_to    TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX console_sign_ins_age ON console_sign_ins(created_at);

-- A signed-in member of staff. The browser's cookie holds the token, the database only its
-- SHA-256; the proof is the one every change the person makes records (actor_proof).
CREATE TABLE console_sessions (
    token_hash    TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    user_id       TEXT NOT NULL,
    issuer        TEXT NOT NULL,
    subject       TEXT,
    token_id      TEXT,
    csrf          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions(expires_at);
