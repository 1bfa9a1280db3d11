//! `/api/v1/sessions`: channel sessions, and handing one over to another channel (seed 000:
//! snake_case, no envelope, channels in upper case).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store::{self, HandoffRow, SessionRow};
use crate::AppState;
use crate::analytics;
use crate::api::{ApiJson, ApiPath, check_object, json, reject, stored_json};
use crate::auth::Tenant;
use crate::calls;
use crate::channel::UpperChannel;
use crate::channels;
use crate::customers;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::events::{self, EventType, NewEvent};
use crate::idempotency::Idem;
use crate::ids::ID_RULE;
use crate::ids::{is_external_id, new_id, new_secret, sha256_hex};
use crate::store::Tx;
use crate::streams;
use crate::time::to_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_session))
        .routes(routes!(get_session, end_session))
        .routes(routes!(create_handoff))
        .routes(routes!(resume))
        .routes(routes!(session_stream))
}

/// Body of `POST /sessions`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StartSession {
    /// The session's id, if the client chooses it: `sess_` and 1 to 64 letters, digits, `_`
    /// or `-`, unique across the installation. Generated when absent.
    #[schema(example = "sess_web_123")]
    pub session_id: Option<String>,
    #[schema(example = "cust_123456")]
    pub customer_id: String,
    /// Either case: `WEB` or `web`.
    pub channel: UpperChannel,
    #[schema(example = "device_web_001")]
    pub device_id: String,
    /// What the customer is doing; carried over on handoff. A JSON object.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
}

/// A channel session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    #[schema(example = "sess_3f9c...")]
    pub session_id: String,
    pub customer_id: String,
    pub channel: UpperChannel,
    pub device_id: String,
    #[schema(value_type = Object)]
    pub context: Value,
    /// `active`, or `ended` (by `DELETE`, or after the idle timeout: at once on reads).
    #[schema(example = "active")]
    pub status: String,
    pub started_at: String,
    pub last_active_at: String,
    pub ended_at: Option<String>,
    /// `ended_by_client` or `idle_timeout`.
    pub end_reason: Option<String>,
    /// The handoff this session was resumed from (`hof_...`), if any.
    pub handoff_id: Option<String>,
}

/// Body of `POST /sessions/handoff` (seed 000).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateHandoff {
    #[schema(example = "sess_web_123")]
    pub source_session_id: String,
    pub target_channel: UpperChannel,
    /// Replaces the session's context for the target channel when given. A JSON object.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
}

/// A handoff token, shown once (seed 000).
#[derive(Debug, Serialize, ToSchema)]
pub struct HandoffView {
    /// `ho_` and 256 random bits; single use; stored only as a hash.
    pub handoff_token: String,
    pub expires_at: String,
    pub target_channel: UpperChannel,
    pub context_preserved: bool,
}

/// Body of `POST /sessions/resume` (seed 000).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Resume {
    pub handoff_token: String,
    /// Must be the handoff's `target_channel`.
    pub channel: UpperChannel,
    #[schema(example = "device_abc123")]
    pub device_id: String,
}

/// The session opened on the target channel (seed 000).
#[derive(Debug, Serialize, ToSchema)]
pub struct ResumedView {
    pub session_id: String,
    pub customer_id: String,
    #[schema(value_type = Object)]
    pub context: Value,
    pub handoff_complete: bool,
}

struct Timing {
    idle_ms: i64,
}

impl Timing {
    fn of(app: &AppState) -> Self {
        Self {
            idle_ms: app.config.session_idle_ms(),
        }
    }

    /// Whether the session has ended at `now`, by `DELETE` or by idling out.
    fn ended(&self, s: &SessionRow, now: i64) -> bool {
        s.ended_at.is_some() || now.saturating_sub(s.last_seen_at) > self.idle_ms
    }
}

fn view(s: &SessionRow, timing: &Timing, now: i64) -> SessionView {
    let idled = s.ended_at.is_none() && timing.ended(s, now);
    SessionView {
        session_id: s.id.clone(),
        customer_id: s.customer_id.clone(),
        channel: UpperChannel(s.channel.parse().unwrap_or(crate::channel::Channel::Web)),
        device_id: s.device_id.clone(),
        context: stored_json(&s.context),
        status: if timing.ended(s, now) {
            "ended"
        } else {
            "active"
        }
        .to_owned(),
        started_at: to_rfc3339(s.started_at),
        last_active_at: to_rfc3339(s.last_seen_at),
        ended_at: s
            .ended_at
            .or(idled.then(|| s.last_seen_at.saturating_add(timing.idle_ms)))
            .map(to_rfc3339),
        end_reason: s
            .end_reason
            .clone()
            .or(idled.then(|| "idle_timeout".to_owned())),
        handoff_id: s.handoff_id.clone(),
    }
}

fn check_device(errors: &mut Vec<FieldError>, device: &str) {
    if device.is_empty() || device.len() > 128 || device.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "device_id",
            "must be 1 to 128 characters without control characters",
        ));
    }
}

/// Records a session event in the caller's transaction.
#[allow(clippy::too_many_arguments)]
async fn record(
    tx: &mut Tx,
    tenant: &str,
    event_type: EventType,
    summary: String,
    s: &SessionRow,
    metadata: Value,
    payload: Value,
    also: Option<&str>,
    now: i64,
) -> ApiResult<()> {
    let mut entities = vec![
        ("session", s.id.as_str()),
        ("customer", s.customer_id.as_str()),
    ];
    if let Some(other) = also {
        entities.push(("session", other));
    }
    events::record(
        tx,
        NewEvent {
            tenant_id: tenant,
            event_type,
            actor_id: None,
            channel: Some(&s.channel),
            summary,
            metadata,
            payload,
            occurred_at: now,
            entities,
            parties: Default::default(),
        },
    )
    .await?;
    // The customer had a session open on its channel from its last activity until now (or
    // its end): the days channel analytics counts it active. After the event, so that the
    // customer's chain lock is always taken first.
    let until = s.ended_at.unwrap_or(now);
    analytics::session_open(
        tx,
        tenant,
        &s.customer_id,
        &s.channel,
        s.last_seen_at,
        until,
    )
    .await?;
    Ok(())
}

/// Records `omni.session.ended` for a session just ended (its `ended_at` is set).
pub(super) async fn record_ended(
    tx: &mut Tx,
    tenant: &str,
    row: &SessionRow,
    reason: &str,
    now: i64,
) -> ApiResult<()> {
    let payload = json!({
        "session_id": row.id, "customer_id": row.customer_id,
        "channel": row.channel.to_ascii_uppercase(), "status": "ended",
        "ended_at": row.ended_at.map(to_rfc3339), "end_reason": reason,
    });
    record(
        tx,
        tenant,
        EventType::SessionEnded,
        format!(
            "Session ended on {} ({reason})",
            row.channel.to_ascii_uppercase()
        ),
        row,
        json!({ "sessionId": row.id, "reason": reason }),
        payload,
        None,
        now,
    )
    .await
}

/// Open a session on a channel.
#[utoipa::path(
    post, path = "/sessions", operation_id = "sessions.create", tag = "Sessions",
    request_body = StartSession,
    responses(
        (status = 201, description = "Session opened", body = SessionView),
        (status = 403, description = "The Starter plan has no omnichannel features (`plan_not_included`), or the channel is not enabled for the tenant (`channel_disabled`, with `channel`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "A session with the given `session_id` exists (`session_exists`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn start_session(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiJson(body): ApiJson<StartSession>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    if !is_external_id(&body.customer_id) {
        errors.push(FieldError::new("customer_id", ID_RULE));
    }
    if let Some(id) = &body.session_id {
        let rest = id.strip_prefix("sess_").unwrap_or_default();
        if rest.is_empty()
            || rest.len() > 64
            || !rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            errors.push(FieldError::new(
                "session_id",
                "must be `sess_` and 1 to 64 letters, digits, _ or -",
            ));
        }
    }
    check_device(&mut errors, &body.device_id);
    check_object(&mut errors, "context", body.context.as_ref());
    reject(errors)?;
    calls::state(body.channel.0);
    let now = app.db.now_ms();
    let row = SessionRow {
        id: body.session_id.unwrap_or_else(|| new_id("sess_")),
        customer_id: body.customer_id,
        channel: body.channel.0.as_lower().to_owned(),
        device_id: body.device_id,
        context: body.context.unwrap_or_else(|| json!({})).to_string(),
        started_at: now,
        last_seen_at: now,
        ended_at: None,
        end_reason: None,
        handoff_id: None,
    };
    let mut tx = app.db.begin().await?;
    channels::require_enabled(&mut tx, &tenant.id, body.channel.0).await?;
    customers::ensure_customer(&mut tx, &app.customers, &tenant.id, &row.customer_id, now).await?;
    store::insert_session(&mut tx, &tenant.id, &row)
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                ApiError::conflict("session_exists", format!("Session {} exists", row.id))
            } else {
                e.into()
            }
        })?;
    let v = view(&row, &Timing::of(&app), now);
    let summary = format!("Session started on {}", v.channel.as_upper());
    let payload = serde_json::to_value(&v).unwrap_or_default();
    record(
        &mut tx,
        &tenant.id,
        EventType::SessionStarted,
        summary,
        &row,
        json!({ "sessionId": row.id, "deviceId": row.device_id }),
        payload,
        None,
        now,
    )
    .await?;
    idem.commit(&app.db, tx, StatusCode::CREATED, &v).await
}

/// The session's customer's events, live, as Server-Sent Events, until the session ends.
///
/// The same events as the customer's stream (`/customers/{customer_id}/stream`), with the same
/// `id`s and `Last-Event-ID` resume; the stream closes after the session's own
/// `session.ended`.
#[utoipa::path(
    get, path = "/sessions/{id}/stream", operation_id = "sessions.stream", tag = "Sessions",
    params(
        ("id" = String, Path, description = "Session id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received: resume after it"),
    ),
    responses(
        (status = 200, description = "A stream of `text/event-stream` events; each `data` is a StreamEvent", body = crate::streams::StreamEvent, content_type = "text/event-stream"),
        (status = 403, description = "The Starter plan has no omnichannel features (`plan_not_included`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such session in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The session has ended (`session_ended`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A `Last-Event-ID` that is not a whole number (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn session_stream(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let after = streams::last_event_id(&headers)?;
    let mut conn = app.db.read_conn().await?;
    channels::require_omnichannel(&mut conn, &tenant.id).await?;
    let row = store::get_session(&mut conn, &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Session"))?;
    drop(conn);
    if Timing::of(&app).ended(&row, app.db.now_ms()) {
        return Err(ApiError::conflict(
            "session_ended",
            "The session has ended; follow the customer's stream instead",
        ));
    }
    streams::open(
        &app,
        streams::Follow {
            tenant: tenant.id,
            chain: format!("customer:{}", row.customer_id),
            session: Some(row.id),
            after,
        },
    )
    .await
}

/// Get a session.
#[utoipa::path(
    get, path = "/sessions/{id}", operation_id = "sessions.get", tag = "Sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session", body = SessionView),
        (status = 404, description = "No such session in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_session(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let row = store::get_session(app.db.reader(), &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Session"))?;
    Ok(json(
        StatusCode::OK,
        &view(&row, &Timing::of(&app), app.db.now_ms()),
    ))
}

/// End a session. Ending an ended session changes nothing and answers it as it is.
#[utoipa::path(
    delete, path = "/sessions/{id}", operation_id = "sessions.end", tag = "Sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "The ended session", body = SessionView),
        (status = 404, description = "No such session in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn end_session(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let now = app.db.now_ms();
    let timing = Timing::of(&app);
    let mut tx = app.db.begin().await?;
    let mut row = store::get_session(&mut *tx, &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Session"))?;
    if timing.ended(&row, now) {
        return Ok(json(StatusCode::OK, &view(&row, &timing, now)));
    }
    if store::end_session(&mut tx, &tenant.id, &id, now, "ended_by_client").await? {
        row.ended_at = Some(now);
        row.end_reason = Some("ended_by_client".into());
        record_ended(&mut tx, &tenant.id, &row, "ended_by_client", now).await?;
        tx.commit().await?;
    }
    Ok(json(StatusCode::OK, &view(&row, &timing, now)))
}

/// Hand a session over to another channel: answers a single-use token for `resume`.
#[utoipa::path(
    post, path = "/sessions/handoff", operation_id = "sessions.handoff", tag = "Sessions",
    request_body = CreateHandoff,
    responses(
        (status = 201, description = "Handoff token, shown once", body = HandoffView),
        (status = 403, description = "The Starter plan has no omnichannel features (`plan_not_included`), or the channel is not enabled for the tenant (`channel_disabled`, with `channel`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such source session in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The source session has ended (`session_ended`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_handoff(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiJson(body): ApiJson<CreateHandoff>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    check_object(&mut errors, "context", body.context.as_ref());
    reject(errors)?;
    let now = app.db.now_ms();
    let timing = Timing::of(&app);
    let mut tx = app.db.begin().await?;
    channels::require_enabled(&mut tx, &tenant.id, body.target_channel.0).await?;
    let source = store::get_session(&mut *tx, &tenant.id, &body.source_session_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Session"))?;
    if timing.ended(&source, now) {
        return Err(ApiError::conflict(
            "session_ended",
            "The source session has ended; it cannot be handed off",
        ));
    }
    let token = new_secret("ho_");
    let handoff = HandoffRow {
        id: new_id("hof_"),
        source_session_id: source.id.clone(),
        customer_id: source.customer_id.clone(),
        target_channel: body.target_channel.0.as_lower().to_owned(),
        context: body
            .context
            .map_or_else(|| source.context.clone(), |c| c.to_string()),
        created_at: now,
        expires_at: crate::time::later(
            now,
            std::time::Duration::from_secs(app.config.handoff_ttl_secs),
        ),
        used_at: None,
        target_session_id: None,
    };
    store::insert_handoff(&mut tx, &tenant.id, &sha256_hex(&token), &handoff).await?;
    store::touch(&mut tx, &tenant.id, &source.id, now).await?;
    let answer = HandoffView {
        handoff_token: token,
        expires_at: to_rfc3339(handoff.expires_at),
        target_channel: body.target_channel,
        context_preserved: true,
    };
    let summary = format!(
        "Session handoff created from {} to {}",
        source.channel.to_ascii_uppercase(),
        answer.target_channel.as_upper()
    );
    record(
        &mut tx,
        &tenant.id,
        EventType::SessionHandoffCreated,
        summary,
        &source,
        json!({
            "handoffId": handoff.id, "sourceSessionId": source.id,
            "targetChannel": answer.target_channel, "expiresAt": answer.expires_at,
        }),
        json!({ "handoffId": handoff.id, "sourceSessionId": source.id,
                "targetChannel": answer.target_channel, "expiresAt": answer.expires_at }),
        None,
        now,
    )
    .await?;
    // The token is shown once: an idempotent retry gets the same answer, token included.
    idem.commit(&app.db, tx, StatusCode::CREATED, &answer).await
}

/// Why a handoff token cannot be resumed: it was used (409 `handoff_used`), or it has expired
/// (410 `handoff_expired`).
pub(crate) fn handoff_refusal(used: bool) -> ApiError {
    if used {
        ApiError::conflict("handoff_used", "This handoff token was already used")
    } else {
        ApiError::new(
            StatusCode::GONE,
            "handoff_expired",
            "This handoff token has expired; create a new handoff",
        )
    }
}

/// Resume a handed-off session on its target channel.
#[utoipa::path(
    post, path = "/sessions/resume", operation_id = "sessions.resume", tag = "Sessions",
    request_body = Resume,
    responses(
        (status = 200, description = "The new session on the target channel", body = ResumedView),
        (status = 403, description = "The Starter plan has no omnichannel features (`plan_not_included`), or the channel is not enabled for the tenant (`channel_disabled`, with `channel`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such handoff token in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The token was already used (`handoff_used`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 410, description = "The token has expired (`handoff_expired`), or the session it came from has ended (`handoff_revoked`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`channel` is not the handoff's target channel (`channel_mismatch`); invalid fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn resume(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiJson(body): ApiJson<Resume>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    check_device(&mut errors, &body.device_id);
    reject(errors)?;
    calls::state(body.channel.0);
    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    channels::require_enabled(&mut tx, &tenant.id, body.channel.0).await?;
    let handoff = store::handoff_by_hash(&mut *tx, &tenant.id, &sha256_hex(&body.handoff_token))
        .await?
        .ok_or_else(|| ApiError::not_found("Handoff token"))?;
    let refusal = |h: &HandoffRow| handoff_refusal(h.used_at.is_some());
    if handoff.used_at.is_some() || handoff.expires_at <= now {
        return Err(refusal(&handoff));
    }
    // Ending a session (by the client or for idleness) revokes the handoffs it issued.
    let source = store::lock_session(&mut tx, &tenant.id, &handoff.source_session_id).await?;
    if source.is_none_or(|s| Timing::of(&app).ended(&s, now)) {
        return Err(ApiError::new(
            StatusCode::GONE,
            "handoff_revoked",
            "The session this handoff came from has ended; start a new session",
        ));
    }
    if body.channel.0.as_lower() != handoff.target_channel {
        return Err(ApiError::unprocessable(
            "channel_mismatch",
            format!(
                "This handoff is for {}",
                handoff.target_channel.to_ascii_uppercase()
            ),
        )
        .with("field", "channel"));
    }
    let session = SessionRow {
        id: new_id("sess_"),
        customer_id: handoff.customer_id.clone(),
        channel: handoff.target_channel.clone(),
        device_id: body.device_id,
        context: handoff.context.clone(),
        started_at: now,
        last_seen_at: now,
        ended_at: None,
        end_reason: None,
        handoff_id: Some(handoff.id.clone()),
    };
    // Of concurrent resumes of one token, exactly one claims it; the others see why it is gone.
    if !store::claim_handoff(&mut tx, &handoff.id, now, &session.id).await? {
        drop(tx);
        let current = store::handoff_by_hash(
            app.db.reader(),
            &tenant.id,
            &sha256_hex(&body.handoff_token),
        )
        .await?
        .unwrap_or(handoff);
        return Err(refusal(&current));
    }
    store::insert_session(&mut tx, &tenant.id, &session).await?;
    let answer = ResumedView {
        session_id: session.id.clone(),
        customer_id: session.customer_id.clone(),
        context: stored_json(&session.context),
        handoff_complete: true,
    };
    let summary = format!(
        "Session resumed on {} from a handoff",
        session.channel.to_ascii_uppercase()
    );
    record(
        &mut tx,
        &tenant.id,
        EventType::SessionResumed,
        summary,
        &session,
        json!({
            "handoffId": handoff.id, "sessionId": session.id,
            "sourceSessionId": handoff.source_session_id,
        }),
        serde_json::to_value(&answer).unwrap_or_default(),
        Some(&handoff.source_session_id),
        now,
    )
    .await?;
    idem.commit(&app.db, tx, StatusCode::OK, &answer).await
}
