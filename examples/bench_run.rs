//! The one load harness behind `bench/run` (never run by the tests).
//!
//! `bench_run run`: on one database, in this order (`--phases` picks some),
//! - issue 23's reference: the database's own durable single-row commits per second, with no
//!   server in the way (`bench/raw_sqlite.py` on SQLite, `pgbench` on PostgreSQL);
//! - the raw database baseline: single-row durable insert transactions per second through
//!   Omnirail's own store, on a second, empty database of the same kind;
//! - the bare HTTP baseline: the same closed loop of clients against `bench_run bare`, a
//!   process that only parses a JSON body and answers JSON;
//! - the release `omnirail serve` on the database: its idle RSS, then six closed-loop
//!   phases (journey create, journey flow, approvals, handoff/resume, timeline reads, notification intake)
//!   with throughput, p50/p99 and the server's peak RSS during each;
//! - webhook delivery: endpoints at a receiver in this process, journeys created at a fixed
//!   rate, deliveries per second and latency from the event's commit to its arrival;
//! - a sweep of offered journey creates per second (an open loop, latency from each request's
//!   due time, so a server falling behind shows as latency rather than as fewer requests).
//!
//! It writes everything as JSON to `--out`; `bench/report.py` turns the files into the table
//! and the plot of docs/benchmarks.md.
//!
//! `bench_run bare --listen ADDR`: the bare HTTP handler, axum on tokio as Omnirail is.

mod support;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::StatusCode;
use clap::{Parser, Subcommand};
use serde::Serialize;
use serde_json::{Value, json};

use support::{Arrivals, percentiles};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Run(RunArgs),
    Bare {
        #[arg(long)]
        listen: String,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The release `omnirail` binary.
    #[arg(long)]
    server: PathBuf,
    /// The database to serve (fresh).
    #[arg(long)]
    database_url: String,
    /// A second fresh database of the same kind, for the raw baseline.
    #[arg(long)]
    raw_database_url: String,
    /// Concurrent clients of the closed-loop phases.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds of each closed-loop phase and of the webhook phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Offered journey creates per second, one sweep step each.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "50,100,200,400,600,800,1000,1200,1600,2000"
    )]
    rates: Vec<f64>,
    /// Seconds of each sweep step.
    #[arg(long, default_value_t = 5)]
    sweep_seconds: u64,
    /// Webhook endpoints, each subscribed to every event.
    #[arg(long, default_value_t = 8)]
    endpoints: usize,
    /// Journeys created per second in the webhook phase (each is `endpoints` deliveries).
    #[arg(long, default_value_t = 250.0)]
    webhook_rate: f64,
    /// Seconds the server idles before its idle RSS is read.
    #[arg(long, default_value_t = 10)]
    settle: u64,
    /// Only these phases (`create,flow,approvals,handoff,timeline,notifications,webhooks,sweep`);
    /// all when not given.
    #[arg(long, value_delimiter = ',')]
    phases: Vec<String>,
    /// A scratch folder: the server's document store and log.
    #[arg(long)]
    work: PathBuf,
    /// Where the results go (JSON).
    #[arg(long)]
    out: PathBuf,
}

/// One measured phase.
#[derive(Serialize)]
struct Row {
    name: &'static str,
    /// What one operation is.
    unit: &'static str,
    ops_per_s: f64,
    /// HTTP requests per second: those the clients made, or for webhook delivery the
    /// deliveries the server made.
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// The server's peak resident memory during the phase (0 where there is no server).
    peak_rss_mb: f64,
    errors: usize,
}

/// One step of the latency sweep.
#[derive(Serialize)]
struct SweepPoint {
    offered_per_s: f64,
    achieved_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

#[derive(Serialize)]
struct Results {
    database: &'static str,
    clients: usize,
    seconds: u64,
    cores: usize,
    /// Issue 23's reference: the database's own durable single-row commits per second with no
    /// server in the way (Python's sqlite3; pgbench).
    reference: Row,
    database_baseline: Row,
    http_baseline: Row,
    idle_rss_mb: f64,
    scenarios: Vec<Row>,
    sweep: Vec<SweepPoint>,
}

#[tokio::main]
async fn main() {
    match Args::parse().command {
        Cmd::Run(args) => run(args).await,
        Cmd::Bare { listen } => bare(&listen).await,
    }
}

async fn bare(listen: &str) {
    async fn handler(Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
        (StatusCode::CREATED, Json(json!({ "data": body })))
    }
    let app = axum::Router::new().route("/bare", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}

/// The API as one client sees it.
struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(Duration, Value), String> {
        let started = Instant::now();
        let res = req
            .header("x-api-key", &self.key)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let took = started.elapsed();
        if status.is_success() {
            Ok((took, body))
        } else {
            Err(format!("{status}: {body}"))
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(Duration, Value), String> {
        let url = format!("{}{path}", self.base);
        self.send(self.client.post(url).json(body)).await
    }

    async fn get(&self, path: &str) -> Result<(Duration, Value), String> {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }
}

fn id_of(body: &Value, field: &str) -> Result<String, String> {
    body.pointer(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no {field} in {body}"))
}

/// What a closed loop measured.
struct Measured {
    ops: u64,
    latencies: Vec<Duration>,
    secs: f64,
    errors: usize,
}

impl Measured {
    fn row(self, name: &'static str, unit: &'static str, peak_rss_mb: f64) -> Row {
        let requests = self.latencies.len() as f64;
        let (p50_ms, p99_ms) = if self.latencies.is_empty() {
            (0.0, 0.0)
        } else {
            percentiles(self.latencies)
        };
        Row {
            name,
            unit,
            ops_per_s: self.ops as f64 / self.secs,
            requests_per_s: requests / self.secs,
            p50_ms,
            p99_ms,
            peak_rss_mb,
            errors: self.errors,
        }
    }
}

/// `clients` clients each repeating `op` (given the client's number and the repetition's)
/// for `seconds`; `op` answers the latency of each request it made.
async fn closed_loop<F, Fut>(clients: usize, seconds: u64, op: F) -> Measured
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Duration>, String>> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let op = op.clone();
        tasks.spawn(async move {
            let (mut ops, mut latencies, mut errors) = (0, Vec::new(), Vec::new());
            let mut i = 0;
            while Instant::now() < deadline {
                match op(c, i).await {
                    Ok(l) => {
                        ops += 1;
                        latencies.extend(l);
                    }
                    Err(e) => errors.push(e),
                }
                i += 1;
            }
            (ops, latencies, errors)
        });
    }
    let mut all = Measured {
        ops: 0,
        latencies: Vec::new(),
        secs: 0.0,
        errors: 0,
    };
    while let Some(done) = tasks.join_next().await {
        let (ops, latencies, errors) = done.expect("client task");
        if let Some(first) = errors.first() {
            eprintln!("  {} errors, the first: {first}", errors.len());
        }
        all.ops += ops;
        all.latencies.extend(latencies);
        all.errors += errors.len();
    }
    all.secs = started.elapsed().as_secs_f64();
    all
}

/// Resident memory of a process, from /proc: `VmRSS` (now) or `VmHWM` (peak), in MB.
fn rss_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim_start_matches(':').trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets a process's peak resident memory to its current (Linux's clear_refs, value 5).
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGTERM, then waits: the server's graceful stop.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

async fn wait_ready(client: &reqwest::Client, url: &str) {
    for _ in 0..300 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer within 30 s");
}

fn serve(args: &RunArgs, port: u16) -> Process {
    let log = std::fs::File::create(args.work.join("server.log")).expect("server log");
    let child = Command::new(&args.server)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &args.database_url])
        .env("OMNIRAIL_WEBHOOKS__ALLOW_HTTP", "true")
        .env("OMNIRAIL_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true")
        .env("OMNIRAIL_DOCUMENT_STORE", args.work.join("documents"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start omnirail serve");
    Process(child)
}

const STEPS: [&str; 3] = ["step_kyc", "step_docs", "step_review"];

fn template() -> Value {
    json!({ "id": "tmpl_bench_run", "name": "Bench onboarding", "category": "onboarding", "steps": [
        { "id": "step_kyc", "name": "KYC Verification", "type": "kyc_check", "order": 1 },
        { "id": "step_docs", "name": "Document Collection", "type": "document_upload", "order": 2 },
        { "id": "step_review", "name": "Credit Review", "type": "review", "order": 3 }
    ]})
}

/// Seed 001's journey body, for the customer `customer`: one customer per client, since one
/// customer's events are one hash chain, appended one at a time by design. Its `dueAt` is in
/// the future (the seed's is in 2024): a create computes and stores the journey's deadlines as
/// any dated journey's does, and no deadline worker announces a breach beside the load.
fn journey(customer: &str) -> Value {
    json!({
        "templateId": "tmpl_bench_run", "customerId": customer, "channel": "web",
        "context": { "productType": "murabaha", "requestedAmount": { "amount": 2000000, "currency": "SAR" } },
        "assigneeId": "usr_rm_001", "priority": "normal", "dueAt": "2099-01-25T17:00:00Z"
    })
}

fn sweep_customer(i: usize) -> String {
    format!("ent_sweep_{:02}", i % 64)
}

fn customer(c: usize) -> String {
    format!("ent_bench_{c:03}")
}

/// One journey create, for a customer never seen before: the issue-23 phase.
async fn journey_create(api: Arc<Api>, c: usize, i: u64) -> Result<Vec<Duration>, String> {
    let body = journey(&format!("ent_new_{c:03}_{i:07}"));
    Ok(vec![api.post("/api/v1/omni/journeys", &body).await?.0])
}

async fn journey_flow(api: Arc<Api>, c: usize) -> Result<Vec<Duration>, String> {
    let (took, created) = api
        .post("/api/v1/omni/journeys", &journey(&customer(c)))
        .await?;
    let id = id_of(&created, "/data/id")?;
    let mut latencies = vec![took];
    for step in STEPS {
        let body = json!({ "completedStepId": step, "advancedBy": "usr_rm_001" });
        let path = format!("/api/v1/omni/journeys/{id}/advance");
        latencies.push(api.post(&path, &body).await?.0);
    }
    let path = format!("/api/v1/omni/journeys/{id}/complete");
    let body = json!({ "completedBy": "usr_rm_001" });
    latencies.push(api.post(&path, &body).await?.0);
    Ok(latencies)
}

async fn approval(api: Arc<Api>, c: usize, i: u64) -> Result<Vec<Duration>, String> {
    let expires =
        omnirail::time::to_rfc3339(omnirail::time::Clock::default().now_ms() + 86_400_000);
    let body = json!({
        "entityType": "contract", "entityId": format!("ctr_{c}_{i}"),
        "approvalType": "limit_increase", "requestedBy": "usr_rm_001",
        "approvers": [{ "userId": "usr_credit_001", "role": "primary", "required": true }],
        "amount": { "amount": 250000, "currency": "SAR" },
        "expiresAt": expires
    });
    let (took, created) = api.post("/api/v1/omni/approvals", &body).await?;
    let id = id_of(&created, "/data/id")?;
    let decision = json!({ "approverId": "usr_credit_001", "decision": "approve", "comment": "Within appetite" });
    let path = format!("/api/v1/omni/approvals/{id}/decisions");
    Ok(vec![took, api.post(&path, &decision).await?.0])
}

async fn handoff(api: Arc<Api>, c: usize) -> Result<Vec<Duration>, String> {
    let context = json!({ "current_flow": "PAYMENT", "transaction_draft_id": "draft_abc789" });
    let start = json!({ "customer_id": customer(c), "channel": "WEB",
                        "device_id": "device_web_001", "context": context });
    let (t1, session) = api.post("/api/v1/sessions", &start).await?;
    let body = json!({ "source_session_id": id_of(&session, "/session_id")?,
                       "target_channel": "MOBILE_IOS", "context": context });
    let (t2, handed) = api.post("/api/v1/sessions/handoff", &body).await?;
    let body = json!({ "handoff_token": id_of(&handed, "/handoff_token")?,
                       "channel": "MOBILE_IOS", "device_id": "device_abc123" });
    let (t3, _) = api.post("/api/v1/sessions/resume", &body).await?;
    Ok(vec![t1, t2, t3])
}

async fn timeline(api: Arc<Api>, c: usize) -> Result<Vec<Duration>, String> {
    let path = format!(
        "/api/v1/omni/timeline?entityType=customer&entityId={}&perPage=50",
        customer(c)
    );
    Ok(vec![api.get(&path).await?.0])
}

async fn notification(api: Arc<Api>, c: usize) -> Result<Vec<Duration>, String> {
    let body = json!({
        "recipientId": customer(c), "channels": ["in_app"], "templateCode": "JOURNEY_STEP_REQUIRED",
        "templateData": { "journeyName": "SME Onboarding", "stepName": "Document Collection", "dueDate": "2024-01-17" }
    });
    Ok(vec![api.post("/api/v1/omni/notifications", &body).await?.0])
}

/// Journey creates offered at `rate` per second for `seconds`, whatever the answers' pace (at
/// most 1,024 outstanding). Each latency is counted from the request's due time.
async fn open_loop(api: &Arc<Api>, rate: f64, seconds: u64) -> SweepPoint {
    let outstanding = Arc::new(tokio::sync::Semaphore::new(1024));
    let started = tokio::time::Instant::now();
    let n = (rate * seconds as f64).round() as usize;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let permit = outstanding
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore");
        let api = api.clone();
        tasks.spawn(async move {
            let res = api
                .post("/api/v1/omni/journeys", &journey(&sweep_customer(i)))
                .await;
            drop(permit);
            (due.elapsed(), res.is_ok())
        });
    }
    let (mut ok, mut errors) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        match done.expect("request task") {
            (took, true) => ok.push(took),
            (_, false) => errors += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let achieved_per_s = ok.len() as f64 / secs;
    let (p50_ms, p99_ms) = if ok.is_empty() {
        (0.0, 0.0)
    } else {
        percentiles(ok)
    };
    SweepPoint {
        offered_per_s: rate,
        achieved_per_s,
        p50_ms,
        p99_ms,
        errors,
    }
}

async fn webhooks(api: &Arc<Api>, args: &RunArgs, pid: u32) -> Row {
    let (url, arrivals) = Arrivals::start("127.0.0.1:0").await;
    let mut endpoints = Vec::new();
    for _ in 0..args.endpoints {
        // Only journey creations: the journey's other events (its assignment, the
        // notification that tells of it) would add messages the phase does not count.
        let body = json!({ "url": url, "description": "bench receiver",
                           "eventTypes": ["omni.journey.created"] });
        let (_, made) = api
            .post("/api/v1/omni/webhooks/endpoints", &body)
            .await
            .expect("register a webhook endpoint");
        endpoints.push(id_of(&made, "/data/id").expect("endpoint id"));
    }
    // Messages of the registrations' own events arrive first; they are not counted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = arrivals.got.lock().unwrap().len();

    reset_peak(pid);
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.webhook_rate));
    let mut requests = tokio::task::JoinSet::new();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(args.seconds) {
        ticker.tick().await;
        let api = api.clone();
        let body = journey(&format!("ent_hook_{:02}", i % 64));
        i += 1;
        requests.spawn(async move { api.post("/api/v1/omni/journeys", &body).await.is_ok() });
    }
    let (mut made, mut errors) = (0, 0);
    while let Some(ok) = requests.join_next().await {
        match ok.unwrap_or(false) {
            true => made += 1,
            false => errors += 1,
        }
    }
    let want = before + made * args.endpoints;
    arrivals.wait_for(want, Duration::from_secs(120)).await;
    let peak_rss_mb = rss_mb(pid, "VmHWM");
    // The phases after this one measure without webhooks, as those before it did.
    for id in endpoints {
        let url = format!("{}/api/v1/omni/webhooks/endpoints/{id}", api.base);
        api.send(api.client.patch(url).json(&json!({ "enabled": false })))
            .await
            .expect("disable a webhook endpoint");
    }
    let got = arrivals.got.lock().unwrap();
    let steady = &got[before.min(got.len())..];
    let missing = want.saturating_sub(got.len());
    if missing > 0 {
        eprintln!("  {missing} webhook messages did not arrive within 120 s");
    }
    let last = steady.last().map_or(started, |a| a.0);
    let secs = (last - started).as_secs_f64().max(f64::EPSILON);
    let (p50_ms, p99_ms) = percentiles(steady.iter().map(|a| a.1).collect());
    Row {
        name: "webhook delivery",
        unit: "deliveries",
        ops_per_s: steady.len() as f64 / secs,
        requests_per_s: steady.len() as f64 / secs,
        p50_ms,
        p99_ms,
        peak_rss_mb,
        errors: errors + missing,
    }
}

/// The bare HTTP handler under the same closed loop.
async fn http_baseline(args: &RunArgs, seconds: u64) -> Row {
    let port = free_port();
    let me = std::env::current_exe().expect("own path");
    let bare = Process(
        Command::new(me)
            .args(["bare", "--listen", &format!("127.0.0.1:{port}")])
            .spawn()
            .expect("start the bare handler"),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/bare");
    for _ in 0..300 {
        if client.post(&url).json(&json!({})).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let api = Arc::new(Api {
        client,
        base: format!("http://127.0.0.1:{port}"),
        key: String::new(),
    });
    let pid = bare.pid();
    reset_peak(pid);
    let measured = closed_loop(args.clients, seconds, move |c, _| {
        let api = api.clone();
        async move { Ok(vec![api.post("/bare", &journey(&customer(c))).await?.0]) }
    })
    .await;
    let row = measured.row("bare HTTP handler", "requests", rss_mb(pid, "VmHWM"));
    bare.stop();
    row
}

/// Issue 23's reference on the raw database: on SQLite, `bench/raw_sqlite.py` (Python's sqlite3,
/// WAL, synchronous=FULL, BEGIN IMMEDIATE / INSERT / COMMIT from `clients` threads, on a file
/// of its own); on PostgreSQL, `pgbench` with `clients` clients each committing one
/// single-row INSERT per transaction.
async fn reference(args: &RunArgs) -> Row {
    let clients = args.clients.to_string();
    let seconds = args.seconds.to_string();
    if kind(&args.raw_database_url) == "sqlite" {
        println!(
            "reference: Python sqlite3 single-row commits ({} s)",
            args.seconds
        );
        let path = args.work.join("reference.db");
        let out = Command::new("python3")
            .args(["bench/raw_sqlite.py", "--path"])
            .arg(&path)
            .args(["--clients", &clients, "--seconds", &seconds])
            .output()
            .expect("run bench/raw_sqlite.py");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_slice(&out.stdout).expect("its JSON");
        let rate = got["commits"].as_f64().unwrap_or(0.0) / got["seconds"].as_f64().unwrap_or(1.0);
        return Row {
            name: "reference: Python sqlite3 single-row commits",
            unit: "commits",
            ops_per_s: rate,
            requests_per_s: rate,
            p50_ms: got["p50_ms"].as_f64().unwrap_or(0.0),
            p99_ms: got["p99_ms"].as_f64().unwrap_or(0.0),
            peak_rss_mb: 0.0,
            errors: 0,
        };
    }
    println!("reference: pgbench single-row inserts ({} s)", args.seconds);
    let config = omnirail::config::Config {
        database_url: omnirail::config::DatabaseUrl(args.raw_database_url.clone()),
        ..omnirail::config::Config::default()
    };
    let db = omnirail::store::Db::connect(&config)
        .await
        .expect("connect");
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_reference \
         (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL, created_at BIGINT NOT NULL)",
    )
    .execute(db.reader())
    .await
    .expect("reference table");
    db.close().await;
    let script = args.work.join("reference.sql");
    std::fs::write(
        &script,
        "INSERT INTO bench_reference (payload, created_at) \
         VALUES ('{\"productType\":\"murabaha\"}', 1);\n",
    )
    .expect("pgbench script");
    let out = Command::new("pgbench")
        .args(["-n", "-c", &clients, "-j", "2", "-T", &seconds, "-f"])
        .arg(&script)
        .arg(&args.raw_database_url)
        .output()
        .expect("run pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let rate = field("tps = ");
    let latency = field("latency average = ");
    Row {
        name: "reference: pgbench single-row inserts",
        unit: "commits",
        ops_per_s: rate,
        requests_per_s: rate,
        p50_ms: latency,
        p99_ms: 0.0,
        peak_rss_mb: 0.0,
        errors: 0,
    }
}

fn kind(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    }
}

async fn run(args: RunArgs) {
    std::fs::create_dir_all(&args.work).expect("work folder");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let wanted = |phase: &str| args.phases.is_empty() || args.phases.iter().any(|p| p == phase);
    let reference = if wanted("reference") {
        reference(&args).await
    } else {
        Measured {
            ops: 0,
            latencies: Vec::new(),
            secs: 1.0,
            errors: 0,
        }
        .row("reference", "commits", 0.0)
    };
    print_row(&reference);
    println!("raw database baseline ({} s)", args.seconds);
    let seconds = if wanted("raw") { args.seconds } else { 0 };
    let (secs, inserts) =
        support::raw_inserts(args.raw_database_url.clone(), args.clients, seconds).await;
    let database_baseline = Measured {
        ops: inserts.len() as u64,
        latencies: inserts,
        secs,
        errors: 0,
    }
    .row("raw database inserts", "transactions", 0.0);
    print_row(&database_baseline);

    println!("bare HTTP handler ({} s)", args.seconds);
    let http_baseline = http_baseline(&args, if wanted("bare") { args.seconds } else { 0 }).await;
    print_row(&http_baseline);

    let (db, _, key) = support::bench_tenant(args.database_url.clone()).await;
    db.close().await;
    let port = free_port();
    let server = serve(&args, port);
    let pid = server.pid();
    // Idle connections are let go before the server closes them (after 10 s idle), so no
    // request goes out on a connection being closed.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &format!("{base}/readyz")).await;
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let idle_rss_mb = rss_mb(pid, "VmRSS");
    println!("idle RSS after {} s: {idle_rss_mb:.1} MB", args.settle);

    let api = Arc::new(Api { client, base, key });
    api.post("/api/v1/omni/templates", &template())
        .await
        .expect("create the bench template");

    let mut scenarios = Vec::new();
    macro_rules! scenario {
        ($phase:literal, $name:literal, $unit:literal, $op:expr) => {{
            if wanted($phase) {
                println!("{} ({} s, {} clients)", $name, args.seconds, args.clients);
                reset_peak(pid);
                let api = api.clone();
                let measured = closed_loop(args.clients, args.seconds, move |c, i| {
                    #[allow(clippy::redundant_closure_call)]
                    $op(api.clone(), c, i)
                })
                .await;
                let row = measured.row($name, $unit, rss_mb(pid, "VmHWM"));
                print_row(&row);
                scenarios.push(row);
            }
        }};
    }
    scenario!("create", "journey create", "journeys", journey_create);
    scenario!(
        "flow",
        "journey flow",
        "journeys",
        |api, c, _| journey_flow(api, c)
    );
    scenario!("approvals", "approvals", "approvals decided", approval);
    scenario!(
        "handoff",
        "handoff/resume",
        "handoffs resumed",
        |api, c, _| { handoff(api, c) }
    );
    scenario!("timeline", "timeline reads", "pages", |api, c, _| timeline(
        api, c
    ));
    scenario!(
        "notifications",
        "notification intake",
        "notifications",
        |api, c, _| { notification(api, c) }
    );

    if wanted("webhooks") {
        println!(
            "webhook delivery ({} endpoints, {} journeys/s, {} s)",
            args.endpoints, args.webhook_rate, args.seconds
        );
        let row = webhooks(&api, &args, pid).await;
        print_row(&row);
        scenarios.push(row);
    }
    // The sweep's customers exist before it starts, so its first steps do not pay for
    // creating them.
    let rates = if wanted("sweep") {
        &args.rates[..]
    } else {
        &[]
    };
    for i in 0..64.min(rates.len() * 64) {
        api.post("/api/v1/omni/journeys", &journey(&sweep_customer(i)))
            .await
            .expect("warm-up journey");
    }
    let mut sweep = Vec::new();
    for &rate in rates {
        println!(
            "offered {rate:.0} journey creates/s ({} s)",
            args.sweep_seconds
        );
        let point = open_loop(&api, rate, args.sweep_seconds).await;
        println!(
            "  achieved {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {} errors",
            point.achieved_per_s, point.p50_ms, point.p99_ms, point.errors
        );
        sweep.push(point);
    }

    server.stop();

    let results = Results {
        database: kind(&args.database_url),
        reference,
        clients: args.clients,
        seconds: args.seconds,
        cores,
        database_baseline,
        http_baseline,
        idle_rss_mb,
        scenarios,
        sweep,
    };
    write_json(&args.out, &results);
}

fn print_row(row: &Row) {
    println!(
        "  {:.1} {}/s, {:.1} requests/s, p50 {:.2} ms, p99 {:.2} ms, peak RSS {:.1} MB, {} errors",
        row.ops_per_s,
        row.unit,
        row.requests_per_s,
        row.p50_ms,
        row.p99_ms,
        row.peak_rss_mb,
        row.errors
    );
}

fn write_json(path: &Path, results: &Results) {
    let text = serde_json::to_string_pretty(results).expect("serialize");
    std::fs::write(path, text).expect("write results");
}
