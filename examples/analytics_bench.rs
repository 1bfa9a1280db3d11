//! Channel analytics benchmark for `bench/analytics.sh` (never run by the tests).
//!
//! `analytics_bench seed`: a tenant with 1,000,000 events, all of today (so the default window
//! holds every one: the worst case): per customer, 3 sessions (started and ended, on the web,
//! iOS or Android) and 4 journeys of 11 changes each, one always on the web, one moving from
//! the web to iOS, one on Android, one moving from the API to the web. Every event is written by
//! Omnirail's own `events::record` as one API call through its channel, so the per-day figures
//! are the ones the server keeps. Prints the tenant's API key on the last line.
//!
//! `analytics_bench measure`: against a running server, sequential requests for the default
//! window and for a whole year; prints the figures once, then p50/p99.

mod support;

use std::time::Instant;

use clap::{Parser, Subcommand};
use omnirail::analytics;
use omnirail::calls;
use omnirail::channel::Channel;
use omnirail::config::{Config, DatabaseUrl};
use omnirail::events::{self, EventType, NewEvent};
use omnirail::sessions::store::{SessionRow, insert_session};
use omnirail::store::Db;
use omnirail::store::known::KnownIds;
use serde_json::{Value, json};

use support::{get, percentiles};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Seed {
        #[arg(long)]
        database_url: String,
        /// Customers, 50 events each.
        #[arg(long, default_value_t = 20_000)]
        customers: usize,
    },
    Measure {
        #[arg(long)]
        base: String,
        #[arg(long)]
        key: String,
        #[arg(long, default_value_t = 300)]
        requests: usize,
    },
}

#[tokio::main]
async fn main() {
    // It records events itself, outside a server: the spine's reactions count them.
    omnirail::wire();
    match Args::parse().command {
        Cmd::Seed {
            database_url,
            customers,
        } => seed(database_url, customers).await,
        Cmd::Measure {
            base,
            key,
            requests,
        } => measure(base, key, requests).await,
    }
}

const SESSION_CHANNELS: [Channel; 3] = [Channel::Web, Channel::MobileIos, Channel::MobileAndroid];
/// Each journey's channels, change by change (11 changes).
const JOURNEYS: [[Channel; 2]; 4] = [
    [Channel::Web, Channel::Web],
    [Channel::Web, Channel::MobileIos],
    [Channel::MobileAndroid, Channel::MobileAndroid],
    [Channel::Api, Channel::Web],
];

/// One change, recorded as one call through `channel`.
async fn change(
    tx: &mut omnirail::store::Tx,
    tenant: &str,
    channel: Channel,
    event_type: EventType,
    entities: Vec<(&'static str, &str)>,
    payload: Value,
) {
    calls::within(
        Some(channel),
        None,
        None,
        events::record(
            tx,
            NewEvent {
                tenant_id: tenant,
                event_type,
                actor_id: Some("usr_rm_001"),
                channel: Some(channel.as_lower()),
                summary: format!("{event_type} on {}", channel.as_lower()),
                metadata: json!({}),
                payload,
                occurred_at: omnirail::time::Clock::default().now_ms(),
                entities,
                parties: Default::default(),
            },
        ),
    )
    .await
    .expect("record");
}

/// A customer's 50 events, in one transaction.
async fn customer(db: &Db, tenant: &str, c: usize) {
    let customer = format!("ent_{c:06}");
    let mut tx = db.begin().await.expect("begin");
    let now = db.now_ms();
    omnirail::customers::ensure_customer(
        &mut tx,
        &std::sync::Arc::new(KnownIds::new(1)),
        tenant,
        &customer,
        now,
    )
    .await
    .expect("customer");
    for k in 0..3 {
        let channel = SESSION_CHANNELS[(c + k) % 3];
        let row = SessionRow {
            id: format!("sess_{c:06}_{k}"),
            customer_id: customer.clone(),
            channel: channel.as_lower().to_owned(),
            device_id: format!("device_{k}"),
            context: "{}".into(),
            started_at: now,
            last_seen_at: now,
            ended_at: None,
            end_reason: None,
            handoff_id: None,
        };
        insert_session(&mut tx, tenant, &row)
            .await
            .expect("session");
        for event_type in [EventType::SessionStarted, EventType::SessionEnded] {
            analytics::session_open(&mut tx, tenant, &customer, channel.as_lower(), now, now)
                .await
                .expect("active");
            let entities = vec![
                ("session", row.id.as_str()),
                ("customer", customer.as_str()),
            ];
            change(
                &mut tx,
                tenant,
                channel,
                event_type,
                entities,
                json!({ "session_id": row.id }),
            )
            .await;
        }
    }
    for (j, channels) in JOURNEYS.iter().enumerate() {
        let journey = format!("jrn_{c:06}_{j}");
        for step in 0..11 {
            let channel = channels[usize::from(step >= 6)];
            let event_type = if step == 0 {
                EventType::JourneyCreated
            } else {
                EventType::JourneyAdvanced
            };
            let entities = vec![
                ("journey", journey.as_str()),
                ("customer", customer.as_str()),
            ];
            let payload =
                json!({ "id": journey, "customerId": customer, "currentStepIndex": step });
            change(&mut tx, tenant, channel, event_type, entities, payload).await;
        }
    }
    tx.commit().await.expect("commit");
}

async fn seed(database_url: String, customers: usize) {
    let config = Config {
        database_url: DatabaseUrl(database_url),
        ..Config::default()
    };
    let db = Db::open(&config).await.expect("open database");
    let tenant = omnirail::auth::create_tenant(&db, "Bench Bank")
        .await
        .expect("tenant");
    let started = Instant::now();
    let workers = 4;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (db, tenant) = (db.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            for c in (w..customers).step_by(workers) {
                customer(&db, &tenant, c).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    eprintln!(
        "{} events on {customers} customers in {:.1} s",
        customers * 50,
        started.elapsed().as_secs_f64()
    );
    let key = omnirail::keys::create_key(&db, &tenant, Some("bench"))
        .await
        .expect("key")
        .secret;
    println!("{key}");
}

async fn measure(base: String, key: String, requests: usize) {
    let client = reqwest::Client::new();
    let today = chrono::Utc::now().date_naive();
    let year_ago = today - chrono::Duration::days(364);
    let default = format!("{base}/api/v1/analytics/channels");
    let year = format!("{default}?from={year_ago}&to={today}");
    let (_, figures) = get(&client, &default, &key).await;
    println!("figures: {figures}");
    for (label, url) in [("last 30 days", &default), ("last 365 days", &year)] {
        for _ in 0..10 {
            get(&client, url, &key).await;
        }
        let mut samples = Vec::with_capacity(requests);
        for _ in 0..requests {
            samples.push(get(&client, url, &key).await.0);
        }
        let (p50, p99) = percentiles(samples);
        println!("  {label:<14} n={requests}  p50={p50:>7.2} ms  p99={p99:>7.2} ms");
    }
}
