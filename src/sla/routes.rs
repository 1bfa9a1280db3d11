//! `/api/v1/omni/sla/policy`: a tenant's SLA policy.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::calendar::CalendarDef;
use super::model::{self, Escalation, Policy};
use super::store::{self, PolicyRow};
use crate::AppState;
use crate::api::{ApiJson, Data, data, put_status, reject};
use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ProblemDoc, StoreError};
use crate::time::to_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_policy, get_policy))
}

/// Body of `PUT /sla/policy`: the whole policy; a field left out takes its default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutPolicy {
    /// Share (1 to 99) of the time to a journey's due time after which it is at risk;
    /// default 80.
    #[schema(minimum = 1, maximum = 99, example = 80)]
    pub at_risk_percent: Option<i64>,
    /// Hours before an approval request expires that its approvers are reminded, 0 to 720
    /// (0: never); default 24.
    #[schema(minimum = 0, maximum = 720, example = 24)]
    pub approval_reminder_hours: Option<i64>,
    /// Working hours and holidays; absent or `null`: deadlines run in wall-clock time.
    pub calendar: Option<CalendarDef>,
    /// What happens when a deadline passes; default: notify the assignee at risk and the
    /// managers at breach. `[]`: nothing beyond the deadline's own event.
    pub escalations: Option<Vec<Escalation>>,
}

/// A tenant's SLA policy.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    pub at_risk_percent: i64,
    pub approval_reminder_hours: i64,
    pub calendar: Option<CalendarDef>,
    pub escalations: Vec<Escalation>,
    /// `default` (Omnirail's, until the tenant puts its own) or `tenant`.
    pub source: &'static str,
    pub updated_at: Option<String>,
}

fn view(p: Policy, source: &'static str, updated_at: Option<i64>) -> PolicyView {
    PolicyView {
        at_risk_percent: p.at_risk_percent,
        approval_reminder_hours: p.approval_reminder_hours,
        calendar: p.calendar.map(|(def, _)| def),
        escalations: p.escalations,
        source,
        updated_at: updated_at.map(to_rfc3339),
    }
}

/// The policy a stored row holds.
pub(super) fn policy_of(row: &PolicyRow) -> Result<Policy, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("SLA policy: {what}"));
    let calendar = match &row.calendar {
        None => None,
        Some(text) => {
            let def: CalendarDef = serde_json::from_str(text).map_err(|_| corrupt("calendar"))?;
            let cal = def
                .check("calendar", &mut Vec::new())
                .ok_or_else(|| corrupt("calendar"))?;
            Some((def, cal))
        }
    };
    Ok(Policy {
        at_risk_percent: row.at_risk_percent,
        approval_reminder_hours: row.approval_reminder_hours,
        calendar,
        escalations: serde_json::from_str(&row.escalations).map_err(|_| corrupt("escalations"))?,
    })
}

/// Set the tenant's SLA policy: at-risk share, approval reminders, business calendar and
/// escalation rules. Journeys take it at their next change of deadline; pending reminders and
/// escalations follow it at once.
#[utoipa::path(
    put, path = "/sla/policy", operation_id = "omni.sla.putPolicy", tag = "SLA",
    request_body = PutPolicy,
    responses(
        (status = 200, description = "Replaced", body = Data<PolicyView>),
        (status = 201, description = "Created (the tenant had the defaults)", body = Data<PolicyView>),
        (status = 422, description = "Invalid fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_policy(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiJson(body): ApiJson<PutPolicy>,
) -> ApiResult<Response> {
    let defaults = Policy::default();
    let at_risk_percent = body.at_risk_percent.unwrap_or(defaults.at_risk_percent);
    let approval_reminder_hours = body
        .approval_reminder_hours
        .unwrap_or(defaults.approval_reminder_hours);
    let escalations = body.escalations.unwrap_or(defaults.escalations);
    let mut errors = Vec::new();
    let calendar = body
        .calendar
        .and_then(|def| def.check("calendar", &mut errors).map(|c| (def, c)));
    model::check(
        at_risk_percent,
        approval_reminder_hours,
        &escalations,
        &mut errors,
    );
    reject(errors)?;
    let policy = Policy {
        at_risk_percent,
        approval_reminder_hours,
        calendar,
        escalations,
    };
    let now = app.db.now_ms();
    let row = PolicyRow {
        at_risk_percent,
        approval_reminder_hours,
        calendar: policy
            .calendar
            .as_ref()
            .map(|(def, _)| serde_json::to_string(def))
            .transpose()
            .map_err(|_| ApiError::internal())?,
        escalations: serde_json::to_string(&policy.escalations)
            .map_err(|_| ApiError::internal())?,
        updated_at: now,
    };
    let mut tx = app.db.begin().await?;
    let created = store::put_policy(&mut tx, &tenant.id, &row).await?;
    tx.commit().await?;
    Ok(data(put_status(created), view(policy, "tenant", Some(now))))
}

/// Get the tenant's SLA policy: its own, else Omnirail's defaults.
#[utoipa::path(
    get, path = "/sla/policy", operation_id = "omni.sla.getPolicy", tag = "SLA",
    responses((status = 200, description = "The policy in force", body = Data<PolicyView>))
)]
async fn get_policy(State(app): State<AppState>, tenant: Tenant) -> ApiResult<Response> {
    let v = match store::get_policy(app.db.reader(), &tenant.id).await? {
        Some(row) => view(policy_of(&row)?, "tenant", Some(row.updated_at)),
        None => view(Policy::default(), "default", None),
    };
    Ok(data(StatusCode::OK, v))
}
