//! The staff directory: users with their roles and teams. Approvals find approvers by role
//! here, assignment checks for `manager` here, and views show names from here. A user named
//! anywhere before the bank describes it is created with only its id ([`ensure_users`]).

mod routes;
pub mod store;

use crate::store::Conn;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::StoreError;
use crate::store::known::KnownIds;

/// Routes under `/api/v1/omni`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

/// Makes sure each of `ids` exists in the tenant's directory, creating the missing ones with
/// only their id, in the caller's transaction. Ids already known cost no statement.
pub async fn ensure_users(
    conn: &mut Conn,
    known: &std::sync::Arc<KnownIds>,
    tenant: &str,
    ids: &[&str],
    now: i64,
) -> Result<(), StoreError> {
    let mut missing: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| !known.contains(tenant, id))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort_unstable();
    missing.dedup();
    let inserted = store::insert_missing_users(conn, tenant, &missing, now).await?;
    // Found stored: known once this transaction commits (it may have been another writer's of
    // the same uncommitted batch).
    let found: Vec<String> = missing
        .into_iter()
        .filter(|id| !inserted.iter().any(|i| i == id))
        .map(str::to_owned)
        .collect();
    if !found.is_empty() {
        let (known, tenant) = (known.clone(), tenant.to_owned());
        conn.after_commit(move || {
            for id in found {
                known.remember(&tenant, &id);
            }
        });
    }
    Ok(())
}
