//! Tenants, API keys, and the middleware that turns a key into the request's tenant.
//!
//! A key is `omk_` followed by 256 random bits. It is shown once, when created; the database
//! keeps only its SHA-256. Requests carry it in `x-api-key` or `Authorization: Bearer`. A
//! missing key is 401 `unauthenticated`; an unknown or revoked one is 401 `invalid_api_key`.
//! Checked keys are remembered until a revocation is announced (PostgreSQL) or seen (SQLite):
//! [`key_cache`].
//!
//! Beside a key in `x-api-key`, `Authorization: Bearer` may carry a person's actor token from
//! the tenant's identity provider: it is handed on unverified ([`ActorToken`]) to the identity
//! layer that runs next (`identity::require_actor`), which verifies it and carries the person it
//! proves on as `actor::Actor`.

pub mod key_cache;
pub mod last_use;
pub mod scopes;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;
use crate::error::{ApiError, StoreError};
use crate::ids::{new_id, sha256_hex};
use crate::store::Db;
use scopes::{Need, Scopes};

/// The tenant a request acts for, resolved from its credential: an API key, the console's
/// sign-in, or a customer's session token.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: String,
    /// The credential's id: the key's (`key_...`), `console:<user>`, `onboarding:<id>`.
    pub key_id: String,
    /// What the credential may do (`scopes`). The console's sign-in holds `full`; a
    /// session token's routes are its own and check no scope.
    pub scopes: Scopes,
    /// Whether the credential is an API key, which events then name (`events.key_id`).
    pub api_key: bool,
    /// When the key stops working (ms since the epoch); `None`: never.
    pub expires_at: Option<i64>,
}

impl Tenant {
    /// A tenant reached by a credential other than an API key: the console's sign-in or a
    /// session token, named `credential`.
    pub fn without_key(id: String, credential: String) -> Self {
        Self {
            id,
            key_id: credential,
            scopes: Scopes::FULL,
            api_key: false,
            expires_at: None,
        }
    }

    /// The API key's id when the credential is one.
    pub fn api_key_id(&self) -> Option<&str> {
        self.api_key.then_some(self.key_id.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Tenant>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("unauthenticated", "An API key is required"))
    }
}

/// The actor token a request presents beside its key, unverified: the identity layer, which
/// runs next, verifies it (or refuses the request) and puts the proven person in its place.
#[derive(Debug, Clone)]
pub struct ActorToken(pub String);

/// A call the console makes in-process for a signed-in member of staff (`console`): the tenant
/// is the session's, so no key is presented. Only code in this process can put it on a request
/// (an extension is a Rust value, never something a client sends), and everything after the key
/// runs as for any call: the person, idempotency, the call's scope, the handler's rules.
#[derive(Clone, Debug)]
pub struct InProcess(pub Tenant);

/// What every API key starts with.
pub const KEY_PREFIX: &str = "omk_";

/// Middleware for every route a key reaches: resolves the API key or answers 401 (an expired
/// one too), counts the request against the key's rate (`limits`), over which it answers 429,
/// and refuses with 403 `insufficient_scope` a call the key's scopes do not allow. It notes
/// the key's use (`last_use`).
pub async fn require_api_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(InProcess(tenant)) = req.extensions_mut().remove::<InProcess>() {
        let need = need(&req);
        if !tenant.scopes.grant(need) {
            return Err(insufficient_scope(need, tenant.scopes));
        }
        req.extensions_mut().insert(tenant);
        return Ok(next.run(req).await);
    }
    let (key, actor_token) = presented(&req)?;
    let hash = sha256_hex(key);
    let tenant = match state.keys.get(&hash) {
        Some(tenant) => tenant,
        None => {
            let generation = state.keys.generation();
            let tenant = find_key(&state.db, &hash).await?.ok_or_else(invalid_key)?;
            state.keys.remember(hash, tenant.clone(), generation);
            tenant
        }
    };
    let now = state.db.now_ms();
    if tenant.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::unauthorized(
            "api_key_expired",
            "The API key has expired; ask an administrator of the tenant for a new one",
        ));
    }
    if let Some(limits) = &state.rate_limits {
        limits
            .check(&tenant.key_id)
            .map_err(crate::limits::rate_limited)?;
    }
    let need = need(&req);
    if !tenant.scopes.grant(need) {
        return Err(insufficient_scope(need, tenant.scopes));
    }
    state.key_use.touch(&state.db, &tenant.key_id, now);
    if let Some(token) = actor_token {
        let token = ActorToken(token.to_owned());
        req.extensions_mut().insert(token);
    }
    req.extensions_mut()
        .insert(crate::calls::CallKey(tenant.key_id.clone()));
    req.extensions_mut().insert(tenant);
    Ok(next.run(req).await)
}

/// The API key a request presents, and the actor token beside it if any: `Authorization:
/// Bearer` carries a key (starting `omk_`) or, beside `x-api-key`, a person's token.
fn presented(req: &Request) -> Result<(&str, Option<&str>), ApiError> {
    let headers = req.headers();
    let from_header = headers.get("x-api-key").map(|v| v.to_str());
    let from_bearer = headers.get(AUTHORIZATION).map(|v| {
        v.to_str().map(|s| {
            s.strip_prefix("Bearer ")
                .or_else(|| s.strip_prefix("bearer "))
                .unwrap_or("")
                .trim()
        })
    });
    let bearer_is_key = matches!(&from_bearer, Some(Ok(b)) if b.starts_with(KEY_PREFIX));
    match (from_header, from_bearer) {
        // Two API keys that disagree are refused, not resolved by picking one: a request must
        // not be taken for a tenant it may not have meant.
        (Some(Ok(key)), Some(Ok(bearer))) if bearer_is_key && key.trim() != bearer => {
            Err(ApiError::unauthorized(
                "conflicting_credentials",
                "x-api-key and Authorization name different keys; send one, or the same in both",
            ))
        }
        (Some(Ok(key)), Some(Ok(token))) if !bearer_is_key && !token.is_empty() => {
            Ok((nonempty(key)?, Some(token)))
        }
        // Another credential beside x-api-key (a gateway's Basic credentials) names no key.
        (Some(Ok(key)), _) => Ok((nonempty(key)?, None)),
        (None, Some(Ok(bearer))) if !bearer_is_key && bearer.contains('.') => {
            Err(ApiError::unauthorized(
                "unauthenticated",
                "An actor token travels beside the tenant's API key: send the key in x-api-key",
            ))
        }
        (None, Some(Ok(bearer))) => Ok((nonempty(bearer)?, None)),
        (None, None) => Err(ApiError::unauthorized(
            "unauthenticated",
            "An API key is required in x-api-key or Authorization: Bearer",
        )),
        (Some(Err(_)), _) | (None, Some(Err(_))) => Err(invalid_key()),
    }
}

fn nonempty(key: &str) -> Result<&str, ApiError> {
    match key.trim() {
        "" => Err(invalid_key()),
        key => Ok(key),
    }
}

/// What the call `req` makes needs: by its route's pattern, which routing has set.
fn need(req: &Request) -> Need {
    match req.extensions().get::<MatchedPath>() {
        Some(path) => Need::of(req.method(), path.as_str()),
        None => Need::Unknown,
    }
}

/// 403 for a call the key's scopes do not allow, naming the scope it needs.
pub fn insufficient_scope(need: Need, held: Scopes) -> ApiError {
    let needed = need.scope();
    let granted = if needed == "admin" {
        "`admin`".to_owned()
    } else {
        format!("`{needed}`, `full` or `admin`")
    };
    ApiError::forbidden(
        "insufficient_scope",
        format!("This API key's scopes ({held}) do not allow this call; it needs {granted}"),
    )
    .with("requiredScope", serde_json::json!(needed))
    .with("grantedScopes", serde_json::json!(held.names()))
}

fn invalid_key() -> ApiError {
    ApiError::unauthorized("invalid_api_key", "The API key is unknown or revoked")
}

async fn find_key(db: &Db, hash: &str) -> Result<Option<Tenant>, StoreError> {
    let row: Option<(String, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, tenant_id, scopes, expires_at FROM api_keys
         WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash)
    .fetch_optional(db.reader())
    .await?;
    row.map(|(key_id, id, scopes, expires_at)| {
        Ok(Tenant {
            scopes: Scopes::parse_stored(&scopes)
                .map_err(|s| StoreError::Corrupt(format!("key {key_id}: scope {s}")))?,
            id,
            key_id,
            api_key: true,
            expires_at,
        })
    })
    .transpose()
}

/// Creates a tenant and returns its id.
pub async fn create_tenant(db: &Db, name: &str) -> Result<String, StoreError> {
    let id = new_id("ten_");
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(name)
        .bind(db.now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn tenant_exists(db: &Db, id: &str) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_one(db.reader())
        .await?;
    Ok(n > 0)
}

/// Every tenant: (id, name, plan, created at), oldest first.
pub async fn tenants(db: &Db) -> Result<Vec<(String, String, String, i64)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, name, plan, created_at FROM tenants ORDER BY created_at, id")
            .fetch_all(db.reader())
            .await?,
    )
}

pub async fn tenant_count(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
        .fetch_one(db.reader())
        .await?)
}
