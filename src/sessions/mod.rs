//! Cross-channel sessions (seed 000): a customer's session on a channel, handed over to another
//! channel with a single-use token and resumed there with its context.

mod routes;
pub mod store;

use sqlx::AnyConnection;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::ApiResult;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

/// A customer's sessions per channel: `(channel, sessions, last activity in ms)`.
pub async fn channel_activity(
    conn: &mut AnyConnection,
    tenant: &str,
    customer: &str,
) -> ApiResult<Vec<(String, i64, i64)>> {
    Ok(store::channel_activity(conn, tenant, customer).await?)
}
