//! The HTTP server: HTTP/1.1 and cleartext HTTP/2 on one listener, with bounds that keep slow
//! or greedy clients from exhausting it (`limits` in the configuration):
//!
//! - a connection must send each request's head within `header_read_timeout_secs`, and is
//!   closed after as long idle between requests: a slowloris client holds a connection for
//!   that long, never longer;
//! - a request head over twice `max_header_bytes`, or with more than 100 headers, is refused
//!   while it is read: 431 without a body, and the connection closed (a head between the
//!   bound and twice it is 431 with problem details, from `limits::header_bounds`);
//! - at most `max_connections` are open at once; further clients wait in the listen queue;
//! - a connection that carries no bytes either way for `idle_timeout_secs` is closed
//!   gracefully (HTTP/2 sends `GOAWAY` and lets its streams finish; HTTP/1 closes after the
//!   request under way): an idle HTTP/2 client, to which the head timeout does not apply once
//!   it has spoken, holds no connection slot for ever. (An idle HTTP/1 connection is closed by
//!   the head timeout first: hyper times the wait for the next request's head as part of it,
//!   and has no keep-alive timer of its own.)
//!
//! `axum::serve` sets none of these (it runs hyper without a timer, so no head timeout
//! applies), hence this accept loop on `hyper-util`'s server.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::LimitsConfig;

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and waits for
/// the open connections to finish the requests they carry.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: &LimitsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hard_cap = limits.max_header_bytes.saturating_mul(2);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        .max_buf_size(hard_cap.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(hard_cap).unwrap_or(u32::MAX));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let idle_limit = Duration::from_secs(limits.idle_timeout_secs.max(1));
    // How long a connection asked to close may take to finish what it carries (a request
    // under way has `request_timeout_secs`); then it is dropped, whether or not the client
    // acknowledged (an HTTP/2 client that never answers the closing PING cannot hold it).
    let grace = Duration::from_secs(limits.request_timeout_secs.saturating_add(5));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
        };
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|req: hyper::Request<Incoming>| req.map(axum::body::Body::new)),
        );
        let activity = Arc::new(Activity::new());
        let io = Watched {
            inner: TokioIo::new(stream),
            activity: activity.clone(),
        };
        let conn = builder.serve_connection(io, service).into_owned();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let mut closing: Option<tokio::time::Instant> = None;
            loop {
                tokio::select! {
                    ended = conn.as_mut() => {
                        if let Err(e) = ended {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stopping.wait_for(|stop| *stop), if closing.is_none() => {
                        conn.as_mut().graceful_shutdown();
                        closing = Some(tokio::time::Instant::now() + grace);
                    }
                    () = tokio::time::sleep(activity.left(idle_limit)), if closing.is_none() => {
                        if activity.idle() >= idle_limit {
                            conn.as_mut().graceful_shutdown();
                            closing = Some(tokio::time::Instant::now() + grace);
                        }
                    }
                    () = tokio::time::sleep_until(closing.unwrap_or_else(tokio::time::Instant::now)),
                        if closing.is_some() => {
                        tracing::debug!("a closing connection outlived its grace; dropped");
                        break;
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    // Every connection finishes the requests it carries, and gives its slot back.
    let _ = stop.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// When a connection last carried a byte either way.
struct Activity {
    opened: Instant,
    /// Milliseconds from `opened`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(last)
    }

    /// How long until the connection will have been idle for `limit`, if nothing moves (at
    /// least a tenth of a second, so that the watch does not spin).
    fn left(&self, limit: Duration) -> Duration {
        limit
            .saturating_sub(self.idle())
            .max(Duration::from_millis(100))
    }
}

/// A connection's stream, noting when bytes go either way.
struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            self.activity.touch();
        }
        read
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            self.activity.touch();
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            self.activity.touch();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
