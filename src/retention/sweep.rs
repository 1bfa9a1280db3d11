//! The retention sweep: deletes what has outlived its tenant's retention period, in batches of
//! at most [`BATCH`] rows a transaction, on one node at a time.
//!
//! Each pass looks (reads only) for each tenant's oldest due rows of each kind; a node that
//! finds none writes nothing. One that finds some takes the sweep's lease (`worker_leases`, a
//! row held until a time: another node's pass finds it held and leaves the work to it), deletes
//! one batch in a short transaction of its own (the rows a batch names, then the rows that
//! hang from them), and looks again. Writers never wait for more than one batch.

use serde::Serialize;

use super::Periods;
use crate::App;
use crate::error::StoreError;
use crate::store::Db;
use crate::store::dialect::placeholders;

/// Most rows of one kind one transaction deletes.
pub const BATCH: usize = 500;
/// Most batches of one kind one pass deletes for one tenant; a pass that reaches it says more
/// may be waiting, and the worker passes again at once.
const BATCHES_PER_PASS: usize = 20;
/// How long the sweep's lease lasts; renewed at every batch.
const LEASE_MS: i64 = 60_000;
const LEASE: &str = "retention";
const DAY_MS: i64 = 86_400_000;

/// What a pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub webhook_messages: u64,
    pub notifications: u64,
    pub sessions: u64,
    pub documents: u64,
    pub idempotency_records: u64,
    /// Whether a kind filled its batches: more may be due.
    pub more: bool,
}

impl Swept {
    pub fn total(&self) -> u64 {
        self.webhook_messages
            + self.notifications
            + self.sessions
            + self.documents
            + self.idempotency_records
    }
}

/// A tenant and its periods, if it set any.
#[derive(sqlx::FromRow)]
struct TenantPeriods {
    id: String,
    webhook_messages_days: Option<i64>,
    notifications_days: Option<i64>,
    ended_sessions_days: Option<i64>,
    onboarding_documents_days: Option<i64>,
    idempotency_hours: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    WebhookMessages,
    Notifications,
    Sessions,
    Documents,
    IdempotencyRecords,
}

/// One pass over every tenant, as `holder` (the node's name for the lease).
pub async fn sweep(app: &App, holder: &str) -> Result<Swept, StoreError> {
    let db = &app.db;
    let now = db.now_ms();
    let mut swept = Swept::default();
    let tenants: Vec<TenantPeriods> = sqlx::query_as(
        "SELECT t.id, p.webhook_messages_days, p.notifications_days, p.ended_sessions_days,
                    p.onboarding_documents_days, p.idempotency_hours
             FROM tenants t LEFT JOIN retention_policies p ON p.tenant_id = t.id ORDER BY t.id",
    )
    .fetch_all(db.reader())
    .await?;
    for row in tenants {
        let tenant = row.id;
        let periods = Periods {
            webhook_messages_days: row
                .webhook_messages_days
                .unwrap_or(super::DEFAULT_WEBHOOK_MESSAGES_DAYS),
            notifications_days: row.notifications_days,
            ended_sessions_days: row.ended_sessions_days,
            onboarding_documents_days: row.onboarding_documents_days,
            idempotency_hours: row.idempotency_hours,
        };
        let days = |d: i64| d.saturating_mul(DAY_MS);
        // The tenant's idempotency window, else the deployment's (`idempotency_ttl_hours`).
        let idempotency_hours = periods
            .idempotency_hours
            .unwrap_or_else(|| i64::try_from(app.config.idempotency_ttl_hours).unwrap_or(i64::MAX));
        for (kind, kept) in [
            (
                Kind::WebhookMessages,
                Some(days(periods.webhook_messages_days)),
            ),
            (Kind::Notifications, periods.notifications_days.map(days)),
            (Kind::Sessions, periods.ended_sessions_days.map(days)),
            (Kind::Documents, periods.onboarding_documents_days.map(days)),
            (
                Kind::IdempotencyRecords,
                Some(idempotency_hours.saturating_mul(3_600_000)),
            ),
        ] {
            let Some(kept) = kept else { continue };
            let cutoff = now.saturating_sub(kept);
            for _ in 0..BATCHES_PER_PASS {
                let due = due(db, kind, &tenant, cutoff).await?;
                if due.is_empty() {
                    break;
                }
                if !lease(db, holder).await? {
                    // Another node is sweeping: its pass does this.
                    return Ok(swept);
                }
                let n = delete(app, kind, &tenant, &due).await?;
                match kind {
                    Kind::WebhookMessages => swept.webhook_messages += n,
                    Kind::Notifications => swept.notifications += n,
                    Kind::Sessions => swept.sessions += n,
                    Kind::Documents => swept.documents += n,
                    Kind::IdempotencyRecords => swept.idempotency_records += n,
                }
                if due.len() < BATCH {
                    break;
                }
                swept.more = true;
            }
        }
    }
    Ok(swept)
}

/// Takes (or renews) the sweep's lease for `holder`; `false` if another node holds it.
async fn lease(db: &Db, holder: &str) -> Result<bool, StoreError> {
    let now = db.now_ms();
    let mut tx = db.begin().await?;
    let held = sqlx::query(
        "INSERT INTO worker_leases (name, holder, until) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
         WHERE worker_leases.until < $4 OR worker_leases.holder = excluded.holder",
    )
    .bind(LEASE)
    .bind(holder)
    .bind(now + LEASE_MS)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(held == 1)
}

/// The oldest due rows of `kind` of `tenant`: ids, and for documents their storage keys.
async fn due(
    db: &Db,
    kind: Kind,
    tenant: &str,
    cutoff: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let sql = match kind {
        Kind::WebhookMessages => {
            "SELECT id, '' FROM webhook_messages
             WHERE tenant_id = $1 AND created_at < $2 AND status <> 'pending'
             ORDER BY created_at LIMIT $3"
        }
        Kind::Notifications => {
            "SELECT n.id, '' FROM notifications n
             WHERE n.tenant_id = $1 AND n.created_at < $2
               AND NOT EXISTS (SELECT 1 FROM notification_deliveries d
                               WHERE d.notification_id = n.id AND d.status = 'pending')
             ORDER BY n.created_at LIMIT $3"
        }
        Kind::Sessions => {
            "SELECT id, '' FROM channel_sessions
             WHERE tenant_id = $1 AND ended_at < $2 ORDER BY ended_at LIMIT $3"
        }
        Kind::IdempotencyRecords => {
            "SELECT idem_key, '' FROM idempotency_keys
             WHERE tenant_id = $1 AND created_at < $2 ORDER BY created_at LIMIT $3"
        }
        Kind::Documents => {
            "SELECT d.id, d.storage_key FROM onboarding_documents d
             JOIN onboardings o ON o.id = d.onboarding_id
             WHERE o.tenant_id = $1 AND COALESCE(o.finished_at, o.expires_at) < $2
             ORDER BY d.created_at LIMIT $3"
        }
    };
    Ok(sqlx::query_as(sql)
        .bind(tenant)
        .bind(cutoff)
        .bind(BATCH as i64)
        .fetch_all(db.reader())
        .await?)
}

/// Deletes one batch of `kind` (and what hangs from it) in one transaction; how many rows of
/// `kind` it deleted.
async fn delete(
    app: &App,
    kind: Kind,
    tenant: &str,
    due: &[(String, String)],
) -> Result<u64, StoreError> {
    let mut ids: Vec<&str> = due.iter().map(|(id, _)| id.as_str()).collect();
    if let Kind::Documents = kind {
        // The files first: a record whose file could not be removed stays for the next pass.
        let mut removed = Vec::with_capacity(ids.len());
        for (id, key) in due {
            match app.documents.delete(key).await {
                Ok(()) => removed.push(id.as_str()),
                Err(e) => {
                    tracing::warn!(error = %e, document = %id, "cannot remove a document past its retention; will retry")
                }
            }
        }
        ids = removed;
        if ids.is_empty() {
            return Ok(0);
        }
    }
    let list = format!("({})", placeholders(2, ids.len(), 1));
    let statements: &[String] = &match kind {
        Kind::WebhookMessages => vec![
            format!(
                "DELETE FROM webhook_attempts WHERE message_id IN
                 (SELECT id FROM webhook_messages WHERE tenant_id = $1 AND id IN {list})"
            ),
            format!("DELETE FROM webhook_messages WHERE tenant_id = $1 AND id IN {list}"),
        ],
        Kind::Notifications => vec![
            format!(
                "DELETE FROM notification_deliveries WHERE tenant_id = $1 AND notification_id IN {list}"
            ),
            format!("DELETE FROM notifications WHERE tenant_id = $1 AND id IN {list}"),
        ],
        Kind::Sessions => vec![
            format!(
                "DELETE FROM handoffs WHERE tenant_id = $1
                 AND (source_session_id IN {list} OR target_session_id IN {list})"
            ),
            format!("DELETE FROM channel_sessions WHERE tenant_id = $1 AND id IN {list}"),
        ],
        Kind::IdempotencyRecords => vec![format!(
            "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND idem_key IN {list}"
        )],
        Kind::Documents => vec![format!(
            "DELETE FROM onboarding_documents WHERE id IN {list}
             AND onboarding_id IN (SELECT id FROM onboardings WHERE tenant_id = $1)"
        )],
    };
    let mut tx = app.db.begin().await?;
    let mut deleted = 0;
    for (i, sql) in statements.iter().enumerate() {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(tenant);
        for id in &ids {
            q = q.bind(*id);
        }
        let n = q.execute(&mut *tx).await?.rows_affected();
        if i == statements.len() - 1 {
            deleted = n;
        }
    }
    tx.commit().await?;
    Ok(deleted)
}
