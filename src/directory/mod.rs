//! The staff directory: users with their roles and teams. Approvals find approvers by role
//! here, assignment checks for `manager` here, and views show names from here. A user named
//! anywhere before the bank describes it is created with only its id ([`ensure_users`]).

mod routes;
pub mod store;

use sqlx::AnyConnection;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::StoreError;

/// Routes under `/api/v1/omni`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

/// Users this process has seen stored. Users are never deleted, so "stored" stays true and
/// needs no invalidation, on one node or many; an id this process inserts itself is remembered
/// only once a later request finds it stored, so a rolled-back insert is never remembered.
pub struct KnownUsers(quick_cache::sync::Cache<(String, String), ()>);

impl KnownUsers {
    pub fn new(capacity: usize) -> Self {
        Self(quick_cache::sync::Cache::new(capacity))
    }
}

impl std::fmt::Debug for KnownUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KnownUsers({} entries)", self.0.len())
    }
}

/// Makes sure each of `ids` exists in the tenant's directory, creating the missing ones with
/// only their id, in the caller's transaction. Ids already known cost no statement.
pub async fn ensure_users(
    conn: &mut AnyConnection,
    known: &KnownUsers,
    tenant: &str,
    ids: &[&str],
    now: i64,
) -> Result<(), StoreError> {
    let mut missing: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| {
            known
                .0
                .get(&(tenant.to_owned(), (*id).to_owned()))
                .is_none()
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort_unstable();
    missing.dedup();
    let inserted = store::insert_missing_users(conn, tenant, &missing, now).await?;
    for id in missing {
        if !inserted.iter().any(|i| i == id) {
            known.0.insert((tenant.to_owned(), id.to_owned()), ());
        }
    }
    Ok(())
}
