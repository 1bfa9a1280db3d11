//! `/api/v1/omni/notifications` (seed 001): create, list, read one, mark read, cancel; and the
//! customer's in-app inbox under `/omni/notifications` with an onboarding session token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{DeliveryStatus, NotifyChannel, Priority, RecipientType};
use super::store::{self, NotificationFilter};
use super::templates::{CODE_RULE, is_code};
use super::{NewNotification, NotificationView, OnRenderError, load_view, view};
use crate::AppState;
use crate::api::{
    ApiJson, ApiPath, ApiQuery, Data, PageRequest, Paginated, data, parse_bool, parse_filter,
    reject,
};
use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::events::EventType;
use crate::idempotency::Idem;
use crate::ids::{ID_RULE, is_external_id};
use crate::onboarding::session::SessionToken;

use crate::time::parse_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_notification, list_notifications))
        .routes(routes!(get_notification))
        .routes(routes!(read_notification))
        .routes(routes!(cancel_notification))
}

/// The customer's inbox, for `/omni` with a session token.
pub fn inbox() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_inbox))
        .routes(routes!(read_inbox))
}

/// Largest `templateData`, serialized.
const MAX_TEMPLATE_DATA_BYTES: usize = 16 * 1024;
/// Furthest ahead a notification can be scheduled.
const MAX_SCHEDULE_AHEAD: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

/// Body of `POST /notifications` (seed 001).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateNotification {
    #[schema(example = "ent_customer_456")]
    pub recipient_id: String,
    /// Default `customer`.
    pub recipient_type: Option<RecipientType>,
    /// Without it, the recipient's preferred channel (a customer's
    /// `preferences.notification_channel`), else `in_app`.
    #[schema(example = json!(["push", "email"]))]
    pub channels: Option<Vec<NotifyChannel>>,
    #[schema(example = "JOURNEY_STEP_REQUIRED")]
    pub template_code: String,
    /// The template's variables; at most 16 KiB.
    #[schema(value_type = Option<Object>, example = json!({"journeyName": "SME Onboarding", "stepName": "Document Collection", "dueDate": "2024-01-17"}))]
    pub template_data: Option<Value>,
    /// Default `normal`. Only `critical` goes out during the recipient's quiet hours.
    pub priority: Option<Priority>,
    /// When to send (RFC 3339); null or past: now. At most a year ahead.
    pub schedule_at: Option<String>,
}

/// Create a notification: rendered now, sent by the delivery worker.
///
/// Every channel is rendered from the template in the recipient's language (falling back to
/// its primary language, then the template's default) when the call is made: a variable the
/// template needs and `templateData` lacks is 422 naming it, and nothing is stored. Sending
/// happens in the background: read the notification to follow each delivery.
#[utoipa::path(
    post, path = "/notifications", operation_id = "omni.notifications.create", tag = "Notifications",
    request_body = CreateNotification,
    responses(
        (status = 201, description = "Created; its deliveries are pending", body = Data<NotificationView>),
        (status = 422, description = "A bad field (`validation_failed`); no such template (`unknown_template`); a variable missing from templateData (`template_variable_missing`, each as `templateData.<name>`); no content for a channel (`template_channel_missing`); a template that fails to render (`template_render_failed`); a reused Idempotency-Key (`idempotency_key_reused`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_notification(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiJson(body): ApiJson<CreateNotification>,
) -> ApiResult<Response> {
    let now = app.db.now_ms();
    let mut errors = Vec::new();
    if !is_external_id(&body.recipient_id) {
        errors.push(FieldError::new("recipientId", ID_RULE));
    }
    if let Some(channels) = &body.channels {
        if channels.is_empty() {
            errors.push(FieldError::new(
                "channels",
                "must name at least one channel",
            ));
        }
        let mut seen = channels.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != channels.len() {
            errors.push(FieldError::new("channels", "must not name a channel twice"));
        }
    }
    if !is_code(&body.template_code) {
        errors.push(FieldError::new("templateCode", CODE_RULE));
    }
    let template_data = body
        .template_data
        .clone()
        .unwrap_or_else(|| Value::Object(Default::default()));
    if !template_data.is_object() {
        errors.push(FieldError::new("templateData", "must be a JSON object"));
    } else if template_data.to_string().len() > MAX_TEMPLATE_DATA_BYTES {
        errors.push(FieldError::new(
            "templateData",
            format!("must be at most {MAX_TEMPLATE_DATA_BYTES} bytes as JSON"),
        ));
    }
    let schedule_at = match body.schedule_at.as_deref() {
        None => None,
        Some(s) => match parse_rfc3339(s) {
            None => {
                errors.push(FieldError::new(
                    "scheduleAt",
                    "must be an RFC 3339 date-time",
                ));
                None
            }
            Some(t) if t > crate::time::later(now, MAX_SCHEDULE_AHEAD) => {
                errors.push(FieldError::new(
                    "scheduleAt",
                    "must be at most a year ahead",
                ));
                None
            }
            Some(t) => Some(t),
        },
    };
    reject(errors)?;
    let mut tx = app.db.begin().await?;
    let v = super::create(
        &mut tx,
        Some((&app.users, &app.customers)),
        &tenant.id,
        NewNotification {
            recipient_id: &body.recipient_id,
            recipient_type: body.recipient_type.unwrap_or_default(),
            channels: body.channels,
            template_code: &body.template_code,
            template_data,
            priority: body.priority.unwrap_or_default(),
            schedule_at,
            actor_id: None,
            source_event: None,
        },
        OnRenderError::Refuse,
        app.db.now_ms(),
    )
    .await??;
    let answer = idem
        .commit(&app.db, tx, StatusCode::CREATED, &Data { data: v })
        .await;
    app.notifier.wake.notify_one();
    answer
}

/// Query of `GET /notifications` (seed 001).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct NotificationQuery {
    /// Notifications to this customer or user.
    recipient_id: Option<String>,
    /// Notifications with a delivery on this channel; with `status`, that delivery's status.
    #[param(value_type = Option<NotifyChannel>)]
    channel: Option<String>,
    /// The notification's status (derived from its deliveries), or with `channel` the status
    /// of that channel's delivery.
    #[param(value_type = Option<DeliveryStatus>)]
    status: Option<String>,
    /// Read (`true`) or unread (`false`).
    #[param(value_type = Option<bool>)]
    read: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 20, max 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

/// List notifications, newest first, each with its deliveries.
#[utoipa::path(
    get, path = "/notifications", operation_id = "omni.notifications.list", tag = "Notifications",
    params(NotificationQuery),
    responses(
        (status = 200, description = "A page of notifications", body = Paginated<NotificationView>),
        (status = 400, description = "`page`/`perPage` not an integer (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Unknown `channel` or `status`, `read` not a boolean, or `page`/`perPage` out of range (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_notifications(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> ApiResult<Response> {
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 20, 100)?;
    let channel: Option<NotifyChannel> = parse_filter("channel", q.channel.as_deref())?;
    let status: Option<DeliveryStatus> = parse_filter("status", q.status.as_deref())?;
    let read = parse_bool("read", q.read.as_deref())?;
    let filter = NotificationFilter {
        recipient_id: q.recipient_id.as_deref(),
        recipient_type: None,
        channel: channel.map(NotifyChannel::as_str),
        status: status.map(DeliveryStatus::as_str),
        read,
    };
    let (data, total) = views_page(&app, &tenant.id, &filter, &page).await?;
    Ok(page.answer(data, total))
}

/// A page of notifications as the API shows them, and how many match in all.
async fn views_page(
    app: &AppState,
    tenant: &str,
    filter: &NotificationFilter<'_>,
    page: &PageRequest,
) -> ApiResult<(Vec<NotificationView>, i64)> {
    let mut conn = app.db.read_conn().await?;
    let (rows, total) =
        store::list_notifications(&mut conn, tenant, filter, page.limit(), page.offset()).await?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let deliveries = store::deliveries_of(&mut conn, tenant, &ids).await?;
    Ok((rows.iter().map(|r| view(r, &deliveries)).collect(), total))
}

/// Get a notification with one delivery per channel.
#[utoipa::path(
    get, path = "/notifications/{id}", operation_id = "omni.notifications.get", tag = "Notifications",
    params(("id" = String, Path, description = "Notification id")),
    responses(
        (status = 200, description = "The notification", body = Data<NotificationView>),
        (status = 404, description = "No such notification in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_notification(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let mut conn = app.db.read_conn().await?;
    let v = load_view(&mut conn, &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Notification"))?;
    Ok(data(StatusCode::OK, v))
}

/// Mark a notification read. Reading it again changes nothing.
#[utoipa::path(
    post, path = "/notifications/{id}/read", operation_id = "omni.notifications.read", tag = "Notifications",
    params(
        ("id" = String, Path, description = "Notification id"),
    ),
    responses(
        (status = 200, description = "The notification, read", body = Data<NotificationView>),
        (status = 404, description = "No such notification in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn read_notification(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let mut tx = app.db.begin().await?;
    let v = super::mark_read(&mut tx, &tenant.id, &id, None, app.db.now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("Notification"))?;
    idem.commit(&app.db, tx, StatusCode::OK, &Data { data: v })
        .await
}

/// Cancel a notification that has not been sent on any channel yet (scheduled, held for quiet
/// hours, or not yet attempted).
#[utoipa::path(
    post, path = "/notifications/{id}/cancel", operation_id = "omni.notifications.cancel", tag = "Notifications",
    params(
        ("id" = String, Path, description = "Notification id"),
    ),
    responses(
        (status = 200, description = "Cancelled: every delivery is `cancelled`", body = Data<NotificationView>),
        (status = 404, description = "No such notification in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "A delivery has already been attempted, sent or failed, or it is cancelled already (`notification_not_cancellable`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn cancel_notification(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    let mut n = store::lock_notification(&mut tx, &tenant.id, &id, now)
        .await?
        .ok_or_else(|| ApiError::not_found("Notification"))?;
    let deliveries = store::deliveries_of(&mut tx, &tenant.id, &[&id]).await?;
    let untouched = deliveries
        .iter()
        .all(|d| d.status == "pending" && d.attempts == 0 && d.lease_until.is_none_or(|l| l < now));
    if n.cancelled_at.is_some() || !untouched {
        return Err(ApiError::conflict(
            "notification_not_cancellable",
            "Only a notification not yet attempted on any channel can be cancelled",
        )
        .with("notificationStatus", n.status));
    }
    store::cancel(&mut tx, &id, now).await?;
    n.cancelled_at = Some(now);
    let (v, _) = super::refresh(&mut tx, &mut n, now).await?;
    super::record(
        &mut tx,
        &n,
        EventType::NotificationCancelled,
        None,
        format!("Notification {} cancelled", n.template_code),
        serde_json::json!({"notificationId": id}),
        &v,
    )
    .await?;
    idem.commit(&app.db, tx, StatusCode::OK, &Data { data: v })
        .await
}

/// One in-app notification in the customer's inbox.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboxItem {
    pub id: String,
    pub title: String,
    pub body: String,
    pub priority: Priority,
    pub read: bool,
    pub read_at: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

/// The inbox item of a notification view, if it has a delivered in-app part.
pub fn inbox_item(v: &NotificationView) -> Option<InboxItem> {
    let d = v
        .deliveries
        .iter()
        .find(|d| d.channel == NotifyChannel::InApp && d.status == DeliveryStatus::Delivered)?;
    Some(InboxItem {
        id: v.id.clone(),
        title: d.content["title"].as_str().unwrap_or_default().to_owned(),
        body: d.content["body"].as_str().unwrap_or_default().to_owned(),
        priority: v.priority,
        read: v.read,
        read_at: v.read_at.clone(),
        delivered_at: d.delivered_at.clone(),
        created_at: v.created_at.clone(),
    })
}

/// Query of `GET /omni/notifications`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct InboxQuery {
    /// Read (`true`) or unread (`false`).
    #[param(value_type = Option<bool>)]
    read: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 20, max 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

/// The session's customer's in-app notifications, newest first: those delivered to the inbox
/// (not those still scheduled or held).
#[utoipa::path(
    get, path = "/omni/notifications", operation_id = "onboarding.notifications.list", tag = "Onboarding sessions",
    params(InboxQuery),
    security(("sessionToken" = [])),
    responses(
        (status = 200, description = "A page of the inbox", body = Paginated<InboxItem>),
        (status = 422, description = "`read` not a boolean, or `page`/`perPage` out of range (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_inbox(
    State(app): State<AppState>,
    token: SessionToken,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> ApiResult<Response> {
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 20, 100)?;
    let read = parse_bool("read", q.read.as_deref())?;
    let customer = crate::onboarding::session::customer_of(&app, &token).await?;
    let filter = NotificationFilter {
        recipient_id: Some(&customer),
        recipient_type: Some("customer"),
        channel: Some(NotifyChannel::InApp.as_str()),
        status: Some(DeliveryStatus::Delivered.as_str()),
        read,
    };
    let (views, total) = views_page(&app, &token.tenant_id, &filter, &page).await?;
    let items = views.iter().filter_map(inbox_item).collect();
    Ok(page.answer(items, total))
}

/// Mark one of the inbox's notifications read.
#[utoipa::path(
    post, path = "/omni/notifications/{id}/read", operation_id = "onboarding.notifications.read", tag = "Onboarding sessions",
    params(
        ("id" = String, Path, description = "A notification in this customer's inbox"),
    ),
    security(("sessionToken" = [])),
    responses(
        (status = 200, description = "The inbox item, read", body = InboxItem),
        (status = 404, description = "No such notification in this customer's inbox (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn read_inbox(
    State(app): State<AppState>,
    token: SessionToken,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let customer = crate::onboarding::session::customer_of(&app, &token).await?;
    let mut tx = app.db.begin().await?;
    // Not the customer's, or not in the inbox: 404, and the transaction (the read with it) is
    // dropped uncommitted.
    let item = super::mark_read(
        &mut tx,
        &token.tenant_id,
        &id,
        Some(&customer),
        app.db.now_ms(),
    )
    .await?
    .filter(|v| v.recipient_type == RecipientType::Customer && v.recipient_id == customer)
    .as_ref()
    .and_then(inbox_item)
    .ok_or_else(|| ApiError::not_found("Notification"))?;
    idem.commit(&app.db, tx, StatusCode::OK, &item).await
}
