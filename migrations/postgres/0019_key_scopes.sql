-- API keys an organisation manages (issue 26).
--
-- A key carries its scopes, space-separated (`admin`, `full`, `read`, `journeys:write`,
-- ...; see src/auth/scopes.rs). Keys issued before this migration could do everything,
-- configuration included, so they keep that: `admin`.
--   expires_at     after it the key is refused; NULL: never
--   last_used_at   the last request made with it, to the minute (each node writes it at most
--                  once a minute per key, never while idle)
--   created_by     the key that created it through the API; NULL when the CLI or the
--                  bootstrap did
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
ALTER TABLE api_keys ADD COLUMN created_by TEXT;

-- The key whose call made the change, by id (never the key): part of the event's link in its
-- hash chain (`omnirail.event.v3`). NULL for changes made by a customer's session token, by
-- the console for a signed-in person, or by the server's own workers.
ALTER TABLE events ADD COLUMN key_id TEXT;
