//! The staff directory: users with their roles and teams. Approvals find approvers by role
//! here, assignment checks for `manager` here, and views show names from here. A user named
//! anywhere before the bank describes it is created with only its id.

mod routes;
pub mod store;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// Routes under `/api/v1/omni`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}
