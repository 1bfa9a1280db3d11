//! Journey templates and the journeys that run them (seed 001).

pub mod model;
mod routes;
pub mod store;
mod template_routes;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// Routes under `/api/v1/omni`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(template_routes::router())
        .merge(routes::router())
}
