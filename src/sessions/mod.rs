//! Cross-channel sessions (seed 000): a customer's session on a channel, handed over to another
//! channel with a single-use token and resumed there with its context.

mod routes;

pub(crate) use routes::handoff_refusal;
pub mod store;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::ApiResult;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

/// Ends sessions idle longer than the timeout, recording `omni.session.ended` once per session
/// (the end is a conditional update: another process, or this one after a restart, finds
/// nothing left to do). Returns how many it ended.
pub async fn sweep_idle(app: &AppState) -> ApiResult<usize> {
    let idle_ms = app.config.session_idle_ms();
    let before = app.db.now_ms().saturating_sub(idle_ms);
    let due = store::idle(app.db.reader(), before, 100).await?;
    let mut ended = 0;
    for (tenant, id) in due {
        let mut tx = app.db.begin().await?;
        let Some(row) = store::get_session(&mut *tx, &tenant, &id).await? else {
            continue;
        };
        // Ended at the moment it went idle, not at the moment the sweep noticed.
        let at = row.last_seen_at.saturating_add(idle_ms);
        if row.last_seen_at >= before
            || !store::end_session(&mut tx, &tenant, &id, at, "idle_timeout").await?
        {
            continue;
        }
        routes::record_ended(&mut tx, &tenant, &row, "idle_timeout", app.db.now_ms()).await?;
        tx.commit().await?;
        ended += 1;
    }
    Ok(ended)
}
