//! SQL for delegations and approvals. Every statement is scoped by tenant.

use crate::store::Conn;
use sqlx::{Any, AnyPool, Executor};

use super::model::{ApprovalStatus, Grant, Scope};
use crate::error::StoreError;
use crate::money::Money;
use crate::store::dialect::RowLock;

/// A delegation row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DelegationRow {
    pub id: String,
    pub delegator_id: String,
    pub delegatee_id: String,
    /// JSON array of scope names.
    pub scopes: String,
    pub max_amount: Option<i64>,
    pub max_currency: Option<String>,
    pub valid_from: i64,
    pub valid_to: i64,
    pub reason: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

impl DelegationRow {
    pub fn scope_list(&self) -> Vec<Scope> {
        serde_json::from_str::<Vec<String>>(&self.scopes)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| Scope::parse(s))
            .collect()
    }

    pub fn max_approval_amount(&self) -> Option<Money> {
        Some(Money::from_minor(
            self.max_amount?,
            self.max_currency.clone()?,
        ))
    }

    /// The delegation as the rules see it.
    pub fn grant(&self) -> Grant {
        Grant {
            id: self.id.clone(),
            scopes: self.scope_list(),
            max_amount: self.max_approval_amount(),
            valid_from: self.valid_from,
            valid_to: self.valid_to,
            revoked_at: self.revoked_at,
        }
    }
}

macro_rules! delegation_columns {
    () => {
        "id, delegator_id, delegatee_id, scopes, max_amount, max_currency, valid_from, valid_to, \
         reason, created_at, revoked_at, revoked_by, revoke_reason"
    };
}

pub async fn insert_delegation(
    conn: &mut Conn,
    tenant: &str,
    d: &DelegationRow,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO delegations (tenant_id, ",
        delegation_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, NULL)"
    ))
    .bind(tenant)
    .bind(&d.id)
    .bind(&d.delegator_id)
    .bind(&d.delegatee_id)
    .bind(&d.scopes)
    .bind(d.max_amount)
    .bind(&d.max_currency)
    .bind(d.valid_from)
    .bind(d.valid_to)
    .bind(&d.reason)
    .bind(d.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_delegation<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    tenant: &str,
    id: &str,
) -> Result<Option<DelegationRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        delegation_columns!(),
        " FROM delegations WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(ex)
    .await?)
}

/// Marks the delegation revoked unless it already is; `false` if it was.
pub async fn revoke_delegation(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    at: i64,
    by: Option<&str>,
    reason: Option<&str>,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE delegations SET revoked_at = $3, revoked_by = $4, revoke_reason = $5
         WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
    )
    .bind(tenant)
    .bind(id)
    .bind(at)
    .bind(by)
    .bind(reason)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

const GRANTS_BETWEEN: &str = concat!(
    "SELECT ",
    delegation_columns!(),
    " FROM delegations WHERE tenant_id = $1 AND delegator_id = $2 AND delegatee_id = $3 ORDER BY created_at"
);
/// Every delegation (in any status) from `delegator` to `delegatee`.
pub async fn grants_between(
    conn: &mut Conn,
    tenant: &str,
    delegator: &str,
    delegatee: &str,
) -> Result<Vec<DelegationRow>, StoreError> {
    // On PostgreSQL a decision holds the delegations it relies on until it commits, so a
    // revocation that races it waits and lands after it.
    let sql = format!("{GRANTS_BETWEEN}{}", RowLock::Share.for_conn(conn));
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(delegator)
        .bind(delegatee)
        .fetch_all(conn)
        .await?)
}

/// Every delegation (in any status) held by `delegatee`.
pub async fn grants_held_by(
    conn: &mut Conn,
    tenant: &str,
    delegatee: &str,
) -> Result<Vec<DelegationRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        delegation_columns!(),
        " FROM delegations WHERE tenant_id = $1 AND delegatee_id = $2"
    ))
    .bind(tenant)
    .bind(delegatee)
    .fetch_all(conn)
    .await?)
}

/// Filters of the delegation list; `status` is derived from the clock at `now`.
#[derive(Debug, Default)]
pub struct DelegationFilter<'a> {
    pub delegator_id: Option<&'a str>,
    pub delegatee_id: Option<&'a str>,
    pub status: Option<&'static str>,
    pub scope: Option<&'static str>,
    pub now: i64,
}

macro_rules! delegation_filter {
    () => {
        " WHERE tenant_id = $1 AND ($2 IS NULL OR delegator_id = $2) \
         AND ($3 IS NULL OR delegatee_id = $3) AND ($5 IS NULL OR scopes LIKE $5) \
         AND ($4 IS NULL OR ($4 = 'revoked' AND revoked_at IS NOT NULL) \
              OR (revoked_at IS NULL AND (($4 = 'scheduled' AND valid_from > $6) \
                  OR ($4 = 'active' AND valid_from <= $6 AND valid_to >= $6) \
                  OR ($4 = 'expired' AND valid_to < $6))))"
    };
}

pub async fn list_delegations(
    pool: &AnyPool,
    tenant: &str,
    f: &DelegationFilter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DelegationRow>, i64), StoreError> {
    let scope = f.scope.map(|s| format!("%\"{s}\"%"));
    let total: i64 = sqlx::query_scalar(concat!(
        "SELECT COUNT(*) FROM delegations",
        delegation_filter!()
    ))
    .bind(tenant)
    .bind(f.delegator_id)
    .bind(f.delegatee_id)
    .bind(f.status)
    .bind(&scope)
    .bind(f.now)
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query_as(concat!(
        "SELECT ",
        delegation_columns!(),
        " FROM delegations",
        delegation_filter!(),
        " ORDER BY created_at DESC, id DESC LIMIT $7 OFFSET $8"
    ))
    .bind(tenant)
    .bind(f.delegator_id)
    .bind(f.delegatee_id)
    .bind(f.status)
    .bind(&scope)
    .bind(f.now)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((rows, total))
}

/// An approval request row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApprovalRow {
    pub id: String,
    pub entity_type: String,
    pub entity_id: String,
    pub approval_type: String,
    pub requested_by: String,
    /// `user`, `customer` or `system` (`RequesterType`).
    pub requested_by_type: String,
    /// Set while the request has no approver: the role its step asks for, which nobody held
    /// when it opened.
    pub awaiting_role: Option<String>,
    pub approval_data: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub expires_at: Option<i64>,
    pub status: String,
    pub journey_id: Option<String>,
    pub step_id: Option<String>,
    pub step_index: Option<i64>,
    pub row_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub decided_at: Option<i64>,
}

impl ApprovalRow {
    pub fn stored_status(&self) -> ApprovalStatus {
        ApprovalStatus::parse(&self.status).unwrap_or(ApprovalStatus::Requested)
    }

    /// The amount under approval.
    pub fn money(&self) -> Option<Money> {
        Some(Money::from_minor(self.amount?, self.currency.clone()?))
    }
}

/// An approver's place on a request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApproverRow {
    pub approval_id: String,
    pub position: i64,
    pub user_id: String,
    pub role: Option<String>,
    /// 1 or 0.
    pub required: i64,
}

/// A recorded decision.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecisionRow {
    pub approval_id: String,
    /// The approver whose slot the decision fills.
    pub slot_user_id: String,
    pub decided_by: String,
    pub on_behalf_of: Option<String>,
    pub delegation_id: Option<String>,
    pub decision: String,
    pub comment: Option<String>,
    pub decided_at: i64,
    /// The proof of the person who decided, when an actor token proved them
    /// (`actor::ProvenActor::proof`).
    pub actor_proof: Option<String>,
}

macro_rules! approval_columns {
    () => {
        "id, entity_type, entity_id, approval_type, requested_by, approval_data, amount, currency, \
         expires_at, status, journey_id, step_id, step_index, row_version, created_at, updated_at, \
         decided_at, requested_by_type, awaiting_role"
    };
}

pub async fn insert_approval(
    conn: &mut Conn,
    tenant: &str,
    a: &ApprovalRow,
    approvers: &[ApproverRow],
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO approvals (tenant_id, ",
        approval_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20)"
    ))
    .bind(tenant)
    .bind(&a.id)
    .bind(&a.entity_type)
    .bind(&a.entity_id)
    .bind(&a.approval_type)
    .bind(&a.requested_by)
    .bind(&a.approval_data)
    .bind(a.amount)
    .bind(&a.currency)
    .bind(a.expires_at)
    .bind(&a.status)
    .bind(&a.journey_id)
    .bind(&a.step_id)
    .bind(a.step_index)
    .bind(a.row_version)
    .bind(a.created_at)
    .bind(a.updated_at)
    .bind(a.decided_at)
    .bind(&a.requested_by_type)
    .bind(&a.awaiting_role)
    .execute(&mut *conn)
    .await?;
    for r in approvers {
        sqlx::query(
            "INSERT INTO approval_approvers (tenant_id, approval_id, position, user_id, role, required)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant)
        .bind(&a.id)
        .bind(r.position)
        .bind(&r.user_id)
        .bind(&r.role)
        .bind(r.required)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn get_approval<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    tenant: &str,
    id: &str,
) -> Result<Option<ApprovalRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        approval_columns!(),
        " FROM approvals WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(ex)
    .await?)
}

/// Reads the request for a change, holding it until the transaction ends: concurrent
/// deciders on one request take turns (a row lock on PostgreSQL; SQLite has one writer).
pub async fn lock_approval(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
) -> Result<Option<ApprovalRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "UPDATE approvals SET row_version = row_version + 1 WHERE tenant_id = $1 AND id = $2 RETURNING ",
        approval_columns!()
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn approvers<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    approval_id: &str,
) -> Result<Vec<ApproverRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT approval_id, position, user_id, role, required FROM approval_approvers
         WHERE approval_id = $1 ORDER BY position",
    )
    .bind(approval_id)
    .fetch_all(ex)
    .await?)
}

pub async fn decisions<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    approval_id: &str,
) -> Result<Vec<DecisionRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT approval_id, slot_user_id, decided_by, on_behalf_of, delegation_id, decision, comment,
             decided_at, actor_proof
         FROM approval_decisions WHERE approval_id = $1 ORDER BY decided_at, slot_user_id",
    )
    .bind(approval_id)
    .fetch_all(ex)
    .await?)
}

pub async fn insert_decision(conn: &mut Conn, d: &DecisionRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO approval_decisions (approval_id, slot_user_id, decided_by, on_behalf_of,
             delegation_id, decision, comment, decided_at, actor_proof)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&d.approval_id)
    .bind(&d.slot_user_id)
    .bind(&d.decided_by)
    .bind(&d.on_behalf_of)
    .bind(&d.delegation_id)
    .bind(&d.decision)
    .bind(&d.comment)
    .bind(d.decided_at)
    .bind(&d.actor_proof)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the request changed at `at` (a decision that did not close it).
/// Open requests of the tenant that wait for a holder of `role`, as of `now`.
pub async fn awaiting_role(
    conn: &mut Conn,
    tenant: &str,
    role: &str,
    now: i64,
) -> Result<Vec<ApprovalRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        approval_columns!(),
        " FROM approvals WHERE tenant_id = $1 AND awaiting_role = $2 AND status = 'requested'
           AND (expires_at IS NULL OR expires_at > $3)"
    ))
    .bind(tenant)
    .bind(role)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// Gives a request that waits for a role its first approver, `user`; `false` if another
/// holder of the role came first (or it no longer waits).
pub async fn assign_awaiting(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    role: &str,
    user: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let claimed = sqlx::query(
        "UPDATE approvals SET awaiting_role = NULL, updated_at = $4
         WHERE tenant_id = $1 AND id = $2 AND awaiting_role = $3",
    )
    .bind(tenant)
    .bind(id)
    .bind(role)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if claimed != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO approval_approvers (tenant_id, approval_id, position, user_id, role, required)
         VALUES ($1, $2, 0, $3, $4, 0)",
    )
    .bind(tenant)
    .bind(id)
    .bind(user)
    .bind(role)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

pub async fn touch_approval(conn: &mut Conn, id: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE approvals SET updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a final status on a request still stored as `requested`; `false` if it was not.
pub async fn close_approval(
    conn: &mut Conn,
    id: &str,
    status: ApprovalStatus,
    at: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE approvals SET status = $2, decided_at = $3, updated_at = $3
         WHERE id = $1 AND status = 'requested'",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Requests stored as `requested` whose expiry has passed, across tenants: `(tenant, id)`.
pub async fn expired_but_open(
    pool: &AnyPool,
    now: i64,
    limit: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id FROM approvals
         WHERE status = 'requested' AND expires_at IS NOT NULL AND expires_at <= $1
         ORDER BY expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Filters of the approval list; `status` is derived from the clock at `now`.
#[derive(Debug, Default)]
pub struct ApprovalFilter<'a> {
    pub status: Option<&'static str>,
    pub approver_id: Option<&'a str>,
    pub requester_id: Option<&'a str>,
    pub entity_type: Option<&'a str>,
    /// Requests this user can decide now: open, not theirs, with an undecided slot that is
    /// theirs or that of someone who delegated approvals to them, active at `now`. A deputy's
    /// limit is checked when they decide, not here.
    pub decidable_by: Option<&'a str>,
    pub now: i64,
}

macro_rules! approval_filter {
    () => {
        " WHERE a.tenant_id = $1 \
         AND ($2 IS NULL \
              OR ($2 = 'requested' AND a.status = 'requested' AND (a.expires_at IS NULL OR a.expires_at > $6)) \
              OR ($2 = 'expired' AND (a.status = 'expired' OR (a.status = 'requested' AND a.expires_at <= $6))) \
              OR ($2 IN ('approved', 'rejected') AND a.status = $2)) \
         AND ($3 IS NULL OR EXISTS (SELECT 1 FROM approval_approvers p \
              WHERE p.approval_id = a.id AND p.user_id = $3)) \
         AND ($4 IS NULL OR a.requested_by = $4) AND ($5 IS NULL OR a.entity_type = $5) \
         AND ($7 IS NULL OR (a.status = 'requested' AND (a.expires_at IS NULL OR a.expires_at > $6) \
              AND a.requested_by <> $7 \
              AND a.id IN (SELECT p.approval_id FROM approval_approvers p \
                   JOIN approvals r ON r.id = p.approval_id \
                   WHERE p.tenant_id = $1 AND p.user_id <> r.requested_by \
                   AND p.user_id IN (SELECT $7 UNION ALL SELECT g.delegator_id FROM delegations g \
                        WHERE g.tenant_id = $1 AND g.delegatee_id = $7 AND g.revoked_at IS NULL \
                        AND g.valid_from <= $6 AND g.valid_to >= $6 \
                        AND (g.scopes LIKE '%\"approvals\"%' OR g.scopes LIKE '%\"all\"%')) \
                   AND NOT EXISTS (SELECT 1 FROM approval_decisions d \
                        WHERE d.approval_id = p.approval_id AND d.slot_user_id = p.user_id))))"
    };
}
macro_rules! approval_page {
    () => {
        concat!(
            "SELECT a.id FROM approvals a",
            approval_filter!(),
            " ORDER BY a.created_at DESC, a.id DESC LIMIT $8 OFFSET $9"
        )
    };
}

/// A page of requests, newest first, with their approvers and decisions, and the total.
pub async fn list_approvals(
    pool: &AnyPool,
    tenant: &str,
    f: &ApprovalFilter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ApprovalRow>, Vec<ApproverRow>, Vec<DecisionRow>, i64), StoreError> {
    macro_rules! bind_filter {
        ($q:expr) => {
            $q.bind(tenant)
                .bind(f.status)
                .bind(f.approver_id)
                .bind(f.requester_id)
                .bind(f.entity_type)
                .bind(f.now)
                .bind(f.decidable_by)
        };
    }
    let total: i64 = bind_filter!(sqlx::query_scalar(concat!(
        "SELECT COUNT(*) FROM approvals a",
        approval_filter!()
    )))
    .fetch_one(pool)
    .await?;
    let rows = bind_filter!(sqlx::query_as(concat!(
        "SELECT ",
        approval_columns!(),
        " FROM approvals WHERE id IN (",
        approval_page!(),
        ") ORDER BY created_at DESC, id DESC"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let approvers = bind_filter!(sqlx::query_as(concat!(
        "SELECT approval_id, position, user_id, role, required FROM approval_approvers \
         WHERE approval_id IN (",
        approval_page!(),
        ") ORDER BY approval_id, position"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let decisions = bind_filter!(sqlx::query_as(concat!(
        "SELECT approval_id, slot_user_id, decided_by, on_behalf_of, delegation_id, decision, \
         comment, decided_at, actor_proof FROM approval_decisions WHERE approval_id IN (",
        approval_page!(),
        ") ORDER BY approval_id, decided_at, slot_user_id"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((rows, approvers, decisions, total))
}

/// Open requests whose reminder time (their expiry less the tenant's `approvalReminderHours`,
/// else `default_hours`) has come by `now`, not reminded yet and not expired, and whose
/// reminder falls after their creation. Earliest expiry first.
pub async fn reminders_due(
    pool: &AnyPool,
    now: i64,
    default_hours: i64,
    limit: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT a.tenant_id, a.id FROM approvals a
         LEFT JOIN sla_policies p ON p.tenant_id = a.tenant_id
         WHERE a.status = 'requested' AND a.reminded_at IS NULL
           AND a.expires_at > $1 AND a.expires_at <= $4
           AND COALESCE(p.approval_reminder_hours, $2) > 0
           AND a.expires_at - COALESCE(p.approval_reminder_hours, $2) * 3600000 <= $1
           AND a.expires_at - COALESCE(p.approval_reminder_hours, $2) * 3600000 > a.created_at
         ORDER BY a.expires_at LIMIT $3",
    )
    .bind(now)
    .bind(default_hours)
    .bind(limit)
    // The longest reminder there can be (720 hours) ahead: the index's range.
    .bind(now.saturating_add(720 * 3_600_000))
    .fetch_all(pool)
    .await?)
}

/// Records the request's reminder; `false` if it was already recorded (by another node).
pub async fn mark_reminded(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE approvals SET reminded_at = $3
         WHERE tenant_id = $1 AND id = $2 AND reminded_at IS NULL AND status = 'requested'",
    )
    .bind(tenant)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}
