//! What the benchmark clients share: a tenant and key to seed, a timed GET and percentiles.
//! Each benchmark uses the parts it needs.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;

use omnirail::config::{Config, DatabaseUrl};
use omnirail::store::Db;
use serde_json::Value;

/// Opens (and migrates) the database at `database_url` and creates a tenant with an API key:
/// the database, the tenant's id and the key.
pub async fn bench_tenant(database_url: String) -> (Db, String, String) {
    let config = Config {
        database_url: DatabaseUrl(database_url),
        ..Config::default()
    };
    let db = Db::open(&config).await.expect("open");
    let tenant = omnirail::auth::create_tenant(&db, "Bench Bank")
        .await
        .unwrap();
    let key = omnirail::keys::create_key(&db, &tenant, Some("bench"))
        .await
        .unwrap();
    (db, tenant, key.secret)
}

/// One GET with the API key; its time and body. Panics on an error answer.
pub async fn get(client: &reqwest::Client, url: &str, key: &str) -> (Duration, Value) {
    let started = Instant::now();
    let res = client
        .get(url)
        .header("x-api-key", key)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let took = started.elapsed();
    assert!(status.is_success(), "{status}: {body}");
    (took, body)
}

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50 and p99, in milliseconds.
pub fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |p: f64| ms(v[((v.len() as f64 - 1.0) * p).round() as usize]);
    (at(0.50), at(0.99))
}

/// The raw database baseline: `clients` tasks doing single-row durable insert transactions
/// through Omnirail's own store (same pools, pragmas and durability as the server) for
/// `seconds`, on a fresh database of the kind `database_url` names. The seconds it took and
/// every transaction's latency.
pub async fn raw_inserts(
    database_url: String,
    clients: usize,
    seconds: u64,
) -> (f64, Vec<Duration>) {
    let config = Config {
        database_url: DatabaseUrl(database_url),
        ..Config::default()
    };
    let db = Db::connect(&config).await.expect("connect");
    let mut tx = db.begin().await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw (id TEXT PRIMARY KEY, payload TEXT NOT NULL, created_at BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let db = Arc::new(db);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let mut tx = db.begin().await.unwrap();
                sqlx::query("INSERT INTO bench_raw (id, payload, created_at) VALUES ($1, $2, $3)")
                    .bind(omnirail::ids::new_id("raw_"))
                    .bind("{\"productType\":\"murabaha\"}")
                    .bind(db.now_ms())
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    db.close().await;
    (secs, all)
}

/// Webhook messages received: when each arrived, and how long after its event's commit (the
/// body's `timestamp`).
#[derive(Default)]
pub struct Arrivals {
    pub got: Mutex<Vec<(Instant, Duration)>>,
}

impl Arrivals {
    /// Starts a receiver at `listen` (`127.0.0.1:0` for any free port): its URL and what it
    /// receives.
    pub async fn start(listen: &str) -> (String, Arc<Self>) {
        let arrivals = Arc::new(Self::default());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(arrivals.clone());
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, arrivals)
    }

    /// Waits until `n` messages have arrived, at most `limit`; whether they did.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.got.lock().unwrap().len() < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

async fn receive(State(arrivals): State<Arc<Arrivals>>, body: Bytes) -> &'static str {
    let now = Instant::now();
    let committed = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v["timestamp"]
            .as_str()
            .and_then(omnirail::time::parse_rfc3339)
    });
    let latency = committed
        .map(|t| (omnirail::time::Clock::default().now_ms() - t).max(0))
        .map_or(Duration::ZERO, |ms| Duration::from_millis(ms as u64));
    arrivals.got.lock().unwrap().push((now, latency));
    "ok"
}
