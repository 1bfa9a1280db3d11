//! Notifications (seed 001): one message to a customer or a staff user on one or more
//! channels, each channel a delivery with its own lifecycle.
//!
//! A notification is rendered from its template when it is created, in the caller's
//! transaction, with `omni.notification.created`; nothing is sent in the request. The
//! [`worker`] takes due deliveries (leased, so several processes share the work), holds them
//! through the recipient's quiet hours, sends each through the tenant's provider, and records
//! `omni.notification.sent`, `.delivered` or `.failed` with the delivery's new state. Transient
//! failures are retried with exponential backoff and jitter. Events go on the recipient's
//! timeline: the customer's chain, or for a staff user the user's own, which their stream
//! follows.

pub mod devices;
pub mod model;
pub mod providers;
mod routes;
pub mod rules;
pub mod store;
pub mod templates;
pub mod worker;

use crate::store::Conn;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Notify;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use self::model::{DeliveryStatus, NotifyChannel, Priority, RecipientType};
use self::store::{DeliveryRow, NotificationRow};
use crate::AppState;
use crate::api::stored_json;
use crate::customers;
use crate::directory;
use crate::error::{ApiError, ApiResult, StoreError};
use crate::events::{self, EventType, NewEvent};
use crate::ids::new_id;
use crate::store::known::KnownIds;

use crate::time::to_rfc3339;

pub use routes::{InboxItem, inbox, inbox_item};
pub use store::seal_stored_settings;

/// Routes under `/api/v1/omni` (API key).
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
        .merge(templates::router())
        .merge(providers::router())
        .merge(rules::router())
}

/// What the process shares for sending: one HTTP client, FCM's access tokens, and the wake-up
/// of this process's worker when a notification is created here.
#[derive(Debug)]
pub struct Notifier {
    pub http: reqwest::Client,
    pub fcm_tokens: providers::fcm::TokenCache,
    pub wake: Notify,
}

impl Notifier {
    /// With `allow_private` off, every name the client resolves (a provider's, or a proxy's
    /// from the environment) must point outside the network.
    pub fn new(allow_private: bool) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .connect_timeout(std::time::Duration::from_secs(5))
            // A provider answers, it does not redirect: a redirect is a failure, not followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("omnirail/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(crate::webhooks::guard::GuardedResolver);
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            fcm_tokens: Default::default(),
            wake: Notify::new(),
        })
    }
}

/// One channel's delivery, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub channel: NotifyChannel,
    pub status: DeliveryStatus,
    /// `smtp`, `twilio`, `fcm` or `omnirail` (in-app); none before the first attempt.
    #[schema(example = "twilio")]
    pub provider: Option<String>,
    /// The provider's id for the message: Twilio's SID, FCM's message name, the email's
    /// `Message-ID`.
    pub provider_message_id: Option<String>,
    pub attempts: i64,
    /// Why the last attempt failed, as a stable code: `provider_not_configured`,
    /// `no_email_address`, `no_phone_number`, `no_push_device`, `provider_rejected`,
    /// `provider_unavailable`, ...
    pub error_code: Option<String>,
    pub last_error: Option<String>,
    /// When the next attempt is due, while pending (scheduled, held or retrying).
    pub next_attempt_at: Option<String>,
    /// What was rendered for this channel: `subject`/`text`/`html`, `text`, or `title`/`body`.
    #[schema(value_type = Object)]
    pub content: Value,
    pub created_at: String,
    pub updated_at: String,
    pub sent_at: Option<String>,
    pub delivered_at: Option<String>,
    pub failed_at: Option<String>,
}

/// A notification with its deliveries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    #[schema(example = "ntf_3f9c...")]
    pub id: String,
    #[schema(example = "ent_customer_456")]
    pub recipient_id: String,
    pub recipient_type: RecipientType,
    pub channels: Vec<NotifyChannel>,
    #[schema(example = "JOURNEY_STEP_REQUIRED")]
    pub template_code: String,
    #[schema(value_type = Object)]
    pub template_data: Value,
    /// The language it was rendered in.
    #[schema(example = "en")]
    pub language: String,
    pub priority: Priority,
    pub schedule_at: Option<String>,
    /// Derived from the deliveries: `delivered` once any channel is, else `sent` once any
    /// channel is, else `pending` while any may still go, else `cancelled` or `failed`.
    pub status: DeliveryStatus,
    pub read: bool,
    pub read_at: Option<String>,
    pub cancelled_at: Option<String>,
    /// The event type whose rule sent it, if a rule did.
    pub source_event: Option<String>,
    pub deliveries: Vec<DeliveryView>,
    pub created_at: String,
    pub updated_at: String,
}

pub(crate) fn delivery_view(d: &DeliveryRow) -> DeliveryView {
    DeliveryView {
        channel: NotifyChannel::parse(&d.channel).unwrap_or(NotifyChannel::InApp),
        status: DeliveryStatus::parse(&d.status).unwrap_or(DeliveryStatus::Pending),
        provider: d.provider.clone(),
        provider_message_id: d.provider_message_id.clone(),
        attempts: d.attempts,
        error_code: d.error_code.clone(),
        last_error: d.last_error.clone(),
        next_attempt_at: d.next_attempt_at.map(to_rfc3339),
        content: stored_json(&d.content),
        created_at: to_rfc3339(d.created_at),
        updated_at: to_rfc3339(d.updated_at),
        sent_at: d.sent_at.map(to_rfc3339),
        delivered_at: d.delivered_at.map(to_rfc3339),
        failed_at: d.failed_at.map(to_rfc3339),
    }
}

/// The view of `n` with its deliveries (those of `all` that are its own).
pub(crate) fn view(n: &NotificationRow, all: &[DeliveryRow]) -> NotificationView {
    let deliveries: Vec<DeliveryView> = all
        .iter()
        .filter(|d| d.notification_id == n.id)
        .map(delivery_view)
        .collect();
    NotificationView {
        id: n.id.clone(),
        recipient_id: n.recipient_id.clone(),
        recipient_type: if n.recipient_type == "user" {
            RecipientType::User
        } else {
            RecipientType::Customer
        },
        channels: deliveries.iter().map(|d| d.channel).collect(),
        template_code: n.template_code.clone(),
        template_data: stored_json(&n.template_data),
        language: n.language.clone(),
        priority: Priority::parse(&n.priority).unwrap_or_default(),
        schedule_at: n.schedule_at.map(to_rfc3339),
        // From the deliveries shown, not the stored column (kept for the list filter): two
        // reads outside one snapshot must not show a status its deliveries contradict.
        status: if deliveries.is_empty() {
            DeliveryStatus::parse(&n.status).unwrap_or(DeliveryStatus::Pending)
        } else {
            model::derive_status(&deliveries.iter().map(|d| d.status).collect::<Vec<_>>())
        },
        read: n.read_at.is_some(),
        read_at: n.read_at.map(to_rfc3339),
        cancelled_at: n.cancelled_at.map(to_rfc3339),
        source_event: n.source_event.clone(),
        deliveries,
        created_at: to_rfc3339(n.created_at),
        updated_at: to_rfc3339(n.updated_at),
    }
}

/// The notification `id` of `tenant` as it now stands, read on `conn`.
pub(crate) async fn load_view(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
) -> ApiResult<Option<NotificationView>> {
    let Some(n) = store::get_notification(conn, tenant, id).await? else {
        return Ok(None);
    };
    let deliveries = store::deliveries_of(conn, tenant, &[id]).await?;
    Ok(Some(view(&n, &deliveries)))
}

/// A notification to create.
#[derive(Debug)]
pub struct NewNotification<'a> {
    pub recipient_id: &'a str,
    pub recipient_type: RecipientType,
    /// `None`: the recipient's preferred channel (in-app if they have none).
    pub channels: Option<Vec<NotifyChannel>>,
    pub template_code: &'a str,
    pub template_data: Value,
    pub priority: Priority,
    pub schedule_at: Option<i64>,
    pub actor_id: Option<&'a str>,
    /// The event type whose rule sends it.
    pub source_event: Option<&'a str>,
}

/// What to do when the template cannot be rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRenderError {
    /// Refuse: the caller gets a 422 and nothing is stored (the API).
    Refuse,
    /// Store the notification with every delivery failed, so the failure is seen (rules: a
    /// template problem must not undo the change that triggered them).
    RecordFailed,
}

/// What is known of a recipient for sending.
#[derive(Debug, Default, sqlx::FromRow)]
pub(crate) struct Recipient {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub preferred_channel: Option<String>,
    pub language: Option<String>,
    pub quiet_hours: Option<String>,
}

/// The recipient's contact data and preferences; staff users have only contact data.
pub(crate) async fn recipient(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    kind: &str,
) -> Result<Recipient, StoreError> {
    let sql = if kind == "user" {
        "SELECT email, phone, CAST(NULL AS TEXT) AS preferred_channel,
             CAST(NULL AS TEXT) AS language, CAST(NULL AS TEXT) AS quiet_hours
         FROM users WHERE tenant_id = $1 AND id = $2"
    } else {
        "SELECT email, phone, notification_channel AS preferred_channel,
             preferred_language AS language, quiet_hours
         FROM customers WHERE tenant_id = $1 AND id = $2"
    };
    let row: Option<Recipient> = sqlx::query_as(sql)
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.unwrap_or_default())
}

/// One channel's rendered content, or why it could not be rendered (code, detail).
type Rendered = Result<Value, (&'static str, String)>;

/// Creates a notification in the caller's transaction: the recipient exists afterwards (made
/// with only its id if new; `known` is `(users, customers)`, or `None` when the caller knows
/// the recipient exists), every channel is rendered, and `omni.notification.created` is
/// recorded. Returns it as it stands. The caller wakes the worker after commit.
///
/// The outer error is the database's, kept as the store gave it (a busy database stays busy
/// for a caller that is itself a store function, such as a notification rule); the inner one
/// is a refusal of the request.
pub async fn create(
    conn: &mut Conn,
    known: Option<(&std::sync::Arc<KnownIds>, &std::sync::Arc<KnownIds>)>,
    tenant: &str,
    new: NewNotification<'_>,
    on_error: OnRenderError,
    now: i64,
) -> Result<ApiResult<NotificationView>, StoreError> {
    let ensured: Result<(), StoreError> = match (new.recipient_type, known) {
        (_, None) => Ok(()),
        (RecipientType::Customer, Some((_, customers_known))) => {
            customers::ensure_customer(conn, customers_known, tenant, new.recipient_id, now).await
        }
        (RecipientType::User, Some((users, _))) => {
            directory::ensure_users(conn, users, tenant, &[new.recipient_id], now).await
        }
    };
    ensured?;
    let who = recipient(conn, tenant, new.recipient_id, new.recipient_type.as_str()).await?;
    let channels = new.channels.clone().unwrap_or_else(|| {
        vec![
            who.preferred_channel
                .as_deref()
                .and_then(NotifyChannel::from_preference)
                .unwrap_or(NotifyChannel::InApp),
        ]
    });
    let template = templates::find(conn, tenant, new.template_code).await?;
    let id = new_id("ntf_");
    let language = template
        .as_ref()
        .map_or_else(|| "en".to_owned(), |t| t.language(who.language.as_deref()));
    let mut rendered: Vec<(NotifyChannel, Rendered)> = Vec::new();
    for channel in &channels {
        let outcome = match &template {
            None if on_error == OnRenderError::Refuse => {
                return Ok(Err(ApiError::unprocessable(
                    "unknown_template",
                    format!(
                        "No notification template {}: PUT it first, or use a built-in",
                        new.template_code
                    ),
                )
                .with("field", "templateCode")));
            }
            None => Err((
                "unknown_template",
                format!("No notification template {}", new.template_code),
            )),
            Some(t) => match templates::render(t, &language, *channel, &new.template_data) {
                Ok(content) => Ok(content),
                Err(e) if on_error == OnRenderError::Refuse => {
                    return Ok(Err(e.into_api(new.template_code)));
                }
                Err(e) => Err((e.code(), e.detail(new.template_code))),
            },
        };
        rendered.push((*channel, outcome));
    }
    let due = new.schedule_at.unwrap_or(now).max(now);
    let mut deliveries: Vec<DeliveryRow> = rendered
        .into_iter()
        .map(|(channel, outcome)| {
            let (status, content, error_code, last_error, next, failed_at) = match outcome {
                Ok(content) => ("pending", content.to_string(), None, None, Some(due), None),
                Err((code, error)) => (
                    "failed",
                    "{}".to_owned(),
                    Some(code.to_owned()),
                    Some(error),
                    None,
                    Some(now),
                ),
            };
            DeliveryRow {
                id: new_id("dlv_"),
                notification_id: id.clone(),
                tenant_id: tenant.to_owned(),
                channel: channel.as_str().to_owned(),
                status: status.to_owned(),
                content,
                provider: None,
                provider_message_id: None,
                attempts: 0,
                error_code,
                last_error,
                next_attempt_at: next,
                lease_until: None,
                created_at: now,
                updated_at: now,
                sent_at: None,
                delivered_at: None,
                failed_at,
            }
        })
        .collect();
    // In the order the store reads them back: by channel name.
    deliveries.sort_by(|a, b| a.channel.cmp(&b.channel));
    let statuses: Vec<DeliveryStatus> = deliveries
        .iter()
        .filter_map(|d| DeliveryStatus::parse(&d.status))
        .collect();
    let row = NotificationRow {
        id: id.clone(),
        tenant_id: tenant.to_owned(),
        recipient_id: new.recipient_id.to_owned(),
        recipient_type: new.recipient_type.as_str().to_owned(),
        template_code: new.template_code.to_owned(),
        template_data: new.template_data.to_string(),
        language,
        priority: new.priority.as_str().to_owned(),
        schedule_at: new.schedule_at,
        status: model::derive_status(&statuses).as_str().to_owned(),
        source_event: new.source_event.map(str::to_owned),
        created_at: now,
        updated_at: now,
        read_at: None,
        cancelled_at: None,
    };
    store::insert_notification(conn, &row, &deliveries).await?;
    let v = view(&row, &deliveries);
    let summary = format!(
        "Notification {} created for {} on {}",
        row.template_code,
        row.recipient_id,
        channels
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    record(
        conn,
        &row,
        EventType::NotificationCreated,
        new.actor_id,
        summary,
        json!({
            "notificationId": row.id,
            "templateCode": row.template_code,
            "channels": channels,
            "priority": row.priority,
            "scheduleAt": row.schedule_at.map(to_rfc3339),
            "sourceEvent": row.source_event,
        }),
        &v,
    )
    .await?;
    for d in deliveries.iter().filter(|d| d.status == "failed") {
        record_delivery(conn, &row, d, &v).await?;
    }
    Ok(Ok(v))
}

/// Records one of the notification's events on its recipient's timeline.
async fn record(
    conn: &mut Conn,
    n: &NotificationRow,
    event_type: EventType,
    actor_id: Option<&str>,
    summary: String,
    metadata: Value,
    v: &NotificationView,
) -> Result<(), StoreError> {
    // The recipient first: a staff user's notifications chain on the user (see events::chain).
    let recipient: &'static str = if n.recipient_type == "user" {
        "user"
    } else {
        "customer"
    };
    events::record(
        conn,
        NewEvent {
            tenant_id: &n.tenant_id,
            event_type,
            actor_id,
            channel: None,
            summary,
            metadata,
            payload: serde_json::to_value(v).unwrap_or_default(),
            occurred_at: n.updated_at,
            entities: vec![(recipient, &n.recipient_id), ("notification", &n.id)],
            parties: Default::default(),
        },
    )
    .await?;
    Ok(())
}

/// Records the event of a delivery's new final state: `.sent`, `.delivered` or `.failed`.
async fn record_delivery(
    conn: &mut Conn,
    n: &NotificationRow,
    d: &DeliveryRow,
    v: &NotificationView,
) -> Result<(), StoreError> {
    let (event_type, what) = match d.status.as_str() {
        "sent" => (EventType::NotificationSent, "sent"),
        "delivered" => (EventType::NotificationDelivered, "delivered"),
        "failed" => (EventType::NotificationFailed, "failed"),
        _ => return Ok(()),
    };
    let why = d
        .error_code
        .as_deref()
        .filter(|_| what == "failed")
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let summary = format!(
        "Notification {} {what} by {}{why}",
        n.template_code,
        d.channel.replace('_', "-")
    );
    record(
        conn,
        n,
        event_type,
        None,
        summary,
        json!({
            "notificationId": n.id,
            "channel": d.channel,
            "status": d.status,
            "provider": d.provider,
            "providerMessageId": d.provider_message_id,
            "attempts": d.attempts,
            "errorCode": d.error_code,
            "error": d.last_error,
        }),
        v,
    )
    .await
}

/// After its deliveries changed under the lock the caller holds on `n` (as `lock_notification`
/// answered it): the notification's status derived again from its deliveries and stored, and
/// the notification as it now stands, with its deliveries' rows.
pub(crate) async fn refresh(
    conn: &mut Conn,
    n: &mut NotificationRow,
    now: i64,
) -> ApiResult<(NotificationView, Vec<DeliveryRow>)> {
    let deliveries = store::deliveries_of(conn, &n.tenant_id, &[&n.id]).await?;
    let statuses: Vec<DeliveryStatus> = deliveries
        .iter()
        .filter_map(|d| DeliveryStatus::parse(&d.status))
        .collect();
    n.status = model::derive_status(&statuses).as_str().to_owned();
    n.updated_at = now;
    store::set_status(conn, &n.id, &n.status, now).await?;
    Ok((view(n, &deliveries), deliveries))
}

/// After a delivery changed under the lock the caller holds on `n`: the notification's status,
/// and the delivery's event if it reached a final state.
pub(crate) async fn after_delivery_change(
    conn: &mut Conn,
    mut n: NotificationRow,
    delivery_id: &str,
    now: i64,
) -> ApiResult<()> {
    let (v, deliveries) = refresh(conn, &mut n, now).await?;
    if let Some(d) = deliveries.iter().find(|d| d.id == delivery_id) {
        record_delivery(conn, &n, d, &v).await?;
    }
    Ok(())
}

/// A provider's later word on a message it accepted.
#[derive(Debug, Clone)]
pub enum DeliveryReport {
    Delivered,
    Failed { code: &'static str, error: String },
}

/// Applies a provider's report to a sent delivery; a delivery not `sent` (already delivered,
/// failed, or reported twice) is left as it is.
pub async fn apply_report(
    app: &AppState,
    d: &DeliveryRow,
    report: &DeliveryReport,
) -> ApiResult<()> {
    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    let Some(n) = store::lock_notification(&mut tx, &d.tenant_id, &d.notification_id, now).await?
    else {
        return Ok(());
    };
    let changed = match report {
        DeliveryReport::Delivered => {
            store::report(&mut tx, &d.id, "delivered", None, None, now).await?
        }
        DeliveryReport::Failed { code, error } => {
            store::report(&mut tx, &d.id, "failed", Some(code), Some(error), now).await?
        }
    };
    if changed {
        after_delivery_change(&mut tx, n, &d.id, now).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Marks a notification read (once; reading again changes nothing) and records
/// `omni.notification.read`. `None` if the tenant has no such notification.
pub(crate) async fn mark_read(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    actor: Option<&str>,
    now: i64,
) -> ApiResult<Option<NotificationView>> {
    let Some(mut n) = store::lock_notification(conn, tenant, id, now).await? else {
        return Ok(None);
    };
    let deliveries = store::deliveries_of(conn, tenant, &[id]).await?;
    if n.read_at.is_none() {
        store::mark_read(conn, id, now).await?;
        n.read_at = Some(now);
        n.updated_at = now;
        let v = view(&n, &deliveries);
        record(
            conn,
            &n,
            EventType::NotificationRead,
            actor,
            format!("Notification {} read", n.template_code),
            json!({"notificationId": n.id}),
            &v,
        )
        .await?;
        return Ok(Some(v));
    }
    Ok(Some(view(&n, &deliveries)))
}
