//! `Idempotency-Key` on POST and PATCH.
//!
//! The middleware looks the key up before the handler runs: the same key with the same
//! method, path, body and proven person (an actor token's) replays the first answer (`Idempotent-Replayed: true`); the same key
//! with anything else is 422 `idempotency_key_reused`. Otherwise the handler runs and
//! [`Idem::commit`] stores its answer in the same transaction as the change it made, so a
//! change and its idempotency record commit together or not at all. Two concurrent requests
//! with one key collide on the record's primary key: the loser rolls back and replays the
//! winner's answer.
//!
//! Only successful answers are recorded. A request that failed changed nothing, so its retry
//! simply runs again. Keys are kept `idempotency_ttl_hours` (default 24 h) and then purged by
//! the retention sweep (`retention::sweep`).

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::api::payload_too_large;
use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult};
use crate::store::{Db, Tx};

pub const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";

/// The key of the request being handled, set by [`middleware`].
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    tenant_id: String,
    key: String,
    request_hash: String,
    /// Records older than this (ms) are expired and may be replaced.
    cutoff: i64,
}

/// Narrows the keys of a request to one principal within its tenant: a session token's
/// keys are its onboarding's own, never shared with the tenant's API keys or other sessions.
#[derive(Clone, Debug)]
pub struct Scope(pub String);

/// Room, beyond the largest document, for the other parts and boundaries of a multipart body.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        })
}

/// Middleware for authenticated routes (after auth, which supplies the tenant).
pub async fn middleware(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> ApiResult<Response> {
    if !matches!(*req.method(), Method::POST | Method::PATCH) {
        return Ok(next.run(req).await);
    }
    let Some(raw) = req.headers().get(HEADER) else {
        return Ok(next.run(req).await);
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        })?
        .to_owned();
    let Some(tenant) = req.extensions().get::<Tenant>().cloned() else {
        return Ok(next.run(req).await);
    };
    let key = match req.extensions().get::<Scope>() {
        Some(Scope(scope)) => format!("{scope}/{key}"),
        None => key,
    };
    // Documents are sent as multipart bodies, larger than any JSON one.
    let limit = if is_multipart(&req) {
        state.config.max_document_bytes + MULTIPART_OVERHEAD
    } else {
        state.config.max_body_bytes
    };
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| payload_too_large())?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b"\n");
    hasher.update(parts.uri.path_and_query().map_or("", |p| p.as_str()));
    hasher.update(b"\n");
    hasher.update(&bytes);
    // A person's request is theirs: another person's with the same key and body is another
    // request, not a retry (with its actor fields omitted, the bodies are alike).
    if let Some(actor) = parts
        .extensions
        .get::<crate::actor::Actor>()
        .and_then(|a| a.proven())
    {
        hasher.update(b"\nactor:");
        hasher.update(actor.issuer.as_bytes());
        hasher.update(b"\n");
        hasher.update(actor.user_id.as_bytes());
    }
    let window = window_hours(&state, &tenant.id).await?;
    let idem = IdempotencyKey {
        tenant_id: tenant.id,
        key,
        request_hash: hex::encode(hasher.finalize()),
        cutoff: cutoff(state.db.now_ms(), window),
    };
    if let Some(answer) = stored_answer(&state.db, &idem).await? {
        return Ok(answer);
    }
    parts.extensions.insert(idem);
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
}

/// The first answer for this key, or 422 if the key was used for another request.
async fn stored_answer(db: &Db, idem: &IdempotencyKey) -> ApiResult<Option<Response>> {
    let row: Option<(String, i64, String)> = sqlx::query_as(
        "SELECT request_hash, status_code, response_body FROM idempotency_keys
         WHERE tenant_id = $1 AND idem_key = $2 AND created_at >= $3",
    )
    .bind(&idem.tenant_id)
    .bind(&idem.key)
    .bind(idem.cutoff)
    .fetch_optional(db.reader())
    .await?;
    let Some((hash, status, body)) = row else {
        return Ok(None);
    };
    if hash != idem.request_hash {
        return Err(ApiError::unprocessable(
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request",
        ));
    }
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut res = (status, body).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    Ok(Some(res))
}

/// Whether `res` is an earlier request's answer replayed: the request it answers changed
/// nothing itself.
pub fn is_replay(res: &Response) -> bool {
    res.headers().contains_key(REPLAYED)
}

/// The request's idempotency key, if it carried one.
#[derive(Debug, Default)]
pub struct Idem(Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for Idem {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Idem(parts.extensions.get::<IdempotencyKey>().cloned()))
    }
}

impl Idem {
    /// Records the answer under the key (if any), commits `tx`, and returns the answer.
    pub async fn commit<T: Serialize>(
        self,
        db: &Db,
        tx: Tx,
        status: StatusCode,
        body: &T,
    ) -> ApiResult<Response> {
        self.commit_apart(db, tx, status, body, body).await
    }

    /// As [`Idem::commit`], recording `stored` (the answer without a secret it shows once)
    /// and answering `shown`: a retry replays the answer without the secret, which is never
    /// stored.
    pub async fn commit_apart<T: Serialize, U: Serialize>(
        self,
        db: &Db,
        mut tx: Tx,
        status: StatusCode,
        shown: &T,
        stored: &U,
    ) -> ApiResult<Response> {
        let to_vec = |body: Result<Vec<u8>, serde_json::Error>| {
            body.map_err(|e| {
                tracing::error!(error = %e, "response did not serialize");
                ApiError::internal()
            })
        };
        let bytes = to_vec(serde_json::to_vec(shown))?;
        if let Some(idem) = &self.0 {
            let stored = to_vec(serde_json::to_vec(stored))?;
            let text = String::from_utf8_lossy(&stored);
            let stored = sqlx::query(
                "INSERT INTO idempotency_keys
                     (tenant_id, idem_key, request_hash, status_code, response_body, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant_id, idem_key) DO UPDATE SET
                     request_hash = excluded.request_hash, status_code = excluded.status_code,
                     response_body = excluded.response_body, created_at = excluded.created_at
                 WHERE idempotency_keys.created_at < $7",
            )
            .bind(&idem.tenant_id)
            .bind(&idem.key)
            .bind(&idem.request_hash)
            .bind(i64::from(status.as_u16()))
            .bind(text.as_ref())
            .bind(db.now_ms())
            .bind(idem.cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if stored == 0 {
                // A concurrent request with this key stored its answer first: undo ours, and
                // answer theirs once it is committed (on SQLite it may be an earlier writer's
                // of this very batch, which only this transaction sees until then).
                tx.rollback_after_others().await?;
                return stored_answer(db, idem).await?.ok_or_else(|| {
                    ApiError::conflict(
                        "idempotency_conflict",
                        "A request with this Idempotency-Key is in progress",
                    )
                });
            }
        }
        tx.commit().await?;
        let mut res = (status, bytes).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(res)
    }
}

/// How long each tenant's records replay, and are kept: its retention policy's
/// `idempotencyHours`, else the configuration's `idempotency_ttl_hours`. Each process
/// remembers a tenant's for [`WINDOW_MAX_AGE`] (a change reaches the other nodes within that).
#[derive(Debug)]
pub struct Windows {
    hours: quick_cache::sync::Cache<String, (u64, std::time::Instant)>,
}

impl Default for Windows {
    fn default() -> Self {
        Self {
            hours: quick_cache::sync::Cache::new(10_000),
        }
    }
}

/// Longest a process goes on with a tenant's idempotency window before reading it again.
pub const WINDOW_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

impl Windows {
    /// Forgets `tenant`'s window: its policy changed (on this node).
    pub fn forget(&self, tenant: &str) {
        self.hours.remove(tenant);
    }
}

/// `tenant`'s idempotency window, in hours.
pub async fn window_hours(state: &crate::App, tenant: &str) -> ApiResult<u64> {
    if let Some((hours, at)) = state.idempotency_windows.hours.get(tenant)
        && at.elapsed() < WINDOW_MAX_AGE
    {
        return Ok(hours);
    }
    let own: Option<Option<i64>> =
        sqlx::query_scalar("SELECT idempotency_hours FROM retention_policies WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(state.db.reader())
            .await
            .map_err(crate::error::StoreError::from)?;
    let hours = own
        .flatten()
        .and_then(|h| u64::try_from(h).ok())
        .unwrap_or(state.config.idempotency_ttl_hours);
    state
        .idempotency_windows
        .hours
        .insert(tenant.to_owned(), (hours, std::time::Instant::now()));
    Ok(hours)
}

/// Records created before this instant (ms) are, at `now`, past the retention of `ttl_hours`.
fn cutoff(now: i64, ttl_hours: u64) -> i64 {
    let ttl_ms = i64::try_from(ttl_hours).map_or(i64::MAX, |h| h.saturating_mul(3_600_000));
    now.saturating_sub(ttl_ms)
}
