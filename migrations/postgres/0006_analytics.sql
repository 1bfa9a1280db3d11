-- Channel analytics (seed 000: Get Channel Activity), kept per UTC day (days since 1970-01-01)
-- as changes happen. Derived figures: no foreign keys, nothing reads them but analytics.

-- API calls that changed something, per channel, counted apart per chain (the chain of the
-- call's first change, see events::chain): a call holds its chain's lock already, so counting
-- never makes calls on other chains wait on one hot row.
CREATE TABLE channel_daily (
    tenant_id     TEXT NOT NULL,
    day           BIGINT NOT NULL,
    channel       TEXT NOT NULL,
    chain_key     TEXT NOT NULL,
    transactions  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, channel, chain_key)
);

-- Customers with a session open on a channel that day.
CREATE TABLE channel_daily_users (
    tenant_id    TEXT NOT NULL,
    day          BIGINT NOT NULL,
    channel      TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, day, channel, customer_id)
);

-- The channel and day of each journey's last touch.
CREATE TABLE journey_touches (
    tenant_id   TEXT NOT NULL,
    journey_id  TEXT NOT NULL,
    channel     TEXT NOT NULL,
    day         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, journey_id)
);

-- Each time a journey was touched from another channel than the time before: the days of the
-- two touches. A journey is cross-channel in a window when a switch lies wholly inside it.
CREATE TABLE journey_switches (
    tenant_id   TEXT NOT NULL,
    from_day    BIGINT NOT NULL,
    to_day      BIGINT NOT NULL,
    journey_id  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, from_day, to_day, journey_id)
);

-- Sessions not yet ended, by tenant and last activity (the open ones analytics adds).
CREATE INDEX channel_sessions_open ON channel_sessions(tenant_id, last_seen_at) WHERE ended_at IS NULL;
