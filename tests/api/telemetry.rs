//! `/metrics` in the Prometheus text format, and `/readyz` reporting a stopped worker.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::webhooks::{app as webhook_app, endpoint};

async fn metrics(app: &TestApp) -> String {
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        res.headers()
    );
    res.text().await.unwrap()
}

/// The sample lines of `name` in `text` (the process's servers share one recorder).
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .collect()
}

#[tokio::test]
async fn metrics_show_requests_commits_pools_queues_workers_and_outcomes() {
    let app = webhook_app().await;
    // A webhook endpoint nobody listens at: its messages fail, and wait for their retry.
    let port = crate::cli::free_port();
    let ep = endpoint(&app, &format!("http://127.0.0.1:{port}/hook"), json!([])).await;
    let ep = ep["id"].as_str().unwrap().to_owned();
    let (s, _) = app.post("/api/v1/omni/templates", &seed_template()).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app.get("/api/v1/omni/journeys/jrn_nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let text = wait_until("the failed attempt counted", || async {
        let text = metrics(&app).await;
        text.contains(&format!(
            "omnirail_webhook_attempts_total{{endpoint=\"{ep}\",outcome=\"unreachable\"}}"
        ))
        .then_some(text)
    })
    .await;
    // Requests by route pattern (never the ids in the path) and status, with their latency.
    assert!(
        text.contains(
            "omnirail_http_requests_total{method=\"GET\",route=\"/api/v1/omni/journeys/{id}\",status=\"404\"}"
        ),
        "{text}"
    );
    assert!(!text.contains("jrn_nope"), "ids stay out of the labels");
    assert!(
        !samples(&text, "omnirail_http_request_duration_seconds_bucket").is_empty(),
        "{text}"
    );
    assert!(
        !samples(&text, "omnirail_db_commit_seconds_bucket").is_empty(),
        "{text}"
    );
    for wanted in [
        "omnirail_db_pool_connections{pool=\"read\",state=\"idle\"}",
        "omnirail_queue_due{queue=\"webhooks\"}",
        "omnirail_queue_due{queue=\"notifications\"}",
        "omnirail_queue_due{queue=\"deadlines\"}",
        "omnirail_queue_oldest_due_age_seconds{queue=\"webhooks\"}",
        "omnirail_worker_up{worker=\"webhooks\"} 1",
        "omnirail_worker_up{worker=\"retention\"} 1",
    ] {
        assert!(text.contains(wanted), "{wanted} in {text}");
    }

    // A message waiting for its retry is due once its time comes: the queue's depth and age.
    app.advance(std::time::Duration::from_secs(3_600));
    let text = metrics(&app).await;
    let due: Vec<&str> = samples(&text, "omnirail_queue_due{queue=\"webhooks\"}");
    assert!(
        due.iter().any(|l| !l.ends_with(" 0")),
        "a message is due: {due:?}"
    );

    // A chain that does not verify is counted.
    let (s, _) = app.post("/api/v1/omni/journeys", &seed_journey()).await;
    assert_eq!(s, StatusCode::CREATED);
    sqlx::query("UPDATE events SET summary = 'changed' WHERE event_type = 'omni.journey.created'")
        .execute(app.db.reader())
        .await
        .unwrap();
    let (_, v) = app
        .get("/api/v1/omni/timeline/verify?entityType=customer&entityId=ent_customer_456")
        .await;
    assert_eq!(v["data"]["valid"], false, "{v}");
    let text = metrics(&app).await;
    assert!(
        text.contains("omnirail_chain_verification_failures_total{reason=\"content_mismatch\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn readyz_reports_a_worker_that_stopped() {
    let app = TestApp::spawn().await;
    let (s, _) = send(app.client.get(app.url("/readyz"))).await;
    assert_eq!(s, StatusCode::OK);
    // A process whose webhook worker ended while it was serving: its router, on a port.
    let state = app.state();
    state.workers.started("webhooks");
    state.workers.started("retention");
    state.workers.ended("webhooks", false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = omnirail::router(state);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (s, body) = send(app.client.get(format!("{base}/readyz"))).await;
    assert_problem(s, &body, 503, "worker_stopped");
    assert_eq!(body["workers"], json!(["webhooks"]));
    let res = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(
        text.contains("omnirail_worker_up{worker=\"webhooks\"} 0"),
        "{text}"
    );
}

/// The Grafana dashboard and the alert rules in docs/monitoring name only metrics the server
/// records (a renamed metric would leave a panel or an alert silently empty).
#[test]
fn the_dashboard_and_the_alerts_name_only_metrics_the_server_records() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut recorded = String::new();
    let mut dirs = vec![std::path::PathBuf::from(root).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                recorded.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/docs/monitoring/grafana-dashboard.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut queries: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    let alerts = std::fs::read_to_string(format!("{root}/docs/monitoring/alerts.yml")).unwrap();
    queries.push(alerts.clone());
    let mut names = std::collections::BTreeSet::new();
    for q in &queries {
        for (at, _) in q.match_indices("omnirail_") {
            let name: String = q[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name)
                .to_owned();
            names.insert(base);
        }
    }
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        assert!(
            recorded.contains(&format!("\"{name}\"")),
            "{name} is named in docs/monitoring but recorded nowhere"
        );
    }
    assert!(alerts.matches("- alert:").count() >= 5);
}

/// A node with nothing to do writes nothing: every background pass looks (reads) first, and
/// begins a write transaction only for work that is due. Counted through the server's own
/// database handle, so the running workers' passes during the test count too.
#[tokio::test]
async fn an_idle_node_writes_nothing() {
    let app = TestApp::spawn_with(|c| {
        // The workers pass as often as they may, while the test runs.
        c.deadline_sweep_secs = 1;
        c.approval_sweep_secs = 1;
        c.notification_poll_ms = 10;
        c.webhooks.poll_ms = 10;
    })
    .await;
    let state = app.state();
    let before = app.db.writes_begun();
    for _ in 0..3 {
        assert!(!omnirail::notifications::worker::tick(&state).await.unwrap());
        assert_eq!(
            omnirail::journeys::announce_deadlines(&state)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            omnirail::journeys::fold_sla_figures(&state).await.unwrap(),
            0
        );
        assert_eq!(
            omnirail::approvals::send_reminders(&state).await.unwrap(),
            0
        );
        assert_eq!(omnirail::approvals::sweep_expired(&state).await.unwrap(), 0);
        assert_eq!(omnirail::sessions::sweep_idle(&state).await.unwrap(), 0);
        assert_eq!(
            omnirail::retention::sweep::sweep(&state, "node_idle")
                .await
                .unwrap()
                .total(),
            0
        );
    }
    assert_eq!(app.db.writes_begun(), before, "an idle pass began a write");
}
