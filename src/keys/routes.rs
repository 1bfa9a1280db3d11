//! `/api/v1/omni/api-keys`: a tenant's API keys (create, list, read, revoke), for keys holding
//! `admin` (see `scopes`). The CLI's `omnirail key` does the same from the machine.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{KeyRow, NewKey};
use crate::AppState;
use crate::api::{ApiJson, ApiQuery, Data, PageRequest, Paginated, check_text, data, reject};
use crate::auth::Tenant;
use crate::auth::scopes::{Scopes, every_scope};
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::idempotency::Idem;
use crate::time::{parse_rfc3339, to_rfc3339};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(get_key))
        .routes(routes!(revoke_key))
}

/// Longest key name.
const MAX_NAME: usize = 100;

/// An API key as the API shows it: never the key itself, except once, in `key`, when it is
/// created.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    #[schema(example = "key_01HZX3")]
    pub id: String,
    pub name: Option<String>,
    /// What the key may do: `admin`, `full`, `read`, or `<area>:read` / `<area>:write`.
    #[schema(example = json!(["onboarding:write"]))]
    pub scopes: Vec<String>,
    /// `active`, `expired` (past `expiresAt`) or `revoked`.
    #[schema(example = "active")]
    pub status: &'static str,
    pub created_at: String,
    /// The key that created it through this API; `null` when the CLI or the first start did.
    pub created_by: Option<String>,
    pub expires_at: Option<String>,
    /// The last request made with it, to the minute; `null` if it was never used.
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The key, shown only in the answer to its creation: keep it, it cannot be shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "omk_3q2...")]
    pub key: Option<String>,
}

pub(super) fn view(row: &KeyRow, now: i64, key: Option<String>) -> ApiKeyView {
    let status = match (row.revoked_at, row.expires_at) {
        (Some(_), _) => "revoked",
        (None, Some(at)) if at <= now => "expired",
        _ => "active",
    };
    ApiKeyView {
        id: row.id.clone(),
        name: row.name.clone(),
        scopes: Scopes::parse_stored(&row.scopes)
            .map(Scopes::names)
            .unwrap_or_default(),
        status,
        created_at: to_rfc3339(row.created_at),
        created_by: row.created_by.clone(),
        expires_at: row.expires_at.map(to_rfc3339),
        last_used_at: row.last_used_at.map(to_rfc3339),
        revoked_at: row.revoked_at.map(to_rfc3339),
        key,
    }
}

/// Body of `POST /api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for, 1 to 100 characters.
    #[schema(example = "Branch kiosk, Riyadh main")]
    pub name: String,
    /// One or more of `admin`, `full`, `read`, `<area>:read`, `<area>:write`, where an area is
    /// `journeys`, `templates`, `approvals`, `delegations`, `directory`, `customers`,
    /// `timeline`, `sessions`, `onboarding`, `notifications`, `webhooks`, `channels`,
    /// `analytics` or `sla`.
    #[schema(example = json!(["onboarding:write"]))]
    pub scopes: Vec<String>,
    /// When the key stops working (RFC 3339, in the future); absent: never.
    #[schema(example = "2027-06-30T00:00:00Z")]
    pub expires_at: Option<String>,
}

/// Create an API key. The answer shows the key once, in `key`; a retry with the same
/// `Idempotency-Key` answers the same key without it (the key is never stored).
#[utoipa::path(
    post, path = "/api-keys", operation_id = "omni.apiKeys.create", tag = "API keys",
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created, with `key`", body = Data<ApiKeyView>),
        (status = 422, description = "A bad field, each named (`validation_failed`): no name, no scope, a scope that does not exist, an `expiresAt` not RFC 3339 or not in the future", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_key(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<Response> {
    let now = app.db.now_ms();
    let mut errors = Vec::new();
    check_text(&mut errors, "name", &body.name, MAX_NAME, true);
    let mut scopes = Scopes::default();
    for (i, name) in body.scopes.iter().enumerate() {
        match Scopes::parse([name.as_str()]) {
            Ok(s) => scopes = scopes.union(s),
            Err(_) => errors.push(FieldError::new(
                format!("scopes[{i}]"),
                format!("must be one of: {}", every_scope().join(", ")),
            )),
        }
    }
    if body.scopes.is_empty() {
        errors.push(FieldError::new("scopes", "must name at least one scope"));
    }
    let expires_at = match body.expires_at.as_deref().map(parse_rfc3339) {
        None => None,
        Some(None) => {
            errors.push(FieldError::new(
                "expiresAt",
                "must be an RFC 3339 date-time, e.g. 2027-06-30T00:00:00Z",
            ));
            None
        }
        Some(Some(at)) if at <= now => {
            errors.push(FieldError::new("expiresAt", "must be in the future"));
            None
        }
        Some(Some(at)) => Some(at),
    };
    reject(errors)?;
    let mut tx = app.db.begin().await?;
    let (issued, row) = super::issue_key(
        &mut tx,
        &tenant.id,
        &NewKey {
            name: Some(body.name.trim()),
            scopes,
            expires_at,
            created_by: tenant.api_key_id(),
        },
        now,
    )
    .await?;
    let shown = Data {
        data: view(&row, now, Some(issued.secret)),
    };
    let stored = Data {
        data: view(&row, now, None),
    };
    idem.commit_apart(&app.db, tx, StatusCode::CREATED, &shown, &stored)
        .await
}

/// Query of `GET /api-keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct KeyQuery {
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 20, max 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

/// List the tenant's API keys, newest first, revoked and expired ones included (never the
/// keys themselves), each with its last use.
#[utoipa::path(
    get, path = "/api-keys", operation_id = "omni.apiKeys.list", tag = "API keys",
    params(KeyQuery),
    responses(
        (status = 200, description = "A page of keys", body = Paginated<ApiKeyView>),
        (status = 400, description = "`page`/`perPage` not an integer (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`page`/`perPage` out of range (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_keys(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<KeyQuery>,
) -> ApiResult<Response> {
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 20, 100)?;
    let (rows, total) =
        super::key_page(app.db.reader(), &tenant.id, page.limit(), page.offset()).await?;
    let now = app.db.now_ms();
    Ok(page.answer(rows.iter().map(|r| view(r, now, None)).collect(), total))
}

/// Get an API key (never the key itself).
#[utoipa::path(
    get, path = "/api-keys/{id}", operation_id = "omni.apiKeys.get", tag = "API keys",
    params(("id" = String, Path, description = "The key's id (`key_...`)")),
    responses(
        (status = 200, description = "The key", body = Data<ApiKeyView>),
        (status = 404, description = "No such key for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_key(
    State(app): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let row = super::key_row(app.db.reader(), &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    Ok(data(StatusCode::OK, view(&row, app.db.now_ms(), None)))
}

/// Revoke an API key: every node refuses it within a second (at once on PostgreSQL, within
/// 250 ms on SQLite). A key may revoke itself.
#[utoipa::path(
    post, path = "/api-keys/{id}/revoke", operation_id = "omni.apiKeys.revoke", tag = "API keys",
    params(("id" = String, Path, description = "The key's id (`key_...`)")),
    responses(
        (status = 200, description = "Revoked", body = Data<ApiKeyView>),
        (status = 404, description = "No such key for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Already revoked (`api_key_revoked`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn revoke_key(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    let row = super::revoke(&mut tx, Some(&tenant.id), &id, now).await?;
    let row = match row {
        super::Revoked::Now(row) => row,
        super::Revoked::Already => {
            return Err(ApiError::conflict(
                "api_key_revoked",
                "This API key is already revoked",
            ));
        }
        super::Revoked::NoSuchKey => return Err(ApiError::not_found("API key")),
    };
    idem.commit(
        &app.db,
        tx,
        StatusCode::OK,
        &Data {
            data: view(&row, now, None),
        },
    )
    .await
}
