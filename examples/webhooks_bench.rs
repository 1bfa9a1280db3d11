//! Webhooks benchmark for `bench/webhooks.sh` (never run by the tests).
//!
//! `webhooks_bench seed`: a tenant, its API key (printed on the last line), and `endpoints`
//! webhook endpoints subscribed to every event, all pointing at `receiver`.
//!
//! `webhooks_bench backlog`: against a server that delivers nothing
//! (`webhooks.max_in_flight = 0`), the seed template and `events` journeys: a backlog of
//! `events x endpoints` messages.
//!
//! `webhooks_bench measure`: runs the receiver, then against a server that delivers,
//! - drain: the time from the first to the last of the backlog's messages arriving, as
//!   deliveries per second;
//! - steady: journeys created at `rate` per second (an open loop, as independent clients
//!   would) for `seconds`, every message's latency from its event's commit (the body's
//!   `timestamp`) to its arrival, p50/p99, and deliveries per second.

mod support;

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures::StreamExt;
use serde_json::{Value, json};

use support::{Arrivals, percentiles};

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
        #[arg(long)]
        receiver: String,
        #[arg(long, default_value_t = 4)]
        endpoints: usize,
    },
    Backlog {
        #[arg(long)]
        base: String,
        #[arg(long)]
        key: String,
        #[arg(long, default_value_t = 5_000)]
        events: usize,
        #[arg(long, default_value_t = 32)]
        clients: usize,
    },
    Measure {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        base: String,
        #[arg(long)]
        key: String,
        /// Messages waiting when the delivering server starts.
        #[arg(long)]
        backlog: usize,
        #[arg(long, default_value_t = 8)]
        endpoints: usize,
        /// Journeys created per second in the steady phase.
        #[arg(long, default_value_t = 250.0)]
        rate: f64,
        #[arg(long, default_value_t = 15)]
        seconds: u64,
    },
}

#[tokio::main]
async fn main() {
    match Args::parse().command {
        Cmd::Seed {
            database_url,
            receiver,
            endpoints,
        } => seed(database_url, &receiver, endpoints).await,
        Cmd::Backlog {
            base,
            key,
            events,
            clients,
        } => {
            let client = reqwest::Client::new();
            let res = client
                .post(format!("{base}/api/v1/omni/templates"))
                .header("x-api-key", &key)
                .json(&template())
                .send()
                .await
                .expect("template");
            assert!(res.status().is_success(), "{}", res.status());
            let started = Instant::now();
            let made = create_journeys(&client, &base, &key, clients, Some(events), None).await;
            println!(
                "backlog: {made} journeys created in {:.1} s, no message sent yet",
                started.elapsed().as_secs_f64()
            );
        }
        Cmd::Measure {
            listen,
            base,
            key,
            backlog,
            endpoints,
            rate,
            seconds,
        } => measure(&listen, &base, &key, backlog, endpoints, rate, seconds).await,
    }
}

async fn seed(database_url: String, receiver: &str, endpoints: usize) {
    let (db, tenant, key) = support::bench_tenant(database_url).await;
    for _ in 0..endpoints {
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, enabled, secret,
                 created_at, updated_at) VALUES ($1, $2, $3, '[]', 1, $4, 0, 0)",
        )
        .bind(omnirail::ids::new_id("ep_"))
        .bind(&tenant)
        .bind(receiver)
        .bind(omnirail::webhooks::model::Secret::generate().expose())
        .execute(db.reader())
        .await
        .unwrap();
    }
    println!("{key}");
}

fn template() -> Value {
    json!({
        "id": "tmpl_bench", "name": "Bench", "category": "onboarding",
        "steps": [{ "id": "step_kyc", "name": "KYC", "type": "kyc_check", "order": 1, "required": true }]
    })
}

/// Creates journeys with `clients` clients until `count` are made or `until` passes.
async fn create_journeys(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    clients: usize,
    count: Option<usize>,
    until: Option<Instant>,
) -> usize {
    let body = json!({ "templateId": "tmpl_bench", "customerId": "ent_bench", "channel": "web" });
    let url = format!("{base}/api/v1/omni/journeys");
    futures::stream::iter(0..count.unwrap_or(usize::MAX))
        .take_while(|_| std::future::ready(until.is_none_or(|u| Instant::now() < u)))
        .map(|_| {
            let req = client.post(&url).header("x-api-key", key).json(&body);
            async move { req.send().await.is_ok_and(|r| r.status().is_success()) }
        })
        .buffer_unordered(clients)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await
}

async fn measure(
    listen: &str,
    base: &str,
    key: &str,
    backlog: usize,
    endpoints: usize,
    rate: f64,
    seconds: u64,
) {
    let (_, arrivals) = Arrivals::start(listen).await;

    // Drain: the delivering server starts after the receiver listens.
    if !arrivals.wait_for(backlog, Duration::from_secs(600)).await {
        println!(
            "drain: only {} of {backlog} arrived",
            arrivals.got.lock().unwrap().len()
        );
        return;
    }
    {
        let got = arrivals.got.lock().unwrap();
        let span = got[backlog - 1].0 - got[0].0;
        println!(
            "drain: {backlog} messages delivered in {:.2} s: {:.0} deliveries/s",
            span.as_secs_f64(),
            backlog as f64 / span.as_secs_f64()
        );
    }

    // Steady: journeys created at `rate` per second for `seconds`, each event's messages timed
    // from its commit.
    let before = arrivals.got.lock().unwrap().len();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut requests = tokio::task::JoinSet::new();
    let body = json!({ "templateId": "tmpl_bench", "customerId": "ent_bench", "channel": "web" });
    while Instant::now() < until {
        ticker.tick().await;
        let req = client
            .post(format!("{base}/api/v1/omni/journeys"))
            .header("x-api-key", key)
            .json(&body);
        requests.spawn(async move { req.send().await.is_ok_and(|r| r.status().is_success()) });
    }
    let mut made = 0;
    while let Some(ok) = requests.join_next().await {
        made += usize::from(ok.unwrap_or(false));
    }
    let want = before + made * endpoints;
    let complete = arrivals.wait_for(want, Duration::from_secs(60)).await;
    let got = arrivals.got.lock().unwrap();
    let steady: Vec<(Instant, Duration)> = got[before..].to_vec();
    let last = steady.last().map_or(started, |a| a.0);
    let (p50, p99) = percentiles(steady.iter().map(|a| a.1).collect());
    println!(
        "steady: {made} journeys in {seconds} s (offered {rate:.0}/s), {} of {} messages arrived{}; \
         {:.0} deliveries/s; commit to receipt p50 {p50:.1} ms, p99 {p99:.1} ms",
        steady.len(),
        made * endpoints,
        if complete { "" } else { " (some missing)" },
        steady.len() as f64 / (last - started).as_secs_f64(),
    );
}
