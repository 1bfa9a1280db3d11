//! Metrics in the Prometheus text format, served at `/metrics` (docs/operations.md#metrics).
//!
//! Counters and histograms are recorded where things happen, through the `metrics` crate's
//! macros, into one process-wide Prometheus recorder (`metrics-exporter-prometheus`): requests
//! per route and status ([`track`]), commit latency (`store`), webhook and notification
//! delivery outcomes (their workers), chain verification failures (`timeline`). Gauges of what
//! is waiting (the workers' queues and their ages) and of the database pools are read when
//! Prometheus scrapes, by `lib.rs`'s `/metrics` handler: a node computes them only when asked.
//! Which workers run, and whether one stopped, is [`Workers`]' (and `/readyz`'s).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Seconds: from a millisecond to a minute.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use; `None` if another recorder was installed
/// first (an embedding program's), in which case Omnirail's metrics go to it.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".to_owned()),
                    LATENCY_BUCKETS,
                )
                .and_then(|b| b.install_recorder());
            match built {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot install the metrics recorder; /metrics shows only what is read at scrape time");
                    None
                }
            }
        })
        .as_ref()
}

/// Middleware around every route: counts each request by method, route (its pattern, never
/// the ids in its path) and status, and records its duration.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("omnirail_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("omnirail_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
}

/// The background workers of a process, and whether each is running.
#[derive(Debug, Default)]
pub struct Workers {
    /// Name → running; a worker that ended before the process began to stop is `false`.
    state: Mutex<BTreeMap<&'static str, bool>>,
}

impl Workers {
    /// Notes that `name` started.
    pub fn started(&self, name: &'static str) {
        self.lock().insert(name, true);
    }

    /// Notes that `name` ended; `stopping`: because the process is stopping (not a failure).
    pub fn ended(&self, name: &'static str, stopping: bool) {
        if stopping {
            self.lock().remove(name);
        } else {
            self.lock().insert(name, false);
        }
    }

    /// The workers that stopped while the process was still serving.
    pub fn stopped(&self) -> Vec<&'static str> {
        self.lock()
            .iter()
            .filter(|(_, running)| !**running)
            .map(|(name, _)| *name)
            .collect()
    }

    /// Every worker with whether it runs.
    pub fn all(&self) -> Vec<(&'static str, bool)> {
        self.lock().iter().map(|(n, r)| (*n, *r)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, bool>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_ends_while_serving_is_stopped_and_one_ended_by_the_stop_is_not() {
        let w = Workers::default();
        w.started("webhooks");
        w.started("retention");
        assert!(w.stopped().is_empty());
        w.ended("retention", true);
        assert!(w.stopped().is_empty());
        w.ended("webhooks", false);
        assert_eq!(w.stopped(), ["webhooks"]);
        assert_eq!(w.all(), [("webhooks", false)]);
    }
}
