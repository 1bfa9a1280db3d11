//! Configuration: defaults, then the TOML file given with `--config`, then `OMNIRAIL_*`
//! environment variables, then command-line flags. Secrets never reach logs or `Debug`.

use std::fmt;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything `serve` and the admin commands read.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: String,
    /// `sqlite://FILE` or `postgres://...`.
    pub database_url: DatabaseUrl,
    /// Most connections one process opens to the database.
    pub db_max_connections: u32,
    /// Seconds a request waits for a database connection before answering 503 `overloaded`.
    pub db_acquire_timeout_secs: u64,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `omnirail=debug,info`.
    pub log_level: String,
    /// Largest request body accepted, in bytes; larger is 413.
    pub max_body_bytes: usize,
    /// How long an `Idempotency-Key` and its first answer are kept, in hours (at least 24).
    pub idempotency_ttl_hours: u64,
    /// Seconds between sweeps that close approval requests past their expiry.
    pub approval_sweep_secs: u64,
    /// Seconds between sweeps that announce journeys' passed deadlines and approvals'
    /// reminders (`docs/sla.md`).
    pub deadline_sweep_secs: u64,
    /// How often the retention sweep looks for what outlived its tenant's retention period
    /// (and for expired idempotency records).
    pub retention_sweep_secs: u64,
    /// A channel session idle longer than this many seconds is ended.
    pub session_idle_timeout_secs: u64,
    /// Seconds a handoff token stays valid.
    pub handoff_ttl_secs: u64,
    /// Seconds between heartbeats on an idle event stream.
    pub stream_heartbeat_secs: u64,
    /// Seconds an onboarding session (and every session token of it) stays valid.
    pub onboarding_token_ttl_secs: u64,
    /// Where uploaded documents are kept: a folder, or `s3://bucket[/prefix]` (credentials
    /// from the standard `AWS_*` environment variables).
    pub document_store: String,
    /// Largest document accepted, in bytes; larger is 413.
    pub max_document_bytes: usize,
    /// The URL at which providers reach this service (`https://omnirail.bank.example`); with
    /// it, Twilio is asked for status callbacks, and deliveries can become `delivered`.
    pub public_base_url: Option<String>,
    /// Web origins (`https://onboard.bank.example`) whose pages may call the API from a
    /// browser (CORS): the customer's onboarding pages with their session token, a staff
    /// application. Empty (the default): no cross-origin call is allowed.
    pub cors_allowed_origins: Vec<String>,
    /// Allow providers over plain SMTP or `http://` URLs (a local relay, a test server).
    pub notification_allow_insecure_providers: bool,
    /// Allow providers at loopback, private, link-local or metadata addresses, or at names that
    /// can only be local (a relay inside the bank's network, a test server). Off, a tenant's
    /// provider settings cannot reach inside the network.
    pub notification_allow_private_providers: bool,
    /// Attempts per delivery before a transient failure becomes final.
    pub notification_max_attempts: u32,
    /// Wait before the second attempt, in milliseconds; doubled at each retry (with jitter,
    /// at most an hour).
    pub notification_retry_base_ms: u64,
    /// Longest the delivery worker sleeps between looks for due deliveries, in milliseconds.
    pub notification_poll_ms: u64,
    /// How long a process holds the deliveries it claims, in milliseconds: a process that dies
    /// mid-send leaves them to another once this runs out. Shorter than a send can take (15 s
    /// per HTTP call or SMTP step), a slow send may be taken again and sent twice.
    pub notification_lease_ms: u64,
    /// Webhook delivery: the `[webhooks]` table of the file, `OMNIRAIL_WEBHOOKS__*` variables.
    pub webhooks: WebhookConfig,
    /// Bounds on what one client may hold or ask: the `[limits]` table, `OMNIRAIL_LIMITS__*`.
    pub limits: LimitsConfig,
    /// Staff identity through each tenant's OpenID Connect provider: the `[identity]` table,
    /// `OMNIRAIL_IDENTITY__*` variables (docs/identity.md).
    pub identity: IdentityConfig,
    /// The operator console's sessions: the `[console]` table, `OMNIRAIL_CONSOLE__*` variables
    /// (docs/console.md).
    pub console: ConsoleConfig,
    /// The key-encryption key of the secrets at rest: the `[secrets]` table,
    /// `OMNIRAIL_SECRETS__*` variables (docs/security.md).
    pub secrets: SecretsConfig,
}

/// Where the key-encryption key of the secrets at rest comes from (`secrets`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// A file holding the KEK, base64 of 32 bytes (`omnirail secrets generate-kek`); default
    /// `omnirail.kek`, created on the first start of a database that has no secrets yet.
    pub kek_file: String,
    /// The KEK itself, base64 (from a secret store, as `OMNIRAIL_SECRETS__KEK`): instead of
    /// `kek_file`.
    pub kek: Option<Hidden>,
    /// Earlier KEKs, still accepted for reading while a rotation is under way.
    pub previous_kek_files: Vec<String>,
    pub previous_keks: Vec<Hidden>,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            kek_file: "omnirail.kek".into(),
            kek: None,
            previous_kek_files: Vec::new(),
            previous_keks: Vec::new(),
        }
    }
}

/// A value of the configuration that is a secret: never shown by `Debug`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Hidden(pub String);

impl Hidden {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The operator console (`/console`): how long a signed-in member of staff stays signed in,
/// and who sees its Administration page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// A session unused for this many seconds ends (default 30 minutes).
    pub idle_timeout_secs: u64,
    /// A session ends this many seconds after sign-in, used or not (default 8 hours).
    pub max_age_secs: u64,
    /// The directory role whose members see the Administration page (default `admin`).
    pub admin_role: String,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            max_age_secs: 8 * 3600,
            admin_role: "admin".into(),
        }
    }
}

/// How tenants' identity providers are reached and their tokens checked.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Accept `http://` issuers (a test provider, a local Keycloak); otherwise only `https://`.
    pub allow_http: bool,
    /// Reach providers at loopback, private, link-local or metadata addresses, or at names that
    /// can only be local (a provider inside the bank's network, a test provider). Off, a
    /// tenant's provider settings cannot reach inside the network.
    pub allow_private_providers: bool,
    /// Seconds of clock difference allowed when checking a token's `exp` and `nbf`.
    pub leeway_secs: u64,
    /// Least seconds between two fetches of one tenant's signing keys: a token naming a key
    /// not yet known fetches them again, at most this often.
    pub key_refresh_secs: u64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            allow_http: false,
            allow_private_providers: false,
            leeway_secs: 60,
            key_refresh_secs: 60,
        }
    }
}

/// Bounds that keep one client from exhausting the server.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests per second one API key may make, sustained; more is 429 `rate_limited` with
    /// `Retry-After`. 0 (the default) sets no limit.
    pub rate_per_second: u32,
    /// Requests one API key may make at once above the sustained rate; 0 means as many as
    /// `rate_per_second`.
    pub rate_burst: u32,
    /// Seconds a request may take, from its head to its answer's head (streams then run on);
    /// longer is 503 `request_timeout`, and what it had not committed is rolled back.
    pub request_timeout_secs: u64,
    /// Seconds a request's head may take from its first byte (the first request's, from the
    /// connection's opening); then the connection is closed (slow clients cannot hold
    /// connections).
    pub header_read_timeout_secs: u64,
    /// Largest request head (request line and headers) in bytes, at least 4096; larger is 431
    /// `headers_too_large`. A head over twice this is refused by the HTTP layer before it is
    /// read whole: 431 without a body, and the connection closed.
    pub max_header_bytes: usize,
    /// Most connections open at once; further clients wait in the listen queue.
    pub max_connections: usize,
    /// Seconds a connection with no request under way stays open after its last request
    /// ended (or after it opened), HTTP/1 and HTTP/2 alike; then it is closed gracefully
    /// (HTTP/2: `GOAWAY`). Keep load balancers' idle timeouts below it.
    pub keep_alive_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            rate_per_second: 0,
            rate_burst: 0,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            max_header_bytes: 16 * 1024,
            max_connections: 10_000,
            keep_alive_secs: 75,
        }
    }
}

/// How webhooks are delivered.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Accept `http://` endpoint URLs (a local receiver, a test); otherwise only `https://`.
    pub allow_http: bool,
    /// Deliver to loopback, private, link-local and metadata addresses (tests, a bank's own
    /// network); otherwise such targets are refused when set and at every attempt.
    pub allow_private_targets: bool,
    /// Waits after each failed attempt, in milliseconds; after the last, the message is
    /// `failed`. Default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (eight attempts in all).
    pub retry_schedule_ms: Vec<u64>,
    /// An attempt not answered 2xx within this many milliseconds has failed.
    pub timeout_ms: u64,
    /// An endpoint whose every attempt has failed for this many seconds is disabled.
    pub disable_after_secs: u64,
    /// Seconds both the old and the new secret sign messages after a rotation.
    pub rotation_overlap_secs: u64,
    /// Messages one process holds at once (being sent, or claimed and waiting for their
    /// endpoint's turn), over all endpoints; 0 runs no delivery worker in this process (an
    /// API-only node).
    pub max_in_flight: usize,
    /// Messages of one endpoint held, and so sent, at once by all processes together.
    pub max_in_flight_per_endpoint: usize,
    /// How long a claimed message is held by the process that claimed it, in milliseconds
    /// (more than three times `timeout_ms`); a process that dies leaves its messages to the
    /// others after this.
    pub lease_ms: u64,
    /// Longest the worker sleeps between looks for due messages, in milliseconds.
    pub poll_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_http: false,
            allow_private_targets: false,
            retry_schedule_ms: [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
                .iter()
                .map(|s| s * 1_000)
                .collect(),
            timeout_ms: 15_000,
            disable_after_secs: 5 * 24 * 3600,
            rotation_overlap_secs: 24 * 3600,
            max_in_flight: 256,
            max_in_flight_per_endpoint: 16,
            lease_ms: 60_000,
            poll_ms: 500,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: DatabaseUrl("sqlite://omnirail.db".into()),
            db_max_connections: 16,
            db_acquire_timeout_secs: 5,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            max_body_bytes: 1024 * 1024,
            idempotency_ttl_hours: 24,
            approval_sweep_secs: 10,
            deadline_sweep_secs: 1,
            retention_sweep_secs: 300,
            session_idle_timeout_secs: 1800,
            handoff_ttl_secs: 300,
            stream_heartbeat_secs: 15,
            onboarding_token_ttl_secs: 24 * 3600,
            document_store: "./omnirail-documents".into(),
            max_document_bytes: 10 * 1024 * 1024,
            public_base_url: None,
            cors_allowed_origins: Vec::new(),
            notification_allow_insecure_providers: false,
            notification_allow_private_providers: false,
            notification_max_attempts: 8,
            notification_retry_base_ms: 5_000,
            notification_poll_ms: 500,
            notification_lease_ms: 120_000,
            webhooks: WebhookConfig::default(),
            limits: LimitsConfig::default(),
            identity: IdentityConfig::default(),
            console: ConsoleConfig::default(),
            secrets: SecretsConfig::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Values given on the command line; only those present override the other sources.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// The SDKs' own variables (`OMNIRAIL_API_KEY`, `OMNIRAIL_BASE_URL`), which the server knows
/// and ignores.
const CLIENT_VARIABLES: [&str; 2] = ["api_key", "base_url"];

impl Config {
    /// `session_idle_timeout_secs`, in milliseconds: how long a session may sit unused before
    /// it ends (the sessions' sweep, and channel analytics counting the sessions open).
    pub fn session_idle_ms(&self) -> i64 {
        i64::try_from(self.session_idle_timeout_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000)
    }

    /// Layers the sources in order; a later source wins.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(format!("config file {} does not exist", path.display()));
            }
            fig = fig.merge(Toml::file(path));
        }
        fig = fig
            // `OMNIRAIL_TEST_*` belong to the test harness, and `OMNIRAIL_API_KEY` and
            // `OMNIRAIL_BASE_URL` to the SDKs (a shell set up for a client must not stop the
            // server from starting), not to the server.
            .merge(
                Env::prefixed("OMNIRAIL_")
                    .filter(|key| {
                        let key = key.as_str().to_ascii_lowercase();
                        !key.starts_with("test_") && !CLIENT_VARIABLES.contains(&key.as_str())
                    })
                    .split("__"),
            )
            .merge(Serialized::defaults(overrides));
        let config: Config = fig.extract().map_err(|e| e.to_string())?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let c = &self.console;
        if c.idle_timeout_secs < 60 || c.max_age_secs < c.idle_timeout_secs {
            return Err(
                "console: idle_timeout_secs must be at least 60, and max_age_secs at least as long"
                    .into(),
            );
        }
        if c.admin_role.is_empty() {
            return Err("console: admin_role must not be empty".into());
        }
        if self.idempotency_ttl_hours < 24 {
            return Err("idempotency_ttl_hours must be at least 24".into());
        }
        if self.db_max_connections < 2 {
            return Err("db_max_connections must be at least 2".into());
        }
        if self.max_body_bytes == 0 {
            return Err("max_body_bytes must be positive".into());
        }
        if self.max_document_bytes == 0 || self.onboarding_token_ttl_secs == 0 {
            return Err("max_document_bytes and onboarding_token_ttl_secs must be positive".into());
        }
        if self.notification_max_attempts == 0 || self.notification_retry_base_ms == 0 {
            return Err(
                "notification_max_attempts and notification_retry_base_ms must be positive".into(),
            );
        }
        if self.notification_lease_ms < 1_000 {
            return Err("notification_lease_ms must be at least 1000".into());
        }
        let w = &self.webhooks;
        // A claimed message may wait for two rounds of its endpoint's sends before its own.
        if w.timeout_ms == 0
            || w.lease_ms <= w.timeout_ms.saturating_mul(3)
            || w.max_in_flight_per_endpoint == 0
        {
            return Err(
                "webhooks: timeout_ms and max_in_flight_per_endpoint must be positive, \
                        and lease_ms longer than three times timeout_ms"
                    .into(),
            );
        }
        let l = &self.limits;
        if l.request_timeout_secs == 0
            || l.header_read_timeout_secs == 0
            || l.keep_alive_secs == 0
            || l.max_header_bytes < 4096
            || !(1..=1_000_000).contains(&l.max_connections)
        {
            return Err(
                "limits: request_timeout_secs, header_read_timeout_secs and keep_alive_secs must \
                 be positive, \
                 max_connections between 1 and 1,000,000, and max_header_bytes at least 4096"
                    .into(),
            );
        }
        if self.identity.leeway_secs > 300 || self.identity.key_refresh_secs == 0 {
            return Err(
                "identity: leeway_secs must be at most 300 and key_refresh_secs positive".into(),
            );
        }
        for origin in &self.cors_allowed_origins {
            let parsed = url::Url::parse(origin).ok();
            let fits = parsed.as_ref().is_some_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.path() == "/"
                    && !origin.ends_with('/')
                    && u.query().is_none()
                    && u.username().is_empty()
            });
            if !fits {
                return Err(format!(
                    "cors_allowed_origins: {origin:?} is not an origin such as https://app.bank.example"
                ));
            }
        }
        if let Some(url) = &self.public_base_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err("public_base_url must be an http(s) URL".into());
        }
        Ok(())
    }
}

/// A database URL whose password is hidden from `Debug` and `Display`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`, fit for logs.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://") else {
            return url.clone();
        };
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => format!(
                "{}{}:***{}",
                &url[..scheme_end + 3],
                &authority[..colon],
                &rest[at..]
            ),
            _ => url.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_never_shows_in_debug() {
        let url = DatabaseUrl("postgres://app:s3cret@db:5432/omni".into());
        assert_eq!(format!("{url:?}"), "\"postgres://app:***@db:5432/omni\"");
        let config = Config {
            database_url: url,
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn url_without_password_is_unchanged() {
        let url = DatabaseUrl("postgres://postgres@127.0.0.1/x".into());
        assert_eq!(url.redacted(), "postgres://postgres@127.0.0.1/x");
        assert_eq!(
            DatabaseUrl("sqlite://a.db".into()).redacted(),
            "sqlite://a.db"
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own Jail error type
    fn flags_override_environment_which_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "omni.toml",
                "listen = \"0.0.0.0:1\"\nlog_level = \"debug\"\nmax_body_bytes = 10",
            )?;
            jail.set_env("OMNIRAIL_LISTEN", "0.0.0.0:2");
            let overrides = Overrides {
                database_url: Some("sqlite://x.db".into()),
                ..Overrides::default()
            };
            let c = Config::load(Some(Path::new("omni.toml")), &overrides).unwrap();
            assert_eq!(c.listen, "0.0.0.0:2");
            assert_eq!(c.log_level, "debug");
            assert_eq!(c.max_body_bytes, 10);
            assert_eq!(c.database_url.expose(), "sqlite://x.db");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own Jail error type
    fn webhook_settings_come_from_a_table_and_double_underscore_variables() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "omni.toml",
                "[webhooks]\nallow_http = true\nretry_schedule_ms = [10, 20]\n",
            )?;
            jail.set_env("OMNIRAIL_WEBHOOKS__MAX_IN_FLIGHT", "0");
            jail.set_env("OMNIRAIL_DB_MAX_CONNECTIONS", "4");
            let c = Config::load(Some(Path::new("omni.toml")), &Overrides::default()).unwrap();
            assert!(c.webhooks.allow_http);
            assert!(!c.webhooks.allow_private_targets);
            assert_eq!(c.webhooks.retry_schedule_ms, [10, 20]);
            assert_eq!(c.webhooks.max_in_flight, 0);
            assert_eq!(c.webhooks.timeout_ms, 15_000);
            assert_eq!(c.db_max_connections, 4);
            jail.set_env("OMNIRAIL_WEBHOOKS__LEASE_MS", "1000");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(err.contains("lease_ms"), "{err}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own Jail error type
    fn the_sdks_variables_are_ignored_and_other_unknown_ones_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("OMNIRAIL_API_KEY", "omk_for_the_sdk");
            jail.set_env("OMNIRAIL_BASE_URL", "http://127.0.0.1:8080");
            jail.set_env("OMNIRAIL_TEST_ANYTHING", "1");
            assert_eq!(
                Config::load(None, &Overrides::default()).unwrap(),
                Config::default()
            );
            jail.set_env("OMNIRAIL_API_KEYS", "x");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(err.contains("api_keys"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn cors_origins_must_be_origins() {
        for bad in [
            "onboard.bank.example",
            "https://a.example/",
            "https://a.example/x",
            "ftp://a.example",
            "*",
        ] {
            let c = Config {
                cors_allowed_origins: vec![bad.to_owned()],
                ..Config::default()
            };
            assert!(c.check().is_err(), "{bad}");
        }
        let c = Config {
            cors_allowed_origins: vec![
                "https://onboard.bank.example".into(),
                "http://localhost:3000".into(),
            ],
            ..Config::default()
        };
        assert_eq!(c.check(), Ok(()));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own Jail error type
    fn limits_come_from_their_table_and_are_checked() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "omni.toml",
                "[limits]
rate_per_second = 50
",
            )?;
            jail.set_env("OMNIRAIL_LIMITS__REQUEST_TIMEOUT_SECS", "5");
            let c = Config::load(Some(Path::new("omni.toml")), &Overrides::default()).unwrap();
            assert_eq!(c.limits.rate_per_second, 50);
            assert_eq!(c.limits.rate_burst, 0);
            assert_eq!(c.limits.request_timeout_secs, 5);
            assert_eq!(c.limits.max_header_bytes, 16 * 1024);
            for (key, value) in [
                ("OMNIRAIL_LIMITS__MAX_HEADER_BYTES", "100"),
                ("OMNIRAIL_LIMITS__MAX_CONNECTIONS", "0"),
                ("OMNIRAIL_LIMITS__REQUEST_TIMEOUT_SECS", "0"),
            ] {
                jail.set_env(key, value);
                let err = Config::load(None, &Overrides::default()).unwrap_err();
                assert!(err.starts_with("limits:"), "{key}: {err}");
                jail.clear_env();
            }
            Ok(())
        });
    }
}
