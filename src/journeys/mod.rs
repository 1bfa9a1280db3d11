//! Journey templates and the journeys that run them (seed 001).

mod deadlines;
pub mod fields;
pub mod model;
mod routes;
mod sla_analytics;
pub mod store;
mod template_routes;

use std::sync::Arc;

use crate::store::Conn;
use utoipa_axum::router::OpenApiRouter;

use self::store::TemplateVersion;
use crate::AppState;
use crate::error::StoreError;

/// Routes under `/api/v1/omni`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(template_routes::router())
        .merge(routes::router())
        .merge(sla_analytics::router())
}

pub use deadlines::{BATCH as DEADLINE_BATCH, sweep as announce_deadlines};
pub use routes::on_approval_closed;
pub(crate) use routes::{Advance, Loaded, advance_step, create, load, new_row};
pub use sla_analytics::{FOLD_BATCH, fold as fold_sla_figures};

type VersionKey = (String, String, i64);

/// Template versions in memory. A version never changes once written, so a cached one is never
/// stale and needs no invalidation, on one node or many: every journey action reads its steps
/// from here instead of from the database.
pub struct VersionCache(
    quick_cache::sync::Cache<VersionKey, Arc<TemplateVersion>>,
    /// The version each template was last seen at: only a guess (a template moves on), which a
    /// journey's creation checks in its insert.
    quick_cache::sync::Cache<(String, String), i64>,
);

impl VersionCache {
    pub fn new(capacity: usize) -> Self {
        Self(
            quick_cache::sync::Cache::new(capacity),
            quick_cache::sync::Cache::new(capacity),
        )
    }

    /// The version `template` was last seen at by this process, if any.
    pub fn latest(&self, tenant: &str, template: &str) -> Option<i64> {
        self.1.get(&(tenant.to_owned(), template.to_owned()))
    }

    /// Records that `template` was seen at `version`.
    pub fn saw(&self, tenant: &str, template: &str, version: i64) {
        self.1
            .insert((tenant.to_owned(), template.to_owned()), version);
    }

    /// The version, from memory or else from the database through `conn`.
    pub async fn get(
        &self,
        conn: &mut Conn,
        tenant: &str,
        template_id: &str,
        version: i64,
    ) -> Result<Option<Arc<TemplateVersion>>, StoreError> {
        let key = (tenant.to_owned(), template_id.to_owned(), version);
        if let Some(hit) = self.0.get(&key) {
            return Ok(Some(hit));
        }
        let Some(loaded) = store::template_version(conn, tenant, template_id, version).await?
        else {
            return Ok(None);
        };
        let loaded = Arc::new(loaded);
        self.0.insert(key, loaded.clone());
        Ok(Some(loaded))
    }
}

impl std::fmt::Debug for VersionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VersionCache({} entries)", self.0.len())
    }
}
