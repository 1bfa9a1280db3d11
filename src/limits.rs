//! Bounds on what one client may ask of the server: a request rate per API key, the size of a
//! request's head, and a time limit on every request. The bounds on connections and on heads
//! while they are read are the HTTP server's (`server`); the body and JSON depth bounds are
//! the extractors' (`api`).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::AppState;
use crate::config::LimitsConfig;
use crate::error::ApiError;

/// Requests per API key, as a generic cell rate (a token bucket refilled continuously).
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

impl RateLimits {
    /// The limiter the configuration asks for, or none when the rate is 0.
    pub fn from_config(config: &LimitsConfig) -> Option<Self> {
        let rate = NonZeroU32::new(config.rate_per_second)?;
        let burst = NonZeroU32::new(config.rate_burst).unwrap_or(rate);
        let clock = DefaultClock::default();
        let limiter = DefaultKeyedRateLimiter::dashmap_with_clock(
            Quota::per_second(rate).allow_burst(burst),
            clock.clone(),
        );
        Some(Self { limiter, clock })
    }

    /// Counts one request of `key_id`; a request over the limit is refused with the wait, in
    /// whole seconds (at least one), before the key may ask again.
    pub fn check(&self, key_id: &str) -> Result<(), u64> {
        match self.limiter.check_key(&key_id.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(secs.max(1))
            }
        }
    }

    /// Forgets keys whose bucket is full again, so memory follows the keys in use.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The answer to a request over its key's rate.
pub fn rate_limited(retry_after: u64) -> ApiError {
    let mut err = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("This API key has made too many requests; retry in {retry_after} s"),
    );
    err.retry_after = Some(retry_after);
    err
}

/// Middleware for every route: a request whose head (request line and headers, counted as
/// sent) is over `max_header_bytes` is 431 `headers_too_large`.
pub async fn header_bounds(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.limits.max_header_bytes;
    let target = req.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let line = req.method().as_str().len() + target + 12;
    let head = req.headers().iter().fold(line, |n, (name, value)| {
        n + name.as_str().len() + value.len() + 4
    });
    if head > limit {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("The request line and headers take {head} bytes; at most {limit} are accepted"),
        )
        .into_response();
    }
    next.run(req).await
}

/// Middleware for every route: a request not answered within `request_timeout_secs` is
/// abandoned (a transaction it had not committed rolls back). Whose the delay was decides the
/// answer: a body the client had not finished sending is 408 `body_timeout` (the client's
/// doing: send it whole); otherwise the server was too slow, 503 `request_timeout` (retry it).
/// The limit ends when the answer's head is ready: an event stream's body runs on.
pub async fn request_timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = Duration::from_secs(state.config.limits.request_timeout_secs);
    let received = Arc::new(AtomicBool::new(false));
    let req = req.map(|body| {
        // A request without a body (a GET, say) has nothing to wait for.
        let empty = http_body::Body::is_end_stream(&body)
            || http_body::Body::size_hint(&body).exact() == Some(0);
        received.store(empty, Ordering::Release);
        axum::body::Body::new(Watched {
            inner: body,
            received: received.clone(),
        })
    });
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) if !received.load(Ordering::Acquire) => {
            tracing::info!(
                limit_secs = limit.as_secs(),
                "request body not received in time"
            );
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "The request body did not arrive within {} s; send it whole",
                    limit.as_secs()
                ),
            )
            .into_response()
        }
        Err(_) => {
            tracing::warn!(limit_secs = limit.as_secs(), "request timed out");
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                format!(
                    "The request was not answered within {} s and was abandoned; retry it with the same Idempotency-Key",
                    limit.as_secs()
                ),
            );
            err.retry_after = Some(1);
            err.into_response()
        }
    }
}

/// A request body that notes when it has been received to its end (or was empty).
struct Watched {
    inner: axum::body::Body,
    received: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || self.inner.is_end_stream() {
            self.received.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.received.store(true, Ordering::Release);
        }
        end
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32) -> RateLimits {
        RateLimits::from_config(&LimitsConfig {
            rate_per_second: rate,
            rate_burst: burst,
            ..LimitsConfig::default()
        })
        .expect("a limit")
    }

    #[test]
    fn no_rate_means_no_limiter() {
        assert!(RateLimits::from_config(&LimitsConfig::default()).is_none());
    }

    #[test]
    fn burst_then_refusal_with_a_wait_of_at_least_a_second() {
        let l = limits(1, 3);
        for _ in 0..3 {
            assert_eq!(l.check("key_a"), Ok(()));
        }
        let wait = l.check("key_a").unwrap_err();
        assert!((1..=2).contains(&wait), "wait {wait}");
    }

    #[test]
    fn keys_are_counted_apart() {
        let l = limits(1, 1);
        assert_eq!(l.check("key_a"), Ok(()));
        assert!(l.check("key_a").is_err());
        assert_eq!(l.check("key_b"), Ok(()));
    }
}
