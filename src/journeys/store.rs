//! SQL for templates and journeys. Every statement is scoped by tenant.

use crate::store::Conn;
use crate::store::dialect::RowLock;
use sqlx::{Any, AnyPool, Executor};

use super::model::StepDef;
use crate::error::StoreError;

/// A template row (its current version).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: String,
    pub version: i64,
    pub name: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub status: String,
    pub steps: String,
    pub estimated_duration_days: Option<i64>,
    pub sla_hours: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TemplateRow {
    pub fn step_defs(&self) -> Result<Vec<StepDef>, StoreError> {
        Ok(serde_json::from_str(&self.steps)?)
    }
}

macro_rules! template_columns {
    () => {
        "id, version, name, description, category, status, steps, estimated_duration_days, \
         sla_hours, created_at, updated_at"
    };
}

// `$n IS NULL OR col = $n` keeps one statement for every combination of filters.
macro_rules! template_filter {
    () => {
        " WHERE tenant_id = $1 AND ($2 IS NULL OR category = $2) AND ($3 IS NULL OR status = $3)"
    };
}

pub async fn insert_template(
    conn: &mut Conn,
    tenant: &str,
    t: &TemplateRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO journey_templates (tenant_id, id, version, name, description, category, status,
             steps, estimated_duration_days, sla_hours, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(tenant)
    .bind(&t.id)
    .bind(t.version)
    .bind(&t.name)
    .bind(&t.description)
    .bind(&t.category)
    .bind(&t.status)
    .bind(&t.steps)
    .bind(t.estimated_duration_days)
    .bind(t.sla_hours)
    .bind(t.created_at)
    .bind(t.updated_at)
    .execute(&mut *conn)
    .await?;
    insert_template_version(conn, tenant, t).await
}

/// Records `t`'s steps as version `t.version`.
pub async fn insert_template_version(
    conn: &mut Conn,
    tenant: &str,
    t: &TemplateRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO journey_template_versions (tenant_id, template_id, version, name, steps,
             created_at, sla_hours)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant)
    .bind(&t.id)
    .bind(t.version)
    .bind(&t.name)
    .bind(&t.steps)
    .bind(t.updated_at)
    .bind(t.sla_hours)
    .execute(conn)
    .await?;
    Ok(())
}

/// Overwrites the template if it is still at `expected_version`; `false` if it moved on.
pub async fn update_template(
    conn: &mut Conn,
    tenant: &str,
    t: &TemplateRow,
    expected_version: i64,
    expected_updated_at: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE journey_templates SET version = $3, name = $4, description = $5, category = $6,
             status = $7, steps = $8, estimated_duration_days = $9, sla_hours = $10, updated_at = $11
         WHERE tenant_id = $1 AND id = $2 AND version = $12 AND updated_at = $13",
    )
    .bind(tenant)
    .bind(&t.id)
    .bind(t.version)
    .bind(&t.name)
    .bind(&t.description)
    .bind(&t.category)
    .bind(&t.status)
    .bind(&t.steps)
    .bind(t.estimated_duration_days)
    .bind(t.sla_hours)
    .bind(t.updated_at)
    .bind(expected_version)
    .bind(expected_updated_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn get_template<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    tenant: &str,
    id: &str,
) -> Result<Option<TemplateRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        template_columns!(),
        " FROM journey_templates WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(ex)
    .await?)
}

/// One version of a template: what a journey started on it runs. Never changes once written.
#[derive(Debug, Clone)]
pub struct TemplateVersion {
    pub name: String,
    /// In run order.
    pub steps: Vec<StepDef>,
    /// The SLA of journeys started on this version.
    pub sla_hours: Option<i64>,
}

pub async fn template_version<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    tenant: &str,
    id: &str,
    version: i64,
) -> Result<Option<TemplateVersion>, StoreError> {
    let row: Option<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT name, steps, sla_hours FROM journey_template_versions
         WHERE tenant_id = $1 AND template_id = $2 AND version = $3",
    )
    .bind(tenant)
    .bind(id)
    .bind(version)
    .fetch_optional(ex)
    .await?;
    row.map(|(name, steps, sla_hours)| {
        Ok(TemplateVersion {
            name,
            steps: serde_json::from_str(&steps)?,
            sla_hours,
        })
    })
    .transpose()
}

/// Filters of the template list.
#[derive(Debug, Default)]
pub struct TemplateFilter {
    pub category: Option<String>,
    pub status: Option<&'static str>,
}

pub async fn list_templates(
    pool: &AnyPool,
    tenant: &str,
    f: &TemplateFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TemplateRow>, i64), StoreError> {
    let total: i64 = sqlx::query_scalar(concat!(
        "SELECT COUNT(*) FROM journey_templates",
        template_filter!()
    ))
    .bind(tenant)
    .bind(&f.category)
    .bind(f.status)
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query_as(concat!(
        "SELECT ",
        template_columns!(),
        " FROM journey_templates",
        template_filter!(),
        " ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
    ))
    .bind(tenant)
    .bind(&f.category)
    .bind(f.status)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((rows, total))
}

/// A journey row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JourneyRow {
    pub id: String,
    pub template_id: String,
    pub template_version: i64,
    pub customer_id: String,
    pub channel: String,
    pub status: String,
    pub current_step_index: i64,
    pub current_step_status: String,
    pub assignee_id: Option<String>,
    pub assignee_type: Option<String>,
    pub priority: String,
    pub due_at: Option<i64>,
    pub context: String,
    pub outcome: Option<String>,
    pub notes: Option<String>,
    /// The approval request the current (approval) step waits on or last waited on.
    pub approval_id: Option<String>,
    pub row_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The journey's deadlines, as `sla::model` computes them (migration 0018 describes each).
    #[sqlx(flatten)]
    pub deadlines: Deadlines,
}

/// A journey's deadlines and, per kind, the deadline whose event was recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Deadlines {
    /// When the current step became current; `None` only on rows older than migration 0018
    /// that it could not date.
    pub step_started_at: Option<i64>,
    pub sla_due_at: Option<i64>,
    pub sla_at_risk_at: Option<i64>,
    pub step_due_at: Option<i64>,
    pub at_risk_fired: Option<i64>,
    pub breach_fired: Option<i64>,
    pub step_overdue_fired: Option<i64>,
    /// The earliest deadline not yet announced; `None` when none is pending.
    pub next_deadline_at: Option<i64>,
}

macro_rules! journey_columns {
    () => {
        "id, template_id, template_version, customer_id, channel, status, current_step_index, \
         current_step_status, assignee_id, assignee_type, priority, due_at, context, outcome, notes, \
         approval_id, row_version, created_at, updated_at, step_started_at, sla_due_at, \
         sla_at_risk_at, step_due_at, at_risk_fired, breach_fired, step_overdue_fired, \
         next_deadline_at"
    };
}

/// Inserts `j` on the current version of its template if that template is `active` (and, when
/// `expected` is given, at that version), in one statement, so the check and the insert cannot
/// be separated by a concurrent change. Returns the version the journey starts on, or `None` if
/// the template is missing, not active, or not at `expected` (`j.template_version` is ignored).
pub async fn insert_journey_on_active_template(
    conn: &mut Conn,
    tenant: &str,
    j: &JourneyRow,
    expected: Option<i64>,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(concat!(
        "INSERT INTO journeys (tenant_id, ",
        journey_columns!(),
        ") SELECT $1, $2, t.id, t.version, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
         $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27 FROM journey_templates t WHERE t.tenant_id = $1 AND t.id = $3 AND t.status = 'active' \
         AND ($28 IS NULL OR t.version = $28) RETURNING template_version"
    ))
    .bind(tenant)
    .bind(&j.id)
    .bind(&j.template_id)
    .bind(&j.customer_id)
    .bind(&j.channel)
    .bind(&j.status)
    .bind(j.current_step_index)
    .bind(&j.current_step_status)
    .bind(&j.assignee_id)
    .bind(&j.assignee_type)
    .bind(&j.priority)
    .bind(j.due_at)
    .bind(&j.context)
    .bind(&j.outcome)
    .bind(&j.notes)
    .bind(&j.approval_id)
    .bind(j.row_version)
    .bind(j.created_at)
    .bind(j.updated_at)
    .bind(j.deadlines.step_started_at)
    .bind(j.deadlines.sla_due_at)
    .bind(j.deadlines.sla_at_risk_at)
    .bind(j.deadlines.step_due_at)
    .bind(j.deadlines.at_risk_fired)
    .bind(j.deadlines.breach_fired)
    .bind(j.deadlines.step_overdue_fired)
    .bind(j.deadlines.next_deadline_at)
    .bind(expected)
    .fetch_optional(conn)
    .await?)
}

pub async fn get_journey<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    tenant: &str,
    id: &str,
) -> Result<Option<JourneyRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        journey_columns!(),
        " FROM journeys WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(ex)
    .await?)
}

/// Writes the journey's changed state if nobody changed it since it was read at
/// `j.row_version - 1`; `false` means a concurrent change won.
///
/// Which deadlines were announced is not written here: the deadline worker marks them without
/// changing `row_version` ([`set_deadline_marks`]), and a change that read the journey before
/// would otherwise put back marks it read unset, and have a deadline announced twice. The
/// `next_deadline_at` it writes, computed from marks it may have read unset, can only be
/// earlier than the true one: the worker then finds nothing due, and sets it right.
pub async fn update_journey(
    conn: &mut Conn,
    tenant: &str,
    j: &JourneyRow,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE journeys SET status = $3, current_step_index = $4, current_step_status = $5,
             assignee_id = $6, assignee_type = $7, outcome = $8, notes = $9, row_version = $10,
             updated_at = $11, approval_id = $13, priority = $14, due_at = $15,
             step_started_at = $16, sla_due_at = $17, sla_at_risk_at = $18, step_due_at = $19,
             next_deadline_at = $20
         WHERE tenant_id = $1 AND id = $2 AND row_version = $12",
    )
    .bind(tenant)
    .bind(&j.id)
    .bind(&j.status)
    .bind(j.current_step_index)
    .bind(&j.current_step_status)
    .bind(&j.assignee_id)
    .bind(&j.assignee_type)
    .bind(&j.outcome)
    .bind(&j.notes)
    .bind(j.row_version)
    .bind(j.updated_at)
    .bind(j.row_version - 1)
    .bind(&j.approval_id)
    .bind(&j.priority)
    .bind(j.due_at)
    .bind(j.deadlines.step_started_at)
    .bind(j.deadlines.sla_due_at)
    .bind(j.deadlines.sla_at_risk_at)
    .bind(j.deadlines.step_due_at)
    .bind(j.deadlines.next_deadline_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Filters of the journey list.
/// What `GET /journeys` narrows the list by; every part is optional and they all hold.
#[derive(Debug, Default)]
pub struct JourneyFilter {
    /// Any of these statuses.
    pub statuses: Vec<&'static str>,
    pub template_id: Option<String>,
    pub customer_id: Option<String>,
    /// Assigned to any of these users or teams.
    pub assignee_ids: Vec<String>,
    /// Assigned to this user or to a team the user is a member of.
    pub assigned_to: Option<String>,
    /// `Some(true)`: due (its SLA's due time) before `now`; `Some(false)`: not due yet or
    /// undated.
    pub overdue: Option<bool>,
    pub now: i64,
    pub order: JourneyOrder,
}

/// The order of a journey list.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum JourneyOrder {
    /// Newest first.
    #[default]
    Newest,
    /// Earliest due time (`sla.dueAt`) first (so overdue first), undated last, then oldest
    /// first.
    DueAt,
}

/// The `WHERE` clause of a journey list and its arguments, in placeholder order: the filter has
/// lists of any length, so its placeholders are numbered as they are written. Only
/// placeholders and fixed text are formatted into the statement; every value is bound.
struct Where {
    sql: String,
    args: Vec<Arg>,
}

enum Arg {
    Text(String),
    Int(i64),
}

impl Where {
    fn new(tenant: &str) -> Self {
        Self {
            sql: " WHERE tenant_id = $1".into(),
            args: vec![Arg::Text(tenant.into())],
        }
    }

    /// The next placeholder, bound to `arg`.
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    fn any_of(&mut self, column: &str, values: &[String]) {
        if values.is_empty() {
            return;
        }
        let marks: Vec<String> = values
            .iter()
            .map(|v| self.arg(Arg::Text(v.clone())))
            .collect();
        self.sql += &format!(" AND {column} IN ({})", marks.join(", "));
    }

    fn of(f: &JourneyFilter, tenant: &str) -> Self {
        let mut w = Self::new(tenant);
        let statuses: Vec<String> = f.statuses.iter().map(|s| (*s).to_owned()).collect();
        w.any_of("status", &statuses);
        if let Some(t) = &f.template_id {
            w.any_of("template_id", std::slice::from_ref(t));
        }
        if let Some(c) = &f.customer_id {
            w.any_of("customer_id", std::slice::from_ref(c));
        }
        w.any_of("assignee_id", &f.assignee_ids);
        if let Some(user) = &f.assigned_to {
            let u = w.arg(Arg::Text(user.clone()));
            w.sql += &format!(
                " AND ((assignee_type = 'user' AND assignee_id = {u}) OR (assignee_type = 'team' \
                 AND assignee_id IN (SELECT m.team_id FROM team_members m WHERE m.tenant_id = $1 \
                 AND m.user_id = {u})))"
            );
        }
        if let Some(overdue) = f.overdue {
            let now = w.arg(Arg::Int(f.now));
            w.sql += &if overdue {
                format!(" AND sla_due_at < {now}")
            } else {
                format!(" AND (sla_due_at IS NULL OR sla_due_at >= {now})")
            };
        }
        w
    }

    fn bind<'q, O>(
        &'q self,
        mut q: sqlx::query::QueryAs<'q, Any, O, sqlx::any::AnyArguments>,
    ) -> sqlx::query::QueryAs<'q, Any, O, sqlx::any::AnyArguments> {
        for a in &self.args {
            q = match a {
                Arg::Text(t) => q.bind(t.as_str()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

pub async fn list_journeys(
    pool: &AnyPool,
    tenant: &str,
    f: &JourneyFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<JourneyRow>, i64), StoreError> {
    let mut w = Where::of(f, tenant);
    let count = format!("SELECT COUNT(*) FROM journeys{}", w.sql);
    let (total,): (i64,) = w
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(count)))
        .fetch_one(pool)
        .await?;
    let order = match f.order {
        JourneyOrder::Newest => "created_at DESC, id DESC",
        JourneyOrder::DueAt => "(sla_due_at IS NULL), sla_due_at, created_at, id",
    };
    let limit = w.arg(Arg::Int(limit));
    let offset = w.arg(Arg::Int(offset));
    let select = format!(
        "SELECT {} FROM journeys{} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
        journey_columns!(),
        w.sql
    );
    let rows = w
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(select)))
        .fetch_all(pool)
        .await?;
    Ok((rows, total))
}

/// One recorded attempt at a step.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    /// The journey's `row_version` after this attempt: orders attempts exactly.
    pub seq: i64,
    pub step_id: String,
    pub step_index: i64,
    pub outcome: String,
    pub data: String,
    pub actor_id: Option<String>,
    pub occurred_at: i64,
}

pub async fn insert_history(
    conn: &mut Conn,
    journey_id: &str,
    h: &HistoryRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO journey_step_history (journey_id, seq, step_id, step_index, outcome, data, actor_id, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(journey_id)
    .bind(h.seq)
    .bind(&h.step_id)
    .bind(h.step_index)
    .bind(&h.outcome)
    .bind(&h.data)
    .bind(&h.actor_id)
    .bind(h.occurred_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A journey's step history, oldest first.
pub async fn history(conn: &mut Conn, journey_id: &str) -> Result<Vec<HistoryRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT seq, step_id, step_index, outcome, data, actor_id, occurred_at FROM journey_step_history
         WHERE journey_id = $1 ORDER BY seq",
    )
    .bind(journey_id)
    .fetch_all(conn)
    .await?)
}

/// Open journeys with a deadline passed by `now` and not yet announced, earliest first.
pub async fn deadlines_due(
    pool: &AnyPool,
    now: i64,
    limit: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id FROM journeys WHERE next_deadline_at <= $1
         ORDER BY next_deadline_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Locks the journey for the rest of the transaction and reads it as it now stands (a
/// concurrent change's result, once that commits), without changing it: `FOR UPDATE` on
/// PostgreSQL; SQLite's write transaction already holds the only writer.
pub async fn lock_journey(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
) -> Result<Option<JourneyRow>, StoreError> {
    let sql = format!(
        "SELECT {} FROM journeys WHERE tenant_id = $1 AND id = $2{}",
        journey_columns!(),
        RowLock::Update.for_conn(conn)
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Stores which deadlines were announced, and the next one pending.
pub async fn set_deadline_marks(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    d: &Deadlines,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE journeys SET at_risk_fired = $3, breach_fired = $4, step_overdue_fired = $5,
             next_deadline_at = $6
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .bind(d.at_risk_fired)
    .bind(d.breach_fired)
    .bind(d.step_overdue_fired)
    .bind(d.next_deadline_at)
    .execute(conn)
    .await?;
    Ok(())
}
