//! Notification rules: which events notify whom, on which channels, with which template.
//!
//! A rule is applied in the transaction that records its event ([`on_event`], called by
//! `events::record`), so the notification exists exactly when the change does. Only events
//! whose recipients can be named from the event are notifiable; each names the recipients it
//! offers (`assignee`, `customer`, `approvers`, `requester`). Two rules hold for a tenant
//! until it puts its own: a journey assigned notifies its assignee in-app, and an approval
//! requested notifies its approvers in-app and by email.

use crate::store::Conn;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{NotifyChannel, Priority, RecipientType};
use super::store::{self, RuleRow};
use super::templates::{CODE_RULE, is_code};
use super::{NewNotification, OnRenderError};
use crate::AppState;
use crate::actor::SYSTEM_ACTOR;
use crate::api::{ApiJson, ApiPath, Data, data, put_status, reject};
use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::events::EventType;
use crate::events::{Assignee, NewEvent};

use crate::time::to_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules))
        .routes(routes!(put_rule, get_rule))
}

/// Whom a rule notifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecipientRole {
    /// The journey's assignee: the user, or every member of the team.
    Assignee,
    /// The customer the event concerns.
    Customer,
    /// The approval's approvers.
    Approvers,
    /// Who requested the approval.
    Requester,
    /// The managers of the journey's assignee (members of its team, or of the assigned user's
    /// teams, holding the role `manager`), as a deadline's escalation names them.
    Managers,
}

/// The events rules can be set for, with the recipients each can name.
pub const NOTIFIABLE: &[(EventType, &[RecipientRole])] = &[
    (
        EventType::JourneyAssigned,
        &[RecipientRole::Assignee, RecipientRole::Customer],
    ),
    (
        EventType::JourneyAdvanced,
        &[RecipientRole::Assignee, RecipientRole::Customer],
    ),
    (
        EventType::JourneyCompleted,
        &[RecipientRole::Assignee, RecipientRole::Customer],
    ),
    (
        EventType::JourneyCancelled,
        &[RecipientRole::Assignee, RecipientRole::Customer],
    ),
    (
        EventType::JourneySlaAtRisk,
        &[RecipientRole::Assignee, RecipientRole::Managers],
    ),
    (
        EventType::JourneySlaBreached,
        &[RecipientRole::Assignee, RecipientRole::Managers],
    ),
    (
        EventType::JourneyStepOverdue,
        &[RecipientRole::Assignee, RecipientRole::Managers],
    ),
    (
        EventType::JourneyEscalated,
        &[RecipientRole::Assignee, RecipientRole::Managers],
    ),
    (
        EventType::ApprovalRequested,
        &[RecipientRole::Approvers, RecipientRole::Requester],
    ),
    (
        EventType::ApprovalReminder,
        &[RecipientRole::Approvers, RecipientRole::Requester],
    ),
    (
        EventType::ApprovalApproverAssigned,
        &[RecipientRole::Approvers],
    ),
    (
        EventType::ApprovalApproved,
        &[RecipientRole::Approvers, RecipientRole::Requester],
    ),
    (
        EventType::ApprovalRejected,
        &[RecipientRole::Approvers, RecipientRole::Requester],
    ),
];

/// The recipients a rule for the event named `event_type` may name; `None` for an event no
/// rule is about (or a name outside the catalogue).
pub fn offered(event_type: &str) -> Option<&'static [RecipientRole]> {
    NOTIFIABLE
        .iter()
        .find(|(t, _)| t.as_str() == event_type)
        .map(|(_, r)| *r)
}

/// A rule as stored or as Omnirail's default.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub recipients: Vec<RecipientRole>,
    pub channels: Vec<NotifyChannel>,
    pub template_code: String,
    pub priority: Priority,
    pub enabled: bool,
}

/// Omnirail's rule for `event_type` when the tenant has set none.
pub fn default_rule(event_type: &str) -> Option<Rule> {
    match EventType::parse(event_type)? {
        EventType::JourneyAssigned => Some(Rule {
            recipients: vec![RecipientRole::Assignee],
            channels: vec![NotifyChannel::InApp],
            template_code: "JOURNEY_ASSIGNED".into(),
            priority: Priority::Normal,
            enabled: true,
        }),
        // A request that waited for its role reaches its approver as a new request would.
        EventType::ApprovalRequested | EventType::ApprovalApproverAssigned => Some(Rule {
            recipients: vec![RecipientRole::Approvers],
            channels: vec![NotifyChannel::InApp, NotifyChannel::Email],
            template_code: "APPROVAL_REQUESTED".into(),
            priority: Priority::Normal,
            enabled: true,
        }),
        // Whom an escalation notifies is the SLA policy's choice: the event names only them.
        EventType::JourneyEscalated => Some(Rule {
            recipients: vec![RecipientRole::Assignee, RecipientRole::Managers],
            channels: vec![NotifyChannel::InApp],
            template_code: "JOURNEY_ESCALATED".into(),
            priority: Priority::High,
            enabled: true,
        }),
        EventType::ApprovalReminder => Some(Rule {
            recipients: vec![RecipientRole::Approvers],
            channels: vec![NotifyChannel::InApp, NotifyChannel::Email],
            template_code: "APPROVAL_REMINDER".into(),
            priority: Priority::Normal,
            enabled: true,
        }),
        _ => None,
    }
}

fn rule_of(row: &RuleRow) -> Option<Rule> {
    Some(Rule {
        recipients: serde_json::from_str(&row.recipients).ok()?,
        channels: serde_json::from_str(&row.channels).ok()?,
        template_code: row.template_code.clone(),
        priority: Priority::parse(&row.priority)?,
        enabled: row.enabled != 0,
    })
}

/// Whom `role` names in `event`: `(id, type)` pairs.
async fn resolve(
    conn: &mut Conn,
    event: &NewEvent<'_>,
    role: RecipientRole,
) -> Result<Vec<(String, RecipientType)>, crate::error::StoreError> {
    let parties = &event.parties;
    let users = |ids: &[String]| -> Vec<(String, RecipientType)> {
        ids.iter()
            .filter(|id| *id != SYSTEM_ACTOR)
            .map(|id| (id.clone(), RecipientType::User))
            .collect()
    };
    Ok(match role {
        RecipientRole::Customer => event
            .entities
            .iter()
            .filter(|(t, _)| *t == "customer")
            .map(|(_, id)| ((*id).to_owned(), RecipientType::Customer))
            .collect(),
        RecipientRole::Assignee => match &parties.assignee {
            Some(Assignee::Team(team)) => {
                let members: Vec<String> = sqlx::query_scalar(
                    "SELECT user_id FROM team_members WHERE tenant_id = $1 AND team_id = $2
                     ORDER BY user_id",
                )
                .bind(event.tenant_id)
                .bind(team)
                .fetch_all(conn)
                .await?;
                users(&members)
            }
            Some(Assignee::User(user)) => users(std::slice::from_ref(user)),
            None => Vec::new(),
        },
        RecipientRole::Approvers => users(&parties.approvers),
        RecipientRole::Managers => users(&parties.managers),
        // Staff only: a customer whose own step opened the request is not told of the bank's
        // internal approval, nor the system.
        RecipientRole::Requester => users(parties.requesting_user.as_slice()),
    })
}

/// The spine's reaction that applies the tenant's notification rules ([`on_event`]).
pub struct Rules;

impl crate::events::Reaction for Rules {
    /// The tenant's stored rule for the event's type, as a JSON array of its columns (none
    /// when the tenant set none).
    fn prefetch(&self) -> Option<&'static str> {
        Some(
            "SELECT CAST(json_build_array(event_type, recipients, channels, template_code, \
             priority, enabled, created_at, updated_at) AS TEXT) \
             FROM notification_rules WHERE tenant_id = $2 AND event_type = $3",
        )
    }

    fn react<'a>(
        &'a self,
        conn: &'a mut Conn,
        appended: &'a crate::events::Appended<'a>,
        prefetched: Option<Option<String>>,
    ) -> futures::future::BoxFuture<'a, Result<(), crate::error::StoreError>> {
        Box::pin(on_event(conn, appended.event, prefetched))
    }
}

/// The stored rule [`Rules::prefetch`] answered with: its columns as a JSON array, in the
/// order of [`RuleRow`]'s fields.
fn prefetched_rule(text: &str) -> Result<RuleRow, crate::error::StoreError> {
    serde_json::from_str(text).map_err(|e| {
        crate::error::StoreError::Corrupt(format!("prefetched notification rule: {e}"))
    })
}

/// Applies the tenant's rule (or the default) for `event`, in the caller's transaction: one
/// notification per recipient. A template that cannot be rendered is recorded as failed
/// deliveries, never an error that would undo the change. `prefetched` is the stored rule as
/// the event's own statement read it on PostgreSQL ([`Rules::prefetch`]); without it, the rule
/// is read here.
pub async fn on_event(
    conn: &mut Conn,
    event: &NewEvent<'_>,
    prefetched: Option<Option<String>>,
) -> Result<(), crate::error::StoreError> {
    if offered(event.event_type.as_str()).is_none() {
        return Ok(());
    }
    let stored = match prefetched {
        Some(text) => text.as_deref().map(prefetched_rule).transpose()?,
        None => store::get_rule(conn, event.tenant_id, event.event_type.as_str()).await?,
    };
    let rule = match stored {
        Some(row) => rule_of(&row),
        None => default_rule(event.event_type.as_str()),
    };
    let Some(rule) = rule.filter(|r| r.enabled) else {
        return Ok(());
    };
    let mut recipients: Vec<(String, RecipientType)> = Vec::new();
    for role in &rule.recipients {
        for r in resolve(conn, event, *role).await? {
            if !recipients.contains(&r) {
                recipients.push(r);
            }
        }
    }
    if recipients.is_empty() {
        return Ok(());
    }
    // In one order, so two transactions never take two recipients' chain locks crosswise.
    recipients.sort_by(|a, b| (a.1.as_str(), &a.0).cmp(&(b.1.as_str(), &b.0)));
    let mut data = serde_json::Map::new();
    if let Value::Object(p) = &event.payload {
        data.extend(p.clone());
    }
    if let Value::Object(m) = &event.metadata {
        data.extend(m.clone());
    }
    for (kind, id) in &event.entities {
        data.entry(format!("{kind}Id"))
            .or_insert_with(|| Value::String((*id).to_owned()));
    }
    data.insert("eventType".into(), json!(event.event_type.as_str()));
    data.insert("summary".into(), json!(event.summary));
    let data = Value::Object(data);
    for (id, kind) in recipients {
        let made = super::create(
            conn,
            None,
            event.tenant_id,
            NewNotification {
                recipient_id: &id,
                recipient_type: kind,
                channels: Some(rule.channels.clone()),
                template_code: &rule.template_code,
                template_data: data.clone(),
                priority: rule.priority,
                schedule_at: None,
                actor_id: event.actor_id,
                source_event: Some(event.event_type.as_str()),
            },
            OnRenderError::RecordFailed,
            event.occurred_at,
        )
        .await?;
        // A database failure went up as it is, above (a busy database stays a retryable
        // 503); a refusal here would be a rule the server itself made wrong.
        if let Err(e) = made {
            return Err(crate::error::StoreError::Corrupt(format!(
                "notification rule for {} refused: {} {}",
                event.event_type, e.code, e.detail
            )));
        }
    }
    Ok(())
}

/// Body of `PUT /notification-rules/{eventType}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutRule {
    /// Whom to notify; each must be one the event offers.
    pub recipients: Vec<RecipientRole>,
    pub channels: Vec<NotifyChannel>,
    #[schema(example = "JOURNEY_ASSIGNED")]
    pub template_code: String,
    /// Default `normal`.
    pub priority: Option<Priority>,
    /// Default `true`; `false` turns the event's notifications off (defaults included).
    pub enabled: Option<bool>,
}

/// A notification rule.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    #[schema(example = "omni.journey.assigned")]
    pub event_type: String,
    pub recipients: Vec<RecipientRole>,
    pub channels: Vec<NotifyChannel>,
    pub template_code: String,
    pub priority: Priority,
    pub enabled: bool,
    /// `default` (Omnirail's, until the tenant puts its own) or `tenant`.
    pub source: &'static str,
    /// The recipients this event can name.
    pub offered_recipients: Vec<RecipientRole>,
    pub updated_at: Option<String>,
}

fn rule_view(event_type: &str, rule: Rule, source: &'static str, updated: Option<i64>) -> RuleView {
    RuleView {
        event_type: event_type.to_owned(),
        recipients: rule.recipients,
        channels: rule.channels,
        template_code: rule.template_code,
        priority: rule.priority,
        enabled: rule.enabled,
        source,
        offered_recipients: offered(event_type).unwrap_or_default().to_vec(),
        updated_at: updated.map(to_rfc3339),
    }
}

fn notifiable(event_type: &str) -> ApiResult<&'static [RecipientRole]> {
    offered(event_type).ok_or_else(|| {
        ApiError::unprocessable(
            "event_type_not_notifiable",
            format!(
                "No rule can be set for {event_type}; notifiable events: {}",
                NOTIFIABLE
                    .iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .with("field", "eventType")
    })
}

/// Set which event notifies whom, on which channels, with which template.
#[utoipa::path(
    put, path = "/notification-rules/{eventType}", operation_id = "omni.notificationRules.put", tag = "Notifications",
    params(("eventType" = String, Path, description = "A notifiable event: `omni.journey.assigned`, `omni.approval.requested`, ...")),
    request_body = PutRule,
    responses(
        (status = 200, description = "Replaced", body = Data<RuleView>),
        (status = 201, description = "Created", body = Data<RuleView>),
        (status = 422, description = "An event no rule can be set for (`event_type_not_notifiable`); a recipient the event does not offer, no channels, a bad template code (`validation_failed`); a template that does not exist (`unknown_template`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_rule(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(event_type): ApiPath<String>,
    body: Result<ApiJson<PutRule>, ApiError>,
) -> ApiResult<Response> {
    // The path names what is set: an unknown event is told so, whatever the body says.
    let offered = notifiable(&event_type)?;
    let ApiJson(body) = body?;
    let mut errors = Vec::new();
    if body.recipients.is_empty() {
        errors.push(FieldError::new("recipients", "must name at least one"));
    }
    for (i, r) in body.recipients.iter().enumerate() {
        if !offered.contains(r) {
            errors.push(FieldError::new(
                format!("recipients[{i}]"),
                format!("is not a recipient {event_type} can name"),
            ));
        }
    }
    if body.channels.is_empty() {
        errors.push(FieldError::new(
            "channels",
            "must name at least one channel",
        ));
    }
    if !is_code(&body.template_code) {
        errors.push(FieldError::new("templateCode", CODE_RULE));
    }
    reject(errors)?;
    let mut recipients = body.recipients;
    recipients.sort();
    recipients.dedup();
    let mut channels = body.channels;
    channels.sort();
    channels.dedup();
    let mut conn = app.db.read_conn().await?;
    if super::templates::find(&mut conn, &tenant.id, &body.template_code)
        .await?
        .is_none()
    {
        return Err(ApiError::unprocessable(
            "unknown_template",
            format!("No notification template {}", body.template_code),
        )
        .with("field", "templateCode"));
    }
    drop(conn);
    let now = app.db.now_ms();
    let rule = Rule {
        recipients,
        channels,
        template_code: body.template_code,
        priority: body.priority.unwrap_or_default(),
        enabled: body.enabled.unwrap_or(true),
    };
    let row = RuleRow {
        event_type: event_type.clone(),
        recipients: serde_json::to_string(&rule.recipients).map_err(|_| ApiError::internal())?,
        channels: serde_json::to_string(&rule.channels).map_err(|_| ApiError::internal())?,
        template_code: rule.template_code.clone(),
        priority: rule.priority.as_str().to_owned(),
        enabled: i64::from(rule.enabled),
        created_at: now,
        updated_at: now,
    };
    let mut tx = app.db.begin().await?;
    let created = store::put_rule(&mut tx, &tenant.id, &row).await?;
    tx.commit().await?;
    Ok(data(
        put_status(created),
        rule_view(&event_type, rule, "tenant", Some(now)),
    ))
}

/// Get the rule of an event: the tenant's, else Omnirail's default.
#[utoipa::path(
    get, path = "/notification-rules/{eventType}", operation_id = "omni.notificationRules.get", tag = "Notifications",
    params(("eventType" = String, Path, description = "A notifiable event")),
    responses(
        (status = 200, description = "The rule", body = Data<RuleView>),
        (status = 404, description = "No rule and no default for this event (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "An event no rule can be set for (`event_type_not_notifiable`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_rule(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(event_type): ApiPath<String>,
) -> ApiResult<Response> {
    notifiable(&event_type)?;
    let mut conn = app.db.read_conn().await?;
    let v = match store::get_rule(&mut conn, &tenant.id, &event_type).await? {
        Some(row) => rule_view(
            &event_type,
            rule_of(&row).ok_or_else(ApiError::internal)?,
            "tenant",
            Some(row.updated_at),
        ),
        None => rule_view(
            &event_type,
            default_rule(&event_type).ok_or_else(|| ApiError::not_found("Notification rule"))?,
            "default",
            None,
        ),
    };
    Ok(data(StatusCode::OK, v))
}

/// List the rules in force: the tenant's and the defaults it has not replaced.
#[utoipa::path(
    get, path = "/notification-rules", operation_id = "omni.notificationRules.list", tag = "Notifications",
    responses((status = 200, description = "The rules, by event type", body = Data<Vec<RuleView>>))
)]
async fn list_rules(State(app): State<AppState>, tenant: Tenant) -> ApiResult<Response> {
    let rows = store::list_rules(app.db.reader(), &tenant.id).await?;
    let mut out = Vec::new();
    for (event_type, _) in NOTIFIABLE {
        let event_type = event_type.as_str();
        if let Some(row) = rows.iter().find(|r| r.event_type == event_type) {
            let rule = rule_of(row).ok_or_else(ApiError::internal)?;
            out.push(rule_view(event_type, rule, "tenant", Some(row.updated_at)));
        } else if let Some(rule) = default_rule(event_type) {
            out.push(rule_view(event_type, rule, "default", None));
        }
    }
    Ok(data(StatusCode::OK, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_issues_two() {
        let a = default_rule("omni.journey.assigned").unwrap();
        assert_eq!(a.recipients, [RecipientRole::Assignee]);
        assert_eq!(a.channels, [NotifyChannel::InApp]);
        let r = default_rule("omni.approval.requested").unwrap();
        assert_eq!(r.recipients, [RecipientRole::Approvers]);
        assert_eq!(r.channels, [NotifyChannel::InApp, NotifyChannel::Email]);
        assert_eq!(default_rule("omni.journey.created"), None);
        // Every default is for a notifiable event and names only recipients it offers.
        for (event_type, offered) in NOTIFIABLE {
            if let Some(rule) = default_rule(event_type.as_str()) {
                assert!(rule.recipients.iter().all(|r| offered.contains(r)));
            }
        }
    }
}
