//! `/api/v1/omni/webhooks`: endpoints (create, list, read, change, delete, rotate the secret),
//! their messages and each message's attempts, retry and replay, delivery statistics, and the
//! catalogue of event types.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::guard;
use super::model::{self, MessageStatus, SECRET_RULE, Secret};
use super::store::{self, AttemptRow, EndpointRow, MessageRow};
use crate::AppState;
use crate::api::check_text;
use crate::api::{
    ApiJson, ApiPath, ApiQuery, Data, PageRequest, Paginated, data, parse_bool, parse_filter,
    reject,
};
use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::idempotency::Idem;

use crate::time::{parse_rfc3339, to_rfc3339};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_endpoint, list_endpoints))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_messages))
        .routes(routes!(replay))
        .routes(routes!(stats))
        .routes(routes!(get_message))
        .routes(routes!(list_attempts))
        .routes(routes!(retry_message))
        .routes(routes!(event_types))
}

const MAX_DESCRIPTION: usize = 1_000;

/// An endpoint as the API shows it. Its secret is shown once, when it is created (and a new
/// one when it is rotated).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    #[schema(example = "ep_3f9c2a7d0b1e4c5f8a6d9e2b7c4f1a0d")]
    pub id: String,
    #[schema(example = "https://hooks.bank.example/omnirail")]
    pub url: String,
    pub description: Option<String>,
    /// Exact event names and prefixes (`omni.journey.*`); empty: every event.
    #[schema(example = json!(["omni.journey.*", "omni.approval.approved"]))]
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it was disabled, when Omnirail disabled it.
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed, if the last one did.
    pub failing_since: Option<String>,
    /// `whsec_...`: only in the answer that creates the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn endpoint_view(e: &EndpointRow, secret: Option<String>) -> EndpointView {
    EndpointView {
        id: e.id.clone(),
        url: e.url.clone(),
        description: e.description.clone(),
        event_types: serde_json::from_str(&e.event_types).unwrap_or_default(),
        enabled: e.enabled == 1,
        disabled_reason: e.disabled_reason.clone(),
        failing_since: e.failing_since.map(to_rfc3339),
        secret,
        created_at: to_rfc3339(e.created_at),
        updated_at: to_rfc3339(e.updated_at),
    }
}

/// Body of `POST /webhooks/endpoints`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEndpoint {
    /// Where messages are POSTed: `https` (plain `http` only with `webhooks.allow_http`), not
    /// a loopback, private, link-local or metadata address.
    #[schema(example = "https://hooks.bank.example/omnirail")]
    pub url: String,
    pub description: Option<String>,
    /// Exact event names or prefixes such as `omni.journey.*`; empty or absent: every event.
    pub event_types: Option<Vec<String>>,
    /// Default `true`.
    pub enabled: Option<bool>,
    /// A secret of your own (`whsec_` and the base64 of 24 to 64 bytes); else one is made.
    pub secret: Option<String>,
}

/// Body of `PATCH /webhooks/endpoints/{id}`: the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateEndpoint {
    pub url: Option<String>,
    /// An empty string clears it.
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `true` enables a disabled endpoint again: its pending messages fall due at once, and
    /// its failing run starts afresh.
    pub enabled: Option<bool>,
}

fn check_endpoint_fields(
    app: &AppState,
    errors: &mut Vec<FieldError>,
    url: Option<&str>,
    description: Option<&str>,
    event_types: Option<&[String]>,
) {
    let cfg = &app.config.webhooks;
    if let Some(problem) = url.and_then(|u| {
        guard::url_problem(
            u,
            cfg.allow_http,
            cfg.allow_private_targets,
            guard::WEBHOOKS,
        )
    }) {
        errors.push(FieldError::new("url", problem));
    }
    if let Some(d) = description {
        check_text(errors, "description", d, MAX_DESCRIPTION, false);
    }
    if let Some(types) = event_types {
        errors.extend(model::check_event_types(types));
    }
}

/// Create an endpoint; the answer shows its signing secret, once.
#[utoipa::path(
    post, path = "/webhooks/endpoints", operation_id = "omni.webhooks.endpoints.create", tag = "Webhooks",
    request_body = CreateEndpoint,
    responses(
        (status = 201, description = "Created, with `secret`", body = Data<EndpointView>),
        (status = 422, description = "A bad field, each named (`validation_failed`): a URL that is not https, carries credentials, or points to a loopback, private, link-local or metadata address; an unknown event type; a malformed secret. A reused Idempotency-Key (`idempotency_key_reused`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_endpoint(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> ApiResult<Response> {
    let event_types = body.event_types.unwrap_or_default();
    let mut errors = Vec::new();
    check_endpoint_fields(
        &app,
        &mut errors,
        Some(&body.url),
        body.description.as_deref(),
        Some(&event_types),
    );
    let secret = match body.secret.as_deref() {
        None => Secret::generate(),
        Some(s) => Secret::parse(s).unwrap_or_else(|| {
            errors.push(FieldError::new("secret", SECRET_RULE));
            Secret::generate()
        }),
    };
    reject(errors)?;
    let now = app.db.now_ms();
    let id = crate::ids::new_id("ep_");
    let sealed = app
        .vault
        .seal(
            &app.db,
            &tenant.id,
            &super::sealing_context(&id),
            &secret.expose(),
        )
        .await?;
    let row = EndpointRow {
        id,
        url: body.url,
        description: body.description.filter(|d| !d.is_empty()),
        event_types: serde_json::to_string(&event_types).map_err(|_| ApiError::internal())?,
        enabled: i64::from(body.enabled.unwrap_or(true)),
        disabled_reason: None,
        secret: sealed,
        previous_secret: None,
        previous_secret_until: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    let mut tx = app.db.begin().await?;
    store::insert_endpoint(&mut tx, &tenant.id, &row).await?;
    // A retry is answered without the secret: it is never stored unsealed.
    idem.commit_apart(
        &app.db,
        tx,
        StatusCode::CREATED,
        &Data {
            data: endpoint_view(&row, Some(secret.expose())),
        },
        &Data {
            data: endpoint_view(&row, None),
        },
    )
    .await
}

/// Query of `GET /webhooks/endpoints`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct EndpointQuery {
    /// Only enabled (`true`) or disabled (`false`) endpoints.
    #[param(value_type = Option<bool>)]
    enabled: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 20, max 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

/// List the tenant's endpoints, newest first (without their secrets).
#[utoipa::path(
    get, path = "/webhooks/endpoints", operation_id = "omni.webhooks.endpoints.list", tag = "Webhooks",
    params(EndpointQuery),
    responses(
        (status = 200, description = "A page of endpoints", body = Paginated<EndpointView>),
        (status = 400, description = "`page`/`perPage` not an integer (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`enabled` not a boolean, or `page`/`perPage` out of range (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_endpoints(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<EndpointQuery>,
) -> ApiResult<Response> {
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 20, 100)?;
    let enabled = parse_bool("enabled", q.enabled.as_deref())?;
    let (rows, total) = store::list_endpoints(
        app.db.reader(),
        &tenant.id,
        enabled,
        page.limit(),
        page.offset(),
    )
    .await?;
    Ok(page.answer(rows.iter().map(|e| endpoint_view(e, None)).collect(), total))
}

async fn find_endpoint(app: &AppState, tenant: &str, id: &str) -> ApiResult<EndpointRow> {
    let mut conn = app.db.read_conn().await?;
    store::get_endpoint(&mut conn, tenant, id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook endpoint"))
}

/// Get an endpoint (without its secret).
#[utoipa::path(
    get, path = "/webhooks/endpoints/{id}", operation_id = "omni.webhooks.endpoints.get", tag = "Webhooks",
    params(("id" = String, Path, description = "Endpoint id (`ep_...`)")),
    responses(
        (status = 200, description = "The endpoint", body = Data<EndpointView>),
        (status = 404, description = "No such endpoint for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_endpoint(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let e = find_endpoint(&app, &tenant.id, &id).await?;
    Ok(data(StatusCode::OK, endpoint_view(&e, None)))
}

/// Change an endpoint's URL, description, event types, or whether it is enabled.
///
/// New events follow the new settings; messages already written keep their endpoint and go to
/// its URL as it is when they are attempted. Disabling parks the pending messages; enabling
/// sends them.
#[utoipa::path(
    patch, path = "/webhooks/endpoints/{id}", operation_id = "omni.webhooks.endpoints.update", tag = "Webhooks",
    params(("id" = String, Path, description = "Endpoint id (`ep_...`)")),
    request_body = UpdateEndpoint,
    responses(
        (status = 200, description = "Changed", body = Data<EndpointView>),
        (status = 404, description = "No such endpoint for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A bad field, each named (`validation_failed`); a reused Idempotency-Key (`idempotency_key_reused`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn update_endpoint(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateEndpoint>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    check_endpoint_fields(
        &app,
        &mut errors,
        body.url.as_deref(),
        body.description.as_deref(),
        body.event_types.as_deref(),
    );
    reject(errors)?;
    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    let mut e = store::get_endpoint(&mut tx, &tenant.id, &id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook endpoint"))?;
    if let Some(url) = body.url {
        e.url = url;
    }
    if let Some(d) = body.description {
        e.description = Some(d).filter(|d| !d.is_empty());
    }
    if let Some(types) = &body.event_types {
        e.event_types = serde_json::to_string(types).map_err(|_| ApiError::internal())?;
    }
    if let Some(enabled) = body.enabled
        && enabled != (e.enabled == 1)
    {
        e.enabled = i64::from(enabled);
        e.disabled_reason = None;
        e.failing_since = None;
        store::park_messages(&mut tx, &e.id, !enabled, now).await?;
    }
    e.updated_at = now;
    store::update_endpoint(&mut tx, &tenant.id, &e).await?;
    let answer = idem
        .commit(
            &app.db,
            tx,
            StatusCode::OK,
            &Data {
                data: endpoint_view(&e, None),
            },
        )
        .await;
    super::wake();
    answer
}

/// Delete an endpoint with its messages and their attempts: nothing more is sent to it.
#[utoipa::path(
    delete, path = "/webhooks/endpoints/{id}", operation_id = "omni.webhooks.endpoints.delete", tag = "Webhooks",
    params(("id" = String, Path, description = "Endpoint id (`ep_...`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn delete_endpoint(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let mut tx = app.db.begin().await?;
    if !store::delete_endpoint(&mut tx, &tenant.id, &id).await? {
        return Err(ApiError::not_found("Webhook endpoint"));
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Body of `POST /webhooks/endpoints/{id}/rotate-secret`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateSecret {
    /// The new secret (`whsec_...`); else one is made.
    pub secret: Option<String>,
}

/// The new secret, and until when the old one still signs too.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecret {
    /// The new secret, shown once: a retry with the same `Idempotency-Key` answers without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Until then every message carries two signatures, the new secret's and the old one's.
    pub previous_secret_expires_at: String,
}

/// Rotate an endpoint's signing secret: for the next 24 hours messages are signed with both.
#[utoipa::path(
    post, path = "/webhooks/endpoints/{id}/rotate-secret", operation_id = "omni.webhooks.endpoints.rotateSecret", tag = "Webhooks",
    params(("id" = String, Path, description = "Endpoint id (`ep_...`)")),
    request_body(content = Option<RotateSecret>, description = "May be empty"),
    responses(
        (status = 200, description = "Rotated", body = Data<RotatedSecret>),
        (status = 404, description = "No such endpoint for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A malformed secret (`validation_failed`); a reused Idempotency-Key (`idempotency_key_reused`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn rotate_secret(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RotateSecret>,
) -> ApiResult<Response> {
    let secret = match body.secret.as_deref() {
        None => Secret::generate(),
        Some(s) => {
            Secret::parse(s).ok_or_else(|| ApiError::invalid_field("secret", SECRET_RULE))?
        }
    };
    let now = app.db.now_ms();
    let until = now
        + i64::try_from(
            app.config
                .webhooks
                .rotation_overlap_secs
                .saturating_mul(1000),
        )
        .unwrap_or(i64::MAX / 4);
    // Sealed before the transaction: the tenant's data key is committed by then.
    let sealed = app
        .vault
        .seal(
            &app.db,
            &tenant.id,
            &super::sealing_context(&id),
            &secret.expose(),
        )
        .await?;
    let mut tx = app.db.begin().await?;
    let mut e = store::get_endpoint(&mut tx, &tenant.id, &id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook endpoint"))?;
    e.previous_secret = Some(std::mem::replace(&mut e.secret, sealed));
    e.previous_secret_until = Some(until);
    e.updated_at = now;
    store::update_endpoint(&mut tx, &tenant.id, &e).await?;
    let answer = RotatedSecret {
        secret: Some(secret.expose()),
        previous_secret_expires_at: to_rfc3339(until),
    };
    // A retry is answered without the secret: it is never stored unsealed.
    let stored = RotatedSecret {
        secret: None,
        ..answer.clone()
    };
    idem.commit_apart(
        &app.db,
        tx,
        StatusCode::OK,
        &Data { data: answer },
        &Data { data: stored },
    )
    .await
}

/// A message: one event for one endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// `msg_...`, sent as `webhook-id` with every attempt.
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    #[schema(example = "omni.journey.created")]
    pub event_type: String,
    pub status: MessageStatus,
    pub attempts: i64,
    /// When it is next tried, while pending.
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub delivered_at: Option<String>,
    pub failed_at: Option<String>,
    /// The body sent, `{"type", "timestamp", "data"}`: only when one message is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
}

fn message_view(m: &MessageRow, with_payload: bool) -> MessageView {
    MessageView {
        id: m.id.clone(),
        endpoint_id: m.endpoint_id.clone(),
        event_id: m.event_id.clone(),
        event_type: m.event_type.clone(),
        status: match m.status.as_str() {
            "delivered" => MessageStatus::Delivered,
            "failed" => MessageStatus::Failed,
            _ => MessageStatus::Pending,
        },
        attempts: m.attempts,
        next_attempt_at: m.next_attempt_at.map(to_rfc3339),
        last_status_code: m.last_status_code,
        last_error: m.last_error.clone(),
        created_at: to_rfc3339(m.created_at),
        updated_at: to_rfc3339(m.updated_at),
        delivered_at: m.delivered_at.map(to_rfc3339),
        failed_at: m.failed_at.map(to_rfc3339),
        payload: with_payload.then(|| {
            crate::api::stored_json(&super::body(&m.event_type, m.occurred_at, &m.payload))
        }),
    }
}

/// Query of `GET /webhooks/endpoints/{id}/messages`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct MessageQuery {
    #[param(value_type = Option<MessageStatus>)]
    status: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 20, max 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

/// List an endpoint's messages, newest first.
#[utoipa::path(
    get, path = "/webhooks/endpoints/{id}/messages", operation_id = "omni.webhooks.endpoints.messages.list", tag = "Webhooks",
    params(("id" = String, Path, description = "Endpoint id (`ep_...`)"), MessageQuery),
    responses(
        (status = 200, description = "A page of messages", body = Paginated<MessageView>),
        (status = 400, description = "`page`/`perPage` not an integer (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Unknown `status`, or `page`/`perPage` out of range (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_messages(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<MessageQuery>,
) -> ApiResult<Response> {
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 20, 100)?;
    let status: Option<MessageStatus> = parse_filter("status", q.status.as_deref())?;
    find_endpoint(&app, &tenant.id, &id).await?;
    let (rows, total) = store::list_messages(
        app.db.reader(),
        &tenant.id,
        &id,
        status.map(MessageStatus::as_str),
        page.limit(),
        page.offset(),
    )
    .await?;
    Ok(page.answer(rows.iter().map(|m| message_view(m, false)).collect(), total))
}

async fn find_message(app: &AppState, tenant: &str, id: &str) -> ApiResult<MessageRow> {
    let mut conn = app.db.read_conn().await?;
    store::get_message(&mut conn, tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook message"))
}

/// Get a message with the body it sends.
#[utoipa::path(
    get, path = "/webhooks/messages/{id}", operation_id = "omni.webhooks.messages.get", tag = "Webhooks",
    params(("id" = String, Path, description = "Message id (`msg_...`)")),
    responses(
        (status = 200, description = "The message", body = Data<MessageView>),
        (status = 404, description = "No such message for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_message(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let m = find_message(&app, &tenant.id, &id).await?;
    Ok(data(StatusCode::OK, message_view(&m, true)))
}

/// One attempt to deliver a message.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub id: String,
    pub message_id: String,
    pub attempted_at: String,
    /// Answered 2xx within the timeout.
    pub succeeded: bool,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    /// The first 4 KiB of the receiver's answer.
    pub response_body: Option<String>,
    /// Why it failed: the status, a timeout, a refused connection, a refused target.
    pub error: Option<String>,
}

fn attempt_view(a: &AttemptRow) -> AttemptView {
    AttemptView {
        id: a.id.clone(),
        message_id: a.message_id.clone(),
        attempted_at: to_rfc3339(a.attempted_at),
        succeeded: a.succeeded == 1,
        status_code: a.status_code,
        duration_ms: a.duration_ms,
        response_body: a.response_body.clone(),
        error: a.error.clone(),
    }
}

/// List a message's attempts, oldest first.
#[utoipa::path(
    get, path = "/webhooks/messages/{id}/attempts", operation_id = "omni.webhooks.messages.attempts.list", tag = "Webhooks",
    params(("id" = String, Path, description = "Message id (`msg_...`)")),
    responses(
        (status = 200, description = "Every attempt", body = Data<Vec<AttemptView>>),
        (status = 404, description = "No such message for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_attempts(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    find_message(&app, &tenant.id, &id).await?;
    let attempts = store::attempts_of(app.db.reader(), &id).await?;
    Ok(data(
        StatusCode::OK,
        attempts.iter().map(attempt_view).collect::<Vec<_>>(),
    ))
}

/// Send a message again now, with a fresh retry schedule, whatever its status.
#[utoipa::path(
    post, path = "/webhooks/messages/{id}/retry", operation_id = "omni.webhooks.messages.retry", tag = "Webhooks",
    params(("id" = String, Path, description = "Message id (`msg_...`)")),
    responses(
        (status = 202, description = "Due now", body = Data<MessageView>),
        (status = 404, description = "No such message for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Its endpoint is disabled (`endpoint_disabled`): enable it first", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A reused Idempotency-Key (`idempotency_key_reused`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn retry_message(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    let mut m = store::get_message(&mut tx, &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook message"))?;
    let endpoint = store::get_endpoint(&mut tx, &tenant.id, &m.endpoint_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook message"))?;
    if endpoint.enabled != 1 {
        return Err(disabled(&endpoint.id));
    }
    store::retry_message(&mut tx, &tenant.id, &id, now).await?;
    m.status = MessageStatus::Pending.as_str().to_owned();
    m.next_attempt_at = Some(now);
    m.updated_at = now;
    let answer = idem
        .commit(
            &app.db,
            tx,
            StatusCode::ACCEPTED,
            &Data {
                data: message_view(&m, false),
            },
        )
        .await;
    super::wake();
    answer
}

fn disabled(endpoint: &str) -> ApiError {
    ApiError::conflict(
        "endpoint_disabled",
        "The endpoint is disabled: enable it (PATCH enabled=true) before sending it messages",
    )
    .with("endpointId", endpoint)
}

/// Body of `POST /webhooks/endpoints/{id}/replay`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Replay {
    /// Every failed message created at or after this instant (RFC 3339) is sent again.
    #[schema(example = "2024-01-15T00:00:00Z")]
    pub since: String,
}

/// How many messages a replay made due.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    pub replayed: u64,
}

/// Send again every failed message of an endpoint since an instant.
#[utoipa::path(
    post, path = "/webhooks/endpoints/{id}/replay", operation_id = "omni.webhooks.endpoints.replay", tag = "Webhooks",
    params(("id" = String, Path, description = "Endpoint id (`ep_...`)")),
    request_body = Replay,
    responses(
        (status = 202, description = "The failed messages are due now", body = Data<Replayed>),
        (status = 404, description = "No such endpoint for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled (`endpoint_disabled`): enable it first", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`since` missing, not RFC 3339, or in the future (`validation_failed`); a reused Idempotency-Key (`idempotency_key_reused`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn replay(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Replay>,
) -> ApiResult<Response> {
    let now = app.db.now_ms();
    let since = match parse_rfc3339(&body.since) {
        None => {
            return Err(ApiError::invalid_field(
                "since",
                "must be an RFC 3339 date-time",
            ));
        }
        Some(t) if t > now => {
            return Err(ApiError::invalid_field(
                "since",
                "must not be in the future",
            ));
        }
        Some(t) => t,
    };
    let mut tx = app.db.begin().await?;
    let endpoint = store::get_endpoint(&mut tx, &tenant.id, &id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook endpoint"))?;
    if endpoint.enabled != 1 {
        return Err(disabled(&endpoint.id));
    }
    let replayed = store::replay_failed(&mut tx, &id, since, now).await?;
    let answer = idem
        .commit(
            &app.db,
            tx,
            StatusCode::ACCEPTED,
            &Data {
                data: Replayed { replayed },
            },
        )
        .await;
    super::wake();
    answer
}

/// Messages of an endpoint by status.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct MessageCounts {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

/// An endpoint's delivery over the last 24 hours, and its messages by status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStats {
    pub endpoint_id: String,
    /// The window the attempt figures cover: the last 24 hours.
    pub from: String,
    pub to: String,
    pub attempts: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// `succeeded / attempts`, from 0 to 1; null when there was no attempt.
    pub success_rate: Option<f64>,
    /// All the endpoint's messages by status (not only the window's).
    pub messages: MessageCounts,
}

/// Delivery statistics of an endpoint: success rate over the last 24 hours.
#[utoipa::path(
    get, path = "/webhooks/endpoints/{id}/stats", operation_id = "omni.webhooks.endpoints.stats", tag = "Webhooks",
    params(("id" = String, Path, description = "Endpoint id (`ep_...`)")),
    responses(
        (status = 200, description = "The figures", body = Data<EndpointStats>),
        (status = 404, description = "No such endpoint for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn stats(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    find_endpoint(&app, &tenant.id, &id).await?;
    let now = app.db.now_ms();
    let from = crate::time::earlier(now, std::time::Duration::from_secs(24 * 3600));
    let (attempts, succeeded) = store::attempt_counts(app.db.reader(), &id, from).await?;
    let mut messages = MessageCounts::default();
    for (status, n) in store::message_counts(app.db.reader(), &id).await? {
        match status.as_str() {
            "pending" => messages.pending = n,
            "delivered" => messages.delivered = n,
            _ => messages.failed += n,
        }
    }
    Ok(data(
        StatusCode::OK,
        EndpointStats {
            endpoint_id: id,
            from: to_rfc3339(from),
            to: to_rfc3339(now),
            attempts,
            succeeded,
            failed: attempts - succeeded,
            success_rate: (attempts > 0).then(|| succeeded as f64 / attempts as f64),
            messages,
        },
    ))
}

/// List every event type an endpoint can subscribe to.
#[utoipa::path(
    get, path = "/webhooks/event-types", operation_id = "omni.webhooks.eventTypes.list", tag = "Webhooks",
    responses((status = 200, description = "The event types", body = Data<Vec<String>>))
)]
async fn event_types() -> Response {
    data(StatusCode::OK, model::event_types().collect::<Vec<_>>())
}
