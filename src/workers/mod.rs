//! Background loops that run beside the API in every `serve` process.
//!
//! Each loop stops when the shutdown signal flips. Work is idempotent per row, so any number
//! of processes can run the same loops on one database.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::AppState;
use crate::approvals;
use crate::journeys;
use crate::notifications;
use crate::retention;
use crate::sessions;
use crate::store::Backend;
use crate::streams;
use crate::webhooks;

/// Starts the workers; the handle completes when all have stopped, once `state.stopping` turns.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    let stop = state.stopping.clone();
    let mut workers = tokio::task::JoinSet::new();
    if state.db.backend() == Backend::Postgres {
        let (keys, url, stop) = (
            state.keys.clone(),
            state.config.database_url.expose().to_owned(),
            stop.clone(),
        );
        supervise(&mut workers, &state, "key_revocations", async move {
            keys.listen(url, stop).await
        });
    } else {
        let (keys, db, until) = (state.keys.clone(), state.db.clone(), stop.clone());
        supervise(&mut workers, &state, "key_revocations", async move {
            keys.poll_revocations(db, until).await
        });
        // SQLite's log checkpoints (PostgreSQL has none to take).
        let (db, until) = (state.db.clone(), stop.clone());
        supervise(&mut workers, &state, "checkpoint", async move {
            db.checkpoint(until).await
        });
    }
    supervise(
        &mut workers,
        &state,
        "approval_expiry",
        sweep_expired_approvals(state.clone(), stop.clone()),
    );
    supervise(
        &mut workers,
        &state,
        "deadlines",
        announce_deadlines(state.clone(), stop.clone()),
    );
    supervise(
        &mut workers,
        &state,
        "sla_fold",
        fold_sla_figures(state.clone(), stop.clone()),
    );
    supervise(
        &mut workers,
        &state,
        "idle_sessions",
        sweep_idle_sessions(state.clone(), stop.clone()),
    );
    supervise(
        &mut workers,
        &state,
        "streams",
        streams::watch(state.clone(), stop.clone()),
    );
    supervise(
        &mut workers,
        &state,
        "notifications",
        notifications::worker::run(state.clone(), stop.clone()),
    );
    supervise(
        &mut workers,
        &state,
        "webhooks",
        webhooks::worker::run(state.clone(), stop.clone()),
    );
    supervise(
        &mut workers,
        &state,
        "retention",
        sweep_retention(state.clone(), stop.clone()),
    );
    supervise(&mut workers, &state, "metrics_upkeep", metrics_upkeep(stop));
    tokio::spawn(async move { while workers.join_next().await.is_some() {} })
}

/// What has outlived its retention (and expired idempotency records), deleted in batches on
/// one node at a time; an idle pass only reads.
async fn sweep_retention(state: AppState, stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(state.config.retention_sweep_secs.max(1));
    // This process's name for the sweep's lease.
    let holder = crate::ids::new_id("node_");
    in_batches(every, stop, "retention sweep", || async {
        let swept = retention::sweep::sweep(&state, &holder).await?;
        if swept.total() > 0 {
            tracing::info!(
                webhook_messages = swept.webhook_messages,
                notifications = swept.notifications,
                sessions = swept.sessions,
                documents = swept.documents,
                idempotency_records = swept.idempotency_records,
                "retention sweep deleted what outlived its period"
            );
        }
        Ok(swept.more)
    })
    .await
}

/// Runs `work` as the worker `name`: noted as running, and, if it ends while the process is
/// still serving (it returned, or panicked), as stopped, which `/readyz` and `/metrics` report.
fn supervise(
    workers: &mut tokio::task::JoinSet<()>,
    state: &AppState,
    name: &'static str,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (registry, stopping) = (state.workers.clone(), state.stopping.clone());
    registry.started(name);
    workers.spawn(async move {
        let ended = tokio::spawn(work).await;
        let stopping = *stopping.borrow();
        if !stopping {
            match ended {
                Ok(()) => tracing::error!(worker = name, "a background worker ended; /readyz reports it"),
                Err(e) => tracing::error!(worker = name, error = %e, "a background worker failed; /readyz reports it"),
            }
        }
        registry.ended(name, stopping);
    });
}

/// Drains the metrics recorder's histograms now and then, so that a node nobody scrapes keeps
/// them bounded.
async fn metrics_upkeep(mut stop: watch::Receiver<bool>) {
    loop {
        if let Some(handle) = crate::telemetry::handle() {
            handle.run_upkeep();
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn sweep_expired_approvals(state: AppState, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(state.config.approval_sweep_secs.max(1));
    loop {
        match approvals::sweep_expired(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "approval requests past their expiry closed"),
            Err(e) => {
                tracing::warn!(code = e.code, detail = %e.detail, "approval sweep failed; will retry")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Runs `pass` after each `every` (a process starting waits one too), or again at once after a
/// pass that answers `true` (it did a full batch, so more may be waiting), until `stop` turns.
/// A failed pass is logged as `what` and tried again after the interval.
async fn in_batches<F, Fut>(
    every: Duration,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::error::ApiResult<bool>>,
{
    let mut busy = false;
    loop {
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
        busy = pass().await.unwrap_or_else(|e| {
            tracing::warn!(code = e.code, detail = %e.detail, "{what} failed; will retry");
            false
        });
        if *stop.borrow() {
            return;
        }
    }
}

/// Journeys' passed deadlines, then approvals' reminders; an idle pass only reads.
async fn announce_deadlines(state: AppState, stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(state.config.deadline_sweep_secs.max(1));
    in_batches(every, stop, "deadline sweep", || async {
        let journeys = journeys::announce_deadlines(&state).await?;
        let reminded = approvals::send_reminders(&state).await?;
        if journeys + reminded > 0 {
            tracing::info!(journeys, reminded, "deadlines announced");
        }
        Ok(journeys >= journeys::DEADLINE_BATCH || reminded >= approvals::REMINDER_BATCH)
    })
    .await
}

/// Folds journeys' starts and ends into the SLA figures, as often as deadlines are swept.
async fn fold_sla_figures(state: AppState, stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(state.config.deadline_sweep_secs.max(1));
    in_batches(every, stop, "SLA figures fold", || async {
        Ok(journeys::fold_sla_figures(&state).await? >= journeys::FOLD_BATCH)
    })
    .await
}

async fn sweep_idle_sessions(state: AppState, mut stop: watch::Receiver<bool>) {
    // Often enough that an idle session's end is recorded within a minute of its timeout.
    let every = Duration::from_secs(state.config.session_idle_timeout_secs.clamp(1, 60));
    loop {
        match sessions::sweep_idle(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ended = n, "idle sessions ended"),
            Err(e) => {
                tracing::warn!(code = e.code, detail = %e.detail, "session sweep failed; will retry")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}
