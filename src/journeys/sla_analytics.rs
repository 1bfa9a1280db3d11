//! SLA analytics (`GET /analytics/sla`): journeys started, completed, met, breached and
//! cancelled per template, team and period, their median and 90th-percentile time to complete,
//! and the journeys at risk and breached now.
//!
//! The figures per period come from tables the fold worker ([`fold`]) keeps per day, per week
//! and per month, with totals over templates and over teams, never from a scan of journeys: a
//! report reads one row per period and group (and one per duration bucket), however many
//! journeys it covers, and the write path pays nothing for them. Each journey is folded in twice, claimed by a row lock (`SKIP
//! LOCKED` on PostgreSQL, so nodes share the work and none folds a journey twice): its start
//! once it exists, and its end once it is completed or cancelled. Figures therefore trail the
//! journeys by one pass of the worker (a second by default). Times to complete are kept in
//! buckets 10% wide, so the median and the 90th percentile are exact to within 5%. The counts
//! of journeys at risk and breached now are read from the open journeys themselves, at the
//! moment of the request.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::analytics::{DAY_MS, Window, WindowQuery, day_of};
use crate::api::{ApiQuery, Data, data};
use crate::auth::Tenant;
use crate::directory;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc, StoreError};
use crate::store::Conn;
use crate::store::dialect::RowLock;

/// Journeys with a start or an end not yet folded (the predicate of the index
/// `journeys_unfolded`, which this must match word for word).
macro_rules! unfolded {
    () => {
        "(sla_folded = 0 OR (sla_folded = 1 AND status IN ('completed', 'cancelled')))"
    };
}

/// Journeys one pass of the fold worker takes at most.
pub const FOLD_BATCH: usize = 500;

/// The ratio of one duration bucket's bounds.
const BUCKET_RATIO: f64 = 1.1;

/// The bucket of a time to complete.
fn bucket(duration_ms: i64) -> i64 {
    let secs = (duration_ms as f64 / 1000.0).max(1.0);
    (secs.ln() / BUCKET_RATIO.ln()).floor() as i64
}

/// The duration a bucket stands for, in hours: the geometric middle of its bounds.
fn bucket_hours(b: i64) -> f64 {
    BUCKET_RATIO.powf(b as f64 + 0.5) / 3600.0
}

/// The `p` quantile (nearest rank) of a histogram of buckets, in hours; `None` when empty.
fn quantile(histogram: &BTreeMap<i64, i64>, p: f64) -> Option<f64> {
    let total: i64 = histogram.values().sum();
    if total == 0 {
        return None;
    }
    let rank = ((p * total as f64).ceil() as i64).max(1);
    let mut seen = 0;
    for (b, n) in histogram {
        seen += n;
        if seen >= rank {
            return Some((bucket_hours(*b) * 100.0).round() / 100.0);
        }
    }
    None
}

/// A journey to fold.
#[derive(Debug, sqlx::FromRow)]
struct Unfolded {
    tenant_id: String,
    id: String,
    template_id: String,
    status: String,
    assignee_type: Option<String>,
    assignee_id: Option<String>,
    created_at: i64,
    updated_at: i64,
    sla_due_at: Option<i64>,
    sla_folded: i64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    started: i64,
    completed: i64,
    met: i64,
    breached: i64,
    cancelled: i64,
}

/// (tenant, period, period start, template or `*`, team or `*` or `''`).
type Group = (String, &'static str, i64, String, String);

/// The rows an event of `tenant`'s journey of `template`, with `teams`, on `day` adds to.
fn groups_of(tenant: &str, day: i64, template: &str, teams: &[String]) -> Vec<Group> {
    let mut out = Vec::new();
    for period in Period::ALL {
        let start = period_start(*period, day);
        for t in [template, "*"] {
            for team in std::iter::once("*").chain(teams.iter().map(String::as_str)) {
                out.push((
                    tenant.to_owned(),
                    period.as_str(),
                    start,
                    t.to_owned(),
                    team.to_owned(),
                ));
            }
        }
    }
    out
}

/// One pass of the fold worker: folds the starts and ends not yet in the per-day tables, for
/// at most [`FOLD_BATCH`] journeys, in one transaction. Returns how many it folded.
pub async fn fold(app: &AppState) -> ApiResult<usize> {
    // An idle pass only reads: a write transaction begins when there is something to fold.
    let pending: Option<i64> = sqlx::query_scalar(concat!(
        "SELECT 1 FROM journeys WHERE ",
        unfolded!(),
        " LIMIT 1"
    ))
    .fetch_optional(app.db.reader())
    .await
    .map_err(StoreError::from)?;
    if pending.is_none() {
        return Ok(0);
    }
    let mut tx = app.db.begin().await?;
    let sql = format!(
        "SELECT tenant_id, id, template_id, status, assignee_type, assignee_id, created_at, \
         updated_at, sla_due_at, sla_folded FROM journeys \
         WHERE {} ORDER BY updated_at LIMIT {FOLD_BATCH}{}",
        unfolded!(),
        RowLock::UpdateSkipLocked.for_conn(&tx)
    );
    let rows: Vec<Unfolded> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let teams = teams_of_users(&mut tx, &rows).await?;
    let mut counts: HashMap<Group, Counts> = HashMap::new();
    let mut durations: HashMap<(Group, i64), i64> = HashMap::new();
    let (mut started_only, mut ended) = (Vec::new(), Vec::new());
    for j in &rows {
        let teams: Vec<String> = match (j.assignee_type.as_deref(), j.assignee_id.as_deref()) {
            (Some("team"), Some(team)) => vec![team.to_owned()],
            (_, Some(user)) => teams
                .get(&(j.tenant_id.clone(), user.to_owned()))
                .cloned()
                .unwrap_or_else(|| vec![String::new()]),
            _ => vec![String::new()],
        };
        let is_final = matches!(j.status.as_str(), "completed" | "cancelled");
        if j.sla_folded == 0 {
            for g in groups_of(&j.tenant_id, day_of(j.created_at), &j.template_id, &teams) {
                counts.entry(g).or_default().started += 1;
            }
        }
        if is_final {
            let late = j.sla_due_at.is_some_and(|due| j.updated_at > due);
            let took = bucket(j.updated_at - j.created_at);
            for g in groups_of(&j.tenant_id, day_of(j.updated_at), &j.template_id, &teams) {
                let c = counts.entry(g.clone()).or_default();
                if j.status == "completed" {
                    c.completed += 1;
                    if j.sla_due_at.is_some() && !late {
                        c.met += 1;
                    }
                    *durations.entry((g, took)).or_default() += 1;
                } else {
                    c.cancelled += 1;
                }
                if late {
                    c.breached += 1;
                }
            }
            ended.push(j.id.as_str());
        } else {
            started_only.push(j.id.as_str());
        }
    }
    add_counts(&mut tx, &counts).await?;
    add_durations(&mut tx, &durations).await?;
    mark_folded(&mut tx, &started_only, 1).await?;
    mark_folded(&mut tx, &ended, 2).await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// The teams of the users the journeys are assigned to, by (tenant, user).
async fn teams_of_users(
    conn: &mut Conn,
    rows: &[Unfolded],
) -> Result<HashMap<(String, String), Vec<String>>, StoreError> {
    let mut by_tenant: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for j in rows {
        if j.assignee_type.as_deref() != Some("team")
            && let Some(user) = j.assignee_id.as_deref()
        {
            by_tenant.entry(&j.tenant_id).or_default().push(user);
        }
    }
    let mut out = HashMap::new();
    for (tenant, users) in by_tenant {
        for (user, teams) in directory::store::teams_of(conn, tenant, &users).await? {
            out.insert((tenant.to_owned(), user), teams);
        }
    }
    Ok(out)
}

/// `($a+1, ..., $a+n)`.
fn marks(after: usize, n: usize) -> String {
    let m: Vec<String> = (after + 1..=after + n).map(|i| format!("${i}")).collect();
    format!("({})", m.join(", "))
}

async fn add_counts(conn: &mut Conn, counts: &HashMap<Group, Counts>) -> Result<(), StoreError> {
    let rows: Vec<(&Group, &Counts)> = counts.iter().collect();
    for chunk in rows.chunks(200) {
        let values: Vec<String> = (0..chunk.len()).map(|i| marks(i * 10, 10)).collect();
        let sql = format!(
            "INSERT INTO sla_figures (tenant_id, period, period_start, template_id, team_id, \
             started, completed, met, breached, cancelled) VALUES {} \
             ON CONFLICT (tenant_id, period, period_start, template_id, team_id) DO UPDATE SET \
             started = sla_figures.started + excluded.started, \
             completed = sla_figures.completed + excluded.completed, \
             met = sla_figures.met + excluded.met, \
             breached = sla_figures.breached + excluded.breached, \
             cancelled = sla_figures.cancelled + excluded.cancelled",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((tenant, period, start, template, team), c) in chunk {
            q = q
                .bind(tenant.as_str())
                .bind(*period)
                .bind(*start)
                .bind(template.as_str())
                .bind(team.as_str())
                .bind(c.started)
                .bind(c.completed)
                .bind(c.met)
                .bind(c.breached)
                .bind(c.cancelled);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn add_durations(
    conn: &mut Conn,
    durations: &HashMap<(Group, i64), i64>,
) -> Result<(), StoreError> {
    let rows: Vec<(&(Group, i64), &i64)> = durations.iter().collect();
    for chunk in rows.chunks(300) {
        let values: Vec<String> = (0..chunk.len()).map(|i| marks(i * 7, 7)).collect();
        let sql = format!(
            "INSERT INTO sla_durations (tenant_id, period, period_start, template_id, team_id, \
             bucket, journeys) VALUES {} \
             ON CONFLICT (tenant_id, period, period_start, template_id, team_id, bucket) \
             DO UPDATE SET journeys = sla_durations.journeys + excluded.journeys",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (((tenant, period, start, template, team), b), n) in chunk {
            q = q
                .bind(tenant.as_str())
                .bind(*period)
                .bind(*start)
                .bind(template.as_str())
                .bind(team.as_str())
                .bind(*b)
                .bind(**n);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn mark_folded(conn: &mut Conn, ids: &[&str], folded: i64) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "UPDATE journeys SET sla_folded = $1 WHERE id IN ({})",
        marks.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(folded);
    for id in ids {
        q = q.bind(*id);
    }
    q.execute(conn).await?;
    Ok(())
}

string_enum!(
    /// The length of the periods figures are given for: `day`, `week` (from Monday) or `month`.
    Period { Day = "day", Week = "week", Month = "month" }
);

string_enum!(
    /// What figures are given per: `template`, `team`, or `template_team` (both).
    GroupBy { Template = "template", Team = "team", TemplateTeam = "template_team" }
);

/// Query of `GET /analytics/sla`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SlaQuery {
    /// First day counted, `YYYY-MM-DD` (UTC). Default: 29 days before `to`.
    #[param(example = "2026-11-01")]
    from: Option<String>,
    /// Last day counted, included, `YYYY-MM-DD` (UTC). Default: today.
    #[param(example = "2026-11-30")]
    to: Option<String>,
    /// `day`, `week` (default) or `month`.
    #[param(value_type = Option<Period>, inline)]
    period: Option<String>,
    /// `template` (default), `team` or `template_team`.
    #[param(value_type = Option<GroupBy>, inline)]
    group_by: Option<String>,
    /// Only this template's journeys.
    template_id: Option<String>,
    /// Only this team's journeys: assigned to it, or to one of its members.
    team_id: Option<String>,
}

/// One period's figures for one template and/or team.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlaFigures {
    /// The period's first day (a Monday for weeks, the 1st for months); the first and last
    /// periods count only their days inside `from`..`to`.
    #[schema(example = "2026-11-02")]
    pub period_start: String,
    /// `null` when grouped by team only.
    pub template_id: Option<String>,
    /// `null` when grouped by template only, or for journeys of no team.
    pub team_id: Option<String>,
    /// Journeys started in the period.
    pub started: i64,
    /// Journeys completed in the period.
    pub completed: i64,
    /// Of those, completed by their due time.
    pub met: i64,
    /// Journeys completed or cancelled in the period after their due time.
    pub breached: i64,
    /// Journeys cancelled in the period.
    pub cancelled: i64,
    /// Median time from start to completion of the journeys completed in the period, in hours
    /// (within 5%); `null` when none was completed.
    pub median_hours_to_complete: Option<f64>,
    /// 90th percentile of the same.
    pub p90_hours_to_complete: Option<f64>,
}

/// Open journeys at risk and breached at the time of the request, for one template and/or team.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlaNow {
    pub template_id: Option<String>,
    pub team_id: Option<String>,
    pub at_risk: i64,
    pub breached: i64,
}

/// SLA analytics over a window.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlaReport {
    pub from: String,
    pub to: String,
    pub period: Period,
    pub group_by: GroupBy,
    pub periods: Vec<SlaFigures>,
    pub now: Vec<SlaNow>,
}

/// The last day of the period `day` falls in.
fn period_end(period: Period, day: i64) -> i64 {
    match period {
        Period::Day => day,
        Period::Week => period_start(period, day) + 6,
        Period::Month => {
            let d = date_of(day);
            let next = if d.month() == 12 {
                NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
            };
            next.map_or(day, |n| day + (n - d).num_days() - 1)
        }
    }
}

/// The first day of the period `day` falls in.
fn period_start(period: Period, day: i64) -> i64 {
    match period {
        Period::Day => day,
        // 1970-01-01 was a Thursday: Monday is 3 days before it.
        Period::Week => day - (day + 3).rem_euclid(7),
        Period::Month => {
            let date = date_of(day);
            day - i64::from(date.day0())
        }
    }
}

fn date_of(day: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(day.saturating_mul(DAY_MS))
        .unwrap_or_default()
        .date_naive()
}

/// SLA figures per template, team and period, and the journeys at risk and breached now.
#[utoipa::path(
    get, path = "/analytics/sla", operation_id = "omni.analytics.sla", tag = "SLA",
    params(SlaQuery),
    responses(
        (status = 200, description = "Figures per period and group, and the counts now", body = Data<SlaReport>),
        (status = 422, description = "A date that is not YYYY-MM-DD, `from` after `to`, a window over 366 days, an unknown `period` or `groupBy` (`validation_failed` or `invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn sla_report(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<SlaQuery>,
) -> ApiResult<Response> {
    let now = app.db.now_ms();
    let window = Window::parse(
        &WindowQuery {
            from: q.from,
            to: q.to,
        },
        day_of(now),
    )
    .map_err(ApiError::validation)?;
    if window.to - window.from > 365 {
        return Err(ApiError::validation(vec![FieldError::new(
            "from",
            "the window must be at most 366 days",
        )]));
    }
    let period: Period =
        crate::api::parse_filter("period", q.period.as_deref())?.unwrap_or(Period::Week);
    let group_by: GroupBy =
        crate::api::parse_filter("groupBy", q.group_by.as_deref())?.unwrap_or(GroupBy::Template);
    let by_team = group_by != GroupBy::Template;
    let by_template = group_by != GroupBy::Team;
    // Whole periods: the window widens to the periods its first and last days fall in.
    let first = period_start(period, window.from);
    let last = period_end(period, window.to);
    let filter = Filter {
        tenant: &tenant.id,
        period,
        from: first,
        to: period_start(period, window.to),
        by_template,
        by_team,
        template: q.template_id.as_deref(),
        team: q.team_id.as_deref(),
    };
    let pool = app.db.reader();
    let (daily, durations, open) = tokio::try_join!(
        filter.figures(pool),
        filter.durations(pool),
        filter.open(pool, now)
    )?;
    // (period start, template, team) -> figures
    type Key = (i64, Option<String>, Option<String>);
    let key = |start: i64, template: String, team: String| -> Key {
        (
            start,
            by_template.then_some(template),
            (by_team && !team.is_empty()).then_some(team),
        )
    };
    let mut figures: BTreeMap<Key, (Counts, BTreeMap<i64, i64>)> = BTreeMap::new();
    for (day, template, team, c) in daily {
        let f = &mut figures.entry(key(day, template, team)).or_default().0;
        f.started += c.started;
        f.completed += c.completed;
        f.met += c.met;
        f.breached += c.breached;
        f.cancelled += c.cancelled;
    }
    for (day, template, team, b, n) in durations {
        *figures
            .entry(key(day, template, team))
            .or_default()
            .1
            .entry(b)
            .or_default() += n;
    }
    let periods = figures
        .into_iter()
        .map(
            |((start, template_id, team_id), (c, histogram))| SlaFigures {
                period_start: date_of(start).to_string(),
                template_id,
                team_id,
                started: c.started,
                completed: c.completed,
                met: c.met,
                breached: c.breached,
                cancelled: c.cancelled,
                median_hours_to_complete: quantile(&histogram, 0.5),
                p90_hours_to_complete: quantile(&histogram, 0.9),
            },
        )
        .collect();
    // Teams are looked up when grouped or filtered by them.
    let teams_matter = by_team || q.team_id.is_some();
    let teams = if teams_matter {
        let users: Vec<&str> = open
            .iter()
            .filter(|o| o.1.as_deref() != Some("team"))
            .filter_map(|o| o.2.as_deref())
            .collect();
        let mut conn = app.db.read_conn().await?;
        directory::store::teams_of(&mut conn, &tenant.id, &users).await?
    } else {
        HashMap::new()
    };
    let mut counts_now: BTreeMap<(Option<String>, Option<String>), (i64, i64)> = BTreeMap::new();
    for (template, kind, assignee, at_risk, breached) in open {
        let mut groups: Vec<Option<String>> = Vec::new();
        match (kind.as_deref(), assignee) {
            _ if !teams_matter => groups.push(None),
            (Some("team"), Some(team)) => groups.push(Some(team)),
            (_, Some(user)) => match teams.get(&user) {
                Some(ts) => groups.extend(ts.iter().cloned().map(Some)),
                None => groups.push(None),
            },
            _ => groups.push(None),
        }
        for team in groups {
            if q.team_id.is_some() && team.as_deref() != q.team_id.as_deref() {
                continue;
            }
            let c = counts_now
                .entry((
                    by_template.then(|| template.clone()),
                    team.filter(|_| by_team),
                ))
                .or_default();
            c.0 += at_risk;
            c.1 += breached;
        }
    }
    let now_figures = counts_now
        .into_iter()
        .map(|((template_id, team_id), (at_risk, breached))| SlaNow {
            template_id,
            team_id,
            at_risk,
            breached,
        })
        .collect();
    Ok(data(
        StatusCode::OK,
        SlaReport {
            from: date_of(first).to_string(),
            to: date_of(last).to_string(),
            period,
            group_by,
            periods,
            now: now_figures,
        },
    ))
}

/// What a report reads.
struct Filter<'a> {
    tenant: &'a str,
    period: Period,
    /// The first and last periods' first days.
    from: i64,
    to: i64,
    by_template: bool,
    by_team: bool,
    template: Option<&'a str>,
    team: Option<&'a str>,
}

type Figures = (i64, String, String, Counts);

impl Filter<'_> {
    /// The `WHERE` of the figure tables and the values of its placeholders after `$4`: the
    /// rows of the groups asked for, totals (`'*'`) over what is not grouped by.
    fn clause(&self) -> (String, Vec<&str>) {
        let mut sql = " WHERE tenant_id = $1 AND period = $2 AND period_start >= $3 \
                       AND period_start <= $4"
            .to_owned();
        let mut args = Vec::new();
        for (column, only, grouped) in [
            ("template_id", self.template, self.by_template),
            ("team_id", self.team, self.by_team),
        ] {
            match only {
                Some(value) => {
                    args.push(value);
                    sql += &format!(" AND {column} = ${}", args.len() + 4);
                }
                None if grouped => sql += &format!(" AND {column} <> '*'"),
                None => sql += &format!(" AND {column} = '*'"),
            }
        }
        (sql, args)
    }

    async fn figures(&self, pool: &AnyPool) -> Result<Vec<Figures>, StoreError> {
        let (clause, args) = self.clause();
        let sql = format!(
            "SELECT period_start, template_id, team_id, started, completed, met, breached, \
             cancelled FROM sla_figures{clause}"
        );
        let mut q = sqlx::query_as::<_, (i64, String, String, i64, i64, i64, i64, i64)>(
            sqlx::AssertSqlSafe(sql),
        )
        .bind(self.tenant)
        .bind(self.period.as_str())
        .bind(self.from)
        .bind(self.to);
        for a in args {
            q = q.bind(a);
        }
        Ok(q.fetch_all(pool)
            .await?
            .into_iter()
            .map(
                |(start, template, team, started, completed, met, breached, cancelled)| {
                    (
                        start,
                        template,
                        team,
                        Counts {
                            started,
                            completed,
                            met,
                            breached,
                            cancelled,
                        },
                    )
                },
            )
            .collect())
    }

    async fn durations(
        &self,
        pool: &AnyPool,
    ) -> Result<Vec<(i64, String, String, i64, i64)>, StoreError> {
        let (clause, args) = self.clause();
        let sql = format!(
            "SELECT period_start, template_id, team_id, bucket, journeys FROM sla_durations{clause}"
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.tenant)
            .bind(self.period.as_str())
            .bind(self.from)
            .bind(self.to);
        for a in args {
            q = q.bind(a);
        }
        Ok(q.fetch_all(pool).await?)
    }

    /// Open journeys past their at-risk point now, per template and assignee: (template,
    /// assignee type, assignee, at risk, breached).
    async fn open(
        &self,
        pool: &AnyPool,
        now: i64,
    ) -> Result<Vec<(String, Option<String>, Option<String>, i64, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT template_id, assignee_type, assignee_id,
                 SUM(CASE WHEN sla_due_at > $2 THEN 1 ELSE 0 END),
                 SUM(CASE WHEN sla_due_at <= $2 THEN 1 ELSE 0 END)
             FROM journeys
             WHERE tenant_id = $1 AND status IN ('created', 'in_progress', 'assigned')
               AND sla_at_risk_at IS NOT NULL AND sla_at_risk_at <= $2
               AND ($3 IS NULL OR template_id = $3)
             GROUP BY template_id, assignee_type, assignee_id",
        )
        .bind(self.tenant)
        .bind(now)
        .bind(self.template)
        .fetch_all(pool)
        .await?)
    }
}

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(sla_report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_buckets_are_within_their_width() {
        let mut h = BTreeMap::new();
        for hours in [1.0_f64, 2.0, 3.0, 4.0, 100.0] {
            *h.entry(bucket((hours * 3_600_000.0) as i64)).or_default() += 1;
        }
        let median = quantile(&h, 0.5).unwrap();
        assert!((median - 3.0).abs() / 3.0 <= 0.05, "{median}");
        let p90 = quantile(&h, 0.9).unwrap();
        assert!((p90 - 100.0).abs() / 100.0 <= 0.05, "{p90}");
        assert_eq!(quantile(&BTreeMap::new(), 0.5), None);
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(-5), 0);
    }

    #[test]
    fn periods_start_on_the_day_the_monday_and_the_first() {
        let day = day_of(crate::time::parse_rfc3339("2026-12-03T10:00:00Z").unwrap());
        assert_eq!(
            date_of(period_start(Period::Day, day)).to_string(),
            "2026-12-03"
        );
        assert_eq!(
            date_of(period_start(Period::Week, day)).to_string(),
            "2026-11-30"
        );
        assert_eq!(
            date_of(period_start(Period::Month, day)).to_string(),
            "2026-12-01"
        );
    }
}
