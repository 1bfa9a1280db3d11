//! `/api/v1/omni/retention` (a tenant's retention periods) and
//! `/api/v1/customers/{customer_id}/erasure` (erasing a customer's personal data).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Periods;
use super::erasure::{self, Erasure};
use crate::AppState;
use crate::api::{ApiJson, ApiPath, Data, check_text, data, json, put_status, reject};
use crate::auth::Tenant;
use crate::error::{ApiResult, FieldError, ProblemDoc};
use crate::time::to_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_retention, get_retention))
}

/// The erasure route, under `/api/v1` beside the customers' own.
pub fn customer_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(erase_customer))
}

/// A tenant's retention periods.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionView {
    #[serde(flatten)]
    pub periods: Periods,
    /// The idempotency window in force, in hours: `idempotencyHours`, else the deployment's
    /// `idempotency_ttl_hours`.
    pub idempotency_window_hours: u64,
    /// `default` (Omnirail's, until the tenant puts its own) or `tenant`.
    pub source: &'static str,
    pub updated_at: Option<String>,
}

/// Body of `PUT /retention`: every period; one left out is `null` (kept), but for webhook
/// messages, which default to 30 days.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutRetention {
    #[schema(minimum = 1, maximum = 3650, example = 30)]
    pub webhook_messages_days: Option<i64>,
    #[schema(minimum = 1, maximum = 3650, example = 365)]
    pub notifications_days: Option<i64>,
    #[schema(minimum = 1, maximum = 3650, example = 90)]
    pub ended_sessions_days: Option<i64>,
    #[schema(minimum = 1, maximum = 3650, example = 1825)]
    pub onboarding_documents_days: Option<i64>,
    #[schema(minimum = 24, maximum = 8760, example = 72)]
    pub idempotency_hours: Option<i64>,
}

fn view(app: &AppState, periods: Periods, updated_at: Option<i64>) -> RetentionView {
    RetentionView {
        periods,
        idempotency_window_hours: periods
            .idempotency_hours
            .and_then(|h| u64::try_from(h).ok())
            .unwrap_or(app.config.idempotency_ttl_hours),
        source: if updated_at.is_some() {
            "tenant"
        } else {
            "default"
        },
        updated_at: updated_at.map(to_rfc3339),
    }
}

/// Set how long the tenant keeps webhook messages, notifications, ended sessions and the
/// documents of ended onboardings. The retention sweep deletes what is older, in batches, on one
/// node at a time; events, journeys and approvals are never swept.
#[utoipa::path(
    put, path = "/retention", operation_id = "omni.retention.put", tag = "Retention",
    request_body = PutRetention,
    responses(
        (status = 200, description = "Replaced", body = Data<RetentionView>),
        (status = 201, description = "Created (the tenant had the defaults)", body = Data<RetentionView>),
        (status = 422, description = "A period that is not 1 to 3650 days, each named (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_retention(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiJson(body): ApiJson<PutRetention>,
) -> ApiResult<Response> {
    let periods = Periods {
        webhook_messages_days: body
            .webhook_messages_days
            .unwrap_or(super::DEFAULT_WEBHOOK_MESSAGES_DAYS),
        notifications_days: body.notifications_days,
        ended_sessions_days: body.ended_sessions_days,
        onboarding_documents_days: body.onboarding_documents_days,
        idempotency_hours: body.idempotency_hours,
    };
    reject(periods.problems())?;
    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    let created = super::put(&mut tx, &tenant.id, &periods, now).await?;
    tx.commit().await?;
    // This node at once; the others within a minute.
    app.idempotency_windows.forget(&tenant.id);
    Ok(data(put_status(created), view(&app, periods, Some(now))))
}

/// Get the tenant's retention periods: its own, else Omnirail's defaults.
#[utoipa::path(
    get, path = "/retention", operation_id = "omni.retention.get", tag = "Retention",
    responses((status = 200, description = "The periods in force", body = Data<RetentionView>))
)]
async fn get_retention(State(app): State<AppState>, tenant: Tenant) -> ApiResult<Response> {
    let v = match super::get(app.db.reader(), &tenant.id).await? {
        Some((periods, at)) => view(&app, periods, Some(at)),
        None => view(&app, Periods::default(), None),
    };
    Ok(data(StatusCode::OK, v))
}

/// Body of `POST /customers/{customer_id}/erasure`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseCustomer {
    /// Why: the request it answers, 1 to 500 characters; kept in the timeline.
    #[schema(example = "Data subject request under GDPR Art. 17")]
    pub reason: String,
    /// The bank's reference for the request.
    #[schema(example = "DSR-2026-0042")]
    pub reference: Option<String>,
}

/// Erase a customer's personal data: profile, devices, notifications' content, sessions' and
/// onboardings' data and documents, and the content of their timeline's events, keeping the
/// bank's record (ids, journeys, approvals, each event's type, time and place in the hash chain,
/// which still verifies). Irreversible. Running it again erases what was added since.
#[utoipa::path(
    post, path = "/customers/{customer_id}/erasure", operation_id = "customers.erase", tag = "Customers",
    params(("customer_id" = String, Path, description = "The tenant's id of the customer")),
    request_body = EraseCustomer,
    responses(
        (status = 200, description = "Erased: what was removed, and what was kept", body = Erasure),
        (status = 404, description = "No such customer for this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "No reason, or fields too long (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "A document could not be removed from the document store: the erasure stopped before changing any record; run it again (`document_store_unavailable`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn erase_customer(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(customer_id): ApiPath<String>,
    ApiJson(body): ApiJson<EraseCustomer>,
) -> ApiResult<Response> {
    let mut errors: Vec<FieldError> = Vec::new();
    check_text(&mut errors, "reason", &body.reason, 500, true);
    if let Some(r) = &body.reference {
        check_text(&mut errors, "reference", r, 200, true);
    }
    reject(errors)?;
    let done = erasure::erase(
        &app,
        &tenant.id,
        &customer_id,
        body.reason.trim(),
        body.reference.as_deref(),
    )
    .await?;
    Ok(json(StatusCode::OK, &done))
}
