//! Channel analytics (seed 000: Get Channel Activity), answered from per-day figures kept as
//! changes happen, never by scanning events.
//!
//! Three tables, each keyed by tenant and UTC day (days since 1970-01-01):
//! - `channel_daily`: transactions per channel, one per API call that changed something,
//!   counted by [`Counters`], the spine's reaction, for the call's first change (apart per chain, see
//!   [`count_transaction`]);
//! - `channel_daily_users`: the customers with a session open on a channel that day, written by
//!   the sessions when one starts, is used or ends;
//! - `journey_switches`: each time a journey was touched from another channel than the time
//!   before, with the days of both touches (`journey_touches` holds each journey's last), written
//!   by [`Counters`] for every change of a call that concerns a journey.
//!
//! A change is made through the channel its call states (see `calls`), else through the
//! channel of what it changes (a journey's, a session's); a change with neither counts as
//! `API`, a direct integration.

mod routes;

pub use routes::{Window, WindowQuery};

use std::collections::HashMap;

use futures::TryFutureExt;
use futures::future::BoxFuture;

use crate::store::Conn;
use crate::store::dialect;
use sqlx::AnyPool;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::channel::Channel;
use crate::error::StoreError;
use crate::events::{Appended, Reaction};

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

pub const DAY_MS: i64 = 86_400_000;

/// The UTC day of a moment in milliseconds.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// The channel a change is counted under: its own, else `api`.
pub fn counted_channel(channel: Option<&str>) -> &str {
    channel.unwrap_or(Channel::Api.as_lower())
}

/// The spine's reaction that keeps the per-day figures: a call's first change counts one
/// transaction on its channel, and every change a customer makes through a channel touches the
/// journeys it concerns. Changes made outside any call (the background sweeps) count nothing.
pub struct Counters;

impl Reaction for Counters {
    fn react<'a>(
        &'a self,
        conn: &'a mut Conn,
        appended: &'a Appended<'a>,
        _: Option<Option<String>>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let made = appended.attribution;
            if !made.in_call {
                return Ok(());
            }
            let event = appended.event;
            let day = day_of(event.occurred_at);
            let channel = counted_channel(appended.channel);
            let mut count = made.first.then_some(appended.chain_key);
            // A journey is cross-channel by its customer's own actions: a change a staff
            // member is named for (advancedBy, assignedBy, ...) does not touch it from a
            // channel.
            let entities = appended.entities;
            let customer = entities.iter().find(|(t, _)| *t == "customer").map(|e| e.1);
            let by_customer = event.actor_id.is_none_or(|actor| Some(actor) == customer);
            if by_customer {
                for (_, journey) in entities.iter().filter(|(t, _)| *t == "journey") {
                    let counted = count.take();
                    count_and_touch(conn, event.tenant_id, day, channel, counted, journey).await?;
                }
            }
            if let Some(chain_key) = count {
                count_transaction(conn, event.tenant_id, day, channel, chain_key).await?;
            }
            Ok(())
        })
    }
}

/// Counts one transaction on `channel` on `day`, under the chain of the call's first change.
///
/// Counting under the chain keeps the counter off the tenant-wide hot path: the caller holds
/// the chain's head lock already (`events::record` takes it first), so the only calls that wait
/// for this row are calls that waited for that lock anyway, and the lock order is always chain
/// first, counter second.
pub async fn count_transaction(
    conn: &mut Conn,
    tenant: &str,
    day: i64,
    channel: &str,
    chain_key: &str,
) -> Result<(), StoreError> {
    sqlx::query(COUNT)
        .bind(tenant)
        .bind(day)
        .bind(channel)
        .bind(chain_key)
        .execute(conn)
        .await?;
    Ok(())
}

// The count alone takes `$1` tenant, `$2` day, `$3` channel, `$4` chain key. The statements
// that touch a journey take `$1` tenant, `$2` journey, `$3` channel, `$4` day, `$5`
// chain key. A journey's touch is the switch (when the channel changed since its last touch,
// with the days of both) and the new last touch, left alone when it is the same channel and
// day. PostgreSQL runs the count and the touch as one statement (data-modifying CTEs, which
// all read the rows as they were before it); SQLite, which has no such CTE, as one command of
// statements in that order (the switch reads the last touch before the touch replaces it).
macro_rules! count_sql {
    ($values:literal) => {
        concat!(
            "INSERT INTO channel_daily (tenant_id, day, channel, chain_key, transactions) \
             VALUES ",
            $values,
            " ON CONFLICT (tenant_id, day, channel, chain_key) \
             DO UPDATE SET transactions = channel_daily.transactions + 1"
        )
    };
}
// The switch reads the journey's last touch as `last` from `$from`, whose condition ends
// open for the switch's own.
macro_rules! switch_sql {
    ($from:literal) => {
        concat!(
            "INSERT INTO journey_switches (tenant_id, from_day, to_day, journey_id) \
             SELECT $1, last.day, $4, $2 FROM ",
            $from,
            " last.channel <> $3 ON CONFLICT DO NOTHING"
        )
    };
}
macro_rules! pg_last_and_switch {
    () => {
        concat!(
            "WITH last AS (SELECT channel, day FROM journey_touches \
             WHERE tenant_id = $1 AND journey_id = $2), s AS (",
            switch_sql!("last WHERE"),
            ")"
        )
    };
}
macro_rules! sqlite_switch {
    () => {
        switch_sql!(
            "journey_touches AS last WHERE last.tenant_id = $1 AND last.journey_id = $2 AND"
        )
    };
}
macro_rules! touch_sql {
    () => {
        "INSERT INTO journey_touches (tenant_id, journey_id, channel, day) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, journey_id) \
         DO UPDATE SET channel = excluded.channel, day = excluded.day \
         WHERE journey_touches.channel <> excluded.channel OR journey_touches.day <> excluded.day"
    };
}
const COUNT: &str = count_sql!("($1, $2, $3, $4, 1)");
const PG_TOUCH: &str = concat!(pg_last_and_switch!(), " ", touch_sql!());
const PG_COUNT_AND_TOUCH: &str = concat!(
    pg_last_and_switch!(),
    ", c AS (",
    count_sql!("($1, $4, $3, $5, 1)"),
    ") ",
    touch_sql!()
);
const SQLITE_TOUCH: &str = concat!(sqlite_switch!(), "; ", touch_sql!());
const SQLITE_COUNT_AND_TOUCH: &str = concat!(
    count_sql!("($1, $4, $3, $5, 1)"),
    "; ",
    sqlite_switch!(),
    "; ",
    touch_sql!()
);

/// Notes that `journey` was touched from `channel` on `day`, and first counts the call's
/// transaction under `count`'s chain when given ([`count_transaction`]): one statement.
///
/// A touch from another channel than the journey's last is a switch, kept with the days of
/// both touches. A journey was touched from two or more channels in a window exactly when one
/// of its switches lies wholly inside the window: the touches inside a window are a run of
/// consecutive touches, and a run holds two channels only where two neighbours differ. So the
/// report counts switches, not touches. Touches of one journey are in order: every event about
/// a journey also concerns its customer and takes the customer's chain lock first.
pub async fn count_and_touch(
    conn: &mut Conn,
    tenant: &str,
    day: i64,
    channel: &str,
    count: Option<&str>,
    journey: &str,
) -> Result<(), StoreError> {
    let sql = match (dialect::is_postgres(conn), count.is_some()) {
        (true, true) => PG_COUNT_AND_TOUCH,
        (true, false) => PG_TOUCH,
        (false, true) => SQLITE_COUNT_AND_TOUCH,
        (false, false) => SQLITE_TOUCH,
    };
    sqlx::query(sql)
        .bind(tenant)
        .bind(journey)
        .bind(channel)
        .bind(day)
        .bind(count)
        .execute(conn)
        .await?;
    Ok(())
}

/// Notes that `customer` had a session open on `channel` on every day from `from_ms` to
/// `to_ms` (both in milliseconds, `from_ms <= to_ms`).
pub async fn session_open(
    conn: &mut Conn,
    tenant: &str,
    customer: &str,
    channel: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<(), StoreError> {
    for day in day_of(from_ms)..=day_of(to_ms.max(from_ms)) {
        sqlx::query(
            "INSERT INTO channel_daily_users (tenant_id, day, channel, customer_id)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(day)
        .bind(channel)
        .bind(customer)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Figures of one channel over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub active_users: i64,
    pub transactions: i64,
}

/// A tenant's figures per channel and its cross-channel journeys over a window.
#[derive(Debug)]
pub struct Report {
    /// By lower-case channel name; channels without figures are absent.
    pub channels: HashMap<String, Figures>,
    pub cross_channel_journeys: i64,
}

/// The report over whole UTC days `from_day..=to_day`. Sessions not yet ended count when their
/// last activity lies in `open_from..=open_to` (ms): see `routes::Window`.
///
/// The three figures are read at once on three connections (each a read of its own moment,
/// as any report on a live system is).
pub async fn report(
    pool: &AnyPool,
    tenant: &str,
    from_day: i64,
    to_day: i64,
    open_from: i64,
    open_to: i64,
) -> Result<Report, StoreError> {
    let transactions = sqlx::query_as::<_, (String, i64)>(
        "SELECT channel, CAST(SUM(transactions) AS BIGINT) FROM channel_daily
         WHERE tenant_id = $1 AND day >= $2 AND day <= $3 GROUP BY channel",
    )
    .bind(tenant)
    .bind(from_day)
    .bind(to_day)
    .fetch_all(pool);
    let users = active_users(pool, tenant, from_day, to_day, open_from, open_to);
    let crossed = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(DISTINCT journey_id) FROM journey_switches
         WHERE tenant_id = $1 AND from_day >= $2 AND to_day <= $3",
    )
    .bind(tenant)
    .bind(from_day)
    .bind(to_day)
    .fetch_one(pool);
    let (transactions, users, cross_channel_journeys) =
        tokio::try_join!(transactions.err_into(), users, crossed.err_into())?;
    let mut channels: HashMap<String, Figures> = HashMap::new();
    for (channel, n) in transactions {
        channels.entry(channel).or_default().transactions = n;
    }
    for (channel, n) in users {
        channels.entry(channel).or_default().active_users = n;
    }
    Ok(Report {
        channels,
        cross_channel_journeys,
    })
}

/// Distinct customers per channel over the window. Sessions still open since before today may
/// be open on days with no figure yet (a session open across midnight, idle since): when there
/// are any, they are added to the figures; usually there are none.
async fn active_users(
    pool: &AnyPool,
    tenant: &str,
    from_day: i64,
    to_day: i64,
    open_from: i64,
    open_to: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let spanning: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM channel_sessions WHERE ended_at IS NULL AND tenant_id = $1
             AND last_seen_at >= $2 AND last_seen_at <= $3 LIMIT 1",
    )
    .bind(tenant)
    .bind(open_from)
    .bind(open_to)
    .fetch_optional(pool)
    .await?;
    if spanning.is_none() {
        return Ok(sqlx::query_as(
            "SELECT channel, COUNT(DISTINCT customer_id) FROM channel_daily_users
             WHERE tenant_id = $1 AND day >= $2 AND day <= $3 GROUP BY channel",
        )
        .bind(tenant)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(pool)
        .await?);
    }
    Ok(sqlx::query_as(
        "SELECT channel, COUNT(*) FROM (
             SELECT channel, customer_id FROM channel_daily_users
             WHERE tenant_id = $1 AND day >= $2 AND day <= $3
             UNION
             SELECT channel, customer_id FROM channel_sessions
             WHERE ended_at IS NULL AND tenant_id = $1 AND last_seen_at >= $4
                 AND last_seen_at <= $5
         ) active GROUP BY channel",
    )
    .bind(tenant)
    .bind(from_day)
    .bind(to_day)
    .bind(open_from)
    .bind(open_to)
    .fetch_all(pool)
    .await?)
}
