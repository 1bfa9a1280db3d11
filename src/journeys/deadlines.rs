//! A journey's deadlines: computed on the write path, announced when they pass.
//!
//! Every change that moves a deadline (a journey started, a step reached, a new `dueAt`)
//! computes it here, under the tenant's SLA policy, and stores it on the journey with the
//! earliest deadline not yet announced (`next_deadline_at`). The deadline worker ([`sweep`])
//! finds journeys whose `next_deadline_at` has come, locks each in its own transaction, and
//! records, for each deadline passed and not yet announced, its event, the escalations the
//! policy names, and which deadline it announced: exactly once per deadline, on any number of
//! nodes and across restarts, because the mark commits with the events or not at all.
//! Completing or cancelling a journey clears `next_deadline_at`: nothing pending fires.

use serde_json::json;

use super::model::{AssigneeType, JourneyStatus, StepDef};
use super::routes::{Change, Loaded, load_locked, record_change, save};
use super::store::{self, Deadlines};
use crate::AppState;
use crate::error::ApiResult;
use crate::events::EventType;
use crate::sla::model::{self as rules, RaiseTo};
use crate::sla::{NotifyParty, Policy, Trigger};
use crate::store::Conn;
use crate::time::to_rfc3339;
use crate::{directory, sla};

/// Journeys one pass of the worker takes at most; the next pass takes the rest.
pub const BATCH: usize = 100;

/// The tenant's policy, read only when a deadline is to be computed.
pub(super) struct PolicyOnce<'t> {
    tenant: &'t str,
    policy: Option<Policy>,
}

impl<'t> PolicyOnce<'t> {
    pub(super) fn new(tenant: &'t str) -> Self {
        Self {
            tenant,
            policy: None,
        }
    }

    async fn get(&mut self, conn: &mut Conn) -> ApiResult<&Policy> {
        if self.policy.is_none() {
            self.policy = Some(sla::policy(&mut *conn, self.tenant).await?);
        }
        Ok(self.policy.get_or_insert_with(Policy::default))
    }
}

/// Sets the journey's SLA (due and at-risk times) from its start, its `dueAt` and its
/// version's `slaHours`.
pub(super) async fn set_sla(
    conn: &mut Conn,
    policy: &mut PolicyOnce<'_>,
    loaded: &mut Loaded,
) -> ApiResult<()> {
    let (due_at, hours) = (loaded.row.due_at, loaded.version.sla_hours);
    let sla = if due_at.is_some() || hours.is_some() {
        policy
            .get(conn)
            .await?
            .sla(loaded.row.created_at, due_at, hours)
    } else {
        None
    };
    let d = &mut loaded.row.deadlines;
    (d.sla_due_at, d.sla_at_risk_at) = (sla.map(|s| s.0), sla.map(|s| s.1));
    Ok(())
}

/// Records that the current step became current at `now`, and sets its deadline.
pub(super) async fn set_step(
    conn: &mut Conn,
    policy: &mut PolicyOnce<'_>,
    loaded: &mut Loaded,
    now: i64,
) -> ApiResult<()> {
    let index = usize::try_from(loaded.row.current_step_index).unwrap_or(usize::MAX);
    let timeout = loaded
        .steps()
        .get(index)
        .and_then(|s: &StepDef| s.timeout_hours);
    let due = match timeout {
        Some(hours) => Some(policy.get(conn).await?.after(now, hours.get())),
        None => None,
    };
    let d = &mut loaded.row.deadlines;
    d.step_started_at = Some(now);
    d.step_due_at = due;
    Ok(())
}

/// The earliest deadline of an open journey not yet announced; `None` for a completed or
/// cancelled one, whose pending deadlines are thereby cancelled.
pub(super) fn next_deadline(status: JourneyStatus, d: &Deadlines) -> Option<i64> {
    if status.is_final() {
        return None;
    }
    rules::next_deadline(&[
        (d.sla_at_risk_at, d.at_risk_fired),
        (d.sla_due_at, d.breach_fired),
        (d.step_due_at, d.step_overdue_fired),
    ])
}

/// One pass of the deadline worker: announces the deadlines passed by `now`, for at most
/// [`BATCH`] journeys. Returns for how many it did.
pub async fn sweep(app: &AppState) -> ApiResult<usize> {
    let now = app.db.now_ms();
    let due = store::deadlines_due(app.db.reader(), now, BATCH as i64).await?;
    let mut announced = 0;
    for (tenant, id) in &due {
        let mut tx = app.db.begin().await?;
        // One journey that cannot be announced (say, a policy that no longer reads) must not
        // hold up the others: it is logged, and tried again on the next pass.
        match announce(app, &mut tx, tenant, id, now).await {
            Ok(()) => {
                tx.commit().await?;
                announced += 1;
            }
            Err(e) if e.status.is_server_error() && e.code != "database_busy" => {
                tracing::error!(tenant, journey = id, code = e.code, detail = %e.detail, "a journey's deadlines could not be announced");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(announced)
}

/// Announces the journey's passed deadlines, in its own (the caller's) transaction, with the
/// journey locked: another node that found it too waits, then finds them announced.
async fn announce(
    app: &AppState,
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    now: i64,
) -> ApiResult<()> {
    let Some(mut loaded) = load_locked(app, conn, tenant, id).await? else {
        return Ok(());
    };
    let status = loaded.status();
    let d = loaded.row.deadlines.clone();
    let passed = |at: Option<i64>, fired: Option<i64>| at.is_some_and(|t| t <= now) && at != fired;
    let mut triggers = Vec::new();
    if !status.is_final() {
        let breached = passed(d.sla_due_at, d.breach_fired);
        // A journey found past its due time is breached: being at risk is no longer news.
        if passed(d.sla_at_risk_at, d.at_risk_fired) && !breached {
            triggers.push((Trigger::AtRisk, d.sla_at_risk_at));
        }
        if breached {
            triggers.push((Trigger::Breached, d.sla_due_at));
        }
        if passed(d.step_due_at, d.step_overdue_fired) {
            triggers.push((Trigger::StepOverdue, d.step_due_at));
        }
        let marks = &mut loaded.row.deadlines;
        if passed(d.sla_at_risk_at, d.at_risk_fired) {
            marks.at_risk_fired = d.sla_at_risk_at;
        }
        if breached {
            marks.breach_fired = d.sla_due_at;
        }
        if passed(d.step_due_at, d.step_overdue_fired) {
            marks.step_overdue_fired = d.step_due_at;
        }
    }
    let mut policy = PolicyOnce::new(tenant);
    let mut managers = Managers::default();
    for (trigger, deadline) in triggers {
        let deadline = deadline.unwrap_or(now);
        record_deadline(conn, tenant, &loaded, &mut managers, trigger, deadline, now).await?;
        let policy = policy.get(conn).await?;
        let escalations: Vec<_> = policy
            .escalations_for(trigger, &loaded.row.template_id)
            .into_iter()
            .cloned()
            .collect();
        for rule in escalations {
            escalate(
                app,
                conn,
                tenant,
                &mut loaded,
                &mut managers,
                trigger,
                deadline,
                &rule,
                now,
            )
            .await?;
        }
    }
    let next = next_deadline(loaded.status(), &loaded.row.deadlines);
    loaded.row.deadlines.next_deadline_at = next;
    store::set_deadline_marks(conn, tenant, id, &loaded.row.deadlines).await?;
    Ok(())
}

/// The event of a deadline passed: `omni.journey.sla_at_risk`, `sla_breached` or
/// `step_overdue`, naming the deadline, with the assignee and their managers as parties (for
/// the tenant's notification rules).
async fn record_deadline(
    conn: &mut Conn,
    tenant: &str,
    loaded: &Loaded,
    managers: &mut Managers,
    trigger: Trigger,
    deadline: i64,
    now: i64,
) -> ApiResult<()> {
    let step = loaded
        .steps()
        .get(usize::try_from(loaded.row.current_step_index).unwrap_or(usize::MAX));
    let (event_type, summary) = match trigger {
        Trigger::AtRisk => (
            EventType::JourneySlaAtRisk,
            format!(
                "Journey at risk of missing its SLA (due {})",
                at(loaded.row.deadlines.sla_due_at)
            ),
        ),
        Trigger::Breached => (
            EventType::JourneySlaBreached,
            format!("Journey breached its SLA (due {})", to_rfc3339(deadline)),
        ),
        Trigger::StepOverdue => (
            EventType::JourneyStepOverdue,
            format!(
                "Journey step overdue: {} (due {})",
                step.map_or("", |s| s.name.as_str()),
                to_rfc3339(deadline)
            ),
        ),
    };
    let mut metadata = json!({ "deadline": to_rfc3339(deadline), "trigger": trigger.as_str() });
    if trigger == Trigger::StepOverdue
        && let Some(s) = step
    {
        metadata["stepId"] = json!(s.id);
    }
    let managers = managers.of(conn, tenant, loaded).await?;
    record_change(
        conn,
        tenant,
        loaded,
        Change {
            event_type,
            actor: None,
            summary,
            metadata,
            tell_assignee: true,
            managers,
            at: Some(now),
        },
    )
    .await
}

fn at(t: Option<i64>) -> String {
    t.map_or_else(|| "-".to_owned(), to_rfc3339)
}

/// The managers of the journey's assignee, read once per assignee while its deadlines are
/// announced (an escalation that reassigns it makes them another's).
#[derive(Default)]
struct Managers(Option<(Option<String>, Vec<String>)>);

impl Managers {
    async fn of(
        &mut self,
        conn: &mut Conn,
        tenant: &str,
        loaded: &Loaded,
    ) -> ApiResult<Vec<String>> {
        let assignee = loaded.row.assignee_id.clone();
        if let Some((of, managers)) = &self.0
            && *of == assignee
        {
            return Ok(managers.clone());
        }
        let managers = match assignee.as_deref() {
            None => Vec::new(),
            Some(id) => {
                let team = loaded.row.assignee_type.as_deref() == Some(AssigneeType::Team.as_str());
                directory::store::managers_of(conn, tenant, id, team).await?
            }
        };
        self.0 = Some((assignee, managers.clone()));
        Ok(managers)
    }
}

/// Applies one escalation rule and records `omni.journey.escalated` with its reason and what
/// it did; a reassignment or a raised priority is saved as any change of the journey is.
#[allow(clippy::too_many_arguments)]
async fn escalate(
    app: &AppState,
    conn: &mut Conn,
    tenant: &str,
    loaded: &mut Loaded,
    managers: &mut Managers,
    trigger: Trigger,
    deadline: i64,
    rule: &sla::Escalation,
    now: i64,
) -> ApiResult<()> {
    let mut actions = Vec::new();
    let previous_assignee = loaded.row.assignee_id.clone();
    let previous_priority = loaded.row.priority.clone();
    let mut changed = false;
    if let Some(to) = &rule.reassign_to {
        let status = super::model::assign(loaded.status()).unwrap_or(loaded.status());
        if loaded.row.assignee_id.as_deref() != Some(to.assignee_id.as_str())
            || loaded.row.assignee_type.as_deref() != Some(to.assignee_type.as_str())
        {
            if to.assignee_type == AssigneeType::User.as_str() {
                directory::ensure_users(conn, &app.users, tenant, &[&to.assignee_id], now).await?;
            }
            loaded.row.status = status.as_str().to_owned();
            loaded.row.assignee_id = Some(to.assignee_id.clone());
            loaded.row.assignee_type = Some(to.assignee_type.clone());
            actions.push("reassigned");
            changed = true;
        }
    }
    if let Some(to) = rule.raise_priority_to
        && RaiseTo::rank(to.as_str()) > RaiseTo::rank(&loaded.row.priority)
    {
        loaded.row.priority = to.as_str().to_owned();
        actions.push("priority_raised");
        changed = true;
    }
    let notify_assignee = rule.notify.contains(&NotifyParty::Assignee);
    let notify_managers = rule.notify.contains(&NotifyParty::Manager);
    if changed {
        loaded.row.deadlines.next_deadline_at =
            next_deadline(loaded.status(), &loaded.row.deadlines);
        save(conn, tenant, loaded, now).await?;
    }
    let managers = if notify_managers {
        managers.of(conn, tenant, loaded).await?
    } else {
        Vec::new()
    };
    // A new assignee is always told; nobody is told of a journey assigned to nobody.
    let tell_assignee =
        (notify_assignee || actions.contains(&"reassigned")) && loaded.row.assignee_id.is_some();
    if tell_assignee {
        actions.push("assignee_notified");
    }
    if !managers.is_empty() {
        actions.push("managers_notified");
    }
    let reason = match trigger {
        Trigger::AtRisk => "at risk of missing its SLA",
        Trigger::Breached => "SLA breached",
        Trigger::StepOverdue => "current step overdue",
    };
    let metadata = json!({
        "trigger": trigger.as_str(),
        "reason": reason,
        "deadline": to_rfc3339(deadline),
        "actions": actions,
        "previousAssigneeId": previous_assignee,
        "assigneeId": loaded.row.assignee_id,
        "previousPriority": previous_priority,
        "priority": loaded.row.priority,
        "managers": managers,
        "templateRule": rule.template_id.is_some(),
    });
    record_change(
        conn,
        tenant,
        loaded,
        Change {
            event_type: EventType::JourneyEscalated,
            actor: None,
            summary: format!("Journey {} escalated: {reason}", loaded.row.id),
            metadata,
            tell_assignee,
            managers,
            at: Some(now),
        },
    )
    .await
}
