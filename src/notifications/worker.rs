//! The delivery worker: runs in every `serve` process.
//!
//! It claims due deliveries with a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so processes
//! never take the same row; SQLite: one writer), sends them outside any transaction, then
//! writes each outcome under the notification's row lock with its event. A process that dies
//! mid-send leaves its lease to run out; the delivery is then taken again, so a message can be
//! sent twice in that case but never lost (at-least-once, as every provider API here is).
//!
//! The worker wakes when this process creates a notification, and otherwise at the earliest
//! due time it knows of, at most `notification_poll_ms` apart, so `scheduleAt` is honoured to
//! the second and one node sees what another scheduled.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use super::model::{AfterFailure, Attempt, NotifyChannel, Priority, after_failure};
use super::providers::{ProviderSettings, Reach, STATUS_PATH_TWILIO};
use super::store::{self, DeliveryUpdate, DueRow};
use super::templates::{EmailContent, SmsContent, TitleBody};
use super::{after_delivery_change, recipient};
use crate::AppState;
use crate::customers::quiet_hours::QuietHours;
use crate::error::{ApiError, StoreError};

/// Deliveries claimed at once.
const BATCH: i64 = 64;
/// Sent at the same time by one process.
const PARALLEL: usize = 16;

/// The shortest sleep between looks, so a due time just passed never makes the loop spin.
const MIN_IDLE: Duration = Duration::from_millis(10);

/// Runs until `stop`.
pub async fn run(app: AppState, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_millis(app.config.notification_poll_ms.max(10));
    loop {
        let mut idle = poll;
        match tick(&app).await {
            // A full batch: more may be due now.
            Ok(true) => idle = Duration::ZERO,
            Ok(false) => {
                let now = app.db.now_ms();
                if let Ok(Some(next)) = store::next_due(app.db.reader(), now).await {
                    let wait = u64::try_from(next - now).unwrap_or(0);
                    idle = idle.min(Duration::from_millis(wait)).max(MIN_IDLE);
                }
            }
            Err(e) => {
                tracing::warn!(code = e.code, detail = %e.detail, "notification delivery failed; will retry")
            }
        }
        if idle.is_zero() {
            if app.is_stopping() {
                return;
            }
            continue;
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = app.notifier.wake.notified() => {}
            _ = tokio::time::sleep(idle) => {}
        }
    }
}

/// Claims and sends one batch; `true` if it was full (there may be more due now). A pass with
/// nothing due only reads: the claim's write transaction begins when something is due.
pub async fn tick(app: &AppState) -> Result<bool, ApiError> {
    let now = app.db.now_ms();
    match store::next_due(app.db.reader(), now).await? {
        Some(at) if at <= now => {}
        _ => return Ok(false),
    }
    let mut tx = app.db.begin().await?;
    let due = store::claim_due(
        &mut tx,
        now,
        Duration::from_millis(app.config.notification_lease_ms),
        BATCH,
    )
    .await?;
    tx.commit().await?;
    let full = due.len() as i64 == BATCH;
    let results: Vec<Result<(), ApiError>> = futures::stream::iter(due)
        .map(|d| deliver(app, d))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    for r in results {
        if let Err(e) = r {
            tracing::warn!(code = e.code, detail = %e.detail, "a delivery could not be recorded; its lease will run out and it will be tried again");
        }
    }
    Ok(full)
}

/// One claimed delivery: held for quiet hours, or attempted and its outcome recorded.
async fn deliver(app: &AppState, d: DueRow) -> Result<(), ApiError> {
    let channel = NotifyChannel::parse(&d.channel).unwrap_or(NotifyChannel::InApp);
    let who = {
        let mut conn = app.db.read_conn().await?;
        recipient(&mut conn, &d.tenant_id, &d.recipient_id, &d.recipient_type).await?
    };
    let now = app.db.now_ms();
    if Priority::parse(&d.priority) != Some(Priority::Critical)
        && let Some(until) = who
            .quiet_hours
            .as_deref()
            .and_then(|q| serde_json::from_str::<QuietHours>(q).ok())
            .and_then(|q| q.hold_until(now))
    {
        let mut tx = app.db.begin().await?;
        store::hold(&mut tx, &d.id, until, now).await?;
        tx.commit().await?;
        return Ok(());
    }
    let (provider, attempt) = attempt(app, &d, channel, &who).await;
    let outcome = match &attempt {
        Attempt::Accepted { .. } => "accepted",
        Attempt::Transient { .. } => "transient_failure",
        Attempt::Permanent { .. } => "permanent_failure",
    };
    metrics::counter!(
        "omnirail_notification_attempts_total",
        "channel" => channel.as_str(),
        "provider" => provider.unwrap_or("none"),
        "outcome" => outcome
    )
    .increment(1);
    record_outcome(app, &d, channel, provider, attempt).await
}

/// Sends through the tenant's provider; the provider's name and what became of it.
async fn attempt(
    app: &AppState,
    d: &DueRow,
    channel: NotifyChannel,
    who: &super::Recipient,
) -> (Option<&'static str>, Attempt) {
    if channel == NotifyChannel::InApp {
        // The inbox is the notification itself: stored is delivered.
        return (
            Some("omnirail"),
            Attempt::Accepted {
                message_id: None,
                note: None,
            },
        );
    }
    let settings =
        match store::get_provider(&app.db, &app.vault, &d.tenant_id, channel.as_str()).await {
            Ok(Some(row)) => serde_json::from_str::<ProviderSettings>(&row.settings).ok(),
            Ok(None) => None,
            Err(e) => {
                return (
                    None,
                    Attempt::Transient {
                        error: format!("cannot read the provider: {e}"),
                    },
                );
            }
        };
    let Some(settings) = settings else {
        return (
            None,
            Attempt::Permanent {
                code: "provider_not_configured",
                error: format!("No {} provider is configured", channel.as_str()),
            },
        );
    };
    let kind = Some(settings.kind());
    // Settings are checked again as this server's configuration stands: a provider set where
    // the configuration allowed more (or written by other means) is not used.
    let reach = Reach::of(&app.config);
    let refused = settings.problems(reach);
    if !refused.is_empty() {
        let why: Vec<String> = refused
            .iter()
            .map(|e| format!("{} {}", e.field, e.message))
            .collect();
        return (
            kind,
            Attempt::Permanent {
                code: "provider_not_allowed",
                error: why.join("; "),
            },
        );
    }
    let bad_content = || Attempt::Permanent {
        code: "invalid_message",
        error: "the rendered content does not fit the channel".into(),
    };
    let attempt = match settings {
        ProviderSettings::Smtp(smtp) => {
            let Some(to) = who.email.as_deref() else {
                return (kind, missing("no_email_address", "email address"));
            };
            match serde_json::from_str::<EmailContent>(&d.content) {
                Ok(content) => smtp.send(reach, &d.id, to, &content).await,
                Err(_) => bad_content(),
            }
        }
        ProviderSettings::Twilio(twilio) => {
            let Some(to) = who.phone.as_deref() else {
                return (kind, missing("no_phone_number", "phone number"));
            };
            let callback = app
                .config
                .public_base_url
                .as_deref()
                .map(|base| super::providers::join(base, STATUS_PATH_TWILIO));
            match serde_json::from_str::<SmsContent>(&d.content) {
                Ok(content) => {
                    twilio
                        .send(&app.notifier.http, to, &content.text, callback.as_deref())
                        .await
                }
                Err(_) => bad_content(),
            }
        }
        ProviderSettings::Fcm(fcm) => {
            let tokens: Vec<String> = if d.recipient_type == "customer" {
                match store::devices(app.db.reader(), &d.tenant_id, &d.recipient_id).await {
                    Ok(devices) => devices.into_iter().map(|x| x.push_token).collect(),
                    Err(e) => {
                        return (
                            kind,
                            Attempt::Transient {
                                error: format!("cannot read the devices: {e}"),
                            },
                        );
                    }
                }
            } else {
                Vec::new()
            };
            if tokens.is_empty() {
                return (
                    kind,
                    missing("no_push_device", "registered device for push"),
                );
            }
            let Ok(content) = serde_json::from_str::<TitleBody>(&d.content) else {
                return (kind, bad_content());
            };
            let data = [("notificationId", d.notification_id.as_str())];
            let (attempt, gone) = fcm
                .send(
                    &app.notifier.http,
                    &app.notifier.fcm_tokens,
                    &tokens,
                    &content,
                    &data,
                )
                .await;
            forget_tokens(app, d, &gone).await;
            attempt
        }
    };
    (kind, attempt)
}

fn missing(code: &'static str, what: &str) -> Attempt {
    Attempt::Permanent {
        code,
        error: format!("The recipient's record has no {what}"),
    }
}

async fn forget_tokens(app: &AppState, d: &DueRow, tokens: &[String]) {
    for token in tokens {
        let forgotten = async {
            let mut tx = app.db.begin().await?;
            store::forget_push_token(&mut tx, &d.tenant_id, &d.recipient_id, token).await?;
            tx.commit().await.map_err(StoreError::from)
        };
        if let Err(e) = forgotten.await {
            tracing::warn!(error = %e, "an unregistered push token could not be forgotten");
        }
    }
}

/// Writes an attempt's outcome, with its event, under the notification's lock.
async fn record_outcome(
    app: &AppState,
    d: &DueRow,
    channel: NotifyChannel,
    provider: Option<&str>,
    attempt: Attempt,
) -> Result<(), ApiError> {
    let now = app.db.now_ms();
    let attempts = d.attempts + 1;
    let update = match &attempt {
        Attempt::Accepted { message_id, note } => DeliveryUpdate {
            status: if channel == NotifyChannel::InApp {
                "delivered"
            } else {
                "sent"
            },
            provider,
            provider_message_id: message_id.as_deref(),
            attempts,
            error_code: None,
            last_error: note.as_deref(),
            next_attempt_at: None,
        },
        Attempt::Permanent { code, error } => DeliveryUpdate {
            status: "failed",
            provider,
            provider_message_id: None,
            attempts,
            error_code: Some(code),
            last_error: Some(error),
            next_attempt_at: None,
        },
        Attempt::Transient { error } => {
            let max = app.config.notification_max_attempts;
            let base = app.config.notification_retry_base_ms;
            let tries = u32::try_from(attempts).unwrap_or(u32::MAX);
            match after_failure(tries, max, base, rand::random::<f64>()) {
                AfterFailure::RetryInMs(wait) => DeliveryUpdate {
                    status: "pending",
                    provider,
                    provider_message_id: None,
                    attempts,
                    error_code: Some("provider_unavailable"),
                    last_error: Some(error),
                    next_attempt_at: Some(crate::time::later(
                        now,
                        std::time::Duration::from_millis(wait),
                    )),
                },
                AfterFailure::GiveUp => DeliveryUpdate {
                    status: "failed",
                    provider,
                    provider_message_id: None,
                    attempts,
                    error_code: Some("provider_unavailable"),
                    last_error: Some(error),
                    next_attempt_at: None,
                },
            }
        }
    };
    if let (Some(code), Some(cause)) = (update.error_code, update.last_error) {
        tracing::warn!(
            notification = %d.notification_id,
            delivery = %d.id,
            channel = channel.as_str(),
            provider = provider.unwrap_or("none"),
            attempt = attempts,
            code,
            cause,
            "notification delivery attempt failed"
        );
    }
    let mut tx = app.db.begin().await?;
    let Some(n) = store::lock_notification(&mut tx, &d.tenant_id, &d.notification_id, now).await?
    else {
        return Ok(());
    };
    // Cancelled (or taken again after a lost lease) meanwhile: this outcome is not ours to write.
    if !store::finish_attempt(&mut tx, &d.id, &update, now).await? {
        return Ok(());
    }
    after_delivery_change(&mut tx, n, &d.id, now).await?;
    tx.commit().await?;
    Ok(())
}
