//! Load generator for `bench/journeys.sh` (never run by the tests).
//!
//! `loadgen journeys`: concurrent clients against a running server, each for its own customer;
//! first a create-only phase (journey-create throughput), then the full flow (create, advance
//! each step, complete), printing journeys/s and p50/p99 per request type.
//!
//! `loadgen baseline`: the raw database baseline: single-row durable insert transactions per
//! second through Omnirail's own store (same pools, pragmas and durability as the server).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Journeys {
        #[arg(long)]
        base: String,
        #[arg(long)]
        key: String,
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Seconds for each phase.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
    },
    Baseline {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 32)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

type Samples = BTreeMap<&'static str, Vec<Duration>>;

#[tokio::main]
async fn main() {
    match Args::parse().command {
        Cmd::Journeys {
            base,
            key,
            clients,
            seconds,
        } => journeys(base, key, clients, seconds).await,
        Cmd::Baseline {
            database_url,
            clients,
            seconds,
        } => baseline(database_url, clients, seconds).await,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(samples: &mut Samples) {
    for (kind, v) in samples.iter_mut() {
        v.sort();
        println!(
            "  {kind:<9} n={:<7} p50={:>7.2} ms  p99={:>7.2} ms",
            v.len(),
            percentile(v, 0.50),
            percentile(v, 0.99)
        );
    }
}

async fn post(client: &reqwest::Client, url: String, key: &str, body: Value) -> Duration {
    let started = Instant::now();
    let res = client
        .post(url)
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {text}");
    started.elapsed()
}

async fn journeys(base: String, key: String, clients: usize, seconds: u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let template = format!("tmpl_bench_{}", std::process::id());
    post(
        &client,
        format!("{base}/api/v1/omni/templates"),
        &key,
        json!({ "id": template, "name": "Bench onboarding", "category": "onboarding", "steps": [
            { "id": "step_kyc", "name": "KYC Verification", "type": "kyc_check", "order": 1 },
            { "id": "step_docs", "name": "Document Collection", "type": "document_upload", "order": 2 },
            { "id": "step_review", "name": "Credit Review", "type": "review", "order": 3 }
        ]}),
    )
    .await;
    let create_body = json!({
        "templateId": template, "customerId": "ent_customer_456", "channel": "web",
        "context": { "productType": "murabaha", "requestedAmount": { "amount": 2000000, "currency": "SAR" } },
        "assigneeId": "usr_rm_001", "priority": "normal", "dueAt": "2099-01-25T17:00:00Z"
    });

    for full_flow in [false, true] {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for n in 0..clients {
            // Each client serves its own customer: one customer's events are one hash chain,
            // appended one at a time by design, and a bank's concurrent journeys belong to many
            // customers, not all to one.
            let mut body = create_body.clone();
            body["customerId"] = json!(format!("ent_customer_{n:03}"));
            let (client, base, key) = (client.clone(), base.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                let mut samples: Samples = BTreeMap::new();
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let res = client
                        .post(format!("{base}/api/v1/omni/journeys"))
                        .header("x-api-key", &key)
                        .json(&body)
                        .send()
                        .await
                        .expect("create");
                    assert!(res.status().is_success(), "create: {}", res.status());
                    let j: Value = res.json().await.unwrap();
                    samples.entry("create").or_default().push(t.elapsed());
                    if full_flow {
                        let id = j["data"]["id"].as_str().unwrap().to_owned();
                        for step in ["step_kyc", "step_docs", "step_review"] {
                            let url = format!("{base}/api/v1/omni/journeys/{id}/advance");
                            let d = post(
                                &client,
                                url,
                                &key,
                                json!({ "completedStepId": step, "advancedBy": "usr_rm_001" }),
                            )
                            .await;
                            samples.entry("advance").or_default().push(d);
                        }
                        let url = format!("{base}/api/v1/omni/journeys/{id}/complete");
                        let d =
                            post(&client, url, &key, json!({ "completedBy": "usr_rm_001" })).await;
                        samples.entry("complete").or_default().push(d);
                    }
                    done += 1;
                }
                (done, samples)
            }));
        }
        let mut total = 0u64;
        let mut all: Samples = BTreeMap::new();
        for t in tasks {
            let (done, samples) = t.await.unwrap();
            total += done;
            for (k, v) in samples {
                all.entry(k).or_default().extend(v);
            }
        }
        let secs = started.elapsed().as_secs_f64();
        if full_flow {
            println!(
                "full flow: {:.1} journeys/s ({total} journeys, {clients} clients, {secs:.1} s)",
                total as f64 / secs
            );
        } else {
            println!(
                "create only: create_throughput={:.1}/s ({total} creates, {clients} clients, {secs:.1} s)",
                total as f64 / secs
            );
        }
        report(&mut all);
    }
}

async fn baseline(database_url: String, clients: usize, seconds: u64) {
    let (secs, all) = support::raw_inserts(database_url, clients, seconds).await;
    println!(
        "raw baseline: baseline_tps={:.1}/s ({} inserts, {clients} clients, {secs:.1} s)",
        all.len() as f64 / secs,
        all.len()
    );
    let mut samples: Samples = BTreeMap::new();
    samples.insert("insert", all);
    report(&mut samples);
}
