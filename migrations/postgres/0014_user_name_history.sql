-- The timeline shows each event's actor by the name they had when it happened (issue 20):
-- every name a user is given is kept with the instant it took effect. Names given before this
-- migration are known only as they are now, so they hold from the beginning.
CREATE TABLE user_names (
    tenant_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    valid_from  BIGINT NOT NULL,
    name        TEXT,
    PRIMARY KEY (tenant_id, user_id, valid_from),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id)
);

INSERT INTO user_names (tenant_id, user_id, valid_from, name)
SELECT tenant_id, id, 0, name FROM users WHERE name IS NOT NULL;
