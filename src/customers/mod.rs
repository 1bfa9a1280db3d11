//! Customers (seed 000): their profile and preferences, and the unified profile that joins
//! them with their activity on each channel. A customer named by a journey before the bank
//! describes it is created with only its id ([`ensure_customer`]).

pub mod quiet_hours;
mod routes;

pub mod store;

use crate::store::Conn;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::StoreError;
use crate::store::known::KnownIds;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

/// Makes sure the customer exists, creating it with only its id, in the caller's transaction.
/// A customer already known to this process costs no statement.
pub async fn ensure_customer(
    conn: &mut Conn,
    known: &std::sync::Arc<KnownIds>,
    tenant: &str,
    id: &str,
    now: i64,
) -> Result<(), StoreError> {
    if known.contains(tenant, id) {
        return Ok(());
    }
    if store::insert_if_missing(conn, tenant, id, now).await? {
        // Found stored: known once this transaction commits.
        let (known, tenant, id) = (known.clone(), tenant.to_owned(), id.to_owned());
        conn.after_commit(move || known.remember(&tenant, &id));
    }
    Ok(())
}
