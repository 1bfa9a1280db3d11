//! `/api/v1/omni/journeys`: create, list, read, and the lifecycle actions.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::deadlines::{self, PolicyOnce};
use super::model::{
    self, AssigneeType, JourneyStatus, Priority, Progress, Refusal, StepDef, StepOutcome,
    StepStatus, StepType,
};
use super::store::{self, HistoryRow, JourneyFilter, JourneyOrder, JourneyRow, TemplateVersion};
use crate::AppState;
use crate::actor::Actor;
use crate::api::{
    ApiJson, ApiPath, ApiQuery, Data, PageRequest, Paginated, check_id, check_object, data,
    parse_bool, parse_filter, parse_list, reject, stored_json,
};
use crate::api::{SLUG_RULE, check_text, is_slug};
use crate::approvals::model::{ApprovalStatus, RequesterType};
use crate::approvals::{self, StepApproval};
use crate::auth::Tenant;
use crate::calls;
use crate::channel::Channel;
use crate::customers;
use crate::directory;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::events::EventType;
use crate::events::{self, NewEvent};
use crate::idempotency::Idem;
use crate::ids::ID_RULE;
use crate::ids::{is_external_id, new_id};
use crate::money::Money;
use crate::sla::SlaStatus;
use crate::store::Tx;
use crate::time::{parse_rfc3339, to_rfc3339};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_journey, list_journeys))
        .routes(routes!(get_journey))
        .routes(routes!(advance_journey))
        .routes(routes!(assign_journey))
        .routes(routes!(complete_journey))
        .routes(routes!(cancel_journey))
}

/// Body of `POST /journeys` (seed 001).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateJourney {
    /// An `active` template.
    #[schema(example = "tmpl_onboarding_sme")]
    pub template_id: String,
    /// The tenant's own customer id.
    #[schema(example = "ent_customer_456")]
    pub customer_id: String,
    /// Channel the journey starts on; default `web`. Either case is accepted.
    pub channel: Option<Channel>,
    /// Free-form facts about the journey (product, amounts, ...). A JSON object. Its
    /// `requestedAmount`, if given, must be money (`{"amount": 750000, "currency": "SAR"}`):
    /// it is the amount the journey's approval steps hold deputies' limits to.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    #[schema(example = "usr_rm_001")]
    pub assignee_id: Option<String>,
    /// Default `normal`.
    pub priority: Option<Priority>,
    /// RFC 3339.
    #[schema(example = "2024-01-25T17:00:00Z")]
    pub due_at: Option<String>,
    /// Who created it (recorded as the event's actor).
    pub created_by: Option<String>,
}

/// Body of `POST /journeys/{id}/advance`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvanceJourney {
    /// Must be the journey's current step; any other is 409 `step_not_current`.
    #[schema(example = "step_kyc")]
    pub completed_step_id: String,
    /// Default `passed`. `skipped` only on optional steps; `failed` keeps the step current.
    pub step_outcome: Option<StepOutcome>,
    #[schema(value_type = Option<Object>)]
    pub step_data: Option<Value>,
    pub advanced_by: Option<String>,
}

/// Body of `POST /journeys/{id}/assign`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignJourney {
    #[schema(example = "usr_rm_002")]
    pub assignee_id: String,
    /// Default `user`.
    pub assignee_type: Option<AssigneeType>,
    pub reason: Option<String>,
    /// Default `true`: the tenant's rule for `omni.journey.assigned` notifies the assignee
    /// (by default in-app). `false` sends nothing for this assignment.
    pub notify_assignee: Option<bool>,
    /// Who made the assignment (recorded as the event's actor). When given, their authority
    /// to reassign is checked.
    pub assigned_by: Option<String>,
    /// A new due time (RFC 3339), replacing the journey's `dueAt`: its SLA's due and at-risk
    /// times move with it, and a deadline already announced is announced again when the new
    /// one passes.
    #[schema(example = "2024-01-30T17:00:00Z")]
    pub due_at: Option<String>,
}

/// Body of `POST /journeys/{id}/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompleteJourney {
    pub completion_notes: Option<String>,
    pub completed_by: Option<String>,
    /// Default `success`; a word of `[a-z0-9_]`.
    #[schema(example = "success")]
    pub outcome: Option<String>,
}

/// Body of `POST /journeys/{id}/cancel`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelJourney {
    pub cancellation_reason: Option<String>,
    pub cancelled_by: Option<String>,
}

/// The step a journey waits on.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentStep {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: StepType,
    /// `pending`, `failed` after a failed attempt, or `cancelled` in a cancelled journey (the
    /// step it was cancelled at).
    pub status: StepStatus,
    /// On an approval step: the approval request it waits on (or, once failed, the one that
    /// was rejected or expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
}

/// One recorded attempt at a step.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepAttempt {
    pub outcome: StepOutcome,
    #[schema(value_type = Object)]
    pub data: Value,
    pub actor_id: Option<String>,
    pub at: String,
}

/// A step of the journey with its history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JourneyStep {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: StepType,
    pub order: i64,
    pub required: bool,
    pub status: StepStatus,
    pub history: Vec<StepAttempt>,
}

/// A journey (seed 001's fields, plus `templateVersion`, `assigneeType` and, on single
/// journeys, `context`; `steps` with their history on `GET /journeys/{id}`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JourneyView {
    pub id: String,
    pub status: JourneyStatus,
    pub template_id: String,
    pub template_version: i64,
    pub customer_id: String,
    pub channel: Channel,
    /// Index of the current step in run order; equals `totalSteps` when every step is done.
    pub current_step_index: i64,
    /// `null` when every step is done.
    pub current_step: Option<CurrentStep>,
    pub total_steps: i64,
    /// Steps passed or skipped.
    pub completed_steps: i64,
    pub assignee_id: Option<String>,
    pub assignee_type: Option<AssigneeType>,
    pub priority: Priority,
    pub due_at: Option<String>,
    /// Where the journey stands against its deadlines, at the time of the read.
    pub sla: SlaView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<JourneyStep>>,
    pub created_at: String,
    pub updated_at: String,
}

/// A journey's deadlines (docs/sla.md), as they stand when the journey is read.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlaView {
    /// When the journey is due: its `dueAt`, else its start plus its template version's
    /// `slaHours` (in the tenant's business calendar, if it has one); `null`: no SLA.
    pub due_at: Option<String>,
    /// When it turns (or turned) at risk: the policy's `atRiskPercent` of the time to `dueAt`.
    pub at_risk_at: Option<String>,
    /// `on_track`, `at_risk`, `breached`, `met` (completed by `dueAt`) or `none` (no SLA, or
    /// cancelled before its due time).
    pub status: SlaStatus,
    /// The due time it missed, when `breached`.
    pub breached_at: Option<String>,
    /// When the current step is due: `timeoutHours` after it became current.
    pub step_due_at: Option<String>,
    /// Whether the current step of an open journey is past `stepDueAt`.
    pub step_overdue: bool,
}

/// A journey row with its template version.
pub(crate) struct Loaded {
    pub(crate) row: JourneyRow,
    pub(crate) version: Arc<TemplateVersion>,
}

impl Loaded {
    pub(crate) fn status(&self) -> JourneyStatus {
        JourneyStatus::parse(&self.row.status).unwrap_or(JourneyStatus::Created)
    }

    pub(crate) fn steps(&self) -> &[StepDef] {
        &self.version.steps
    }

    pub(crate) fn progress(&self) -> Progress {
        Progress {
            status: self.status(),
            current: usize::try_from(self.row.current_step_index).unwrap_or(0),
            current_failed: self.row.current_step_status == StepStatus::Failed.as_str(),
        }
    }

    /// The journey as the API shows it, its deadlines as they stand at `now`.
    pub(crate) fn view(&self, with_context: bool, now: i64) -> JourneyView {
        let r = &self.row;
        let p = self.progress();
        let status = p.status;
        let notes = r.notes.clone();
        let d = &r.deadlines;
        let ended = status.is_final().then_some(r.updated_at);
        let sla_status = crate::sla::model::status(
            d.sla_due_at,
            d.sla_at_risk_at,
            status == JourneyStatus::Completed,
            ended,
            now,
        );
        let sla = SlaView {
            due_at: d.sla_due_at.map(to_rfc3339),
            at_risk_at: d.sla_at_risk_at.map(to_rfc3339),
            status: sla_status,
            breached_at: d
                .sla_due_at
                .filter(|_| sla_status == SlaStatus::Breached)
                .map(to_rfc3339),
            step_due_at: d.step_due_at.filter(|_| !status.is_final()).map(to_rfc3339),
            step_overdue: !status.is_final() && d.step_due_at.is_some_and(|t| now >= t),
        };
        JourneyView {
            id: r.id.clone(),
            status,
            template_id: r.template_id.clone(),
            template_version: r.template_version,
            customer_id: r.customer_id.clone(),
            channel: r.channel.parse().unwrap_or(Channel::Web),
            current_step_index: r.current_step_index,
            current_step: self.steps().get(p.current).map(|s| CurrentStep {
                id: s.id.clone(),
                name: s.name.clone(),
                kind: s.kind,
                status: if status == JourneyStatus::Cancelled {
                    StepStatus::Cancelled
                } else if p.current_failed {
                    StepStatus::Failed
                } else {
                    StepStatus::Pending
                },
                approval_id: r
                    .approval_id
                    .clone()
                    .filter(|_| s.kind == StepType::Approval),
            }),
            total_steps: self.steps().len() as i64,
            // The steps before the current one are exactly those passed or skipped.
            completed_steps: r.current_step_index,
            assignee_id: r.assignee_id.clone(),
            assignee_type: r.assignee_type.as_deref().and_then(AssigneeType::parse),
            priority: Priority::parse(&r.priority).unwrap_or(Priority::Normal),
            due_at: r.due_at.map(to_rfc3339),
            sla,
            outcome: r.outcome.clone(),
            completion_notes: notes.clone().filter(|_| status == JourneyStatus::Completed),
            cancellation_reason: notes.filter(|_| status == JourneyStatus::Cancelled),
            context: with_context.then(|| stored_json(&r.context)),
            steps: None,
            created_at: to_rfc3339(r.created_at),
            updated_at: to_rfc3339(r.updated_at),
        }
    }
}

pub(crate) async fn load(
    app: &AppState,
    conn: &mut crate::store::Conn,
    tenant: &str,
    id: &str,
) -> ApiResult<Loaded> {
    let row = store::get_journey(&mut *conn, tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Journey"))?;
    let version =
        template_version(app, conn, tenant, &row.template_id, row.template_version).await?;
    Ok(Loaded { row, version })
}

/// The journey, locked for the rest of the transaction (see `store::lock_journey`).
pub(super) async fn load_locked(
    app: &AppState,
    conn: &mut crate::store::Conn,
    tenant: &str,
    id: &str,
) -> ApiResult<Option<Loaded>> {
    let Some(row) = store::lock_journey(&mut *conn, tenant, id).await? else {
        return Ok(None);
    };
    let version =
        template_version(app, conn, tenant, &row.template_id, row.template_version).await?;
    Ok(Some(Loaded { row, version }))
}

async fn template_version(
    app: &AppState,
    conn: &mut crate::store::Conn,
    tenant: &str,
    template_id: &str,
    version: i64,
) -> ApiResult<Arc<TemplateVersion>> {
    app.versions
        .get(conn, tenant, template_id, version)
        .await?
        .ok_or_else(|| {
            tracing::error!(
                template_id,
                version,
                "a journey's template version is missing"
            );
            ApiError::internal()
        })
}

/// Why a journey could not start on `template_id`: it does not exist, or is not active.
async fn template_refusal(app: &AppState, tenant: &str, template_id: &str) -> ApiError {
    match store::get_template(app.db.reader(), tenant, template_id).await {
        Ok(None) => ApiError::unprocessable(
            "unknown_template",
            format!("Template {template_id} does not exist"),
        )
        .with("field", "templateId"),
        Ok(Some(t)) => ApiError::unprocessable(
            "template_not_active",
            format!(
                "Template {} is {}; only active templates start journeys",
                t.id, t.status
            ),
        )
        .with("field", "templateId"),
        Err(e) => e.into(),
    }
}

fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::InvalidTransition { action, status } => ApiError::conflict(
            "invalid_transition",
            format!("Cannot {action} a journey that is {}", status.as_str()),
        )
        .with("currentStatus", status.as_str()),
        Refusal::StepNotCurrent {
            current: Some(step),
        } => ApiError::conflict(
            "step_not_current",
            format!("The journey's current step is {step}"),
        )
        .with("currentStepId", step),
        Refusal::StepNotCurrent { current: None } => ApiError::conflict(
            "step_not_current",
            "Every step of this journey is done; complete it instead",
        )
        .with("currentStepId", Value::Null),
        Refusal::RequiredStep { step } => ApiError::invalid_field(
            "stepOutcome",
            format!("step {step} is required and cannot be skipped"),
        ),
        Refusal::RequiredStepsPending { steps } => ApiError::conflict(
            "required_steps_pending",
            format!("Required steps are not done: {}", steps.join(", ")),
        )
        .with("pendingSteps", steps),
    }
}

/// What a journey change records on its event.
pub(super) struct Change<'a> {
    pub(super) event_type: EventType,
    pub(super) actor: Option<&'a str>,
    pub(super) summary: String,
    pub(super) metadata: Value,
    /// Whether the journey's assignee hears of it (an assignment may ask not to tell them).
    pub(super) tell_assignee: bool,
    /// The assignee's managers, when the change concerns them (a deadline, an escalation).
    pub(super) managers: Vec<String>,
    /// When it happened, if not at the journey's last change (a deadline's passing).
    pub(super) at: Option<i64>,
}

/// Records the journey's event in the caller's transaction.
pub(super) async fn record_change(
    conn: &mut crate::store::Conn,
    tenant: &str,
    loaded: &Loaded,
    change: Change<'_>,
) -> ApiResult<()> {
    let Change {
        event_type,
        actor,
        summary,
        mut metadata,
        tell_assignee,
        managers,
        at,
    } = change;
    let occurred_at = at.unwrap_or(loaded.row.updated_at);
    let assignee = match (&loaded.row.assignee_id, loaded.row.assignee_type.as_deref()) {
        (Some(team), Some(t)) if t == AssigneeType::Team.as_str() => {
            Some(events::Assignee::Team(team.clone()))
        }
        (Some(user), _) => Some(events::Assignee::User(user.clone())),
        (None, _) => None,
    }
    .filter(|_| tell_assignee);
    let view = loaded.view(true, occurred_at);
    if let Value::Object(m) = &mut metadata {
        m.insert("journeyId".into(), json!(loaded.row.id));
        m.insert("customerId".into(), json!(loaded.row.customer_id));
    }
    events::record(
        conn,
        NewEvent {
            tenant_id: tenant,
            event_type,
            actor_id: actor,
            channel: Some(&loaded.row.channel),
            summary,
            metadata,
            payload: serde_json::to_value(&view).unwrap_or_default(),
            occurred_at,
            entities: vec![
                ("journey", &loaded.row.id),
                ("customer", &loaded.row.customer_id),
            ],
            parties: events::Parties {
                assignee,
                managers,
                ..Default::default()
            },
        },
    )
    .await?;
    Ok(())
}

/// Records the journey's event and commits it with the answer.
async fn finish(
    app: &AppState,
    mut tx: Tx,
    idem: Idem,
    tenant: &Tenant,
    loaded: &Loaded,
    change: Change<'_>,
    status: StatusCode,
) -> ApiResult<Response> {
    record_change(&mut tx, &tenant.id, loaded, change).await?;
    commit(app, tx, idem, loaded, status).await
}

/// Commits with the journey as the answer.
async fn commit(
    app: &AppState,
    tx: Tx,
    idem: Idem,
    loaded: &Loaded,
    status: StatusCode,
) -> ApiResult<Response> {
    idem.commit(
        &app.db,
        tx,
        status,
        &Data {
            data: loaded.view(true, loaded.row.updated_at),
        },
    )
    .await
}

/// Opens the approval request of the current step, if the journey just reached an approval
/// step (its `approval_id` was set for it before the journey was saved).
async fn open_step_approval(
    conn: &mut crate::store::Conn,
    app: &AppState,
    tenant: &str,
    loaded: &Loaded,
    requester: (&str, RequesterType),
) -> ApiResult<()> {
    let p = loaded.progress();
    let (Some(id), Some(step)) = (&loaded.row.approval_id, loaded.steps().get(p.current)) else {
        return Ok(());
    };
    let context: Value = stored_json(&loaded.row.context);
    approvals::open_for_step(
        conn,
        &app.users,
        tenant,
        StepApproval {
            approval_id: id,
            journey_id: &loaded.row.id,
            customer_id: &loaded.row.customer_id,
            template_id: &loaded.row.template_id,
            step_id: &step.id,
            step_name: &step.name,
            step_index: p.current as i64,
            approvers: &step.approvers,
            role: step.approval_role_required.as_deref(),
            expires_at: loaded.row.deadlines.step_due_at,
            context: &context,
            requested_by: requester.0,
            requested_by_type: requester.1,
        },
        // Part of the journey's change: made at its time, expiring at its step's deadline.
        loaded.row.updated_at,
    )
    .await
}

/// Who asks for the approval a step opens: the actor who moved the journey there (staff, or
/// the customer in their own onboarding), else its assignee, else the system.
fn requester<'a>(
    actor: Option<&'a str>,
    by_customer: bool,
    assignee: Option<&'a str>,
) -> (&'a str, RequesterType) {
    match (actor, assignee) {
        (Some(customer), _) if by_customer => (customer, RequesterType::Customer),
        (Some(user), _) | (None, Some(user)) => (user, RequesterType::User),
        (None, None) => (crate::actor::SYSTEM_ACTOR, RequesterType::System),
    }
}

/// Gives the journey a new approval id if its current step is an approval step it has just
/// reached; the request itself is opened by [`open_step_approval`] once the journey is saved.
fn prepare_step_approval(loaded: &mut Loaded) -> bool {
    let p = loaded.progress();
    let due = !p.status.is_final()
        && !p.current_failed
        && loaded
            .steps()
            .get(p.current)
            .is_some_and(|s| s.kind == StepType::Approval);
    if due {
        loaded.row.approval_id = Some(new_id("apr_"));
    }
    due
}

/// An approval step passes only by its approval: while the request is open, advancing the
/// step by hand is 409 `approval_pending`; once it is rejected or expired, only `skipped` (on an
/// optional step) is accepted, anything else being 409 `approval_required`.
async fn approval_gate(
    conn: &mut crate::store::Conn,
    tenant: &str,
    loaded: &Loaded,
    step_id: &str,
    outcome: StepOutcome,
    now: i64,
) -> ApiResult<()> {
    let p = loaded.progress();
    let Some(step) = loaded.steps().get(p.current) else {
        return Ok(());
    };
    let Some(approval) = loaded.row.approval_id.as_deref() else {
        return Ok(());
    };
    if step.kind != StepType::Approval || step.id != step_id {
        return Ok(());
    }
    match approvals::status_at(conn, tenant, approval, now).await? {
        Some(ApprovalStatus::Requested) => Err(ApiError::conflict(
            "approval_pending",
            format!("Step {} waits on approval {approval}", step.id),
        )
        .with("approvalId", approval)),
        status if outcome != StepOutcome::Skipped => Err(ApiError::conflict(
            "approval_required",
            format!(
                "Step {} passes only by its approval; approval {approval} is {}",
                step.id,
                status.map_or("missing", ApprovalStatus::as_str)
            ),
        )
        .with("approvalId", approval)),
        _ => Ok(()),
    }
}

/// Applies an accepted `advance` to the journey: state, history, event, and the approval
/// request of an approval step it reaches.
#[allow(clippy::too_many_arguments)]
async fn apply_step(
    conn: &mut crate::store::Conn,
    app: &AppState,
    tenant: &str,
    loaded: &mut Loaded,
    next: model::Advanced,
    outcome: StepOutcome,
    data: Value,
    actor: Option<&str>,
    by_customer: bool,
    approval: Option<ApprovalStatus>,
) -> ApiResult<()> {
    let step = loaded.steps()[next.step_index].clone();
    let moved = next.progress.current != next.step_index;
    let r = &mut loaded.row;
    r.status = next.progress.status.as_str().to_owned();
    r.current_step_index = next.progress.current as i64;
    r.current_step_status = if next.progress.current_failed {
        StepStatus::Failed
    } else {
        StepStatus::Pending
    }
    .as_str()
    .to_owned();
    let decided_approval = r.approval_id.clone().filter(|_| approval.is_some());
    if moved {
        r.approval_id = None;
    }
    let opens = moved && prepare_step_approval(loaded);
    let now = app.db.now_ms();
    if moved {
        deadlines::set_step(conn, &mut PolicyOnce::new(tenant), loaded, now).await?;
    }
    save(conn, tenant, loaded, now).await?;
    let history = HistoryRow {
        seq: loaded.row.row_version,
        step_id: step.id.clone(),
        step_index: next.step_index as i64,
        outcome: outcome.as_str().to_owned(),
        data: data.to_string(),
        actor_id: actor.map(str::to_owned),
        occurred_at: loaded.row.updated_at,
    };
    store::insert_history(conn, &loaded.row.id, &history).await?;
    let summary = match (outcome, approval) {
        (StepOutcome::Passed, Some(_)) => format!("Journey advanced: {} approved", step.name),
        (StepOutcome::Passed, None) => format!("Journey advanced: {} completed", step.name),
        (StepOutcome::Skipped, _) => format!("Journey advanced: {} skipped", step.name),
        (StepOutcome::Failed, Some(status)) => format!(
            "Journey step failed: {} (approval {})",
            step.name,
            status.as_str()
        ),
        (StepOutcome::Failed, None) => format!("Journey step failed: {}", step.name),
    };
    let next_step = loaded
        .steps()
        .get(next.progress.current)
        .map(|s| s.id.clone());
    let mut metadata =
        json!({ "stepId": step.id, "outcome": outcome.as_str(), "nextStepId": next_step });
    if let Some(id) = decided_approval {
        metadata["approvalId"] = json!(id);
    }
    record_change(
        conn,
        tenant,
        loaded,
        Change {
            event_type: EventType::JourneyAdvanced,
            actor,
            summary,
            metadata,
            tell_assignee: true,
            managers: Vec::new(),
            at: None,
        },
    )
    .await?;
    if opens {
        let requester = requester(actor, by_customer, loaded.row.assignee_id.as_deref());
        open_step_approval(conn, app, tenant, loaded, requester).await?;
    }
    Ok(())
}

/// Moves a journey on when the approval its current step waits on closes: approved passes
/// the step (the decider is the actor); rejected or expired fails it. A journey that has moved
/// on, or is completed or cancelled, is left as it is.
pub async fn on_approval_closed(
    app: &AppState,
    conn: &mut crate::store::Conn,
    tenant: &str,
    journey_id: &str,
    approval_id: &str,
    status: ApprovalStatus,
    actor: Option<&str>,
) -> ApiResult<()> {
    let mut loaded = load(app, conn, tenant, journey_id).await?;
    let p = loaded.progress();
    if loaded.row.approval_id.as_deref() != Some(approval_id) || p.status.is_final() {
        return Ok(());
    }
    let Some(step_id) = loaded.steps().get(p.current).map(|s| s.id.clone()) else {
        return Ok(());
    };
    let outcome = if status == ApprovalStatus::Approved {
        StepOutcome::Passed
    } else {
        StepOutcome::Failed
    };
    let next = model::advance(p, loaded.steps(), &step_id, outcome).map_err(refusal)?;
    let data = json!({ "approvalId": approval_id, "approvalStatus": status.as_str() });
    apply_step(
        conn,
        app,
        tenant,
        &mut loaded,
        next,
        outcome,
        data,
        actor,
        false,
        Some(status),
    )
    .await
}

/// Create a journey from an active template.
#[utoipa::path(
    post, path = "/journeys", operation_id = "omni.journeys.create", tag = "Journeys",
    request_body = CreateJourney,
    responses(
        (status = 201, description = "Journey created", body = Data<JourneyView>),
        (status = 409, description = "The first step is an approval step nobody can approve (`no_eligible_approvers`, with `stepId`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`); unknown template (`unknown_template`); template not active (`template_not_active`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_journey(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    actor: Actor,
    ApiJson(mut body): ApiJson<CreateJourney>,
) -> ApiResult<Response> {
    actor
        .claim(&app, &tenant.id, &mut [("createdBy", &mut body.created_by)])
        .await?;
    let mut errors = Vec::new();
    if body.template_id.is_empty() || body.template_id.len() > 128 {
        errors.push(FieldError::new("templateId", "must be a template id"));
    }
    if !is_external_id(&body.customer_id) {
        errors.push(FieldError::new("customerId", ID_RULE));
    }
    check_id(&mut errors, "assigneeId", body.assignee_id.as_deref());
    check_id(&mut errors, "createdBy", body.created_by.as_deref());
    check_object(&mut errors, "context", body.context.as_ref());
    // The amount an approval step of this journey will hold deputies' limits to: malformed,
    // it would hold them to nothing.
    let requested = body.context.as_ref().and_then(|c| c.get("requestedAmount"));
    if let Err(e) = Money::from_json(requested, "context.requestedAmount") {
        errors.push(e);
    }
    let due_at = due_at(&mut errors, body.due_at.as_deref());
    reject(errors)?;
    if let Some(channel) = body.channel {
        calls::state(channel);
    }

    let mut row = new_row(
        body.template_id,
        body.customer_id,
        body.channel.or_else(calls::stated).unwrap_or(Channel::Web),
        body.context.unwrap_or_else(|| Value::Object(Map::new())),
        app.db.now_ms(),
    );
    row.assignee_type = body
        .assignee_id
        .as_ref()
        .map(|_| AssigneeType::User.as_str().to_owned());
    row.assignee_id = body.assignee_id;
    row.priority = body
        .priority
        .unwrap_or(Priority::Normal)
        .as_str()
        .to_owned();
    row.due_at = due_at;
    let mut tx = app.db.begin().await?;
    let loaded = create(&app, &mut tx, &tenant.id, row, body.created_by.as_deref()).await?;
    commit(&app, tx, idem, &loaded, StatusCode::CREATED).await
}

/// A `dueAt` as given, in milliseconds; an error if it is not RFC 3339.
fn due_at(errors: &mut Vec<FieldError>, given: Option<&str>) -> Option<i64> {
    let parsed = given.map(parse_rfc3339)?;
    if parsed.is_none() {
        errors.push(FieldError::new(
            "dueAt",
            "must be an RFC 3339 date-time, e.g. 2024-01-25T17:00:00Z",
        ));
    }
    parsed
}

/// A new journey's row, `created` on its first step; the template version is set on insert.
pub(crate) fn new_row(
    template_id: String,
    customer_id: String,
    channel: Channel,
    context: Value,
    now: i64,
) -> JourneyRow {
    JourneyRow {
        id: new_id("jrn_"),
        template_id,
        template_version: 0,
        customer_id,
        channel: channel.as_lower().to_owned(),
        status: JourneyStatus::Created.as_str().to_owned(),
        current_step_index: 0,
        current_step_status: StepStatus::Pending.as_str().to_owned(),
        assignee_type: None,
        assignee_id: None,
        priority: Priority::Normal.as_str().to_owned(),
        due_at: None,
        context: context.to_string(),
        outcome: None,
        notes: None,
        approval_id: None,
        row_version: 1,
        created_at: now,
        updated_at: now,
        deadlines: store::Deadlines {
            step_started_at: Some(now),
            ..Default::default()
        },
    }
}

/// Creates the journey `row` on the current version of its template, which must be active,
/// in the caller's transaction: its customer and users, its event, and the approval request
/// of a first step that is an approval step.
pub(crate) async fn create(
    app: &AppState,
    tx: &mut crate::store::Conn,
    tenant: &str,
    mut row: JourneyRow,
    created_by: Option<&str>,
) -> ApiResult<Loaded> {
    let mut policy = PolicyOnce::new(tenant);
    let started = row.created_at;
    // The journey is written whole (deadlines, the approval its first step opens) when the
    // template is still at the version this process last saw it at; else it is inserted on the
    // template's current version, then completed with one more write.
    let mut ready = None;
    if let Some(v) = app.versions.latest(tenant, &row.template_id)
        && let Some(version) = app.versions.get(tx, tenant, &row.template_id, v).await?
    {
        let mut loaded = Loaded {
            row: JourneyRow {
                template_version: v,
                ..row.clone()
            },
            version,
        };
        let opens = prepare_step_approval(&mut loaded);
        deadlines::set_sla(&mut *tx, &mut policy, &mut loaded).await?;
        deadlines::set_step(&mut *tx, &mut policy, &mut loaded, started).await?;
        loaded.row.deadlines.next_deadline_at =
            deadlines::next_deadline(loaded.status(), &loaded.row.deadlines);
        // The template check and the insert are one statement: no concurrent archive slips
        // between.
        if store::insert_journey_on_active_template(&mut *tx, tenant, &loaded.row, Some(v))
            .await?
            .is_some()
        {
            ready = Some((loaded, opens));
        }
    }
    let (loaded, opens) = match ready {
        Some(done) => done,
        None => {
            let Some(version) =
                store::insert_journey_on_active_template(&mut *tx, tenant, &row, None).await?
            else {
                return Err(template_refusal(app, tenant, &row.template_id).await);
            };
            row.template_version = version;
            app.versions.saw(tenant, &row.template_id, version);
            let version =
                template_version(app, &mut *tx, tenant, &row.template_id, version).await?;
            let mut loaded = Loaded { row, version };
            let opens = prepare_step_approval(&mut loaded);
            deadlines::set_sla(&mut *tx, &mut policy, &mut loaded).await?;
            deadlines::set_step(&mut *tx, &mut policy, &mut loaded, started).await?;
            let has_deadlines = loaded.row.deadlines.sla_due_at.is_some()
                || loaded.row.deadlines.step_due_at.is_some();
            if opens || has_deadlines {
                // Still the moment of creation: `updatedAt` equals `createdAt` on a new journey.
                save(&mut *tx, tenant, &mut loaded, started).await?;
            }
            (loaded, opens)
        }
    };
    let summary = format!("{} journey created", loaded.version.name);
    let metadata = json!({ "templateId": loaded.row.template_id, "templateVersion": loaded.row.template_version });
    let now = loaded.row.created_at;
    let mut users: Vec<&str> = created_by.into_iter().collect();
    users.extend(loaded.row.assignee_id.as_deref());
    directory::ensure_users(&mut *tx, &app.users, tenant, &users, now).await?;
    customers::ensure_customer(
        &mut *tx,
        &app.customers,
        tenant,
        &loaded.row.customer_id,
        now,
    )
    .await?;
    record_change(
        &mut *tx,
        tenant,
        &loaded,
        Change {
            event_type: EventType::JourneyCreated,
            actor: created_by,
            summary,
            metadata,
            tell_assignee: true,
            managers: Vec::new(),
            at: None,
        },
    )
    .await?;
    if opens {
        let requester = requester(created_by, false, loaded.row.assignee_id.as_deref());
        open_step_approval(&mut *tx, app, tenant, &loaded, requester).await?;
    }
    Ok(loaded)
}

/// Query of `GET /journeys`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct JourneyQuery {
    /// One status, or several separated by commas (`created,in_progress,assigned`).
    #[param(value_type = Option<String>, example = "in_progress,assigned")]
    status: Option<String>,
    template_id: Option<String>,
    customer_id: Option<String>,
    /// One assignee (user or team id), or up to 20 separated by commas.
    #[param(value_type = Option<String>, example = "usr_rm_001,team_sme")]
    assignee_id: Option<String>,
    /// A staff user: journeys assigned to them, or to any team they are a member of.
    assigned_to: Option<String>,
    /// `true`: only journeys whose due time (`sla.dueAt`: `dueAt`, else the start plus the
    /// template's `slaHours`) has passed; `false`: only those not yet due or without a due
    /// time. Compared with the server's clock at the time of the read.
    #[param(value_type = Option<bool>)]
    overdue: Option<String>,
    /// `-createdAt` (default): newest first. `dueAt`: earliest due time (`sla.dueAt`) first
    /// (so overdue first), journeys without one last.
    #[param(value_type = Option<JourneySort>, inline)]
    sort: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 20, max 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

/// The order of `GET /journeys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum JourneySort {
    #[serde(rename = "-createdAt")]
    NewestFirst,
    #[serde(rename = "dueAt")]
    DueAt,
}

/// List the tenant's journeys, newest first or by due date.
#[utoipa::path(
    get, path = "/journeys", operation_id = "omni.journeys.list", tag = "Journeys",
    params(JourneyQuery),
    responses(
        (status = 200, description = "A page of journeys", body = Paginated<JourneyView>),
        (status = 422, description = "Unknown `status` or `sort`, more than 20 `assigneeId`s, `overdue` not a boolean, or `page`/`perPage` out of range (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_journeys(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<JourneyQuery>,
) -> ApiResult<Response> {
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 20, 100)?;
    let statuses = parse_list("status", q.status.as_deref(), 5, |s| {
        parse_filter::<JourneyStatus>("status", Some(s)).map(|s| s.map(JourneyStatus::as_str))
    })?;
    let sort: Option<JourneySort> = parse_filter("sort", q.sort.as_deref())?;
    let filter = JourneyFilter {
        statuses: statuses.into_iter().flatten().collect(),
        template_id: q.template_id,
        customer_id: q.customer_id,
        assignee_ids: parse_list("assigneeId", q.assignee_id.as_deref(), 20, |s| {
            Ok(s.to_owned())
        })?,
        assigned_to: q.assigned_to,
        overdue: parse_bool("overdue", q.overdue.as_deref())?,
        now: app.db.now_ms(),
        order: match sort {
            Some(JourneySort::DueAt) => JourneyOrder::DueAt,
            Some(JourneySort::NewestFirst) | None => JourneyOrder::Newest,
        },
    };
    let now = filter.now;
    let (rows, total) = store::list_journeys(
        app.db.reader(),
        &tenant.id,
        &filter,
        page.limit(),
        page.offset(),
    )
    .await?;
    let mut conn = app.db.read_conn().await?;
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        let version = template_version(
            &app,
            &mut conn,
            &tenant.id,
            &row.template_id,
            row.template_version,
        )
        .await?;
        data.push(Loaded { row, version }.view(false, now));
    }
    Ok(page.answer(data, total))
}

/// Get a journey with its context and each step's history.
#[utoipa::path(
    get, path = "/journeys/{id}", operation_id = "omni.journeys.get", tag = "Journeys",
    params(("id" = String, Path, description = "Journey id")),
    responses(
        (status = 200, description = "The journey", body = Data<JourneyView>),
        (status = 404, description = "No such journey in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_journey(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let mut conn = app.db.read_conn().await?;
    let loaded = load(&app, &mut conn, &tenant.id, &id).await?;
    let history = store::history(&mut conn, &loaded.row.id).await?;
    let mut view = loaded.view(true, app.db.now_ms());
    view.steps = Some(steps_with_history(
        loaded.steps(),
        &history,
        loaded.status(),
    ));
    Ok(data(StatusCode::OK, view))
}

fn steps_with_history(
    steps: &[StepDef],
    history: &[HistoryRow],
    journey: JourneyStatus,
) -> Vec<JourneyStep> {
    let outcomes: Vec<(usize, StepOutcome)> = history
        .iter()
        .filter_map(|h| {
            Some((
                usize::try_from(h.step_index).ok()?,
                StepOutcome::parse(&h.outcome)?,
            ))
        })
        .collect();
    let statuses = model::step_statuses(steps.len(), &outcomes, journey);
    steps
        .iter()
        .zip(statuses)
        .enumerate()
        .map(|(i, (s, status))| JourneyStep {
            id: s.id.clone(),
            name: s.name.clone(),
            kind: s.kind,
            order: s.order.get(),
            required: s.required,
            status,
            history: history
                .iter()
                .filter(|h| h.step_index == i as i64)
                .map(|h| StepAttempt {
                    outcome: StepOutcome::parse(&h.outcome).unwrap_or(StepOutcome::Passed),
                    data: stored_json(&h.data),
                    actor_id: h.actor_id.clone(),
                    at: to_rfc3339(h.occurred_at),
                })
                .collect(),
        })
        .collect()
}

/// Writes the changed journey or answers 409 if a concurrent request changed it first.
/// `now` is the change's time.
pub(super) async fn save(
    conn: &mut crate::store::Conn,
    tenant: &str,
    loaded: &mut Loaded,
    now: i64,
) -> ApiResult<()> {
    loaded.row.row_version += 1;
    loaded.row.updated_at = now;
    loaded.row.deadlines.next_deadline_at =
        deadlines::next_deadline(loaded.status(), &loaded.row.deadlines);
    if store::update_journey(conn, tenant, &loaded.row).await? {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "concurrent_update",
            "The journey was changed by another request; read it again",
        ))
    }
}

/// Advance the journey past its current step.
#[utoipa::path(
    post, path = "/journeys/{id}/advance", operation_id = "omni.journeys.advance", tag = "Journeys",
    params(("id" = String, Path, description = "Journey id")),
    request_body = AdvanceJourney,
    responses(
        (status = 200, description = "The journey after the step", body = Data<JourneyView>),
        (status = 404, description = "No such journey in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Journey completed or cancelled (`invalid_transition`, with `currentStatus`); step not current (`step_not_current`, with `currentStepId`); an approval step whose request is open (`approval_pending`, with `approvalId`) or was rejected or expired (`approval_required`, with `approvalId`); the next step is an approval step nobody can approve (`no_eligible_approvers`, with `stepId`); a concurrent change (`concurrent_update`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or `skipped` on a required step (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn advance_journey(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
    actor: Actor,
    ApiJson(mut body): ApiJson<AdvanceJourney>,
) -> ApiResult<Response> {
    actor
        .claim(
            &app,
            &tenant.id,
            &mut [("advancedBy", &mut body.advanced_by)],
        )
        .await?;
    let mut errors = Vec::new();
    check_text(
        &mut errors,
        "completedStepId",
        &body.completed_step_id,
        64,
        true,
    );
    check_id(&mut errors, "advancedBy", body.advanced_by.as_deref());
    check_object(&mut errors, "stepData", body.step_data.as_ref());
    reject(errors)?;
    let outcome = body.step_outcome.unwrap_or(StepOutcome::Passed);

    let mut tx = app.db.begin().await?;
    let mut loaded = load(&app, &mut tx, &tenant.id, &id).await?;
    let actor = body.advanced_by.as_deref();
    if let Some(by) = actor {
        directory::ensure_users(&mut tx, &app.users, &tenant.id, &[by], app.db.now_ms()).await?;
    }
    let data = body.step_data.clone().unwrap_or_else(|| json!({}));
    let step = Advance {
        step_id: &body.completed_step_id,
        outcome,
        data,
        actor,
        by_customer: false,
    };
    advance_step(&app, &mut tx, &tenant.id, &mut loaded, step).await?;
    commit(&app, tx, idem, &loaded, StatusCode::OK).await
}

/// A step to advance: which, with what outcome and data, by whom.
pub(crate) struct Advance<'a> {
    pub(crate) step_id: &'a str,
    pub(crate) outcome: StepOutcome,
    pub(crate) data: Value,
    pub(crate) actor: Option<&'a str>,
    /// The actor is the journey's customer (in their onboarding), not staff.
    pub(crate) by_customer: bool,
}

/// Advances `loaded` past its current step in the caller's transaction, under the same rules
/// as `POST /journeys/{id}/advance`: the step must be current, and an approval step passes
/// only by its approval.
pub(crate) async fn advance_step(
    app: &AppState,
    conn: &mut crate::store::Conn,
    tenant: &str,
    loaded: &mut Loaded,
    step: Advance<'_>,
) -> ApiResult<()> {
    let next = model::advance(
        loaded.progress(),
        loaded.steps(),
        step.step_id,
        step.outcome,
    )
    .map_err(refusal)?;
    approval_gate(
        conn,
        tenant,
        loaded,
        step.step_id,
        step.outcome,
        app.db.now_ms(),
    )
    .await?;
    apply_step(
        conn,
        app,
        tenant,
        loaded,
        next,
        step.outcome,
        step.data,
        step.actor,
        step.by_customer,
        None,
    )
    .await
}

/// Assign or reassign the journey to a user or a team.
#[utoipa::path(
    post, path = "/journeys/{id}/assign", operation_id = "omni.journeys.assign", tag = "Journeys",
    params(("id" = String, Path, description = "Journey id")),
    request_body = AssignJourney,
    responses(
        (status = 200, description = "The journey after assignment", body = Data<JourneyView>),
        (status = 404, description = "No such journey in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "`assignedBy` is not the assignee, a team member, a `manager`, or the assignee's deputy under an active `journey_assign` delegation (`assignment_not_authorized`, with `reason`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Journey completed or cancelled (`invalid_transition`, with `currentStatus`); a concurrent change (`concurrent_update`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn assign_journey(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
    actor: Actor,
    ApiJson(mut body): ApiJson<AssignJourney>,
) -> ApiResult<Response> {
    actor
        .claim(
            &app,
            &tenant.id,
            &mut [("assignedBy", &mut body.assigned_by)],
        )
        .await?;
    let mut errors = Vec::new();
    if !is_external_id(&body.assignee_id) {
        errors.push(FieldError::new("assigneeId", ID_RULE));
    }
    check_id(&mut errors, "assignedBy", body.assigned_by.as_deref());
    if let Some(reason) = &body.reason {
        check_text(&mut errors, "reason", reason, 1000, false);
    }
    let new_due = due_at(&mut errors, body.due_at.as_deref());
    reject(errors)?;
    let assignee_type = body.assignee_type.unwrap_or(AssigneeType::User);

    let mut tx = app.db.begin().await?;
    let mut loaded = load(&app, &mut tx, &tenant.id, &id).await?;
    let status = model::assign(loaded.status()).map_err(refusal)?;
    if let Some(by) = body.assigned_by.as_deref() {
        check_assign_authority(&mut tx, &tenant.id, &loaded, by, app.db.now_ms()).await?;
    }
    let mut users: Vec<&str> = body.assigned_by.as_deref().into_iter().collect();
    if assignee_type == AssigneeType::User {
        users.push(&body.assignee_id);
    }
    directory::ensure_users(&mut tx, &app.users, &tenant.id, &users, app.db.now_ms()).await?;
    let previous = loaded.row.assignee_id.clone();
    loaded.row.status = status.as_str().to_owned();
    loaded.row.assignee_id = Some(body.assignee_id.clone());
    loaded.row.assignee_type = Some(assignee_type.as_str().to_owned());
    let previous_due = loaded.row.due_at;
    if new_due.is_some() {
        loaded.row.due_at = new_due;
        deadlines::set_sla(&mut tx, &mut PolicyOnce::new(&tenant.id), &mut loaded).await?;
    }
    save(&mut tx, &tenant.id, &mut loaded, app.db.now_ms()).await?;
    let summary = format!(
        "Journey assigned to {} {}",
        assignee_type.as_str(),
        body.assignee_id
    );
    let mut metadata = json!({
        "assigneeId": body.assignee_id,
        "assigneeType": assignee_type.as_str(),
        "previousAssigneeId": previous,
        "reason": body.reason,
        "notifyAssignee": body.notify_assignee.unwrap_or(true),
    });
    if new_due.is_some() {
        metadata["dueAt"] = json!(new_due.map(to_rfc3339));
        metadata["previousDueAt"] = json!(previous_due.map(to_rfc3339));
    }
    let actor = body.assigned_by.as_deref();
    finish(
        &app,
        tx,
        idem,
        &tenant,
        &loaded,
        Change {
            event_type: EventType::JourneyAssigned,
            actor,
            summary,
            metadata,
            tell_assignee: body.notify_assignee.unwrap_or(true),
            managers: Vec::new(),
            at: None,
        },
        StatusCode::OK,
    )
    .await
}

/// `assignedBy` must be the current assignee, a member of the team it is assigned to, a
/// `manager`, or a deputy of the current assignee under an active `journey_assign` delegation.
async fn check_assign_authority(
    conn: &mut crate::store::Conn,
    tenant: &str,
    loaded: &Loaded,
    by: &str,
    now: i64,
) -> ApiResult<()> {
    let current = loaded.row.assignee_id.as_deref();
    if loaded.row.assignee_type.as_deref() == Some(AssigneeType::Team.as_str())
        && let Some(team) = current
        && directory::store::is_member(conn, tenant, team, by).await?
    {
        return Ok(());
    }
    approvals::may_assign(conn, tenant, by, current, now)
        .await?
        .map_err(|why| {
            ApiError::forbidden(
                "assignment_not_authorized",
                format!(
                    "{by} may not reassign this journey: not its assignee, not a manager, and not a deputy of the assignee ({})",
                    why.detail()
                ),
            )
            .with("reason", why.code())
        })
}

/// Complete the journey; every required step must be done.
#[utoipa::path(
    post, path = "/journeys/{id}/complete", operation_id = "omni.journeys.complete", tag = "Journeys",
    params(("id" = String, Path, description = "Journey id")),
    request_body = CompleteJourney,
    responses(
        (status = 200, description = "The completed journey", body = Data<JourneyView>),
        (status = 404, description = "No such journey in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Not in progress (`invalid_transition`, with `currentStatus`); required steps not done (`required_steps_pending`, with `pendingSteps`); a concurrent change (`concurrent_update`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn complete_journey(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
    actor: Actor,
    ApiJson(mut body): ApiJson<CompleteJourney>,
) -> ApiResult<Response> {
    actor
        .claim(
            &app,
            &tenant.id,
            &mut [("completedBy", &mut body.completed_by)],
        )
        .await?;
    let mut errors = Vec::new();
    if let Some(notes) = &body.completion_notes {
        check_text(&mut errors, "completionNotes", notes, 2000, false);
    }
    check_id(&mut errors, "completedBy", body.completed_by.as_deref());
    if body.outcome.as_deref().is_some_and(|o| !is_slug(o)) {
        errors.push(FieldError::new("outcome", SLUG_RULE));
    }
    reject(errors)?;

    let mut tx = app.db.begin().await?;
    let mut loaded = load(&app, &mut tx, &tenant.id, &id).await?;
    model::complete(loaded.progress(), loaded.steps()).map_err(refusal)?;
    let outcome = body.outcome.unwrap_or_else(|| "success".to_owned());
    loaded.row.status = JourneyStatus::Completed.as_str().to_owned();
    loaded.row.outcome = Some(outcome.clone());
    loaded.row.notes = body.completion_notes;
    save(&mut tx, &tenant.id, &mut loaded, app.db.now_ms()).await?;
    let summary = format!("Journey completed ({outcome})");
    let metadata = json!({ "outcome": outcome });
    let actor = body.completed_by.as_deref();
    finish(
        &app,
        tx,
        idem,
        &tenant,
        &loaded,
        Change {
            event_type: EventType::JourneyCompleted,
            actor,
            summary,
            metadata,
            tell_assignee: true,
            managers: Vec::new(),
            at: None,
        },
        StatusCode::OK,
    )
    .await
}

/// Cancel a journey that is not completed.
#[utoipa::path(
    post, path = "/journeys/{id}/cancel", operation_id = "omni.journeys.cancel", tag = "Journeys",
    params(("id" = String, Path, description = "Journey id")),
    request_body = CancelJourney,
    responses(
        (status = 200, description = "The cancelled journey", body = Data<JourneyView>),
        (status = 404, description = "No such journey in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Already completed or cancelled (`invalid_transition`, with `currentStatus`); a concurrent change (`concurrent_update`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn cancel_journey(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
    actor: Actor,
    ApiJson(mut body): ApiJson<CancelJourney>,
) -> ApiResult<Response> {
    actor
        .claim(
            &app,
            &tenant.id,
            &mut [("cancelledBy", &mut body.cancelled_by)],
        )
        .await?;
    let mut errors = Vec::new();
    if let Some(reason) = &body.cancellation_reason {
        check_text(&mut errors, "cancellationReason", reason, 1000, false);
    }
    check_id(&mut errors, "cancelledBy", body.cancelled_by.as_deref());
    reject(errors)?;

    let mut tx = app.db.begin().await?;
    let mut loaded = load(&app, &mut tx, &tenant.id, &id).await?;
    model::cancel(loaded.status()).map_err(refusal)?;
    loaded.row.status = JourneyStatus::Cancelled.as_str().to_owned();
    loaded.row.notes = body.cancellation_reason.clone();
    save(&mut tx, &tenant.id, &mut loaded, app.db.now_ms()).await?;
    let summary = match &body.cancellation_reason {
        Some(reason) => format!("Journey cancelled: {reason}"),
        None => "Journey cancelled".to_owned(),
    };
    let metadata = json!({ "reason": body.cancellation_reason });
    let actor = body.cancelled_by.as_deref();
    finish(
        &app,
        tx,
        idem,
        &tenant,
        &loaded,
        Change {
            event_type: EventType::JourneyCancelled,
            actor,
            summary,
            metadata,
            tell_assignee: true,
            managers: Vec::new(),
            at: None,
        },
        StatusCode::OK,
    )
    .await
}
