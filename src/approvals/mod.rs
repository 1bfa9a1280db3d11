//! Approvals and delegations of authority (seed 001), and the approval a journey's approval
//! step waits on. The rules are pure functions in [`model`]; this module holds what other
//! capabilities call: opening a request for a journey step, asking whether one is open,
//! checking assignment authority, and the expiry sweep.

mod delegation_routes;
pub mod model;
mod routes;
pub mod store;

use crate::store::Conn;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;

use self::model::{ApprovalStatus, NoAuthority, RequesterType};
use self::routes::ApprovalView;
use self::store::{ApprovalRow, ApproverRow, DecisionRow};
use crate::AppState;
use crate::directory;
use crate::error::{ApiError, ApiResult};
use crate::events::EventType;
use crate::events::{self, EntityRef, NewEvent};
use crate::money::Money;

/// Routes under `/api/v1/omni`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::router())
        .merge(delegation_routes::router())
}

/// The timeline entities an approval concerns: itself, what it is about, and the customer.
fn entities<'a>(row: &'a ApprovalRow, customer: Option<&'a str>) -> Vec<EntityRef<'a>> {
    let mut out: Vec<EntityRef<'a>> = vec![("approval", &row.id)];
    let about = match row.entity_type.as_str() {
        "journey" => Some("journey"),
        "contract" => Some("contract"),
        "customer" => Some("customer"),
        "payment" => Some("payment"),
        _ => None,
    };
    if let Some(t) = about {
        out.push((t, &row.entity_id));
    }
    if let Some(c) = customer {
        out.push(("customer", c));
    }
    out
}

/// The customer a request concerns, when it is about a journey.
async fn customer_of(
    conn: &mut Conn,
    tenant: &str,
    row: &ApprovalRow,
) -> ApiResult<Option<String>> {
    if row.entity_type == "journey" {
        Ok(crate::customers::store::of_journey(conn, tenant, &row.entity_id).await?)
    } else {
        Ok(None)
    }
}

/// Stores a new request with its approvers (in their order) and records
/// `omni.approval.requested`.
async fn open(
    conn: &mut Conn,
    known: &std::sync::Arc<crate::store::known::KnownIds>,
    tenant: &str,
    row: &ApprovalRow,
    approvers: &[ApproverRow],
    customer: Option<&str>,
    now: i64,
) -> ApiResult<ApprovalView> {
    let mut users: Vec<&str> = approvers.iter().map(|a| a.user_id.as_str()).collect();
    // Only staff join the directory: a customer, or the system, is not a user.
    if row.requested_by_type == RequesterType::User.as_str() {
        users.push(&row.requested_by);
    }
    directory::ensure_users(conn, known, tenant, &users, now).await?;
    store::insert_approval(conn, tenant, row, approvers).await?;
    // The request as just written (no decision yet), not read back.
    let v = routes::views(conn, tenant, std::slice::from_ref(row), approvers, &[], now)
        .await?
        .pop()
        .ok_or_else(ApiError::internal)?;
    let summary = format!(
        "Approval requested: {} for {} {}",
        row.approval_type, row.entity_type, row.entity_id
    );
    events::record(
        conn,
        NewEvent {
            tenant_id: tenant,
            event_type: EventType::ApprovalRequested,
            actor_id: Some(&row.requested_by),
            channel: None,
            summary,
            metadata: json!({
                "approvalId": row.id,
                "entityType": row.entity_type,
                "entityId": row.entity_id,
                "approvalType": row.approval_type,
                "approvers": approvers.iter().map(|a| a.user_id.as_str()).collect::<Vec<_>>(),
            }),
            payload: serde_json::to_value(&v).unwrap_or_default(),
            occurred_at: now,
            entities: entities(row, customer),
            parties: parties(
                &v,
                Some(approvers.iter().map(|a| a.user_id.clone()).collect()),
            ),
        },
    )
    .await?;
    if let Some(role) = &row.awaiting_role {
        events::record(
            conn,
            NewEvent {
                tenant_id: tenant,
                event_type: EventType::ApprovalUnassignable,
                actor_id: None,
                channel: None,
                summary: format!(
                    "Approval {} waits for an approver: no user holds role {role}",
                    row.id
                ),
                metadata: json!({
                    "approvalId": row.id,
                    "entityType": row.entity_type,
                    "entityId": row.entity_id,
                    "awaitingRole": role,
                }),
                payload: serde_json::to_value(&v).unwrap_or_default(),
                occurred_at: now,
                entities: entities(row, customer),
                parties: parties(&v, None),
            },
        )
        .await?;
    }
    Ok(v)
}

/// Whom an approval's event concerns: the approvers it asks (`asked`), else every approver
/// of the request, and its requester when a staff user.
fn parties(v: &routes::ApprovalView, asked: Option<Vec<String>>) -> events::Parties {
    events::Parties {
        assignee: None,
        approvers: asked.unwrap_or_else(|| v.approvers.iter().map(|a| a.user_id.clone()).collect()),
        requesting_user: (v.requested_by_type == RequesterType::User)
            .then(|| v.requested_by.clone()),
        managers: Vec::new(),
    }
}

/// Makes `user`, just given `roles`, the approver of every open request that waits for one
/// of them (and that no other holder took first), each recorded as
/// `omni.approval.approver_assigned`.
pub async fn assign_awaiting(
    conn: &mut Conn,
    tenant: &str,
    user: &str,
    roles: &[String],
    now: i64,
) -> ApiResult<()> {
    for role in roles {
        for row in store::awaiting_role(conn, tenant, role, now).await? {
            if row.requested_by == user
                || !store::assign_awaiting(conn, tenant, &row.id, role, user, now).await?
            {
                continue;
            }
            let customer = customer_of(conn, tenant, &row).await?;
            let row = ApprovalRow {
                awaiting_role: None,
                updated_at: now,
                ..row
            };
            let v = routes::view_of(conn, tenant, &row, now).await?;
            events::record(
                conn,
                NewEvent {
                    tenant_id: tenant,
                    event_type: EventType::ApprovalApproverAssigned,
                    actor_id: None,
                    channel: None,
                    summary: format!(
                        "Approval {} assigned to {user}, who now holds role {role}",
                        row.id
                    ),
                    metadata: json!({
                        "approvalId": row.id,
                        "entityType": row.entity_type,
                        "entityId": row.entity_id,
                        "approvers": [user],
                    }),
                    payload: serde_json::to_value(&v).unwrap_or_default(),
                    occurred_at: now,
                    entities: entities(&row, customer.as_deref()),
                    parties: parties(&v, Some(vec![user.to_owned()])),
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// Records the event of an accepted decision and, when it closes the request, the request's
/// final status and its effect on the journey step that waits on it. `stored` is the locked
/// request's approvers and decisions, the new decision last. Returns the request as it now
/// stands, built from what the decision wrote (the request stays locked, so nothing else
/// changed it) instead of read back.
async fn after_decision(
    app: &AppState,
    conn: &mut Conn,
    tenant: &str,
    row: &ApprovalRow,
    stored: (&[ApproverRow], &[DecisionRow]),
    status: ApprovalStatus,
    now: i64,
) -> ApiResult<ApprovalView> {
    let (approvers, decisions) = stored;
    let decision = decisions.last().ok_or_else(ApiError::internal)?;
    // As `touch_approval` and `close_approval` store it.
    let mut now_stands = ApprovalRow {
        updated_at: now,
        ..row.clone()
    };
    if !status.is_final() {
        store::touch_approval(conn, &row.id, now).await?;
    } else if store::close_approval(conn, &row.id, status, now).await? {
        now_stands.status = status.as_str().to_owned();
        now_stands.decided_at = Some(now);
    } else {
        tracing::error!(approval = %row.id, "a locked open request could not be closed");
        return Err(ApiError::internal());
    }
    let rows = std::slice::from_ref(&now_stands);
    let names =
        directory::store::names(conn, tenant, &routes::people(rows, approvers, decisions)).await?;
    let by = routes::display(&names, &decision.decided_by);
    let behalf = decision
        .on_behalf_of
        .as_deref()
        .map(|o| format!(" on behalf of {}", routes::display(&names, o)))
        .unwrap_or_default();
    let (event_type, summary) = match status {
        ApprovalStatus::Approved => (
            EventType::ApprovalApproved,
            format!("Approval granted by {by}{behalf}"),
        ),
        ApprovalStatus::Rejected => (
            EventType::ApprovalRejected,
            format!("Approval rejected by {by}{behalf}"),
        ),
        _ => (
            EventType::ApprovalDecisionRecorded,
            format!(
                "Approval decision recorded: {} by {by}{behalf}; awaiting other approvers",
                decision.decision
            ),
        ),
    };
    let customer = customer_of(conn, tenant, row).await?;
    let v = routes::named_views(rows, approvers, decisions, &names, now)
        .pop()
        .ok_or_else(ApiError::internal)?;
    events::record(
        conn,
        NewEvent {
            tenant_id: tenant,
            event_type,
            actor_id: Some(&decision.decided_by),
            channel: None,
            summary,
            metadata: json!({
                "approvalId": row.id,
                "entityType": row.entity_type,
                "entityId": row.entity_id,
                "status": status.as_str(),
                "decision": decision.decision,
                "decidedBy": decision.decided_by,
                "onBehalfOf": decision.on_behalf_of,
                "delegationId": decision.delegation_id,
                "comment": decision.comment,
            }),
            payload: serde_json::to_value(&v).unwrap_or_default(),
            occurred_at: now,
            entities: entities(row, customer.as_deref()),
            parties: parties(&v, None),
        },
    )
    .await?;
    if status.is_final()
        && let Some(journey) = &row.journey_id
    {
        let closed = ApprovalClosed {
            tenant,
            journey_id: journey,
            approval_id: &row.id,
            status,
            actor: Some(&decision.decided_by),
        };
        (app.hooks.approval_closed)(app, conn, closed).await?;
    }
    Ok(v)
}

/// A journey step's approval that just closed, in the transaction that closed it: what
/// `AppState::hooks.approval_closed` (the journeys, wired in `lib.rs`) moves the journey on by.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalClosed<'a> {
    pub tenant: &'a str,
    pub journey_id: &'a str,
    pub approval_id: &'a str,
    pub status: ApprovalStatus,
    /// Who decided; none when it expired.
    pub actor: Option<&'a str>,
}

/// What a journey's approval step asks for.
#[derive(Debug)]
pub struct StepApproval<'a> {
    /// The id the request is to have (the journey refers to it before it is opened).
    pub approval_id: &'a str,
    pub journey_id: &'a str,
    pub customer_id: &'a str,
    pub template_id: &'a str,
    pub step_id: &'a str,
    pub step_name: &'a str,
    pub step_index: i64,
    /// Named approvers: each one must approve.
    pub approvers: &'a [String],
    /// Otherwise every user holding this role may decide; the first decision decides.
    pub role: Option<&'a str>,
    /// When the request expires: the step's deadline, as the journey computed it (its
    /// `timeoutHours`, in the tenant's business calendar if it has one); `None`: never.
    pub expires_at: Option<i64>,
    /// The journey's context; its `requestedAmount` is the amount under approval.
    pub context: &'a Value,
    /// The maker: never among the approvers.
    pub requested_by: &'a str,
    /// Whether the maker is staff, the journey's customer, or no one.
    pub requested_by_type: RequesterType,
}

/// Opens the approval request a journey's approval step waits on. With no eligible approver
/// (nobody holds the role, say): when the customer's own step reached it, the request opens
/// waiting for a holder of the role (the customer's call never fails for the bank's set-up,
/// and the bank is told by `omni.approval.unassignable`); when staff did, it is 409
/// `no_eligible_approvers`, so that they can put the set-up right and try again.
pub async fn open_for_step(
    conn: &mut Conn,
    known: &std::sync::Arc<crate::store::known::KnownIds>,
    tenant: &str,
    step: StepApproval<'_>,
    now: i64,
) -> ApiResult<()> {
    let (users, required) = if step.approvers.is_empty() {
        let role = step.role.unwrap_or_default();
        (
            directory::store::users_with_role(conn, tenant, role).await?,
            false,
        )
    } else {
        (step.approvers.to_vec(), true)
    };
    let users: Vec<String> = users
        .into_iter()
        .filter(|u| u != step.requested_by)
        .take(100)
        .collect();
    let awaiting_role = match step.role {
        Some(role)
            if users.is_empty()
                && step.approvers.is_empty()
                && step.requested_by_type == RequesterType::Customer =>
        {
            Some(role.to_owned())
        }
        _ => None,
    };
    if users.is_empty() && awaiting_role.is_none() {
        return Err(ApiError::conflict(
            "no_eligible_approvers",
            match step.role {
                Some(role) if step.approvers.is_empty() => format!(
                    "Step {} needs an approver holding role {role} (other than {}); the staff directory has none",
                    step.step_id, step.requested_by
                ),
                _ => format!(
                    "Step {} names no approver other than {}",
                    step.step_id, step.requested_by
                ),
            },
        )
        .with("stepId", step.step_id));
    }
    let amount = Money::from_json(step.context.get("requestedAmount"), "requestedAmount")
        .ok()
        .flatten();
    let (amount, currency) = Money::stored(amount);
    let row = ApprovalRow {
        id: step.approval_id.to_owned(),
        entity_type: "journey".into(),
        entity_id: step.journey_id.to_owned(),
        approval_type: "journey_step".into(),
        requested_by: step.requested_by.to_owned(),
        requested_by_type: step.requested_by_type.as_str().to_owned(),
        awaiting_role,
        approval_data: json!({
            "journeyId": step.journey_id,
            "customerId": step.customer_id,
            "templateId": step.template_id,
            "stepId": step.step_id,
            "stepName": step.step_name,
            "context": step.context,
        })
        .to_string(),
        amount,
        currency,
        expires_at: step.expires_at,
        status: ApprovalStatus::Requested.as_str().to_owned(),
        journey_id: Some(step.journey_id.to_owned()),
        step_id: Some(step.step_id.to_owned()),
        step_index: Some(step.step_index),
        row_version: 1,
        created_at: now,
        updated_at: now,
        decided_at: None,
    };
    let approvers: Vec<ApproverRow> = users
        .into_iter()
        .enumerate()
        .map(|(i, user_id)| ApproverRow {
            approval_id: row.id.clone(),
            position: i as i64,
            user_id,
            role: step.role.map(str::to_owned),
            required: i64::from(required),
        })
        .collect();
    open(
        conn,
        known,
        tenant,
        &row,
        &approvers,
        Some(step.customer_id),
        now,
    )
    .await?;
    Ok(())
}

/// The status of a request at the instant `now`, or `None` if it does not exist.
pub async fn status_at(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    now: i64,
) -> ApiResult<Option<ApprovalStatus>> {
    let row = store::get_approval(conn, tenant, id).await?;
    Ok(row.map(|r| model::status_at(r.stored_status(), r.expires_at, now)))
}

/// Whether `by` may (re)assign something held by `current` (see [`model::may_assign`]).
pub async fn may_assign(
    conn: &mut Conn,
    tenant: &str,
    by: &str,
    current: Option<&str>,
    now: i64,
) -> ApiResult<Result<(), NoAuthority>> {
    if current == Some(by) {
        return Ok(Ok(()));
    }
    let manager = directory::store::has_role(conn, tenant, by, "manager").await?;
    let grants: Vec<model::Grant> = match current {
        Some(current) if !manager => store::grants_between(conn, tenant, current, by)
            .await?
            .iter()
            .map(store::DelegationRow::grant)
            .collect(),
        _ => Vec::new(),
    };
    Ok(model::may_assign(by, current, manager, &grants, now))
}

/// Requests one pass of [`send_reminders`] takes at most.
pub const REMINDER_BATCH: usize = 100;

/// Reminds the approvers of open requests whose reminder time has come (their expiry less the
/// tenant's `approvalReminderHours`): `omni.approval.reminder` once per request, naming the
/// approvers who have not decided. Returns how many were reminded.
pub async fn send_reminders(app: &AppState) -> ApiResult<usize> {
    let now = app.db.now_ms();
    let default_hours = crate::sla::Policy::default().approval_reminder_hours;
    let due =
        store::reminders_due(app.db.reader(), now, default_hours, REMINDER_BATCH as i64).await?;
    let mut reminded = 0;
    for (tenant, id) in due {
        let mut tx = app.db.begin().await?;
        // The mark is the claim: a second node's waits on the first's and then changes nothing.
        if !store::mark_reminded(&mut tx, &tenant, &id, now).await? {
            continue;
        }
        let Some(row) = store::get_approval(&mut *tx, &tenant, &id).await? else {
            continue;
        };
        let customer = customer_of(&mut tx, &tenant, &row).await?;
        let v = routes::view_of(&mut tx, &tenant, &row, now).await?;
        let undecided: Vec<String> = v
            .approvers
            .iter()
            .filter(|a| a.decision.is_none())
            .map(|a| a.user_id.clone())
            .collect();
        let expires = row
            .expires_at
            .map(crate::time::to_rfc3339)
            .unwrap_or_default();
        events::record(
            &mut tx,
            NewEvent {
                tenant_id: &tenant,
                event_type: EventType::ApprovalReminder,
                actor_id: None,
                channel: None,
                summary: format!(
                    "Approval reminder: {} for {} {} expires at {expires}",
                    row.approval_type, row.entity_type, row.entity_id
                ),
                metadata: json!({
                    "approvalId": row.id,
                    "entityType": row.entity_type,
                    "entityId": row.entity_id,
                    "expiresAt": expires,
                    "approvers": undecided,
                }),
                payload: serde_json::to_value(&v).unwrap_or_default(),
                occurred_at: now,
                entities: entities(&row, customer.as_deref()),
                parties: parties(&v, Some(undecided.clone())),
            },
        )
        .await?;
        tx.commit().await?;
        reminded += 1;
    }
    Ok(reminded)
}

/// Closes requests past their expiry, recording `omni.approval.expired` once per request (a
/// request already closed, by this process before a restart or by another process, is
/// skipped) and failing the journey step that waited on it. Returns how many it closed.
pub async fn sweep_expired(app: &AppState) -> ApiResult<usize> {
    let now = app.db.now_ms();
    let due = store::expired_but_open(app.db.reader(), now, 100).await?;
    let mut closed = 0;
    for (tenant, id) in due {
        let mut tx = app.db.begin().await?;
        let Some(row) = store::lock_approval(&mut tx, &tenant, &id).await? else {
            continue;
        };
        if !store::close_approval(&mut tx, &id, ApprovalStatus::Expired, now).await? {
            continue;
        }
        let customer = customer_of(&mut tx, &tenant, &row).await?;
        let expired = store::get_approval(&mut *tx, &tenant, &id)
            .await?
            .ok_or_else(ApiError::internal)?;
        let v = routes::view_of(&mut tx, &tenant, &expired, now).await?;
        events::record(
            &mut tx,
            NewEvent {
                tenant_id: &tenant,
                event_type: EventType::ApprovalExpired,
                actor_id: None,
                channel: None,
                summary: format!(
                    "Approval expired: {} for {} {} was not decided in time",
                    row.approval_type, row.entity_type, row.entity_id
                ),
                metadata: json!({
                    "approvalId": row.id,
                    "entityType": row.entity_type,
                    "entityId": row.entity_id,
                    "status": "expired",
                }),
                payload: serde_json::to_value(&v).unwrap_or_default(),
                occurred_at: now,
                entities: entities(&row, customer.as_deref()),
                parties: parties(&v, None),
            },
        )
        .await?;
        if let Some(journey) = &row.journey_id {
            let closed = ApprovalClosed {
                tenant: &tenant,
                journey_id: journey,
                approval_id: &row.id,
                status: ApprovalStatus::Expired,
                actor: None,
            };
            (app.hooks.approval_closed)(app, &mut tx, closed).await?;
        }
        tx.commit().await?;
        closed += 1;
    }
    Ok(closed)
}
