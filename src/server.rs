//! The HTTP server: HTTP/1.1 and cleartext HTTP/2 on one listener, with bounds that keep slow
//! or greedy clients from exhausting it (`limits` in the configuration):
//!
//! - a request's head must arrive whole within `header_read_timeout_secs` of its first byte
//!   (the first request's, of the connection's opening): a slowloris client holds a
//!   connection for that long, never longer;
//! - a connection with no request under way is closed once `keep_alive_secs` have passed since
//!   its last request ended (or since it opened): idle keep-alive connections, HTTP/1 and
//!   HTTP/2 alike (whose PINGs do not count as use), are closed gracefully (HTTP/2: `GOAWAY`),
//!   on their own timer, longer than the head's;
//! - a connection asked to close (idle, or at shutdown) that has not finished within
//!   `request_timeout_secs` and 5 s is dropped, whether the client answered or not;
//! - a request head over twice `max_header_bytes`, or with more than 100 headers, is refused
//!   while it is read: 431 without a body, and the connection closed (a head between the
//!   bound and twice it is 431 with problem details, from `limits::header_bounds`);
//! - at most `max_connections` are open at once; further clients wait in the listen queue.
//!
//! `axum::serve` sets none of these, and hyper times the wait for the next request's head as
//! part of the head timeout (it has no keep-alive timer of its own): hence this accept loop on
//! `hyper-util`'s server, whose connections are watched ([`Wire`]) for when bytes arrive and
//! when requests begin and end.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    let head_limit = Duration::from_secs(limits.header_read_timeout_secs);
    let keep_alive = Duration::from_secs(limits.keep_alive_secs);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // hyper's head timer also runs while a connection waits for its next request: set to
        // the keep-alive, it is a backstop; the head's own bound is the watch's.
        .header_read_timeout(keep_alive.max(head_limit))
        .max_buf_size(hard_cap.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(hard_cap).unwrap_or(u32::MAX));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
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
        let wire = Arc::new(Wire::new());
        let (begins, ends) = (wire.clone(), wire.clone());
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(move |req: hyper::Request<Incoming>| {
                    begins.request_began();
                    req.map(axum::body::Body::new)
                })
                .map_response(move |res: axum::response::Response| {
                    let ended = RequestEnds(Some(ends.clone()));
                    res.map(|body| {
                        axum::body::Body::new(Tracked {
                            body,
                            _ended: ended,
                        })
                    })
                }),
        );
        let io = TokioIo::new(Watched {
            stream,
            wire: wire.clone(),
        });
        let conn = builder.serve_connection(io, service).into_owned();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let mut closing: Option<Instant> = None;
            loop {
                let next = match closing {
                    Some(at) => at,
                    None => wire.next_check(head_limit, keep_alive),
                };
                tokio::select! {
                    ended = conn.as_mut() => {
                        if let Err(e) = ended {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    // A head began: its deadline is nearer than the one slept for.
                    () = wire.head_began.notified(), if closing.is_none() => {}
                    _ = stopping.wait_for(|stop| *stop), if closing.is_none() => {
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now() + grace);
                    }
                    () = tokio::time::sleep_until(next.into()) => {
                        if closing.is_some() {
                            tracing::debug!("a closing connection outlived its grace; dropped");
                            break;
                        }
                        match wire.overdue(head_limit, keep_alive) {
                            // A head too slow: no request is under way, nothing to finish.
                            Some(Overdue::Head) => break,
                            Some(Overdue::Idle) => {
                                conn.as_mut().graceful_shutdown();
                                closing = Some(Instant::now() + grace);
                            }
                            None => {}
                        }
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

/// What a connection has outlived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overdue {
    /// A request head begun and not finished within the head's bound.
    Head,
    /// No request under way for the keep-alive.
    Idle,
}

/// A connection's state, as its stream and its requests tell it: when the head under way began
/// (its first byte, while no request was under way), how many requests are under way, and
/// when the last one ended. Times are milliseconds from `opened`.
#[derive(Debug)]
struct Wire {
    opened: Instant,
    /// The first byte of a head not yet dispatched, plus one; 0: none.
    head_from: AtomicU64,
    in_flight: AtomicUsize,
    /// When the last request ended (0: none yet, so the connection's opening counts).
    last_end: AtomicU64,
    /// Whether the client spoke HTTP/2 (its frames are no request heads): known once its
    /// first bytes are the whole preface.
    http2: AtomicBool,
    /// The connection's first bytes, until they tell the protocol (`None` once they have).
    first: std::sync::Mutex<Option<Vec<u8>>>,
    /// Wakes the connection's watch when a head begins: its deadline came nearer.
    head_began: tokio::sync::Notify,
}

const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl Wire {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            head_from: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            last_end: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            first: std::sync::Mutex::new(Some(Vec::new())),
            head_began: tokio::sync::Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// Bytes arrived: the start of a head, if no request is under way and none had begun.
    fn read(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        {
            let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(seen) = first.as_mut() {
                let want = HTTP2_PREFACE.len() - seen.len();
                seen.extend_from_slice(&bytes[..bytes.len().min(want)]);
                let n = seen.len();
                if seen[..] != HTTP2_PREFACE[..n] {
                    *first = None; // HTTP/1: timed as heads from the first byte.
                } else if n == HTTP2_PREFACE.len() {
                    *first = None;
                    self.http2.store(true, Ordering::Release);
                    self.head_from.store(0, Ordering::Release);
                    return;
                }
            }
        }
        if !self.http2.load(Ordering::Acquire)
            && self.in_flight.load(Ordering::Acquire) == 0
            && self
                .head_from
                .compare_exchange(0, self.now() + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.head_began.notify_one();
        }
    }

    fn request_began(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_from.store(0, Ordering::Release);
    }

    fn request_ended(&self) {
        self.last_end.store(self.now().max(1), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// What the connection has outlived now, if anything.
    fn overdue(&self, head_limit: Duration, keep_alive: Duration) -> Option<Overdue> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now();
        let head_from = self.head_from.load(Ordering::Acquire);
        if head_from > 0 && now.saturating_sub(head_from - 1) >= millis(head_limit) {
            return Some(Overdue::Head);
        }
        let since = self.last_end.load(Ordering::Acquire);
        (head_from == 0 && now.saturating_sub(since) >= millis(keep_alive)).then_some(Overdue::Idle)
    }

    /// When to look again: the head's or the keep-alive's end, as things stand (at least a
    /// tenth of a second ahead, at most the keep-alive: a request under way is looked at again
    /// then).
    fn next_check(&self, head_limit: Duration, keep_alive: Duration) -> Instant {
        let now = self.now();
        let head_from = self.head_from.load(Ordering::Acquire);
        let due = if head_from > 0 {
            (head_from - 1).saturating_add(millis(head_limit))
        } else {
            self.last_end
                .load(Ordering::Acquire)
                .saturating_add(millis(keep_alive))
        };
        let wait = due
            .saturating_sub(now)
            .clamp(100, millis(keep_alive).max(100));
        Instant::now() + Duration::from_millis(wait)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Ends its request on the connection's [`Wire`] when dropped: once the response's body has
/// been sent (or abandoned).
struct RequestEnds(Option<Arc<Wire>>);

impl Drop for RequestEnds {
    fn drop(&mut self) {
        if let Some(wire) = self.0.take() {
            wire.request_ended();
        }
    }
}

/// A response body carrying its request's end.
struct Tracked {
    body: axum::body::Body,
    _ended: RequestEnds,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection's stream, telling its [`Wire`] what arrives.
struct Watched {
    stream: tokio::net::TcpStream,
    wire: Arc<Wire>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            self.wire.read(&buf.filled()[before..]);
        }
        read
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(10);
    const KEEP: Duration = Duration::from_secs(75);

    #[test]
    fn a_head_is_timed_from_its_first_byte_and_idleness_from_the_last_request() {
        let w = Wire::new();
        assert_eq!(w.overdue(HEAD, KEEP), None);
        assert_eq!(w.overdue(HEAD, Duration::ZERO), Some(Overdue::Idle));
        w.read(b"GET / HTTP/1.1\r\n");
        assert_eq!(w.overdue(Duration::ZERO, KEEP), Some(Overdue::Head));
        assert_eq!(w.overdue(HEAD, KEEP), None);
        w.request_began();
        // Body bytes while a request is under way begin no head; nothing is overdue.
        w.read(b"{\"a\":1}");
        assert_eq!(w.overdue(Duration::ZERO, Duration::ZERO), None);
        w.request_ended();
        assert_eq!(w.overdue(Duration::ZERO, KEEP), None, "no head begun yet");
        assert_eq!(w.overdue(HEAD, Duration::ZERO), Some(Overdue::Idle));
    }

    #[test]
    fn a_client_that_only_begins_like_http2_is_timed_as_http1() {
        let w = Wire::new();
        w.read(b"P");
        assert_eq!(w.overdue(Duration::ZERO, KEEP), Some(Overdue::Head));
        w.read(b"OST / HTTP/1.1");
        assert_eq!(w.overdue(Duration::ZERO, KEEP), Some(Overdue::Head));
        let h2 = Wire::new();
        h2.read(b"PRI * HT");
        h2.read(b"TP/2.0\r\n\r\nSM");
        assert_eq!(
            h2.overdue(Duration::ZERO, KEEP),
            None,
            "the whole preface: HTTP/2"
        );
    }

    #[test]
    fn http2_frames_begin_no_head() {
        let w = Wire::new();
        w.read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        w.read(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
        assert_eq!(w.overdue(Duration::ZERO, KEEP), None);
        assert_eq!(
            w.overdue(Duration::ZERO, Duration::ZERO),
            Some(Overdue::Idle)
        );
    }
}
