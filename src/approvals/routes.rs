//! `/api/v1/omni/approvals`: raise approval requests, read them, and decide on them.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{
    self, ApprovalState, ApprovalStatus, Attempt, Decision, Refusal, RequesterType, Slot,
};
use super::store::{self, ApprovalFilter, ApprovalRow, ApproverRow, DecisionRow};
use crate::AppState;
use crate::actor::{Actor, Proof};
use crate::api::SLUG_RULE;
use crate::api::{
    ApiJson, ApiPath, ApiQuery, Data, PageRequest, Paginated, check_object, data, parse_filter,
    reject, stored_json,
};
use crate::api::{check_text, is_slug};
use crate::auth::Tenant;
use crate::directory;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::idempotency::Idem;
use crate::ids::ID_RULE;
use crate::ids::{is_external_id, new_id};
use crate::money::Money;

use crate::time::{parse_rfc3339, to_rfc3339};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_approval, list_approvals))
        .routes(routes!(get_approval))
        .routes(routes!(decide))
}

/// An approver named on a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApproverInput {
    #[schema(example = "usr_credit_001")]
    pub user_id: String,
    /// A word of `[a-z0-9_]`, e.g. `primary`.
    #[schema(example = "primary")]
    pub role: Option<String>,
    /// Default `false`. With required approvers, all of them must approve; with none, the
    /// first decision decides.
    #[serde(default)]
    pub required: bool,
}

/// Body of `POST /approvals` (seed 001).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateApproval {
    /// A word of `[a-z0-9_]`: `journey`, `contract`, `payment`, ...
    #[schema(example = "journey")]
    pub entity_type: String,
    /// For `journey`, a journey of this tenant.
    #[schema(example = "jrn_abc123")]
    pub entity_id: String,
    #[schema(example = "credit_committee")]
    pub approval_type: String,
    /// The maker: never allowed to decide on this request. Required, unless an actor token
    /// proves who makes the request (then it may be omitted, or must name that person).
    #[schema(example = "usr_rm_001")]
    pub requested_by: Option<String>,
    /// 1 to 20 distinct users, not including the requester.
    pub approvers: Vec<ApproverInput>,
    /// Facts for the approvers. `facilityAmount` (money) is the amount under approval when
    /// `amount` is absent.
    #[schema(value_type = Option<Object>)]
    pub approval_data: Option<Value>,
    /// The amount under approval, checked against deputies' `maxApprovalAmount`.
    pub amount: Option<Money>,
    /// RFC 3339, in the future. Past it the request is `expired`. Absent: it never expires.
    #[schema(example = "2024-01-18T17:00:00Z")]
    pub expires_at: Option<String>,
}

/// Body of `POST /approvals/{id}/decisions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateDecision {
    /// Who decides: an approver, or a deputy with `onBehalfOf`. Required, unless an actor token
    /// proves who decides (then it may be omitted, or must name that person).
    #[schema(example = "usr_credit_001")]
    pub approver_id: Option<String>,
    pub decision: Decision,
    #[schema(example = "Within risk appetite")]
    pub comment: Option<String>,
    /// The approver whose place the deputy takes, under a delegation active now.
    #[schema(example = "usr_manager_001")]
    pub on_behalf_of: Option<String>,
}

/// An approver's place on a request and its decision so far.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApproverView {
    pub user_id: String,
    pub user_name: Option<String>,
    pub role: Option<String>,
    pub required: bool,
    /// `null` until decided (by the approver or a deputy).
    pub decision: Option<Decision>,
    pub decided_at: Option<String>,
}

/// One recorded decision: who, on whose behalf, under which delegation, when, and why.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionView {
    /// Who decided.
    pub approver_id: String,
    pub approver_name: Option<String>,
    /// The approver whose place a deputy took.
    pub on_behalf_of: Option<String>,
    pub on_behalf_of_name: Option<String>,
    /// The delegation the deputy acted under.
    pub delegation_id: Option<String>,
    pub decision: Decision,
    pub comment: Option<String>,
    pub decided_at: String,
    /// Whether an actor token from the tenant's identity provider proved who decided; `false`
    /// when the approver was only named by the caller.
    pub actor_verified: bool,
    /// The provider that proved them, when one did.
    pub actor_issuer: Option<String>,
}

/// An approval request with every decision.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalView {
    #[schema(example = "apr_abc123")]
    pub id: String,
    /// A `requested` request past `expiresAt` reads `expired` at once.
    pub status: ApprovalStatus,
    pub entity_type: String,
    pub entity_id: String,
    pub approval_type: String,
    pub requested_by: String,
    /// `user` (a member of the staff directory), `customer` (the journey's customer, whose
    /// own onboarding step opened the request) or `system`.
    pub requested_by_type: RequesterType,
    pub requested_by_name: Option<String>,
    pub approvers: Vec<ApproverView>,
    /// Present while the request has no approver: the role its step asks for, which no user
    /// held when the customer's own step opened it. The first user given the role becomes
    /// its approver (`omni.approval.approver_assigned`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awaiting_role: Option<String>,
    #[schema(value_type = Object)]
    pub approval_data: Value,
    /// The amount under approval: `amount`, else `approvalData.facilityAmount`.
    pub amount: Option<Money>,
    pub expires_at: Option<String>,
    pub decisions: Vec<DecisionView>,
    /// For a request a journey's approval step opened: that step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey_step_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// When the request reached a final status by decision or expiry sweep.
    pub decided_at: Option<String>,
}

/// Builds the views of `rows`, with names from the staff directory.
pub(super) async fn views(
    conn: &mut crate::store::Conn,
    tenant: &str,
    rows: &[ApprovalRow],
    approvers: &[ApproverRow],
    decisions: &[DecisionRow],
    now: i64,
) -> ApiResult<Vec<ApprovalView>> {
    let names = directory::store::names(conn, tenant, &people(rows, approvers, decisions)).await?;
    Ok(named_views(rows, approvers, decisions, &names, now))
}

/// Everyone the views of `rows` name: requesters, approvers, deciders and those decided for.
pub(super) fn people<'a>(
    rows: &'a [ApprovalRow],
    approvers: &'a [ApproverRow],
    decisions: &'a [DecisionRow],
) -> Vec<&'a str> {
    let mut ids: Vec<&str> = rows.iter().map(|r| r.requested_by.as_str()).collect();
    ids.extend(approvers.iter().map(|a| a.user_id.as_str()));
    for d in decisions {
        ids.push(&d.decided_by);
        ids.extend(d.on_behalf_of.as_deref());
    }
    ids
}

/// The views of `rows`, with the staff directory's `names` of [`people`].
pub(super) fn named_views(
    rows: &[ApprovalRow],
    approvers: &[ApproverRow],
    decisions: &[DecisionRow],
    names: &HashMap<String, String>,
    now: i64,
) -> Vec<ApprovalView> {
    let name = |id: &str| names.get(id).cloned();
    rows.iter()
        .map(|r| {
            let mine: Vec<&DecisionRow> =
                decisions.iter().filter(|d| d.approval_id == r.id).collect();
            ApprovalView {
                id: r.id.clone(),
                status: model::status_at(r.stored_status(), r.expires_at, now),
                entity_type: r.entity_type.clone(),
                entity_id: r.entity_id.clone(),
                approval_type: r.approval_type.clone(),
                requested_by: r.requested_by.clone(),
                requested_by_type: RequesterType::parse(&r.requested_by_type)
                    .unwrap_or(RequesterType::User),
                requested_by_name: name(&r.requested_by),
                awaiting_role: r.awaiting_role.clone(),
                approvers: approvers
                    .iter()
                    .filter(|a| a.approval_id == r.id)
                    .map(|a| {
                        let d = mine.iter().find(|d| d.slot_user_id == a.user_id);
                        ApproverView {
                            user_id: a.user_id.clone(),
                            user_name: name(&a.user_id),
                            role: a.role.clone(),
                            required: a.required != 0,
                            decision: d.and_then(|d| Decision::parse(&d.decision)),
                            decided_at: d.map(|d| to_rfc3339(d.decided_at)),
                        }
                    })
                    .collect(),
                approval_data: stored_json(&r.approval_data),
                amount: r.money(),
                expires_at: r.expires_at.map(to_rfc3339),
                decisions: mine
                    .iter()
                    .filter_map(|d| {
                        let (actor_verified, actor_issuer) = Proof::shown(d.actor_proof.as_deref());
                        Some(DecisionView {
                            approver_id: d.decided_by.clone(),
                            approver_name: name(&d.decided_by),
                            on_behalf_of: d.on_behalf_of.clone(),
                            on_behalf_of_name: d.on_behalf_of.as_deref().and_then(name),
                            delegation_id: d.delegation_id.clone(),
                            decision: Decision::parse(&d.decision)?,
                            comment: d.comment.clone(),
                            decided_at: to_rfc3339(d.decided_at),
                            actor_verified,
                            actor_issuer,
                        })
                    })
                    .collect(),
                journey_step_id: r.step_id.clone(),
                created_at: to_rfc3339(r.created_at),
                updated_at: to_rfc3339(r.updated_at),
                decided_at: r.decided_at.map(to_rfc3339),
            }
        })
        .collect()
}

/// The view of one request, read through `conn`.
pub(super) async fn view_of(
    conn: &mut crate::store::Conn,
    tenant: &str,
    row: &ApprovalRow,
    now: i64,
) -> ApiResult<ApprovalView> {
    let approvers = store::approvers(&mut *conn, &row.id).await?;
    let decisions = store::decisions(&mut *conn, &row.id).await?;
    let mut v = views(
        conn,
        tenant,
        std::slice::from_ref(row),
        &approvers,
        &decisions,
        now,
    )
    .await?;
    v.pop().ok_or_else(ApiError::internal)
}

/// Raise an approval request.
#[utoipa::path(
    post, path = "/approvals", operation_id = "omni.approvals.create", tag = "Approvals",
    request_body = CreateApproval,
    responses(
        (status = 201, description = "Approval requested", body = Data<ApprovalView>),
        (status = 422, description = "Invalid fields, the requester among the approvers, `expiresAt` in the past (`validation_failed`); `entityType` `journey` naming no journey of this tenant (`unknown_entity`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_approval(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    actor: Actor,
    ApiJson(mut body): ApiJson<CreateApproval>,
) -> ApiResult<Response> {
    actor
        .claim(
            &app,
            &tenant.id,
            &mut [("requestedBy", &mut body.requested_by)],
        )
        .await?;
    let now = app.db.now_ms();
    let mut errors = Vec::new();
    if !is_slug(&body.entity_type) {
        errors.push(FieldError::new("entityType", SLUG_RULE));
    }
    if !is_external_id(&body.entity_id) {
        errors.push(FieldError::new("entityId", ID_RULE));
    }
    if !is_slug(&body.approval_type) {
        errors.push(FieldError::new("approvalType", SLUG_RULE));
    }
    crate::api::check_person(&mut errors, "requestedBy", body.requested_by.as_deref());
    if body.approvers.is_empty() || body.approvers.len() > 20 {
        errors.push(FieldError::new("approvers", "must name 1 to 20 approvers"));
    }
    for (i, a) in body.approvers.iter().enumerate() {
        let at = |f: &str| format!("approvers[{i}].{f}");
        if !is_external_id(&a.user_id) {
            errors.push(FieldError::new(at("userId"), ID_RULE));
        } else if body.requested_by.as_deref() == Some(a.user_id.as_str()) {
            errors.push(FieldError::new(
                at("userId"),
                "the requester cannot approve their own request (maker-checker)",
            ));
        } else if body.approvers[..i].iter().any(|b| b.user_id == a.user_id) {
            errors.push(FieldError::new(at("userId"), "names an approver twice"));
        }
        if a.role.as_deref().is_some_and(|r| !is_slug(r)) {
            errors.push(FieldError::new(at("role"), SLUG_RULE));
        }
    }
    check_object(&mut errors, "approvalData", body.approval_data.as_ref());
    if let Some(amount) = &body.amount {
        amount.check("amount", &mut errors);
    }
    let facility = match Money::from_json(
        body.approval_data
            .as_ref()
            .and_then(|d| d.get("facilityAmount")),
        "approvalData.facilityAmount",
    ) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let expires_at = match body.expires_at.as_deref() {
        None => None,
        Some(s) => match parse_rfc3339(s) {
            None => {
                errors.push(FieldError::new(
                    "expiresAt",
                    "must be an RFC 3339 date-time",
                ));
                None
            }
            Some(t) if t <= now => {
                errors.push(FieldError::new("expiresAt", "must be in the future"));
                None
            }
            Some(t) => Some(t),
        },
    };
    reject(errors)?;

    let mut tx = app.db.begin().await?;
    let customer = if body.entity_type == "journey" {
        let customer =
            crate::customers::store::of_journey(&mut tx, &tenant.id, &body.entity_id).await?;
        if customer.is_none() {
            return Err(ApiError::unprocessable(
                "unknown_entity",
                format!("Journey {} does not exist", body.entity_id),
            )
            .with("field", "entityId"));
        }
        customer
    } else {
        None
    };
    let (amount, currency) = Money::stored(body.amount.or(facility));
    let row = ApprovalRow {
        id: new_id("apr_"),
        entity_type: body.entity_type,
        entity_id: body.entity_id,
        approval_type: body.approval_type,
        requested_by: body.requested_by.unwrap_or_default(),
        requested_by_type: RequesterType::User.as_str().to_owned(),
        awaiting_role: None,
        approval_data: body.approval_data.unwrap_or_else(|| json!({})).to_string(),
        amount,
        currency,
        expires_at,
        status: ApprovalStatus::Requested.as_str().to_owned(),
        journey_id: None,
        step_id: None,
        step_index: None,
        row_version: 1,
        created_at: now,
        updated_at: now,
        decided_at: None,
    };
    let approvers: Vec<ApproverRow> = body
        .approvers
        .into_iter()
        .enumerate()
        .map(|(i, a)| ApproverRow {
            approval_id: row.id.clone(),
            position: i as i64,
            user_id: a.user_id,
            role: a.role,
            required: i64::from(a.required),
        })
        .collect();
    let v = super::open(
        &mut tx,
        &app.users,
        &tenant.id,
        &row,
        &approvers,
        customer.as_deref(),
        now,
    )
    .await?;
    idem.commit(&app.db, tx, StatusCode::CREATED, &Data { data: v })
        .await
}

/// Query of `GET /approvals`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalQuery {
    /// Status at the time of the read (`expired` includes requests past `expiresAt`).
    #[param(value_type = Option<ApprovalStatus>)]
    status: Option<String>,
    /// Requests naming this user as an approver.
    approver_id: Option<String>,
    requester_id: Option<String>,
    entity_type: Option<String>,
    /// Requests this staff user can decide now: open and unexpired, not requested by them,
    /// with an undecided approver place that is theirs or belongs to someone whose active
    /// delegation covers approvals for them (a deputy's limit is checked when they decide).
    decidable_by: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 20, max 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

/// List approval requests, newest first, with their decisions.
#[utoipa::path(
    get, path = "/approvals", operation_id = "omni.approvals.list", tag = "Approvals",
    params(ApprovalQuery),
    responses(
        (status = 200, description = "A page of approval requests", body = Paginated<ApprovalView>),
        (status = 422, description = "Unknown `status`, or `page`/`perPage` out of range (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_approvals(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<ApprovalQuery>,
) -> ApiResult<Response> {
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 20, 100)?;
    let status: Option<ApprovalStatus> = parse_filter("status", q.status.as_deref())?;
    let now = app.db.now_ms();
    let filter = ApprovalFilter {
        status: status.map(ApprovalStatus::as_str),
        approver_id: q.approver_id.as_deref(),
        requester_id: q.requester_id.as_deref(),
        entity_type: q.entity_type.as_deref(),
        decidable_by: q.decidable_by.as_deref(),
        now,
    };
    let (rows, approvers, decisions, total) = store::list_approvals(
        app.db.reader(),
        &tenant.id,
        &filter,
        page.limit(),
        page.offset(),
    )
    .await?;
    let mut conn = app.db.read_conn().await?;
    let data = views(&mut conn, &tenant.id, &rows, &approvers, &decisions, now).await?;
    Ok(page.answer(data, total))
}

/// Get an approval request with every decision.
#[utoipa::path(
    get, path = "/approvals/{id}", operation_id = "omni.approvals.get", tag = "Approvals",
    params(("id" = String, Path, description = "Approval id")),
    responses(
        (status = 200, description = "The approval request", body = Data<ApprovalView>),
        (status = 404, description = "No such approval in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_approval(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let mut conn = app.db.read_conn().await?;
    let row = store::get_approval(&mut conn, &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Approval"))?;
    let v = view_of(&mut conn, &tenant.id, &row, app.db.now_ms()).await?;
    Ok(data(StatusCode::OK, v))
}

fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::NotOpen(status) => ApiError::conflict(
            "approval_not_open",
            format!(
                "The request is {}; it takes no more decisions",
                status.as_str()
            ),
        )
        .with("currentStatus", status.as_str()),
        Refusal::SelfDecision => ApiError::forbidden(
            "maker_checker_violation",
            "The requester cannot decide on their own request, directly or as a deputy",
        ),
        Refusal::NotAnApprover => ApiError::forbidden(
            "not_an_approver",
            "This user is not an approver of the request",
        ),
        Refusal::NoAuthority(why) => ApiError::forbidden(why.code(), why.detail()),
        Refusal::AlreadyDecided => ApiError::conflict(
            "already_decided",
            "This approver's place on the request already holds a decision",
        ),
    }
}

/// Record a decision by an approver, or by a deputy on an approver's behalf.
#[utoipa::path(
    post, path = "/approvals/{id}/decisions", operation_id = "omni.approvals.decisions.create", tag = "Approvals",
    params(("id" = String, Path, description = "Approval id")),
    request_body = CreateDecision,
    responses(
        (status = 201, description = "Decision recorded; the request as it now stands", body = Data<ApprovalView>),
        (status = 403, description = "The requester deciding (`maker_checker_violation`); not an approver (`not_an_approver`); a deputy without authority: `no_delegation`, `delegation_revoked`, `delegation_not_yet_active`, `delegation_expired`, `delegation_scope_excluded`, `delegation_currency_mismatch`, `delegation_limit_exceeded`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such approval in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The request is no longer `requested` (`approval_not_open`, with `currentStatus`); this approver's place already decided (`already_decided`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn decide(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
    actor: Actor,
    ApiJson(mut body): ApiJson<CreateDecision>,
) -> ApiResult<Response> {
    actor
        .claim(
            &app,
            &tenant.id,
            &mut [("approverId", &mut body.approver_id)],
        )
        .await?;
    let mut errors = Vec::new();
    crate::api::check_person(&mut errors, "approverId", body.approver_id.as_deref());
    crate::api::check_id(&mut errors, "onBehalfOf", body.on_behalf_of.as_deref());
    if let Some(comment) = &body.comment {
        check_text(&mut errors, "comment", comment, 2000, false);
    }
    reject(errors)?;
    let approver_id = body.approver_id.unwrap_or_default();

    let mut tx = app.db.begin().await?;
    // Deciders on one request take turns from here to the commit.
    let row = store::lock_approval(&mut tx, &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Approval"))?;
    let approvers = store::approvers(&mut *tx, &row.id).await?;
    let decisions = store::decisions(&mut *tx, &row.id).await?;
    let state = ApprovalState {
        stored: row.stored_status(),
        expires_at: row.expires_at,
        requested_by: row.requested_by.clone(),
        slots: approvers
            .iter()
            .map(|a| Slot {
                user_id: a.user_id.clone(),
                required: a.required != 0,
                decision: decisions
                    .iter()
                    .find(|d| d.slot_user_id == a.user_id)
                    .and_then(|d| Decision::parse(&d.decision)),
            })
            .collect(),
    };
    let now = app.db.now_ms();
    let attempt = Attempt {
        decider: &approver_id,
        on_behalf_of: body.on_behalf_of.as_deref(),
        decision: body.decision,
        now,
    };
    let grants: Vec<model::Grant> = if attempt.is_deputy() {
        store::grants_between(&mut tx, &tenant.id, attempt.slot_user(), attempt.decider)
            .await?
            .iter()
            .map(store::DelegationRow::grant)
            .collect()
    } else {
        Vec::new()
    };
    let decided =
        model::decide(&state, &attempt, &grants, row.money().as_ref()).map_err(refusal)?;
    let on_behalf_of = attempt.is_deputy().then(|| attempt.slot_user().to_owned());
    let mut users = vec![approver_id.as_str()];
    users.extend(on_behalf_of.as_deref());
    directory::ensure_users(&mut tx, &app.users, &tenant.id, &users, now).await?;
    let decision = DecisionRow {
        approval_id: row.id.clone(),
        slot_user_id: attempt.slot_user().to_owned(),
        decided_by: approver_id.clone(),
        on_behalf_of,
        delegation_id: decided.delegation_id.clone(),
        decision: body.decision.as_str().to_owned(),
        comment: body.comment.clone(),
        decided_at: now,
        actor_proof: actor.proven().map(|a| a.proof()),
    };
    store::insert_decision(&mut tx, &decision).await?;
    let mut decisions = decisions;
    decisions.push(decision);
    let v = super::after_decision(
        &app,
        &mut tx,
        &tenant.id,
        &row,
        (&approvers, &decisions),
        decided.status,
        now,
    )
    .await?;
    idem.commit(&app.db, tx, StatusCode::CREATED, &Data { data: v })
        .await
}

/// Names for the summaries of events.
pub(super) fn display(names: &HashMap<String, String>, id: &str) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_owned())
}
