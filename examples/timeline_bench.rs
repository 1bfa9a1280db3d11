//! Timeline scale benchmark for `bench/timeline.sh` (never run by the tests).
//!
//! `timeline_bench seed`: a tenant with 1,000,000 events: 100,000 on one customer (`ent_big`),
//! the rest spread over 9,000 others (100 each). Events are written through Omnirail's own
//! `events::record`, so each is a real link of its customer's hash chain. Prints the tenant's
//! API key on the last line.
//!
//! `timeline_bench measure`: against a running server, sequential requests for the first page of
//! `ent_big`'s timeline, a filtered page (`eventTypes` and a date range), and `verify` of its
//! 100,000-event chain; prints p50/p99 and the worst `verify`.

mod support;

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use omnirail::config::{Config, DatabaseUrl};
use omnirail::events::{self, EventType, NewEvent};
use omnirail::store::Db;
use serde_json::json;

use support::{get, ms, percentiles};

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
        /// Events on the big customer.
        #[arg(long, default_value_t = 100_000)]
        big: usize,
        /// Other customers, with `--per-customer` events each.
        #[arg(long, default_value_t = 9_000)]
        customers: usize,
        #[arg(long, default_value_t = 100)]
        per_customer: usize,
    },
    Measure {
        #[arg(long)]
        base: String,
        #[arg(long)]
        key: String,
        #[arg(long, default_value_t = 500)]
        requests: usize,
    },
}

const TYPES: [EventType; 7] = [
    EventType::JourneyCreated,
    EventType::JourneyAdvanced,
    EventType::JourneyAdvanced,
    EventType::ApprovalRequested,
    EventType::ApprovalApproved,
    EventType::JourneyAssigned,
    EventType::JourneyCompleted,
];

#[tokio::main]
async fn main() {
    // It records events itself, outside a server: the spine's reactions run on them.
    omnirail::wire();
    match Args::parse().command {
        Cmd::Seed {
            database_url,
            big,
            customers,
            per_customer,
        } => seed(database_url, big, customers, per_customer).await,
        Cmd::Measure {
            base,
            key,
            requests,
        } => measure(base, key, requests).await,
    }
}

/// Writes `count` events for `customer` in transactions of 2,000.
async fn write(db: &Db, tenant: &str, customer: &str, count: usize) {
    let journey = format!("jrn_{customer}");
    let mut written = 0;
    while written < count {
        let mut tx = db.begin().await.expect("begin");
        for i in written..(written + 2_000).min(count) {
            let event_type = TYPES[i % TYPES.len()];
            events::record(
                &mut tx,
                NewEvent {
                    tenant_id: tenant,
                    event_type,
                    actor_id: Some("usr_rm_001"),
                    channel: Some("web"),
                    summary: format!("Journey advanced: step {i} completed"),
                    metadata: json!({ "journeyId": journey, "stepId": format!("step_{i}"), "outcome": "passed" }),
                    payload: json!({
                        "id": journey, "status": "in_progress", "templateId": "tmpl_onboarding_sme",
                        "customerId": customer, "channel": "web", "currentStepIndex": i % 5,
                        "context": { "productType": "murabaha", "requestedAmount": { "amount": 2000000, "currency": "SAR" } },
                        "assigneeId": "usr_rm_001", "priority": "normal"
                    }),
                    occurred_at: db.now_ms(),
                    entities: vec![("journey", &journey), ("customer", customer)],
                    parties: Default::default(),
                },
            )
            .await
            .expect("record");
        }
        tx.commit().await.expect("commit");
        written = (written + 2_000).min(count);
    }
}

async fn seed(database_url: String, big: usize, customers: usize, per_customer: usize) {
    let config = Config {
        database_url: DatabaseUrl(database_url),
        ..Config::default()
    };
    let db = Db::open(&config).await.expect("open database");
    let tenant = omnirail::auth::create_tenant(&db, "Bench Bank")
        .await
        .expect("tenant");
    let started = Instant::now();
    write(&db, &tenant, "ent_big", big).await;
    eprintln!(
        "{big} events on ent_big in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let workers = 4;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (db, tenant) = (db.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            for c in (w..customers).step_by(workers) {
                write(&db, &tenant, &format!("ent_{c:05}"), per_customer).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    eprintln!(
        "{} events on {customers} other customers in {:.1} s",
        customers * per_customer,
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
    let timeline = format!("{base}/api/v1/omni/timeline?entityType=customer&entityId=ent_big");
    let (_, first) = get(&client, &timeline, &key).await;
    let (_, last) = get(&client, &format!("{timeline}&order=desc&perPage=1"), &key).await;
    let total = first["pagination"]["total"].as_i64().unwrap_or(0);
    let t0 =
        omnirail::time::parse_rfc3339(first["data"][0]["timestamp"].as_str().unwrap()).unwrap();
    let t1 = omnirail::time::parse_rfc3339(last["data"][0]["timestamp"].as_str().unwrap()).unwrap();
    let from = omnirail::time::to_rfc3339(t0 + (t1 - t0) * 4 / 10);
    let to = omnirail::time::to_rfc3339(t0 + (t1 - t0) * 6 / 10);
    let filtered = format!("{timeline}&eventTypes=approval.*&fromDate={from}&toDate={to}");
    let (_, f) = get(&client, &filtered, &key).await;
    println!(
        "ent_big: {total} events; filtered page matches {} (approval.* between {from} and {to})",
        f["pagination"]["total"]
    );
    for (label, url) in [("first page", &timeline), ("filtered page", &filtered)] {
        for _ in 0..20 {
            get(&client, url, &key).await;
        }
        let mut samples = Vec::with_capacity(requests);
        for _ in 0..requests {
            samples.push(get(&client, url, &key).await.0);
        }
        let (p50, p99) = percentiles(samples);
        println!("  {label:<14} n={requests}  p50={p50:>7.2} ms  p99={p99:>7.2} ms");
    }
    let verify = format!("{base}/api/v1/omni/timeline/verify?entityType=customer&entityId=ent_big");
    let mut worst = Duration::ZERO;
    for _ in 0..3 {
        let (took, body) = get(&client, &verify, &key).await;
        assert_eq!(body["data"]["valid"], true, "{body}");
        worst = worst.max(took);
    }
    println!(
        "  verify         {total} events: worst of 3 = {:.0} ms",
        ms(worst)
    );
}
