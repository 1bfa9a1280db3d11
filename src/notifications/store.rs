//! SQL for notifications, their deliveries, templates, providers, rules and push devices.
//! Every statement a request makes is scoped by tenant; the delivery worker works across
//! tenants and carries each row's tenant with it.

use crate::secrets::Vault;
use crate::store::{Conn, Db};
use sqlx::AnyPool;

use crate::error::StoreError;
use crate::store::dialect::RowLock;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRow {
    pub code: String,
    pub name: Option<String>,
    pub default_language: String,
    pub content: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn get_template(
    conn: &mut Conn,
    tenant: &str,
    code: &str,
) -> Result<Option<TemplateRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT code, name, default_language, content, created_at, updated_at
         FROM notification_templates WHERE tenant_id = $1 AND code = $2",
    )
    .bind(tenant)
    .bind(code)
    .fetch_optional(conn)
    .await?)
}

pub async fn list_templates(conn: &mut Conn, tenant: &str) -> Result<Vec<TemplateRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT code, name, default_language, content, created_at, updated_at
         FROM notification_templates WHERE tenant_id = $1 ORDER BY code",
    )
    .bind(tenant)
    .fetch_all(conn)
    .await?)
}

/// Creates or replaces; `true` if it was new.
pub async fn put_template(
    conn: &mut Conn,
    tenant: &str,
    t: &TemplateRow,
) -> Result<bool, StoreError> {
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO notification_templates
             (tenant_id, code, name, default_language, content, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (tenant_id, code) DO UPDATE SET name = excluded.name,
             default_language = excluded.default_language, content = excluded.content,
             updated_at = excluded.updated_at
         RETURNING created_at",
    )
    .bind(tenant)
    .bind(&t.code)
    .bind(&t.name)
    .bind(&t.default_language)
    .bind(&t.content)
    .bind(t.updated_at)
    .fetch_optional(conn)
    .await?;
    Ok(created == Some(t.updated_at))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProviderRow {
    pub channel: String,
    pub kind: String,
    pub settings: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where a provider's settings are kept, as their sealing binds them (`secrets`).
pub fn sealing_context(channel: &str) -> String {
    format!("notification_provider:{channel}")
}

/// The provider of a channel, its settings opened.
pub async fn get_provider(
    db: &Db,
    vault: &Vault,
    tenant: &str,
    channel: &str,
) -> Result<Option<ProviderRow>, StoreError> {
    let row: Option<ProviderRow> = sqlx::query_as(
        "SELECT channel, kind, settings, created_at, updated_at
         FROM notification_providers WHERE tenant_id = $1 AND channel = $2",
    )
    .bind(tenant)
    .bind(channel)
    .fetch_optional(db.reader())
    .await?;
    match row {
        Some(row) => Ok(Some(opened(db, vault, tenant, row).await?)),
        None => Ok(None),
    }
}

/// The tenant's providers, their settings opened.
pub async fn list_providers(
    db: &Db,
    vault: &Vault,
    tenant: &str,
) -> Result<Vec<ProviderRow>, StoreError> {
    let rows: Vec<ProviderRow> = sqlx::query_as(
        "SELECT channel, kind, settings, created_at, updated_at
         FROM notification_providers WHERE tenant_id = $1 ORDER BY channel",
    )
    .bind(tenant)
    .fetch_all(db.reader())
    .await?;
    let mut opened_rows = Vec::with_capacity(rows.len());
    for row in rows {
        opened_rows.push(opened(db, vault, tenant, row).await?);
    }
    Ok(opened_rows)
}

async fn opened(
    db: &Db,
    vault: &Vault,
    tenant: &str,
    mut row: ProviderRow,
) -> Result<ProviderRow, StoreError> {
    row.settings = vault
        .open_stored(db, tenant, &sealing_context(&row.channel), &row.settings)
        .await?;
    Ok(row)
}

/// Seals the provider settings stored before secrets were encrypted (migration 0020); how
/// many it sealed. Each row is written only if it still holds what was read.
pub async fn seal_stored_settings(db: &Db, vault: &Vault) -> Result<u64, StoreError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT tenant_id, channel, settings FROM notification_providers
         WHERE settings NOT LIKE 'enc:%'",
    )
    .fetch_all(db.reader())
    .await?;
    let mut sealed = 0;
    for (tenant, channel, settings) in rows {
        let value = vault
            .seal(db, &tenant, &sealing_context(&channel), &settings)
            .await?;
        let mut tx = db.begin().await?;
        sealed += sqlx::query(
            "UPDATE notification_providers SET settings = $1
             WHERE tenant_id = $2 AND channel = $3 AND settings = $4",
        )
        .bind(&value)
        .bind(&tenant)
        .bind(&channel)
        .bind(&settings)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
    }
    Ok(sealed)
}

/// Creates or replaces (its settings sealed by the caller); `true` if it was new.
pub async fn put_provider(
    conn: &mut Conn,
    tenant: &str,
    p: &ProviderRow,
) -> Result<bool, StoreError> {
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO notification_providers
             (tenant_id, channel, kind, settings, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (tenant_id, channel) DO UPDATE SET kind = excluded.kind,
             settings = excluded.settings, updated_at = excluded.updated_at
         RETURNING created_at",
    )
    .bind(tenant)
    .bind(&p.channel)
    .bind(&p.kind)
    .bind(&p.settings)
    .bind(p.updated_at)
    .fetch_optional(conn)
    .await?;
    Ok(created == Some(p.updated_at))
}

/// `true` if there was one.
pub async fn delete_provider(
    conn: &mut Conn,
    tenant: &str,
    channel: &str,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("DELETE FROM notification_providers WHERE tenant_id = $1 AND channel = $2")
            .bind(tenant)
            .bind(channel)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// A stored rule; [`crate::notifications::rules`] also reads one from a JSON array of its
/// columns, in this order.
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct RuleRow {
    pub event_type: String,
    pub recipients: String,
    pub channels: String,
    pub template_code: String,
    pub priority: String,
    pub enabled: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn get_rule(
    conn: &mut Conn,
    tenant: &str,
    event_type: &str,
) -> Result<Option<RuleRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT event_type, recipients, channels, template_code, priority, enabled, created_at,
             updated_at
         FROM notification_rules WHERE tenant_id = $1 AND event_type = $2",
    )
    .bind(tenant)
    .bind(event_type)
    .fetch_optional(conn)
    .await?)
}

pub async fn list_rules(ex: &AnyPool, tenant: &str) -> Result<Vec<RuleRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT event_type, recipients, channels, template_code, priority, enabled, created_at,
             updated_at
         FROM notification_rules WHERE tenant_id = $1 ORDER BY event_type",
    )
    .bind(tenant)
    .fetch_all(ex)
    .await?)
}

/// Creates or replaces; `true` if it was new.
pub async fn put_rule(conn: &mut Conn, tenant: &str, r: &RuleRow) -> Result<bool, StoreError> {
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO notification_rules (tenant_id, event_type, recipients, channels,
             template_code, priority, enabled, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (tenant_id, event_type) DO UPDATE SET recipients = excluded.recipients,
             channels = excluded.channels, template_code = excluded.template_code,
             priority = excluded.priority, enabled = excluded.enabled,
             updated_at = excluded.updated_at
         RETURNING created_at",
    )
    .bind(tenant)
    .bind(&r.event_type)
    .bind(&r.recipients)
    .bind(&r.channels)
    .bind(&r.template_code)
    .bind(&r.priority)
    .bind(r.enabled)
    .bind(r.updated_at)
    .fetch_optional(conn)
    .await?;
    Ok(created == Some(r.updated_at))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    pub customer_id: String,
    pub device_id: String,
    pub platform: String,
    pub push_token: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Creates or replaces; `true` if it was new.
pub async fn put_device(conn: &mut Conn, tenant: &str, d: &DeviceRow) -> Result<bool, StoreError> {
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO customer_devices
             (tenant_id, customer_id, device_id, platform, push_token, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (tenant_id, customer_id, device_id) DO UPDATE SET
             platform = excluded.platform, push_token = excluded.push_token,
             updated_at = excluded.updated_at
         RETURNING created_at",
    )
    .bind(tenant)
    .bind(&d.customer_id)
    .bind(&d.device_id)
    .bind(&d.platform)
    .bind(&d.push_token)
    .bind(d.updated_at)
    .fetch_optional(conn)
    .await?;
    Ok(created == Some(d.updated_at))
}

pub async fn devices(
    ex: &AnyPool,
    tenant: &str,
    customer: &str,
) -> Result<Vec<DeviceRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT customer_id, device_id, platform, push_token, created_at, updated_at
         FROM customer_devices WHERE tenant_id = $1 AND customer_id = $2 ORDER BY created_at",
    )
    .bind(tenant)
    .bind(customer)
    .fetch_all(ex)
    .await?)
}

/// `true` if there was one.
pub async fn delete_device(
    conn: &mut Conn,
    tenant: &str,
    customer: &str,
    device: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "DELETE FROM customer_devices WHERE tenant_id = $1 AND customer_id = $2 AND device_id = $3",
    )
    .bind(tenant)
    .bind(customer)
    .bind(device)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Forgets a push token the provider says is no longer registered.
pub async fn forget_push_token(
    conn: &mut Conn,
    tenant: &str,
    customer: &str,
    token: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM customer_devices WHERE tenant_id = $1 AND customer_id = $2 AND push_token = $3",
    )
    .bind(tenant)
    .bind(customer)
    .bind(token)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: String,
    pub tenant_id: String,
    pub recipient_id: String,
    pub recipient_type: String,
    pub template_code: String,
    pub template_data: String,
    pub language: String,
    pub priority: String,
    pub schedule_at: Option<i64>,
    pub status: String,
    pub source_event: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub read_at: Option<i64>,
    pub cancelled_at: Option<i64>,
}

const NOTIFICATION_COLUMNS: &str = "id, tenant_id, recipient_id, recipient_type, template_code, \
     template_data, language, priority, schedule_at, status, source_event, created_at, \
     updated_at, read_at, cancelled_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub notification_id: String,
    pub tenant_id: String,
    pub channel: String,
    pub status: String,
    pub content: String,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    pub attempts: i64,
    pub error_code: Option<String>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.notification_id, d.tenant_id, d.channel, d.status, \
     d.content, d.provider, d.provider_message_id, d.attempts, d.error_code, d.last_error, \
     d.next_attempt_at, d.lease_until, d.created_at, d.updated_at, d.sent_at, d.delivered_at, \
     d.failed_at";

pub async fn insert_notification(
    conn: &mut Conn,
    n: &NotificationRow,
    deliveries: &[DeliveryRow],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notifications (id, tenant_id, recipient_id, recipient_type, template_code,
             template_data, language, priority, schedule_at, status, source_event, created_at,
             updated_at, read_at, cancelled_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL)",
    )
    .bind(&n.id)
    .bind(&n.tenant_id)
    .bind(&n.recipient_id)
    .bind(&n.recipient_type)
    .bind(&n.template_code)
    .bind(&n.template_data)
    .bind(&n.language)
    .bind(&n.priority)
    .bind(n.schedule_at)
    .bind(&n.status)
    .bind(&n.source_event)
    .bind(n.created_at)
    .bind(n.updated_at)
    .execute(&mut *conn)
    .await?;
    for d in deliveries {
        sqlx::query(
            "INSERT INTO notification_deliveries (id, notification_id, tenant_id, channel, status,
                 content, provider, provider_message_id, attempts, error_code, last_error,
                 next_attempt_at, lease_until, created_at, updated_at, sent_at, delivered_at,
                 failed_at)
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, 0, $7, $8, $9, NULL, $10, $10, NULL,
                 NULL, $11)",
        )
        .bind(&d.id)
        .bind(&d.notification_id)
        .bind(&d.tenant_id)
        .bind(&d.channel)
        .bind(&d.status)
        .bind(&d.content)
        .bind(&d.error_code)
        .bind(&d.last_error)
        .bind(d.next_attempt_at)
        .bind(d.created_at)
        .bind(d.failed_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn get_notification(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
) -> Result<Option<NotificationRow>, StoreError> {
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE tenant_id = $1 AND id = $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Takes the notification's row lock (so changes to its deliveries take turns) and returns
/// it, or `None` if the tenant has no such notification.
pub async fn lock_notification(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    now: i64,
) -> Result<Option<NotificationRow>, StoreError> {
    let sql = format!(
        "UPDATE notifications SET updated_at = $3 WHERE tenant_id = $1 AND id = $2 \
         RETURNING {NOTIFICATION_COLUMNS}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(id)
        .bind(now)
        .fetch_optional(conn)
        .await?)
}

/// The deliveries of these notifications, by notification then channel.
pub async fn deliveries_of(
    conn: &mut Conn,
    tenant: &str,
    ids: &[&str],
) -> Result<Vec<DeliveryRow>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries d WHERE d.tenant_id = $1 \
         AND d.notification_id IN ({}) ORDER BY d.notification_id, d.channel",
        list.join(", ")
    );
    // Only placeholders are added to the statement; every value is bound.
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant);
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(conn).await?)
}

/// What a list of notifications is narrowed to.
#[derive(Debug, Default)]
pub struct NotificationFilter<'a> {
    pub recipient_id: Option<&'a str>,
    pub recipient_type: Option<&'a str>,
    /// With `status`, the status of this channel's delivery; alone, having this channel.
    pub channel: Option<&'a str>,
    pub status: Option<&'a str>,
    pub read: Option<bool>,
}

/// A page of notifications, newest first, and how many match in all.
pub async fn list_notifications<'a>(
    conn: &mut Conn,
    tenant: &'a str,
    f: &NotificationFilter<'a>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<NotificationRow>, i64), StoreError> {
    let mut clauses = String::from(" FROM notifications n WHERE n.tenant_id = $1");
    let mut binds: Vec<&str> = vec![tenant];
    let mut param = |v: &'a str| {
        binds.push(v);
        format!("${}", binds.len())
    };
    if let Some(r) = f.recipient_id {
        clauses.push_str(&format!(" AND n.recipient_id = {}", param(r)));
    }
    if let Some(r) = f.recipient_type {
        clauses.push_str(&format!(" AND n.recipient_type = {}", param(r)));
    }
    match (f.channel, f.status) {
        (Some(c), Some(s)) => {
            let (pc, ps) = (param(c), param(s));
            clauses.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.notification_id = \
                 n.id AND d.channel = {pc} AND d.status = {ps})"
            ));
        }
        (Some(c), None) => {
            clauses.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.notification_id = \
                 n.id AND d.channel = {})",
                param(c)
            ));
        }
        (None, Some(s)) => clauses.push_str(&format!(" AND n.status = {}", param(s))),
        (None, None) => {}
    }
    match f.read {
        Some(true) => clauses.push_str(" AND n.read_at IS NOT NULL"),
        Some(false) => clauses.push_str(" AND n.read_at IS NULL"),
        None => {}
    }
    // Only placeholders and fixed text are added to the statements; every value is bound.
    let count_sql = format!("SELECT COUNT(*){clauses}");
    let mut count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql));
    for b in &binds {
        count = count.bind(*b);
    }
    let total = count.fetch_one(&mut *conn).await?;
    let n = binds.len();
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS}{clauses} ORDER BY n.created_at DESC, n.id DESC \
         LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for b in &binds {
        q = q.bind(*b);
    }
    let rows = q.bind(limit).bind(offset).fetch_all(&mut *conn).await?;
    Ok((rows, total))
}

/// Stores the notification's status (derived from its deliveries by the caller, who holds
/// its lock).
pub async fn set_status(
    conn: &mut Conn,
    id: &str,
    status: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE notifications SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_read(conn: &mut Conn, id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE notifications SET read_at = $2, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Cancels every pending delivery of the notification.
pub async fn cancel(conn: &mut Conn, id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE notification_deliveries SET status = 'cancelled', next_attempt_at = NULL,
             lease_until = NULL, updated_at = $2
         WHERE notification_id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE notifications SET cancelled_at = $2, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// A delivery the worker has claimed, with what it needs of its notification.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueRow {
    pub id: String,
    pub notification_id: String,
    pub tenant_id: String,
    pub channel: String,
    pub content: String,
    pub attempts: i64,
    pub recipient_id: String,
    pub recipient_type: String,
    pub priority: String,
    pub template_data: String,
}

/// Claims up to `limit` deliveries due at `now` for `lease`: no other worker takes them
/// until the lease ends, so a worker that dies mid-send leaves them to be taken again.
pub async fn claim_due(
    conn: &mut Conn,
    now: i64,
    lease: std::time::Duration,
    limit: i64,
) -> Result<Vec<DueRow>, StoreError> {
    // PostgreSQL: concurrent workers skip each other's rows. SQLite has one writer at a time.
    let lock = RowLock::UpdateSkipLocked.for_conn(conn);
    let sql = format!(
        "UPDATE notification_deliveries SET lease_until = $2 WHERE id IN (
             SELECT id FROM notification_deliveries
             WHERE next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
             ORDER BY next_attempt_at LIMIT $3{lock})
         RETURNING id"
    );
    let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(crate::time::later(now, lease))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 1)).collect();
    let sql = format!(
        "SELECT d.id, d.notification_id, d.tenant_id, d.channel, d.content, d.attempts,
             n.recipient_id, n.recipient_type, n.priority, n.template_data
         FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
         WHERE d.id IN ({})",
        list.join(", ")
    );
    // Only placeholders are added to the statement; every value is bound.
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for id in &ids {
        q = q.bind(id);
    }
    Ok(q.fetch_all(conn).await?)
}

/// When the next delivery no worker holds falls due, if any is waiting. (A held one is due
/// again at the latest when its lease ends; the worker's polling covers that.)
pub async fn next_due(pool: &AnyPool, now: i64) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT MIN(next_attempt_at) FROM notification_deliveries
         WHERE next_attempt_at IS NOT NULL AND (lease_until IS NULL OR lease_until < $1)",
    )
    .bind(now)
    .fetch_one(pool)
    .await?)
}

/// Puts a claimed delivery back to wait until `until` without counting an attempt (quiet
/// hours).
pub async fn hold(conn: &mut Conn, id: &str, until: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE notification_deliveries SET next_attempt_at = $2, lease_until = NULL,
             updated_at = $3 WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(until)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A delivery's new state after an attempt or a provider's report.
#[derive(Debug, Clone)]
pub struct DeliveryUpdate<'a> {
    pub status: &'a str,
    pub provider: Option<&'a str>,
    pub provider_message_id: Option<&'a str>,
    pub attempts: i64,
    pub error_code: Option<&'a str>,
    pub last_error: Option<&'a str>,
    pub next_attempt_at: Option<i64>,
}

/// Writes an attempt's outcome, if the delivery is still the caller's to write: pending and
/// not cancelled meanwhile. `false` if it was not.
pub async fn finish_attempt(
    conn: &mut Conn,
    id: &str,
    u: &DeliveryUpdate<'_>,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE notification_deliveries SET status = $2,
             provider = COALESCE($3, provider),
             provider_message_id = COALESCE($4, provider_message_id), attempts = $5,
             error_code = $6, last_error = $7, next_attempt_at = $8, lease_until = NULL,
             updated_at = $9,
             sent_at = CASE WHEN $2 IN ('sent', 'delivered') THEN $9 ELSE sent_at END,
             delivered_at = CASE WHEN $2 = 'delivered' THEN $9 ELSE delivered_at END,
             failed_at = CASE WHEN $2 = 'failed' THEN $9 ELSE failed_at END
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(u.status)
    .bind(u.provider)
    .bind(u.provider_message_id)
    .bind(u.attempts)
    .bind(u.error_code)
    .bind(u.last_error)
    .bind(u.next_attempt_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The deliveries a provider knows by this message id, with their tenant.
pub async fn by_provider_message(
    pool: &AnyPool,
    provider: &str,
    message_id: &str,
) -> Result<Vec<DeliveryRow>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries d \
         WHERE d.provider = $1 AND d.provider_message_id = $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(provider)
        .bind(message_id)
        .fetch_all(pool)
        .await?)
}

/// A provider's later report on a sent delivery: delivered, or failed after all.
pub async fn report(
    conn: &mut Conn,
    id: &str,
    status: &str,
    error_code: Option<&str>,
    last_error: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE notification_deliveries SET status = $2, error_code = COALESCE($3, error_code),
             last_error = COALESCE($4, last_error), updated_at = $5,
             delivered_at = CASE WHEN $2 = 'delivered' THEN $5 ELSE delivered_at END,
             failed_at = CASE WHEN $2 = 'failed' THEN $5 ELSE failed_at END
         WHERE id = $1 AND status = 'sent'",
    )
    .bind(id)
    .bind(status)
    .bind(error_code)
    .bind(last_error)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}
