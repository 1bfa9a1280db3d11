//! Live sync across devices: a customer's events as Server-Sent Events.
//!
//! A stream follows the customer's hash chain (`customer:<id>`, see `events::chain`): every
//! event on the customer's timeline is a link of it, links commit in order (each takes the
//! chain's head lock), and a link's number never changes. The SSE `id` is that number, so
//! `Last-Event-ID` resumes exactly after the last event a client saw: nothing lost, nothing
//! twice.
//!
//! Streams learn of new links from the [`Hub`]. In every process one [`watch`] loop reads the
//! events table by sequence five times a second while anyone is streaming and wakes the streams
//! of the chains that grew; events committed by another process (another node on PostgreSQL,
//! another `serve` on one SQLite file) are seen the same way. A transaction still open when the
//! loop passes leaves a hole in the sequence: the loop keeps asking for the missing numbers for
//! ten seconds. Beyond that, each stream also reads its chain at every heartbeat, so a missed
//! wake-up delays an event by at most one heartbeat and never loses it.

mod routes;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Notify, watch};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::api::stored_json;
use crate::error::{ApiError, ApiResult, FieldError, StoreError};
use crate::events;
use crate::time::to_rfc3339;
use crate::timeline::store::{LinkRow, chain_head, links_after};

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

/// Routes under `/api/v1/omni`.
pub fn omni_router() -> OpenApiRouter<AppState> {
    routes::omni_router()
}

/// How often the watch loop reads new events while anyone streams.
const POLL: Duration = Duration::from_millis(200);
/// How long the loop keeps asking for a sequence number it skipped.
const GAP_WAIT: Duration = Duration::from_secs(10);
/// Links read at once by a stream.
const BATCH: i64 = 200;

/// The wake-ups of the streams following each chain: by `(tenant, chain key)`.
type Waiting = HashMap<(String, String), Vec<Weak<Notify>>>;

/// The streams waiting in this process, by tenant and chain.
#[derive(Debug, Default)]
pub struct Hub {
    waiting: Mutex<Waiting>,
}

impl Hub {
    /// A wake-up for one stream of `chain`; the stream is forgotten when it drops it.
    fn subscribe(&self, tenant: &str, chain: &str) -> Arc<Notify> {
        let wake = Arc::new(Notify::new());
        self.lock()
            .entry((tenant.to_owned(), chain.to_owned()))
            .or_default()
            .push(Arc::downgrade(&wake));
        wake
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes every stream of `chain` (a stream busy reading finds the wake-up when it waits).
    fn wake(&self, tenant: &str, chain: &str) {
        if let Some(list) = self.lock().get(&(tenant.to_owned(), chain.to_owned())) {
            for wake in list.iter().filter_map(Weak::upgrade) {
                wake.notify_one();
            }
        }
    }

    fn wake_all(&self) {
        for wake in self.lock().values().flatten().filter_map(Weak::upgrade) {
            wake.notify_one();
        }
    }

    /// Forgets streams that ended; whether any is left.
    fn prune(&self) -> bool {
        let mut waiting = self.lock();
        waiting.retain(|_, list| {
            list.retain(|w| w.strong_count() > 0);
            !list.is_empty()
        });
        !waiting.is_empty()
    }
}

/// Where the watch loop is in the events table.
#[derive(Debug, Default)]
struct Cursor {
    /// Highest sequence number seen; `None` until the loop starts (again).
    seen: Option<i64>,
    /// Numbers below `seen` not seen yet (a transaction still open), with when first missed.
    gaps: BTreeMap<i64, Instant>,
}

impl Cursor {
    /// Reads what is new and wakes its streams; `true` if there may be more to read at once.
    async fn poll(&mut self, app: &AppState) -> Result<bool, StoreError> {
        let pool = app.db.reader();
        let Some(seen) = self.seen else {
            let max: i64 =
                sqlx::query_scalar("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM events")
                    .fetch_one(pool)
                    .await?;
            self.seen = Some(max);
            // Streams that read their chain before the loop started read it again.
            app.streams.wake_all();
            return Ok(false);
        };
        let gaps: Vec<i64> = self.gaps.keys().copied().take(100).collect();
        let mut sql = String::from("SELECT seq, tenant_id, chain_key FROM events WHERE seq > $1");
        if !gaps.is_empty() {
            let list: Vec<String> = (0..gaps.len()).map(|i| format!("${}", i + 2)).collect();
            sql.push_str(&format!(" OR seq IN ({})", list.join(", ")));
        }
        sql.push_str(" ORDER BY seq LIMIT 1000");
        // Only placeholders are added to the statement; every value is bound.
        let mut q =
            sqlx::query_as::<_, (i64, String, Option<String>)>(sqlx::AssertSqlSafe(sql)).bind(seen);
        for g in &gaps {
            q = q.bind(*g);
        }
        let rows = q.fetch_all(pool).await?;
        let full = rows.len() == 1000;
        let now = Instant::now();
        let mut top = seen;
        for (seq, tenant, chain) in rows {
            if let Some(chain) = chain {
                app.streams.wake(&tenant, &chain);
            }
            self.gaps.remove(&seq);
            if seq > top {
                // A jump of more than a thousand is not a few open transactions: not tracked.
                if seq - top <= 1000 {
                    for missing in top + 1..seq {
                        self.gaps.insert(missing, now);
                    }
                }
                top = seq;
            }
        }
        self.seen = Some(top);
        self.gaps
            .retain(|_, since| now.duration_since(*since) < GAP_WAIT);
        Ok(full)
    }
}

/// The watch loop: runs in every `serve` process until `stop`.
pub async fn watch(app: AppState, mut stop: watch::Receiver<bool>) {
    let mut cursor = Cursor::default();
    loop {
        if app.streams.prune() {
            // A full read (more than 1,000 new events) reads on at once, up to ten times.
            for _ in 0..10 {
                match cursor.poll(&app).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "event stream watch failed; will retry");
                        break;
                    }
                }
            }
        } else {
            cursor = Cursor::default();
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One event as a stream carries it, in the SSE `data` field.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamEvent {
    #[schema(example = "evt_01J...")]
    pub id: String,
    /// The link's number in the customer's chain; also the SSE `id`, for `Last-Event-ID`.
    #[schema(example = 42)]
    pub sequence: i64,
    pub timestamp: String,
    /// Without `omni.`: `session.resumed`.
    #[schema(example = "session.resumed")]
    pub event_type: String,
    pub actor_id: Option<String>,
    /// Whether an actor token proved the actor (as on the timeline).
    pub actor_verified: bool,
    pub channel: Option<String>,
    pub summary: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// The changed object as the API shows it (the webhook body).
    #[schema(value_type = Object)]
    pub payload: Value,
}

impl StreamEvent {
    fn of(r: LinkRow) -> Self {
        StreamEvent {
            id: r.id,
            sequence: r.chain_seq,
            timestamp: to_rfc3339(r.occurred_at),
            event_type: events::shown_type(&r.event_type).to_owned(),
            actor_verified: crate::actor::Proof::shown(r.actor_proof.as_deref()).0,
            actor_id: r.actor_id,
            channel: r.channel,
            summary: r.summary,
            metadata: stored_json(&r.metadata),
            payload: stored_json(&r.payload),
        }
    }
}

/// `Last-Event-ID`: the last link the client saw; a value that is not one is 422.
pub(crate) fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(raw) = headers.get("last-event-id") else {
        return Ok(None);
    };
    raw.to_str()
        .ok()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "Last-Event-ID",
                "must be the `id` of an event this stream sent: a whole number",
            )])
        })
}

/// What a stream is following.
pub(crate) struct Follow {
    pub tenant: String,
    /// The chain followed: `customer:<id>`, or `user:<id>` for a staff user's notifications.
    pub chain: String,
    /// A session stream ends after its session's `omni.session.ended`.
    pub session: Option<String>,
    /// The last link already sent (from `Last-Event-ID`); `None` sends only new events.
    pub after: Option<i64>,
}

struct Stream {
    app: AppState,
    follow: Follow,
    chain: String,
    after: i64,
    wake: Arc<Notify>,
    pending: std::collections::VecDeque<Event>,
    done: bool,
}

/// The SSE answer following `follow`.
pub(crate) async fn open(app: &AppState, follow: Follow) -> ApiResult<Response> {
    let chain = follow.chain.clone();
    // Subscribed before reading where the chain stands, so no link slips between the two.
    let wake = app.streams.subscribe(&follow.tenant, &chain);
    let after = match follow.after {
        Some(after) => after,
        None => chain_head(app.db.reader(), &follow.tenant, &chain)
            .await?
            .map_or(0, |(length, _)| length),
    };
    let heartbeat = heartbeat(app);
    let stream = Stream {
        app: app.clone(),
        follow,
        chain,
        after,
        wake,
        pending: Default::default(),
        done: false,
    };
    let events = futures::stream::unfold(stream, Stream::next);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response())
}

fn heartbeat(app: &AppState) -> Duration {
    Duration::from_secs(app.config.stream_heartbeat_secs.max(1))
}

impl Stream {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.done || self.app.is_stopping() {
                return None;
            }
            let read = links_after(
                self.app.db.reader(),
                &self.follow.tenant,
                &self.chain,
                self.after,
                BATCH,
            )
            .await;
            match read {
                Ok(links) if !links.is_empty() => self.queue(links),
                Ok(_) => {
                    let mut stopping = self.app.stopping.clone();
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        // The safety net: read again at every heartbeat.
                        _ = tokio::time::sleep(heartbeat(&self.app)) => {}
                        _ = crate::wait_for_stop(&mut stopping) => return None,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event stream read failed; will retry");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn queue(&mut self, links: Vec<LinkRow>) {
        for link in links {
            self.after = link.chain_seq;
            let item = StreamEvent::of(link);
            let ends_session = self.follow.session.as_deref().is_some_and(|s| {
                item.event_type == events::shown_type(events::EventType::SessionEnded.as_str())
                    && item.metadata["sessionId"] == s
            });
            let data = serde_json::to_string(&item).unwrap_or_default();
            self.pending
                .push_back(Event::default().id(item.sequence.to_string()).data(data));
            if ends_session {
                self.done = true;
                return;
            }
        }
    }
}
