//! `/api/v1/omni/delegations`: grant, read, list and revoke delegations of authority.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{self, DelegationStatus, Scope};
use super::store::{self, DelegationFilter, DelegationRow};
use crate::AppState;
use crate::actor::Actor;
use crate::api::check_text;
use crate::api::{
    ApiJson, ApiPath, ApiQuery, Data, PageRequest, Paginated, check_id, data, parse_filter, reject,
};
use crate::auth::Tenant;
use crate::directory;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::events::EventType;
use crate::events::{self, NewEvent};
use crate::idempotency::Idem;
use crate::ids::ID_RULE;
use crate::ids::{is_external_id, new_id};
use crate::money::Money;
use crate::store::Tx;
use crate::time::{parse_rfc3339, to_rfc3339};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_delegation, list_delegations))
        .routes(routes!(get_delegation))
        .routes(routes!(revoke_delegation))
}

/// Body of `POST /delegations` (seed 001).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateDelegation {
    /// Who grants the authority. Required, unless an actor token proves who grants it (then it
    /// may be omitted, or must name that person).
    #[schema(example = "usr_manager_001")]
    pub delegator_id: Option<String>,
    #[schema(example = "usr_deputy_002")]
    pub delegatee_id: String,
    /// What is handed over: `approvals`, `journey_assign`, or `all`.
    #[schema(value_type = Vec<Scope>, example = json!(["approvals", "journey_assign"]))]
    pub scope: Vec<String>,
    /// The largest amount the deputy may approve, in this currency only. Absent: no limit.
    pub max_approval_amount: Option<Money>,
    /// RFC 3339; default now.
    #[schema(example = "2024-01-15T00:00:00Z")]
    pub valid_from: Option<String>,
    /// RFC 3339; after `validFrom` and not in the past.
    #[schema(example = "2024-01-22T23:59:59Z")]
    pub valid_to: String,
    #[schema(example = "Annual leave coverage")]
    pub reason: Option<String>,
}

/// Body of `POST /delegations/{id}/revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokeDelegation {
    #[schema(example = "usr_manager_001")]
    pub revoked_by: Option<String>,
    #[schema(example = "Returned early from leave")]
    pub reason: Option<String>,
}

/// A delegation of authority (seed 001's fields, plus names from the staff directory, the
/// reason, and the revocation once revoked).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DelegationView {
    #[schema(example = "del_xyz789")]
    pub id: String,
    /// Derived from the clock and revocation at the time of the read.
    pub status: DelegationStatus,
    pub delegator_id: String,
    pub delegator_name: Option<String>,
    pub delegatee_id: String,
    pub delegatee_name: Option<String>,
    pub scope: Vec<Scope>,
    pub max_approval_amount: Option<Money>,
    pub valid_from: String,
    pub valid_to: String,
    pub reason: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
}

fn view(
    d: &DelegationRow,
    names: &std::collections::HashMap<String, String>,
    now: i64,
) -> DelegationView {
    DelegationView {
        id: d.id.clone(),
        status: model::delegation_status(d.valid_from, d.valid_to, d.revoked_at, now),
        delegator_id: d.delegator_id.clone(),
        delegator_name: names.get(&d.delegator_id).cloned(),
        delegatee_id: d.delegatee_id.clone(),
        delegatee_name: names.get(&d.delegatee_id).cloned(),
        scope: d.scope_list(),
        max_approval_amount: d.max_approval_amount(),
        valid_from: to_rfc3339(d.valid_from),
        valid_to: to_rfc3339(d.valid_to),
        reason: d.reason.clone(),
        created_at: to_rfc3339(d.created_at),
        revoked_at: d.revoked_at.map(to_rfc3339),
        revoked_by: d.revoked_by.clone(),
        revocation_reason: d.revoke_reason.clone(),
    }
}

async fn views(
    conn: &mut crate::store::Conn,
    tenant: &str,
    rows: &[DelegationRow],
    now: i64,
) -> ApiResult<Vec<DelegationView>> {
    let ids: Vec<&str> = rows
        .iter()
        .flat_map(|d| [d.delegator_id.as_str(), d.delegatee_id.as_str()])
        .collect();
    let names = directory::store::names(conn, tenant, &ids).await?;
    Ok(rows.iter().map(|d| view(d, &names, now)).collect())
}

/// The event a delegation change records.
struct Change<'a> {
    event_type: EventType,
    actor: Option<&'a str>,
    summary: String,
}

/// Records the delegation's event and commits it with the answer.
async fn finish(
    app: &AppState,
    mut tx: Tx,
    idem: Idem,
    tenant: &Tenant,
    d: &DelegationRow,
    change: Change<'_>,
    status: StatusCode,
) -> ApiResult<Response> {
    let Change {
        event_type,
        actor,
        summary,
    } = change;
    let now = app.db.now_ms();
    let v = views(&mut tx, &tenant.id, std::slice::from_ref(d), now)
        .await?
        .remove(0);
    events::record(
        &mut tx,
        NewEvent {
            tenant_id: &tenant.id,
            event_type,
            actor_id: actor,
            channel: None,
            summary,
            metadata: json!({
                "delegationId": d.id,
                "delegatorId": d.delegator_id,
                "delegateeId": d.delegatee_id,
                "scope": v.scope,
                "status": v.status,
            }),
            payload: serde_json::to_value(&v).unwrap_or_default(),
            occurred_at: now,
            entities: vec![
                ("delegation", &d.id),
                ("user", &d.delegator_id),
                ("user", &d.delegatee_id),
            ],
            parties: Default::default(),
        },
    )
    .await?;
    idem.commit(&app.db, tx, status, &Data { data: v }).await
}

/// Grant a delegation of authority from one user to another.
#[utoipa::path(
    post, path = "/delegations", operation_id = "omni.delegations.create", tag = "Delegations",
    request_body = CreateDelegation,
    responses(
        (status = 201, description = "Delegation granted", body = Data<DelegationView>),
        (status = 422, description = "Invalid fields: delegator equals delegatee, `validTo` not after `validFrom` or in the past, unknown scope, negative or non-ISO 4217 `maxApprovalAmount` (`validation_failed`); the delegator holds the scope only by delegation (`redelegation_forbidden`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_delegation(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    actor: Actor,
    ApiJson(mut body): ApiJson<CreateDelegation>,
) -> ApiResult<Response> {
    actor
        .claim(
            &app,
            &tenant.id,
            &mut [("delegatorId", &mut body.delegator_id)],
        )
        .await?;
    let now = app.db.now_ms();
    let mut errors = Vec::new();
    crate::api::check_person(&mut errors, "delegatorId", body.delegator_id.as_deref());
    if !is_external_id(&body.delegatee_id) {
        errors.push(FieldError::new("delegateeId", ID_RULE));
    } else if body.delegator_id.as_deref() == Some(body.delegatee_id.as_str()) {
        errors.push(FieldError::new(
            "delegateeId",
            "must differ from delegatorId: nobody delegates to themselves",
        ));
    }
    let mut scopes = Vec::new();
    if body.scope.is_empty() {
        errors.push(FieldError::new("scope", "must name at least one scope"));
    }
    for (i, s) in body.scope.iter().enumerate() {
        match Scope::parse(s) {
            Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
            Some(_) => {}
            None => errors.push(FieldError::new(
                format!("scope[{i}]"),
                "must be one of approvals, journey_assign, all",
            )),
        }
    }
    if let Some(max) = &body.max_approval_amount {
        max.check("maxApprovalAmount", &mut errors);
    }
    let valid_from = match body.valid_from.as_deref() {
        None => Some(now),
        Some(s) => parse_rfc3339(s).or_else(|| {
            errors.push(FieldError::new(
                "validFrom",
                "must be an RFC 3339 date-time",
            ));
            None
        }),
    };
    let valid_to = parse_rfc3339(&body.valid_to);
    match (valid_from, valid_to) {
        (_, None) => errors.push(FieldError::new("validTo", "must be an RFC 3339 date-time")),
        (Some(from), Some(to)) if to <= from => {
            errors.push(FieldError::new("validTo", "must be after validFrom"));
        }
        (_, Some(to)) if to < now => {
            errors.push(FieldError::new("validTo", "must not be in the past"));
        }
        _ => {}
    }
    if let Some(reason) = &body.reason {
        check_text(&mut errors, "reason", reason, 1000, false);
    }
    reject(errors)?;
    let (Some(valid_from), Some(valid_to), Some(delegator_id)) =
        (valid_from, valid_to, body.delegator_id)
    else {
        return Err(ApiError::internal());
    };

    let mut tx = app.db.begin().await?;
    let own_role = directory::store::has_any_role(&mut tx, &tenant.id, &delegator_id).await?;
    let held: Vec<_> = store::grants_held_by(&mut tx, &tenant.id, &delegator_id)
        .await?
        .iter()
        .map(DelegationRow::grant)
        .collect();
    if model::is_redelegation(own_role, &held, &scopes, valid_from, valid_to, now) {
        return Err(ApiError::unprocessable(
            "redelegation_forbidden",
            format!(
                "{delegator_id} holds this authority only by delegation and cannot delegate it \
                 onward"
            ),
        )
        .with("field", "delegatorId"));
    }
    directory::ensure_users(
        &mut tx,
        &app.users,
        &tenant.id,
        &[&delegator_id, &body.delegatee_id],
        now,
    )
    .await?;
    let scope_names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let (max_amount, max_currency) = Money::stored(body.max_approval_amount);
    let row = DelegationRow {
        id: new_id("del_"),
        delegator_id,
        delegatee_id: body.delegatee_id,
        scopes: serde_json::to_string(&scope_names).unwrap_or_else(|_| "[]".into()),
        max_amount,
        max_currency,
        valid_from,
        valid_to,
        reason: body.reason,
        created_at: now,
        revoked_at: None,
        revoked_by: None,
        revoke_reason: None,
    };
    store::insert_delegation(&mut tx, &tenant.id, &row).await?;
    let summary = format!(
        "Delegation granted: {} to {} ({})",
        row.delegator_id,
        row.delegatee_id,
        scope_names.join(", ")
    );
    let actor = row.delegator_id.clone();
    finish(
        &app,
        tx,
        idem,
        &tenant,
        &row,
        Change {
            event_type: EventType::DelegationGranted,
            actor: Some(&actor),
            summary,
        },
        StatusCode::CREATED,
    )
    .await
}

/// Query of `GET /delegations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DelegationQuery {
    delegator_id: Option<String>,
    delegatee_id: Option<String>,
    /// Derived status at the time of the read.
    #[param(value_type = Option<DelegationStatus>)]
    status: Option<String>,
    /// Delegations naming this scope (`journeys` is read as `journey_assign`).
    #[param(value_type = Option<Scope>)]
    scope: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 20, max 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

/// List active and historical delegations, newest first.
#[utoipa::path(
    get, path = "/delegations", operation_id = "omni.delegations.list", tag = "Delegations",
    params(DelegationQuery),
    responses(
        (status = 200, description = "A page of delegations", body = Paginated<DelegationView>),
        (status = 422, description = "Unknown `status` or `scope`, or `page`/`perPage` out of range (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_delegations(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<DelegationQuery>,
) -> ApiResult<Response> {
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 20, 100)?;
    let status: Option<DelegationStatus> = parse_filter("status", q.status.as_deref())?;
    // Seed 001 lists the scope filter's values as `approvals, journeys, all`.
    let scope_raw = q.scope.as_deref().map(|s| match s {
        "journeys" => "journey_assign",
        other => other,
    });
    let scope: Option<Scope> = parse_filter("scope", scope_raw)?;
    let now = app.db.now_ms();
    let filter = DelegationFilter {
        delegator_id: q.delegator_id.as_deref(),
        delegatee_id: q.delegatee_id.as_deref(),
        status: status.map(DelegationStatus::as_str),
        scope: scope.map(Scope::as_str),
        now,
    };
    let (rows, total) = store::list_delegations(
        app.db.reader(),
        &tenant.id,
        &filter,
        page.limit(),
        page.offset(),
    )
    .await?;
    let mut conn = app.db.read_conn().await?;
    let data = views(&mut conn, &tenant.id, &rows, now).await?;
    Ok(page.answer(data, total))
}

/// Get a delegation by id.
#[utoipa::path(
    get, path = "/delegations/{id}", operation_id = "omni.delegations.get", tag = "Delegations",
    params(("id" = String, Path, description = "Delegation id")),
    responses(
        (status = 200, description = "The delegation", body = Data<DelegationView>),
        (status = 404, description = "No such delegation in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_delegation(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let mut conn = app.db.read_conn().await?;
    let row = store::get_delegation(&mut conn, &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Delegation"))?;
    let v = views(
        &mut conn,
        &tenant.id,
        std::slice::from_ref(&row),
        app.db.now_ms(),
    )
    .await?
    .remove(0);
    Ok(data(StatusCode::OK, v))
}

/// Revoke a delegation at once.
#[utoipa::path(
    post, path = "/delegations/{id}/revoke", operation_id = "omni.delegations.revoke", tag = "Delegations",
    params(("id" = String, Path, description = "Delegation id")),
    request_body = RevokeDelegation,
    responses(
        (status = 200, description = "The revoked delegation", body = Data<DelegationView>),
        (status = 404, description = "No such delegation in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Already revoked (`already_revoked`); already expired (`delegation_expired`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn revoke_delegation(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
    actor: Actor,
    ApiJson(mut body): ApiJson<RevokeDelegation>,
) -> ApiResult<Response> {
    actor
        .claim(&app, &tenant.id, &mut [("revokedBy", &mut body.revoked_by)])
        .await?;
    let mut errors = Vec::new();
    check_id(&mut errors, "revokedBy", body.revoked_by.as_deref());
    if let Some(reason) = &body.reason {
        check_text(&mut errors, "reason", reason, 1000, false);
    }
    reject(errors)?;

    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    let mut row = store::get_delegation(&mut *tx, &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Delegation"))?;
    match model::delegation_status(row.valid_from, row.valid_to, row.revoked_at, now) {
        DelegationStatus::Revoked => {
            return Err(ApiError::conflict(
                "already_revoked",
                "This delegation is already revoked",
            ));
        }
        DelegationStatus::Expired => {
            return Err(ApiError::conflict(
                "delegation_expired",
                "This delegation has expired; there is nothing left to revoke",
            ));
        }
        DelegationStatus::Scheduled | DelegationStatus::Active => {}
    }
    let revoked = store::revoke_delegation(
        &mut tx,
        &tenant.id,
        &id,
        now,
        body.revoked_by.as_deref(),
        body.reason.as_deref(),
    )
    .await?;
    if !revoked {
        return Err(ApiError::conflict(
            "already_revoked",
            "This delegation is already revoked",
        ));
    }
    if let Some(by) = &body.revoked_by {
        directory::ensure_users(&mut tx, &app.users, &tenant.id, &[by], now).await?;
    }
    row.revoked_at = Some(now);
    row.revoked_by = body.revoked_by.clone();
    row.revoke_reason = body.reason.clone();
    let summary = match &body.reason {
        Some(reason) => format!(
            "Delegation revoked: {} to {} ({reason})",
            row.delegator_id, row.delegatee_id
        ),
        None => format!(
            "Delegation revoked: {} to {}",
            row.delegator_id, row.delegatee_id
        ),
    };
    finish(
        &app,
        tx,
        idem,
        &tenant,
        &row,
        Change {
            event_type: EventType::DelegationRevoked,
            actor: body.revoked_by.as_deref(),
            summary,
        },
        StatusCode::OK,
    )
    .await
}
