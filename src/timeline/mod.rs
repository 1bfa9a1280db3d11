//! The unified timeline (seed 001): an entity's events through the entity index, and the
//! verification and export of the hash chains that make it tamper-evident (`events::chain`).

mod routes;
pub mod store;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// Routes under `/api/v1/omni`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}
