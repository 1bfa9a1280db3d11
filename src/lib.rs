//! Omnirail: the omnichannel engagement engine. `router` builds the HTTP API on a database;
//! `serve` runs it, with its background workers, on any listener until `shutdown` resolves.

#[macro_use]
mod macros;

pub mod actor;
pub mod analytics;
pub mod api;
pub mod approvals;
#[cfg(test)]
mod architecture;
pub mod auth;
pub mod bounded;
pub mod calls;
pub mod channel;
pub mod channels;
pub mod cli;
pub mod config;
pub mod console;
pub mod customers;
pub mod directory;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod journeys;
pub mod keys;
pub mod limits;
pub mod money;
pub mod notifications;
pub mod onboarding;
pub mod openapi;
pub mod retention;
pub mod secrets;
pub mod server;
pub mod sessions;
pub mod sla;
pub mod store;
pub mod streams;
pub mod telemetry;
pub mod time;
pub mod timeline;
pub mod webhooks;
pub mod workers;

use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Request, StatusCode, header};
use axum::middleware::{from_fn_with_state, map_request, map_response};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Config;
use crate::error::{ApiError, PROBLEM_JSON};
use crate::store::Db;

/// What every handler can reach: one shared [`App`], so that a clone (every extractor and
/// middleware takes one per request) is one reference count, not one per field.
#[derive(Clone, Debug)]
pub struct AppState(Arc<App>);

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

/// The process's database, configuration, caches and shared clients.
#[derive(Debug)]
pub struct App {
    pub db: Db,
    pub config: Arc<Config>,
    pub versions: Arc<journeys::VersionCache>,
    pub keys: Arc<auth::key_cache::KeyCache>,
    /// When each API key was last used, as this node last wrote it.
    pub key_use: Arc<auth::last_use::LastUse>,
    pub users: Arc<store::known::KnownIds>,
    pub customers: Arc<store::known::KnownIds>,
    /// The event streams waiting in this process.
    pub streams: Arc<streams::Hub>,
    /// Turns `true` when the process begins to shut down.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Where uploaded onboarding documents are kept.
    pub documents: onboarding::documents::Documents,
    /// The notification providers' shared client and the delivery worker's wake-up.
    pub notifier: Arc<notifications::Notifier>,
    /// Requests per API key, when `limits.rate_per_second` sets a limit.
    pub rate_limits: Option<Arc<limits::RateLimits>>,
    /// Tenants' identity providers: discovery and signing keys.
    pub identity: Arc<identity::keys::ProviderKeys>,
    /// The key-encryption keys and the tenants' data keys of the secrets at rest.
    pub vault: Arc<secrets::Vault>,
    /// The background workers, and whether each runs (`/readyz`, `/metrics`).
    pub workers: Arc<telemetry::Workers>,
    /// Each tenant's idempotency window, remembered a minute.
    pub idempotency_windows: Arc<idempotency::Windows>,
    /// What a change of one capability asks of a capability above it ([`Hooks`]).
    pub hooks: Hooks,
}

/// What a change of one capability asks of a capability that depends on it, wired here so that
/// the lower one does not import the upper: each runs in the caller's transaction.
#[derive(Clone, Copy, Debug)]
pub struct Hooks {
    /// A user was just given roles (`directory`): the requests waiting for one of them go to
    /// the user (`approvals::assign_awaiting`).
    pub roles_given: RolesGiven,
    /// A journey step's approval closed (`approvals`): the journey moves on
    /// (`journeys::on_approval_closed`).
    pub approval_closed: ApprovalClosed,
}

/// `(conn, tenant, user, roles, now)`: see [`Hooks::roles_given`].
pub type RolesGiven = for<'a> fn(
    &'a mut crate::store::Conn,
    &'a str,
    &'a str,
    &'a [String],
    i64,
) -> BoxFuture<'a, error::ApiResult<()>>;

/// See [`Hooks::approval_closed`].
pub type ApprovalClosed = for<'a> fn(
    &'a AppState,
    &'a mut crate::store::Conn,
    approvals::ApprovalClosed<'a>,
) -> BoxFuture<'a, error::ApiResult<()>>;

impl Hooks {
    fn wired() -> Self {
        Self {
            roles_given: |conn, tenant, user, roles, now| {
                Box::pin(approvals::assign_awaiting(conn, tenant, user, roles, now))
            },
            approval_closed: |app, conn, closed| {
                Box::pin(journeys::on_approval_closed(
                    app,
                    conn,
                    closed.tenant,
                    closed.journey_id,
                    closed.approval_id,
                    closed.status,
                    closed.actor,
                ))
            },
        }
    }
}

/// Wires the event spine's reactions, once per process: every change's event runs them in
/// its own transaction, in this order.
///
/// 1. Channel analytics counts the call's transaction and the journeys' channel touches
///    (`analytics::Counters`).
/// 2. The webhook outbox writes one message per subscribed endpoint (`webhooks::Outbox`).
/// 3. The notification rules create the notifications the tenant's rules send
///    (`notifications::rules::Rules`); a notification's own events run the reactions again
///    (no rule is about a notification event).
///
/// The order is the order of their writes inside the transaction; no reaction reads what
/// another wrote.
pub fn wire() {
    events::wire(vec![
        Box::new(analytics::Counters),
        Box::new(webhooks::Outbox),
        Box::new(notifications::rules::Rules),
    ]);
}

impl AppState {
    /// A fresh state on `db`: empty caches, and the document store `config` names (an
    /// unusable one is an error). Wires the event spine ([`wire`]) if it is not yet.
    pub fn new(db: Db, config: Config) -> Result<Self, String> {
        App::new(db, config).map(|app| Self(Arc::new(app)))
    }
}

impl App {
    fn new(db: Db, config: Config) -> Result<Self, String> {
        wire();
        let documents = onboarding::documents::Documents::open(&config.document_store)?;
        let notifier = Arc::new(notifications::Notifier::new(
            config.notification_allow_private_providers,
        )?);
        let rate_limits = limits::RateLimits::from_config(&config.limits).map(Arc::new);
        let identity = Arc::new(identity::keys::ProviderKeys::new(&config.identity)?);
        let vault = Arc::new(secrets::Vault::from_config(&config.secrets)?);
        Ok(Self {
            db,
            config: Arc::new(config),
            versions: Arc::new(journeys::VersionCache::new(10_000)),
            keys: Arc::default(),
            key_use: Arc::default(),
            users: Arc::new(store::known::KnownIds::new(100_000)),
            customers: Arc::new(store::known::KnownIds::new(100_000)),
            streams: Arc::default(),
            stopping: tokio::sync::watch::channel(false).1,
            documents,
            notifier,
            rate_limits,
            identity,
            vault,
            workers: Arc::default(),
            idempotency_windows: Arc::default(),
            hooks: Hooks::wired(),
        })
    }

    /// Whether the process is shutting down.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }
}

/// Resolves once `stopping` turns `true`; never, if nobody can turn it.
pub async fn wait_for_stop(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What `omnirail serve` does before it serves: provides the key-encryption key (created on a
/// database without secrets yet), checks every stored data key against the KEKs `config`
/// names, and seals the secrets stored before secrets were sealed (migration 0020); a no-op
/// once done. A node without the KEK its database's secrets are sealed under stops here.
pub async fn seal_stored_secrets(db: &Db, config: &config::SecretsConfig) -> Result<(), String> {
    secrets::provide_kek(config, db).await?;
    let vault = secrets::Vault::from_config(config)?;
    vault.check(db).await?;
    let endpoints = webhooks::seal_stored_secrets(db, &vault)
        .await
        .map_err(|e| e.to_string())?;
    let providers = notifications::seal_stored_settings(db, &vault)
        .await
        .map_err(|e| e.to_string())?;
    if endpoints + providers > 0 {
        tracing::info!(
            endpoints,
            providers,
            "sealed secrets stored before they were encrypted"
        );
    }
    Ok(())
}

/// The API routes with their OpenAPI description, before the shared layers.
fn api(state: &AppState) -> OpenApiRouter<AppState> {
    let omni = OpenApiRouter::new()
        .nest(
            "/api/v1/omni",
            journeys::router()
                .merge(directory::router())
                .merge(identity::router())
                .merge(approvals::router())
                .merge(timeline::router())
                .merge(onboarding::router())
                .merge(notifications::router())
                .merge(webhooks::router())
                .merge(sla::router())
                .merge(keys::routes::router())
                .merge(retention::router())
                .merge(streams::omni_router()),
        )
        .nest(
            "/api/v1",
            customers::router()
                .merge(retention::customer_router())
                .merge(sessions::router())
                .merge(channels::router())
                .merge(analytics::router())
                .merge(streams::router())
                .merge(notifications::devices::router()),
        );
    let omni = identity::keyed(omni, state);
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(omni)
        // The customer's notification inbox is read with the onboarding session's token.
        .merge(onboarding::session::router(state, notifications::inbox()))
        .merge(notifications::providers::status_callbacks())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = api(&state).split_for_parts();
    let doc = openapi::document(doc);
    let queries = Arc::new(api::QueryParameters::of(&doc));
    let routes = routes.layer(from_fn_with_state(queries, api::refuse_unknown_query));
    // The console calls the API in-process, through the same routes and their own layers.
    let in_process = routes
        .clone()
        .fallback(api::route_not_found)
        .layer(map_response(problem_safety_net))
        .with_state(state.clone());
    routes
        .merge(console::router(in_process))
        .merge(
            Router::from(SwaggerUi::new("/docs").url("/openapi.json", doc))
                .layer(axum::middleware::map_response(api::docs_title)),
        )
        .fallback(api::route_not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn(telemetry::track))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), limits::request_timeout))
        .layer(from_fn_with_state(state.clone(), limits::header_bounds))
        .layer(map_response(problem_safety_net))
        .layer(tower::util::option_layer(cors(&state.config)))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            ApiError::internal().into_response()
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<Body>| {
                    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(map_request(drop_unfit_request_id))
        .with_state(state)
}

/// Cross-origin calls from the browsers of `cors_allowed_origins`, none without it: their
/// preflights are answered before authentication (they carry no credentials), and their
/// answers expose what a client reads (`Retry-After`, `Idempotent-Replayed`, `x-request-id`).
fn cors(config: &config::Config) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if config.cors_allowed_origins.is_empty() {
        return None;
    }
    let origins = config
        .cors_allowed_origins
        .iter()
        .filter_map(|o| header::HeaderValue::from_str(o).ok());
    let names = [
        "authorization",
        "content-type",
        "x-api-key",
        "idempotency-key",
        "api-version",
        "x-omni-channel",
        "last-event-id",
        "x-request-id",
    ];
    let exposed = [
        "retry-after",
        "idempotent-replayed",
        "x-request-id",
        "allow",
    ];
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                axum::http::Method::GET,
                axum::http::Method::POST,
                axum::http::Method::PUT,
                axum::http::Method::PATCH,
                axum::http::Method::DELETE,
            ])
            .allow_headers(names.map(header::HeaderName::from_static))
            .expose_headers(exposed.map(header::HeaderName::from_static))
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// A client's `x-request-id` is kept only if it is 1 to 128 characters of `[A-Za-z0-9._:-]`;
/// otherwise it is dropped and one is generated, so logs never carry arbitrary client text.
async fn drop_unfit_request_id(mut req: Request<Body>) -> Request<Body> {
    let fit = |v: &header::HeaderValue| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(c))
    };
    if req.headers().get("x-request-id").is_some_and(|v| !fit(v)) {
        req.headers_mut().remove("x-request-id");
    }
    req
}

/// Any error answer that is not yet problem details (a framework rejection the extractors did
/// not see) is turned into one here, so every error a client sees has the same shape.
async fn problem_safety_net(res: Response) -> Response {
    let status = res.status();
    let content_type = res.headers().get(header::CONTENT_TYPE);
    let is_problem =
        content_type.is_some_and(|ct| ct.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    // The console's pages show their refusals as pages (`console`).
    let is_page = content_type.is_some_and(|ct| ct.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem || is_page {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&text)
        .chars()
        .take(300)
        .collect::<String>();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal_error",
        _ => "error",
    };
    let detail = if detail.trim().is_empty() || status.is_server_error() {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        detail
    };
    let mut fixed = ApiError::new(status, code, detail).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fixed.headers_mut().insert(name, value.clone());
        }
    }
    fixed
}

/// Answer of the health probes.
#[derive(Serialize, ToSchema)]
struct Health {
    /// `ok`.
    status: &'static str,
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "operations.healthz", tag = "Operations", responses((status = 200, description = "The process is up: `{\"status\": \"ok\"}`", body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(
    get, path = "/readyz", operation_id = "operations.readyz", tag = "Operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Database unreachable (`database_unavailable`), with `Retry-After`; a background worker stopped (`worker_stopped`, naming it in `workers`)", body = error::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    let stopped = state.workers.stopped();
    if !stopped.is_empty() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "worker_stopped",
            format!(
                "A background worker stopped: {} (see the logs); restart the process",
                stopped.join(", ")
            ),
        )
        .with("workers", serde_json::json!(stopped)));
    }
    if state.db.ping().await {
        Ok(axum::Json(Health { status: "ok" }))
    } else {
        let mut err = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "The database does not answer",
        );
        err.retry_after = Some(5);
        Err(err)
    }
}

/// Metrics in the Prometheus text format: requests per route and status with their latency,
/// commit latency, database pools, the workers' queues (depth and oldest age) and whether each
/// worker runs, delivery outcomes per webhook endpoint and notification provider, chain
/// verification failures. No key: expose it only where Prometheus scrapes from
/// (docs/operations.md#metrics).
#[utoipa::path(
    get, path = "/metrics", operation_id = "operations.metrics", tag = "Operations",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "text/plain"),
        (status = 503, description = "The database does not answer the queues' reads (`database_unavailable`)", body = error::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn metrics_text(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = telemetry_scrape(&state).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot read the queues for /metrics");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "The database does not answer",
        )
    })?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The gauges read at scrape time, then everything recorded.
async fn telemetry_scrape(state: &App) -> Result<String, error::StoreError> {
    let now = state.db.now_ms();
    for (pool, size, idle) in state.db.pool_use() {
        metrics::gauge!("omnirail_db_pool_connections", "pool" => pool, "state" => "idle")
            .set(f64::from(idle));
        metrics::gauge!("omnirail_db_pool_connections", "pool" => pool, "state" => "in_use")
            .set(f64::from(size.saturating_sub(idle)));
    }
    for (queue, sql) in [
        (
            "webhooks",
            "SELECT COUNT(*), MIN(next_attempt_at) FROM webhook_messages
             WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1",
        ),
        (
            "notifications",
            "SELECT COUNT(*), MIN(next_attempt_at) FROM notification_deliveries
             WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1",
        ),
        (
            "deadlines",
            "SELECT COUNT(*), MIN(next_deadline_at) FROM journeys
             WHERE next_deadline_at IS NOT NULL AND next_deadline_at <= $1",
        ),
    ] {
        let (depth, oldest): (i64, Option<i64>) = sqlx::query_as(sql)
            .bind(now)
            .fetch_one(state.db.reader())
            .await?;
        metrics::gauge!("omnirail_queue_due", "queue" => queue).set(depth as f64);
        let age = oldest.map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0);
        metrics::gauge!("omnirail_queue_oldest_due_age_seconds", "queue" => queue).set(age);
    }
    for (worker, running) in state.workers.all() {
        metrics::gauge!("omnirail_worker_up", "worker" => worker).set(if running {
            1.0
        } else {
            0.0
        });
    }
    Ok(telemetry::handle().map(|h| h.render()).unwrap_or_default())
}

/// Serves the API and runs the background workers on `listener` until `shutdown` resolves;
/// then stops accepting, lets in-flight requests finish, and stops the workers.
pub async fn serve(
    db: Db,
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    // The recorder before anything is recorded.
    telemetry::handle();
    // The key-encryption key, created on a database without secrets yet (`omnirail serve` has
    // checked the stored data keys against it already: `seal_stored_secrets`).
    secrets::provide_kek(&config.secrets, &db)
        .await
        .map_err(std::io::Error::other)?;
    let mut app = App::new(db.clone(), config).map_err(std::io::Error::other)?;
    app.stopping = stopping;
    let state = AppState(Arc::new(app));
    let workers = workers::spawn(state.clone());
    if let Some(limits) = state.rate_limits.clone() {
        let mut stopping = state.stopping.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            while tokio::select! { _ = every.tick() => true, _ = stopping.changed() => false } {
                limits.forget_idle();
            }
        });
    }
    let limits = state.config.limits.clone();
    let app = router(state);
    // Stopping ends the event streams and the workers at once: a stream never finishes on its
    // own, and graceful shutdown waits for every response to finish.
    server::run(listener, app, &limits, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await?;
    let _ = tokio::time::timeout(Duration::from_secs(10), workers).await;
    Ok(())
}
