//! The delivery worker: runs in every `serve` process (unless `webhooks.max_in_flight` is 0).
//!
//! One loop claims due messages and starts one task per message; the tasks send and hand
//! their outcomes to a recorder, which writes them in batches (one transaction, one commit,
//! for many attempts). A process holds at most `max_in_flight` claimed messages, and sends at
//! most `max_in_flight_per_endpoint` to one endpoint at once; it holds at most twice that of
//! one endpoint, and the claim leaves out endpoints holding that much, so a slow or dead
//! endpoint holds only its own share and never delays the others.
//!
//! A claim is a lease (`webhooks.lease_ms`, longer than any attempt): if the process dies, its
//! messages fall due again when the lease runs out and another process (or this one,
//! restarted) takes them. An outcome is written only while its claim still holds, so a lease
//! that ran out is never overwritten by a late answer.

use std::collections::{BTreeMap, HashMap};
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::model::{self, MessageStatus, Secret};
use super::store::{self, AttemptRow, DeliveryRow, MessageUpdate};
use super::{WAKE, guard};
use crate::AppState;
use crate::config::WebhookConfig;
use crate::error::StoreError;
use crate::events::EventType;
use crate::events::{self, NewEvent};
use crate::ids::new_id;

/// Outcomes written in one transaction at most.
const RECORD_BATCH: usize = 256;

/// The shortest sleep between looks, so a due time just passed never makes the loop spin.
const MIN_IDLE: Duration = Duration::from_millis(5);

/// How long the recorder waits for more outcomes, and a woken claim for more messages, before
/// its write transaction: one commit (an fsync on SQLite) is better shared by many messages
/// than paid by each. Small beside the second a message may take from commit to receipt.
const GATHER_OUTCOMES: Duration = Duration::from_millis(10);
const GATHER_MESSAGES: Duration = Duration::from_millis(25);

/// The client that sends webhooks: no redirects followed (a redirect is a failure), no proxy
/// from the environment, the attempt's timeout, and the guarded resolver unless private
/// targets are allowed.
fn client(cfg: &WebhookConfig) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_millis(cfg.timeout_ms))
        .connect_timeout(Duration::from_millis(cfg.timeout_ms.min(10_000)))
        .user_agent(concat!("Omnirail-Webhooks/", env!("CARGO_PKG_VERSION")))
        // Several endpoints may share a host (a bank's gateway): keep a connection for every
        // attempt that may be in flight, so none pays for a new one.
        .pool_max_idle_per_host(cfg.max_in_flight);
    if !cfg.allow_private_targets {
        builder = builder.dns_resolver(guard::GuardedResolver);
    }
    builder.build()
}

/// Runs until `stop`, then lets the attempts in flight finish (within their timeout).
pub async fn run(app: AppState, mut stop: watch::Receiver<bool>) {
    let cfg = app.config.webhooks.clone();
    if cfg.max_in_flight == 0 {
        // An API-only node: nothing to deliver, and nothing stopped.
        crate::wait_for_stop(&mut stop).await;
        return;
    }
    let http = match client(&cfg) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client could not be built; no webhooks are delivered by this process");
            return;
        }
    };
    let ctx = Arc::new(Ctx {
        http,
        cfg,
        clock: app.db.clock().clone(),
        vault: Arc::clone(&app.vault),
        db: app.db.clone(),
    });
    let (done, outcomes) = mpsc::unbounded_channel::<Outcome>();
    let recorder = tokio::spawn(record_loop(app.clone(), outcomes));
    let poll = Duration::from_millis(ctx.cfg.poll_ms.max(10));
    let mut tasks: JoinSet<String> = JoinSet::new();
    let mut held = Held::new(ctx.cfg.max_in_flight_per_endpoint);
    // Claim again once a quarter of the budget is free (or nothing is held), not after every
    // single attempt: each claim is a write transaction.
    let threshold = (ctx.cfg.max_in_flight / 4).max(1);
    loop {
        let mut notified = pin!(WAKE.notified());
        notified.as_mut().enable();
        while let Some(res) = tasks.try_join_next() {
            held.release(res);
        }
        let free = ctx.cfg.max_in_flight - tasks.len();
        let mut idle = poll;
        // Whether a finished attempt is what the loop waits for: it frees room to claim.
        let mut await_task = !tasks.is_empty();
        if free >= threshold || tasks.is_empty() {
            match claim(&app, &ctx, free, &held).await {
                Ok(claimed) => {
                    for d in claimed.rows {
                        let sending = held.take(&d.endpoint_id);
                        let (ctx, done) = (ctx.clone(), done.clone());
                        tasks.spawn(async move {
                            // At most `max_in_flight_per_endpoint` of an endpoint's messages are
                            // sent at once; the rest of its share waits here, claimed.
                            let _turn = sending.acquire_owned().await;
                            let endpoint = d.endpoint_id.clone();
                            let outcome = attempt(&ctx, d).await;
                            let _ = done.send(outcome);
                            endpoint
                        });
                    }
                    if claimed.more {
                        idle = Duration::ZERO;
                    } else if claimed.blocked {
                        // Everything due belongs to endpoints holding their share: a finished
                        // attempt, not time, makes room.
                        await_task = true;
                    } else {
                        await_task = false;
                        let now = app.db.now_ms();
                        if let Ok(Some(next)) = store::next_due(app.db.reader(), now).await {
                            let wait = u64::try_from(next - now).unwrap_or(0);
                            idle = idle.min(Duration::from_millis(wait)).max(MIN_IDLE);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "webhook claim failed; will retry"),
            }
        }
        if idle.is_zero() && !app.is_stopping() {
            continue;
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = &mut notified => tokio::time::sleep(GATHER_MESSAGES).await,
            Some(res) = tasks.join_next(), if await_task => held.release(res),
            _ = tokio::time::sleep(idle) => {}
        }
        if app.is_stopping() {
            break;
        }
    }
    // Attempts under way finish and are recorded; what was claimed and not yet sent is sent
    // too if there is time, else it falls due again when its lease runs out.
    let grace = Duration::from_millis(ctx.cfg.timeout_ms + 1_000);
    let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    drop(done);
    let _ = recorder.await;
}

struct Ctx {
    http: reqwest::Client,
    cfg: WebhookConfig,
    clock: crate::time::Clock,
    /// Opens the endpoints' sealed secrets.
    vault: Arc<crate::secrets::Vault>,
    db: crate::store::Db,
}

/// What this process holds per endpoint: messages claimed and not yet recorded, and the
/// permits that let `per_endpoint` of them be sent at once.
struct Held {
    per_endpoint: usize,
    endpoints: HashMap<String, (usize, Arc<Semaphore>)>,
}

impl Held {
    fn new(per_endpoint: usize) -> Self {
        Self {
            per_endpoint,
            endpoints: HashMap::new(),
        }
    }

    /// Most messages of one endpoint this process holds at once: what may be sent to it at
    /// once (by all processes together: the claim counts what the others hold).
    fn share(&self) -> usize {
        self.per_endpoint
    }

    fn count(&self, endpoint: &str) -> usize {
        self.endpoints.get(endpoint).map_or(0, |(n, _)| *n)
    }

    /// Endpoints holding their whole share.
    fn full(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .filter(|(_, (n, _))| *n >= self.share())
            .map(|(e, _)| e.clone())
            .collect()
    }

    /// Holds one more message of `endpoint`; the permits its sends take turns on.
    fn take(&mut self, endpoint: &str) -> Arc<Semaphore> {
        let per_endpoint = self.per_endpoint;
        let entry = self
            .endpoints
            .entry(endpoint.to_owned())
            .or_insert_with(|| (0, Arc::new(Semaphore::new(per_endpoint))));
        entry.0 += 1;
        entry.1.clone()
    }

    fn release(&mut self, res: Result<String, tokio::task::JoinError>) {
        let Ok(endpoint) = res else { return };
        if let Some((n, _)) = self.endpoints.get_mut(&endpoint) {
            *n -= 1;
            if *n == 0 {
                self.endpoints.remove(&endpoint);
            }
        }
    }
}

/// What one claim took.
struct Claimed {
    rows: Vec<DeliveryRow>,
    /// More may be due at once.
    more: bool,
    /// Nothing was due but for endpoints holding their whole share.
    blocked: bool,
}

/// Claims up to `free` due messages, each endpoint's up to its share less what is held.
async fn claim(app: &AppState, ctx: &Ctx, free: usize, held: &Held) -> Result<Claimed, StoreError> {
    let full = held.full();
    let now = app.db.now_ms();
    let asked = i64::try_from(free).unwrap_or(i64::MAX);
    let per_endpoint = i64::try_from(held.share()).unwrap_or(i64::MAX);
    let candidates =
        store::due_candidates(app.db.reader(), now, &full, asked, per_endpoint).await?;
    let more = candidates.len() == free;
    let blocked = candidates.is_empty() && !full.is_empty();
    let mut taking: HashMap<&str, usize> = HashMap::new();
    let mut ids = Vec::new();
    for (id, endpoint) in &candidates {
        let n = taking.entry(endpoint).or_default();
        if *n + held.count(endpoint) < held.share() {
            *n += 1;
            ids.push(id.clone());
        }
    }
    if ids.is_empty() {
        return Ok(Claimed {
            rows: Vec::new(),
            more: false,
            blocked,
        });
    }
    let lease_until = crate::time::later(now, std::time::Duration::from_millis(ctx.cfg.lease_ms));
    let mut tx = app.db.begin().await?;
    // What every process holds of these endpoints, their rows locked until this claim
    // commits: together the processes never hold more of one endpoint than its limit.
    let mut endpoints: Vec<&str> = candidates.iter().map(|(_, e)| e.as_str()).collect();
    endpoints.sort_unstable();
    endpoints.dedup();
    let mut held_by_all = store::held_now(&mut tx, &endpoints, now).await?;
    let limit = i64::try_from(held.share()).unwrap_or(i64::MAX);
    let wanted: std::collections::HashSet<&String> = ids.iter().collect();
    let ids: Vec<String> = candidates
        .iter()
        .filter(|(id, _)| wanted.contains(id))
        .filter(|(_, endpoint)| {
            let count = held_by_all.entry(endpoint.clone()).or_default();
            *count += 1;
            *count <= limit
        })
        .map(|(id, _)| id.clone())
        .collect();
    let claimed = store::claim(&mut tx, &ids, now, lease_until).await?;
    tx.commit().await?;
    let rows = store::deliveries(app.db.reader(), &claimed).await?;
    Ok(Claimed {
        rows,
        more,
        blocked,
    })
}

/// What one attempt came to.
struct Outcome {
    delivery: DeliveryRow,
    attempt: AttemptRow,
}

/// Sends one message once and reports what happened; never fails.
async fn attempt(ctx: &Ctx, d: DeliveryRow) -> Outcome {
    let started = Instant::now();
    let attempted_at = ctx.clock.now_ms();
    let result = send(ctx, &d, attempted_at).await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let outcome = match &result {
        Ok((status, _)) if (200..300).contains(status) => "succeeded",
        Ok(_) => "failed",
        Err(_) => "unreachable",
    };
    metrics::counter!(
        "omnirail_webhook_attempts_total",
        "endpoint" => d.endpoint_id.clone(),
        "outcome" => outcome
    )
    .increment(1);
    let (succeeded, status_code, response_body, error) = match result {
        Ok((status, body)) => {
            let ok = (200..300).contains(&status);
            let error = (!ok).then(|| {
                if (300..400).contains(&status) {
                    format!("HTTP {status}: redirects are not followed")
                } else {
                    format!("HTTP {status}")
                }
            });
            (ok, Some(i64::from(status)), Some(body), error)
        }
        Err(e) => (false, None, None, Some(e)),
    };
    Outcome {
        attempt: AttemptRow {
            id: new_id("atm_"),
            message_id: d.id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            attempted_at,
            succeeded: i64::from(succeeded),
            status_code,
            duration_ms,
            response_body,
            error,
        },
        delivery: d,
    }
}

/// The POST itself: the answer's status and the first 4 KiB of its body, or why there was
/// none.
async fn send(ctx: &Ctx, d: &DeliveryRow, now: i64) -> Result<(u16, String), String> {
    let url = Url::parse(&d.url).map_err(|_| "the endpoint URL cannot be read".to_owned())?;
    if !ctx.cfg.allow_private_targets && guard::refused_literal(&url) {
        return Err(format!(
            "target refused: the URL {}",
            guard::refused(guard::WEBHOOKS)
        ));
    }
    let unreadable = |e: crate::error::StoreError| {
        tracing::error!(error = %e, endpoint = %d.endpoint_id, "an endpoint's secret does not open");
        "the endpoint secret cannot be read".to_owned()
    };
    let context = super::sealing_context(&d.endpoint_id);
    let (vault, db, tenant) = (&ctx.vault, &ctx.db, d.tenant_id.as_str());
    let current = vault.open_stored(db, tenant, &context, &d.secret).await;
    let current =
        Secret::parse(&current.map_err(unreadable)?).ok_or("the endpoint secret cannot be read")?;
    let previous = match d
        .previous_secret
        .as_deref()
        .filter(|_| d.previous_secret_until.is_some_and(|until| until > now))
    {
        Some(stored) => Secret::parse(
            &vault
                .open_stored(db, tenant, &context, stored)
                .await
                .map_err(unreadable)?,
        ),
        None => None,
    };
    let mut secrets = vec![&current];
    secrets.extend(previous.as_ref());
    let body = super::body(&d.event_type, d.occurred_at, &d.payload);
    let timestamp = now.div_euclid(1000);
    let signature = model::signature_header(&secrets, &d.id, timestamp, body.as_bytes());
    let response = ctx
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header("omnirail-event-id", &d.event_id)
        .header("omnirail-event-type", &d.event_type)
        .body(body)
        .send()
        .await
        .map_err(|e| guard::describe(&e))?;
    let status = response.status().as_u16();
    let mut response = response;
    let mut kept = Vec::new();
    while kept.len() < model::MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            Ok(None) => break,
            // The status is the answer; a body cut short does not change it.
            Err(_) => break,
        }
    }
    Ok((
        status,
        model::truncate_response(&String::from_utf8_lossy(&kept)),
    ))
}

async fn record_loop(app: AppState, mut outcomes: mpsc::UnboundedReceiver<Outcome>) {
    while let Some(first) = outcomes.recv().await {
        // A moment for the attempts finishing alongside: one commit for many.
        tokio::time::sleep(GATHER_OUTCOMES).await;
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match outcomes.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        if let Err(e) = record(&app, &batch).await {
            // One outcome that cannot be written must not cost the others theirs: each again
            // on its own.
            tracing::warn!(error = %e, n = batch.len(), "webhook outcomes could not be recorded together; recording each alone");
            for o in &batch {
                if let Err(e) = record(&app, std::slice::from_ref(o)).await {
                    tracing::warn!(error = %e, message = %o.delivery.id, "a webhook outcome could not be recorded; its lease will run out and it will be sent again");
                }
            }
        }
    }
}

/// Writes a batch of outcomes in one transaction: each attempt, each message's new state,
/// each endpoint's failing run; and disables the endpoints that have failed for too long.
async fn record(app: &AppState, batch: &[Outcome]) -> Result<(), StoreError> {
    let cfg = &app.config.webhooks;
    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    // Per endpoint, whether any of the batch's attempts to it succeeded. Endpoints are written
    // in id order, so two processes' recorders never lock them in opposite orders.
    let mut endpoints: BTreeMap<&str, bool> = BTreeMap::new();
    let mut updates = Vec::with_capacity(batch.len());
    for o in batch {
        let d = &o.delivery;
        let succeeded = o.attempt.succeeded == 1;
        let failures = if succeeded {
            d.failures
        } else {
            d.failures + 1
        };
        if !succeeded {
            tracing::warn!(
                message = %d.id,
                endpoint = %d.endpoint_id,
                attempt = failures,
                status = ?o.attempt.status_code,
                cause = o.attempt.error.as_deref().unwrap_or("HTTP status"),
                "webhook delivery attempt failed"
            );
        }
        let retry = (!succeeded)
            .then(|| {
                model::retry_after(
                    u64::try_from(failures).unwrap_or(u64::MAX),
                    &cfg.retry_schedule_ms,
                )
            })
            .flatten();
        let status = match (succeeded, retry) {
            (true, _) => MessageStatus::Delivered,
            (false, Some(_)) => MessageStatus::Pending,
            (false, None) => MessageStatus::Failed,
        };
        updates.push(MessageUpdate {
            id: &d.id,
            lease_until: d.lease_until,
            status: status.as_str(),
            failures,
            next_attempt_at: retry
                .map(|wait| crate::time::later(now, std::time::Duration::from_millis(wait))),
            status_code: o.attempt.status_code,
            error: o.attempt.error.as_deref(),
            now,
        });
        *endpoints.entry(&d.endpoint_id).or_default() |= succeeded;
    }
    let attempts: Vec<&AttemptRow> = batch.iter().map(|o| &o.attempt).collect();
    store::insert_attempts(&mut tx, &attempts).await?;
    store::finish_attempts(&mut tx, &updates).await?;
    for (endpoint, succeeded) in &endpoints {
        store::note_outcome(&mut tx, endpoint, *succeeded, now).await?;
    }
    let failed_endpoints: Vec<&str> = endpoints
        .iter()
        .filter(|(_, succeeded)| !**succeeded)
        .map(|(e, _)| *e)
        .collect();
    let disable_after =
        i64::try_from(cfg.disable_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 4);
    let mut disabled = false;
    for (tenant, id, url, since) in store::failing(&mut tx, &failed_endpoints).await? {
        if !model::should_disable(Some(since), now, disable_after) {
            continue;
        }
        disable(&mut tx, &tenant, &id, &url, since, now).await?;
        disabled = true;
    }
    tx.commit().await?;
    if disabled {
        super::wake();
    }
    Ok(())
}

/// Disables an endpoint that has failed without a success since `since`, parks its pending
/// messages, and records `omni.webhook.endpoint_disabled`.
async fn disable(
    tx: &mut crate::store::Conn,
    tenant: &str,
    id: &str,
    url: &str,
    since: i64,
    now: i64,
) -> Result<(), StoreError> {
    let Some(mut e) = store::get_endpoint(tx, tenant, id, true).await? else {
        return Ok(());
    };
    let reason = format!(
        "every attempt failed from {} to {}",
        crate::time::to_rfc3339(since),
        crate::time::to_rfc3339(now)
    );
    e.enabled = 0;
    e.disabled_reason = Some(reason.clone());
    e.updated_at = now;
    store::update_endpoint(tx, tenant, &e).await?;
    store::park_messages(tx, id, true, now).await?;
    tracing::warn!(
        endpoint = id,
        "webhook endpoint disabled after failing continuously"
    );
    events::record(
        tx,
        NewEvent {
            tenant_id: tenant,
            event_type: EventType::WebhookEndpointDisabled,
            actor_id: None,
            channel: None,
            summary: format!("Webhook endpoint disabled: {reason}"),
            metadata: serde_json::json!({ "endpointId": id, "failingSince": crate::time::to_rfc3339(since) }),
            payload: serde_json::json!({
                "endpointId": id,
                "url": url,
                "reason": reason,
                "failingSince": crate::time::to_rfc3339(since),
                "disabledAt": crate::time::to_rfc3339(now),
            }),
            occurred_at: now,
            entities: vec![("webhook_endpoint", id)],
            parties: Default::default(),
        },
    )
    .await
}
