use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cli::{free_port, serve, terminate};
use crate::helpers::{PATIENCE, TestApp, assert_problem, send};

/// One Server-Sent Events frame.
#[derive(Debug, Default)]
pub struct Frame {
    pub id: Option<String>,
    pub data: Option<Value>,
    pub comments: Vec<String>,
}

/// What a read of the stream found.
enum Read {
    Frame(Frame),
    /// The server ended the stream.
    Ended,
    /// Nothing came in the time given.
    Quiet,
}

/// Reads frames off a streaming answer.
pub struct Sse {
    res: reqwest::Response,
    buf: String,
}

impl Sse {
    pub async fn open(app: &TestApp, path: &str, last_event_id: Option<&str>) -> Self {
        let mut req = app.req(Method::GET, path);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Sse {
            res,
            buf: String::new(),
        }
    }

    /// The next frame within `wait`; `None` if none came, or the stream ended.
    async fn frame(&mut self, wait: Duration) -> Option<Frame> {
        match self.read(wait).await {
            Read::Frame(frame) => Some(frame),
            Read::Ended | Read::Quiet => None,
        }
    }

    /// Whether the stream ends (within [`PATIENCE`]) with no event before its end: heartbeats
    /// are skipped, so a stream left open fails after a wait, however slow the machine.
    async fn ends(&mut self) -> bool {
        match self.past_heartbeats(PATIENCE).await {
            Read::Ended => true,
            Read::Quiet => false,
            Read::Frame(frame) => panic!("an event where the stream should end: {frame:?}"),
        }
    }

    /// Whether the stream stays open with no event (heartbeats aside) for `wait`: for
    /// checking that nothing is repeated, not for waiting on anything.
    async fn no_event_for(&mut self, wait: Duration) -> bool {
        matches!(self.past_heartbeats(wait).await, Read::Quiet)
    }

    /// The next read within `wait` that is not a heartbeat: an event, the end, or nothing.
    async fn past_heartbeats(&mut self, wait: Duration) -> Read {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await {
                Read::Frame(frame) if frame.data.is_none() => {}
                other => return other,
            }
        }
    }

    /// The next frame, or the stream's end, or nothing within `wait`.
    async fn read(&mut self, wait: Duration) -> Read {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                let mut frame = Frame::default();
                for line in raw.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        frame.comments.push(c.trim().to_owned());
                    } else if let Some(id) = line.strip_prefix("id:") {
                        frame.id = Some(id.trim().to_owned());
                    } else if let Some(d) = line.strip_prefix("data:") {
                        frame.data = Some(serde_json::from_str(d.trim()).unwrap());
                    }
                }
                return Read::Frame(frame);
            }
            let Ok(chunk) = tokio::time::timeout_at(deadline, self.res.chunk()).await else {
                return Read::Quiet;
            };
            match chunk {
                Ok(Some(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(None) | Err(_) => return Read::Ended,
            }
        }
    }

    /// The next event (heartbeats skipped), within [`PATIENCE`].
    pub async fn event(&mut self) -> Option<Frame> {
        match self.past_heartbeats(PATIENCE).await {
            Read::Frame(frame) => Some(frame),
            Read::Ended | Read::Quiet => None,
        }
    }
}

fn ids(frames: &[Frame]) -> Vec<i64> {
    frames
        .iter()
        .map(|f| f.id.as_deref().unwrap().parse().unwrap())
        .collect()
}

async fn start(app: &TestApp, customer: &str, channel: &str) -> String {
    let (s, b) = app
        .post(
            "/api/v1/sessions",
            &json!({ "customer_id": customer, "channel": channel, "device_id": "d1" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["session_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_customer_stream_delivers_live_and_resumes_without_loss_or_duplicates() {
    let app = TestApp::spawn().await;
    let web = start(&app, "ent_live", "WEB").await;
    let path = "/api/v1/customers/ent_live/stream";
    // Without Last-Event-ID: only what happens from now on.
    let mut sse = Sse::open(&app, path, None).await;
    let (s, b) = app
        .post(
            "/api/v1/sessions/handoff",
            &json!({ "source_session_id": web, "target_channel": "MOBILE_IOS" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let token = b["handoff_token"].as_str().unwrap().to_owned();
    let first = sse.event().await.expect("the handoff arrives");
    let data = first.data.as_ref().unwrap();
    assert_eq!(data["eventType"], "session.handoff_created");
    assert_eq!(data["metadata"]["sourceSessionId"], json!(web));
    assert_eq!(
        first.id.as_deref(),
        Some("2"),
        "the session start was link 1"
    );
    assert_eq!(data["sequence"], 2);
    assert!(data["id"].as_str().unwrap().starts_with("evt_"));

    // The client goes away; three changes happen meanwhile; it comes back with Last-Event-ID.
    drop(sse);
    let (s, _) = app
        .post(
            "/api/v1/sessions/resume",
            &json!({ "handoff_token": token, "channel": "MOBILE_IOS", "device_id": "phone" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = send(app.req(Method::DELETE, &format!("/api/v1/sessions/{web}"))).await;
    assert_eq!(s, StatusCode::OK);
    start(&app, "ent_live", "WEB").await;
    let mut sse = Sse::open(&app, path, Some("2")).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(sse.event().await.expect("a missed event"));
    }
    assert_eq!(ids(&got), [3, 4, 5]);
    let types: Vec<&str> = got
        .iter()
        .map(|f| f.data.as_ref().unwrap()["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["session.resumed", "session.ended", "session.started"]
    );
    // Then live again, with nothing repeated.
    start(&app, "ent_live", "MOBILE_ANDROID").await;
    let next = sse.event().await.expect("live again");
    assert_eq!(next.id.as_deref(), Some("6"));
    assert!(
        sse.no_event_for(Duration::from_millis(500)).await,
        "a repeat"
    );

    // Resuming from the start replays everything, once, in order.
    let mut sse = Sse::open(&app, path, Some("0")).await;
    let mut all = Vec::new();
    for _ in 0..6 {
        all.push(sse.event().await.unwrap());
    }
    assert_eq!(ids(&all), [1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn an_idle_stream_carries_heartbeats() {
    let app = TestApp::spawn_with(|c| c.stream_heartbeat_secs = 1).await;
    start(&app, "ent_quiet", "WEB").await;
    let mut sse = Sse::open(&app, "/api/v1/customers/ent_quiet/stream", None).await;
    let frame = sse.frame(PATIENCE).await.expect("a heartbeat");
    assert_eq!(frame.comments, ["heartbeat"]);
    assert!(frame.data.is_none());
}

#[tokio::test]
async fn a_session_stream_follows_its_customer_and_closes_when_the_session_ends() {
    // Heartbeats every second: the stream is read until it ends, past them.
    let app = TestApp::spawn_with(|c| c.stream_heartbeat_secs = 1).await;
    let web = start(&app, "ent_s", "WEB").await;
    let mut sse = Sse::open(&app, &format!("/api/v1/sessions/{web}/stream"), None).await;
    // Another device of the same customer: its events reach this session's stream.
    start(&app, "ent_s", "MOBILE_IOS").await;
    let other = sse.event().await.unwrap();
    assert_eq!(other.data.unwrap()["channel"], "mobile_ios");
    let (s, _) = send(app.req(Method::DELETE, &format!("/api/v1/sessions/{web}"))).await;
    assert_eq!(s, StatusCode::OK);
    let ended = sse.event().await.unwrap();
    assert_eq!(ended.data.unwrap()["eventType"], "session.ended");
    assert!(sse.ends().await, "the stream closes");

    let (s, b) = app.get(&format!("/api/v1/sessions/{web}/stream")).await;
    assert_problem(s, &b, 409, "session_ended");
}

#[tokio::test]
async fn streams_refuse_what_they_cannot_follow() {
    let app = TestApp::spawn().await;
    let (s, b) = app.get("/api/v1/customers/ent_nobody/stream").await;
    assert_problem(s, &b, 404, "not_found");
    let (s, b) = app.get("/api/v1/sessions/sess_nothing/stream").await;
    assert_problem(s, &b, 404, "not_found");
    let web = start(&app, "ent_x", "WEB").await;
    for bad in ["abc", "-1", "1.5", ""] {
        let (s, b) = send(
            app.req(Method::GET, "/api/v1/customers/ent_x/stream")
                .header("last-event-id", bad),
        )
        .await;
        assert_problem(s, &b, 422, "validation_failed");
        assert_eq!(b["errors"][0]["field"], "Last-Event-ID");
    }
    // Another tenant's key sees neither the customer nor the session.
    let other = app.other_tenant_key().await;
    for path in [
        "/api/v1/customers/ent_x/stream".to_owned(),
        format!("/api/v1/sessions/{web}/stream"),
    ] {
        let (s, b) = send(
            reqwest::Client::new()
                .get(app.url(&path))
                .header("x-api-key", &other),
        )
        .await;
        assert_problem(s, &b, 404, "not_found");
    }
    app.set_plan("starter").await;
    let (s, b) = app.get(&format!("/api/v1/sessions/{web}/stream")).await;
    assert_problem(s, &b, 403, "plan_not_included");
}

#[tokio::test]
async fn an_event_committed_by_another_process_reaches_the_stream() {
    let app = TestApp::spawn().await;
    start(&app, "ent_two", "WEB").await;
    // A second `omnirail serve` process on the same database.
    let port = free_port();
    let mut node = serve(app.config.database_url.expose(), port).await;
    let mut sse = Sse::open(&app, "/api/v1/customers/ent_two/stream", None).await;
    let (s, b) = send(
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/v1/sessions"))
            .header("x-api-key", &app.key)
            .json(&json!({ "customer_id": "ent_two", "channel": "MOBILE_IOS", "device_id": "d2" })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let got = sse.event().await.expect("the other node's event");
    assert_eq!(got.data.unwrap()["metadata"]["sessionId"], b["session_id"]);

    // And the other way round, on a stream the second process holds; which it ends when it
    // is told to stop, so its shutdown is not held up.
    let mut remote = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/api/v1/customers/ent_two/stream"
        ))
        .header("x-api-key", &app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(remote.status(), StatusCode::OK);
    start(&app, "ent_two", "WEB").await;
    let mut seen = String::new();
    while !seen.contains("session.started") {
        let chunk = tokio::time::timeout(PATIENCE, remote.chunk())
            .await
            .expect("the first node's event")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(terminate(&mut node).success());
}
