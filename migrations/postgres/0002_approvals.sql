-- Staff directory, delegations of authority, approvals, and the approval a journey step waits on.

CREATE TABLE users (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    name        TEXT,
    email       TEXT,
    phone       TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX users_list ON users(tenant_id, created_at);

CREATE TABLE user_roles (
    tenant_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    role        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, role, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id)
);
CREATE INDEX user_roles_user ON user_roles(tenant_id, user_id);

CREATE TABLE teams (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    name        TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE team_members (
    tenant_id   TEXT NOT NULL,
    team_id     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, team_id, user_id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams(tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id)
);
CREATE INDEX team_members_user ON team_members(tenant_id, user_id);

CREATE TABLE delegations (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    delegator_id    TEXT NOT NULL,
    delegatee_id    TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    max_amount      BIGINT,
    max_currency    TEXT,
    valid_from      BIGINT NOT NULL,
    valid_to        BIGINT NOT NULL,
    reason          TEXT,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    revoked_by      TEXT,
    revoke_reason   TEXT
);
CREATE INDEX delegations_list ON delegations(tenant_id, created_at);
CREATE INDEX delegations_pair ON delegations(tenant_id, delegator_id, delegatee_id);
CREATE INDEX delegations_delegatee ON delegations(tenant_id, delegatee_id);

CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    entity_type     TEXT NOT NULL,
    entity_id       TEXT NOT NULL,
    approval_type   TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    approval_data   TEXT NOT NULL,
    amount          BIGINT,
    currency        TEXT,
    expires_at      BIGINT,
    status          TEXT NOT NULL,
    journey_id      TEXT REFERENCES journeys(id),
    step_id         TEXT,
    step_index      BIGINT,
    row_version     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    decided_at      BIGINT
);
CREATE INDEX approvals_list ON approvals(tenant_id, created_at);
CREATE INDEX approvals_requester ON approvals(tenant_id, requested_by, created_at);
CREATE INDEX approvals_open ON approvals(status, expires_at);

CREATE TABLE approval_approvers (
    tenant_id   TEXT NOT NULL,
    approval_id TEXT NOT NULL REFERENCES approvals(id),
    position    BIGINT NOT NULL,
    user_id     TEXT NOT NULL,
    role        TEXT,
    required    BIGINT NOT NULL,
    PRIMARY KEY (approval_id, user_id)
);
CREATE INDEX approval_approvers_user ON approval_approvers(tenant_id, user_id);

CREATE TABLE approval_decisions (
    approval_id    TEXT NOT NULL REFERENCES approvals(id),
    slot_user_id   TEXT NOT NULL,
    decided_by     TEXT NOT NULL,
    on_behalf_of   TEXT,
    delegation_id  TEXT REFERENCES delegations(id),
    decision       TEXT NOT NULL,
    comment        TEXT,
    decided_at     BIGINT NOT NULL,
    PRIMARY KEY (approval_id, slot_user_id)
);

ALTER TABLE journeys ADD COLUMN approval_id TEXT;
