//! Notifications benchmark for `bench/notifications.sh` (never run by the tests).
//!
//! `notifications_bench seed`: a tenant and its API key (printed on the last line).
//!
//! `notifications_bench measure`: against a running server,
//! - accepted per second: `clients` concurrent clients each creating in-app notifications for
//!   their own customer, `requests` in all; with p50/p99 of the POST;
//! - end-to-end in-app latency: with a customer's live stream open, one notification at a
//!   time, from the POST being sent to its `notification.delivered` event arriving on the
//!   stream; p50/p99 over `samples`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

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
    },
    Measure {
        #[arg(long)]
        base: String,
        #[arg(long)]
        key: String,
        #[arg(long, default_value_t = 32)]
        clients: usize,
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
}

#[tokio::main]
async fn main() {
    match Args::parse().command {
        Cmd::Seed { database_url } => {
            let (_, _, key) = support::bench_tenant(database_url).await;
            println!("{key}");
        }
        Cmd::Measure {
            base,
            key,
            clients,
            requests,
            samples,
        } => {
            accepted(&base, &key, clients, requests).await;
            end_to_end(&base, &key, samples).await;
            let url = format!("{base}/api/v1/omni/notifications?perPage=1");
            let (_, page) = get(&reqwest::Client::new(), &url, &key).await;
            println!("stored: {} notifications", page["pagination"]["total"]);
        }
    }
}

fn body(customer: &str) -> Value {
    json!({
        "recipientId": customer, "channels": ["in_app"], "templateCode": "JOURNEY_STEP_REQUIRED",
        "templateData": {"journeyName": "SME Onboarding", "stepName": "Document Collection", "dueDate": "2024-01-17"},
    })
}

async fn post(client: &reqwest::Client, base: &str, key: &str, customer: &str) -> Value {
    let res = client
        .post(format!("{base}/api/v1/omni/notifications"))
        .header("x-api-key", key)
        .json(&body(customer))
        .send()
        .await
        .expect("request");
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

async fn accepted(base: &str, key: &str, clients: usize, requests: usize) {
    let client = reqwest::Client::new();
    // Each client's customer exists before the clock starts.
    for c in 0..clients {
        post(&client, base, key, &format!("cust_bench_{c}")).await;
    }
    let per_client = requests / clients;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, base, key) = (client.clone(), base.to_owned(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let customer = format!("cust_bench_{c}");
            let mut took = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                post(&client, &base, &key, &customer).await;
                took.push(t.elapsed());
            }
            took
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let n = all.len();
    let (p50, p99) = percentiles(all);
    println!(
        "accepted: {n} notifications by {clients} clients in {:.1} s: {:.0}/s; POST p50 {p50:.1} ms, p99 {p99:.1} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
}

async fn end_to_end(base: &str, key: &str, samples: usize) {
    let client = reqwest::Client::new();
    let customer = "cust_bench_stream";
    post(&client, base, key, customer).await;
    // Let the first one be delivered before the stream opens.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut stream = client
        .get(format!("{base}/api/v1/customers/{customer}/stream"))
        .header("x-api-key", key)
        .send()
        .await
        .expect("stream");
    assert!(stream.status().is_success());
    let buf = Arc::new(tokio::sync::Mutex::new(String::new()));
    let mut took = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let created = post(&client, base, key, customer).await;
        let id = created["data"]["id"].as_str().unwrap().to_owned();
        loop {
            let mut b = buf.lock().await;
            if let Some(end) = b.find("\n\n") {
                let frame: String = b.drain(..end + 2).collect();
                if frame.contains("\"notification.delivered\"") && frame.contains(&id) {
                    took.push(t.elapsed());
                    break;
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), stream.chunk())
                .await
                .expect("an event within 30 s")
                .expect("stream read")
                .expect("stream open");
            b.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    let worst = took.iter().max().copied().unwrap_or_default();
    let (p50, p99) = percentiles(took);
    println!(
        "in-app end to end (POST to notification.delivered on the customer's stream), {samples} one at a time: p50 {p50:.1} ms, p99 {p99:.1} ms, max {:.1} ms",
        ms(worst)
    );
}
