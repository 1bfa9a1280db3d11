//! `GET /api/v1/customers/{customer_id}/stream` and `GET /api/v1/omni/users/{id}/stream`. The
//! session's stream is with the sessions.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Follow, last_event_id, open};
use crate::AppState;
use crate::api::ApiPath;
use crate::auth::Tenant;
use crate::customers;
use crate::error::{ApiError, ApiResult, ProblemDoc};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(customer_stream))
}

/// `GET /api/v1/omni/users/{id}/stream`, beside the staff directory.
pub fn omni_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(user_stream))
}

/// Everything recorded for a customer, live, as Server-Sent Events.
///
/// Each event's SSE `id` is its number in the customer's chain: reconnect with `Last-Event-ID`
/// to receive exactly the events after it. Without it, only events from now on are sent. An
/// idle stream carries a `: heartbeat` comment every `stream_heartbeat_secs` (15 s).
#[utoipa::path(
    get, path = "/customers/{customer_id}/stream", operation_id = "customers.stream", tag = "Customers",
    params(
        ("customer_id" = String, Path, description = "Customer id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received: resume after it"),
    ),
    responses(
        (status = 200, description = "A stream of `text/event-stream` events; each `data` is a StreamEvent", body = super::StreamEvent, content_type = "text/event-stream"),
        (status = 404, description = "No such customer in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A `Last-Event-ID` that is not a whole number (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn customer_stream(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(customer_id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let after = last_event_id(&headers)?;
    customers::store::get(app.db.reader(), &tenant.id, &customer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Customer"))?;
    open(
        &app,
        Follow {
            tenant: tenant.id,
            chain: format!("customer:{customer_id}"),
            session: None,
            after,
        },
    )
    .await
}

/// A staff user's events, live, as Server-Sent Events: their notifications (created, sent,
/// delivered, read), which is how in-app notifications reach a staff user's screen.
///
/// Resumes with `Last-Event-ID` as the customer stream does; the ids count the user's own
/// chain of events.
#[utoipa::path(
    get, path = "/users/{id}/stream", operation_id = "omni.users.stream", tag = "Staff directory",
    params(
        ("id" = String, Path, description = "Staff user id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received: resume after it"),
    ),
    responses(
        (status = 200, description = "A stream of `text/event-stream` events; each `data` is a StreamEvent", body = super::StreamEvent, content_type = "text/event-stream"),
        (status = 404, description = "No such user in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A `Last-Event-ID` that is not a whole number (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn user_stream(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(user_id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let after = last_event_id(&headers)?;
    crate::directory::store::get_user(app.db.reader(), &tenant.id, &user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    open(
        &app,
        Follow {
            tenant: tenant.id,
            chain: format!("user:{user_id}"),
            session: None,
            after,
        },
    )
    .await
}
