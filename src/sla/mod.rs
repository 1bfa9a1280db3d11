//! Service levels: a tenant's SLA policy (at-risk share, approval reminders, business
//! calendar, escalation rules) and the rules that turn it into deadlines.
//!
//! This module only computes. The journeys and approvals store the deadlines it computes on
//! their rows and announce them when they pass (`journeys::deadlines`, `approvals`), so that a
//! deadline's event commits with the change that records it having been announced.

pub mod calendar;
pub mod model;
mod routes;
pub mod store;

pub use model::{Escalation, NotifyParty, Policy, SlaStatus, Trigger};
pub use routes::router;

use crate::error::StoreError;
use sqlx::{Any, Executor};

/// The tenant's policy: its own, else the defaults.
pub async fn policy<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    tenant: &str,
) -> Result<Policy, StoreError> {
    match store::get_policy(ex, tenant).await? {
        Some(row) => routes::policy_of(&row),
        None => Ok(Policy::default()),
    }
}
