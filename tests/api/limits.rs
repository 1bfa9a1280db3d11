//! Resource bounds: the rate per API key, the request's head and JSON depth, the time limit of
//! a request, a saturated database pool, and slow clients holding connections.

use std::time::Duration;

use omnirail::store::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {:?}", res.headers()))
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_changes_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.limits.rate_per_second = 1;
        c.limits.rate_burst = 3;
    })
    .await;
    // Creates until the key is refused: the burst passes, the next is refused and creates
    // nothing (whatever the pace of this machine, since the count is read afterwards).
    let mut created = 0;
    let refused = loop {
        let mut body = seed_template();
        body["id"] = json!(format!("tmpl_rate_{created}"));
        let res = app
            .req(Method::POST, "/api/v1/omni/templates")
            .json(&body)
            .send()
            .await
            .unwrap();
        if res.status() != StatusCode::CREATED {
            break res;
        }
        created += 1;
        assert!(created <= 100, "never refused");
    };
    assert!(created >= 3, "the burst of 3 passes, then {created}");
    let wait = retry_after(&refused);
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    let (s, body) = (refused.status(), refused.json::<Value>().await.unwrap());
    assert_problem(s, &body, 429, "rate_limited");
    assert_eq!(
        app.count("journey_templates").await,
        created,
        "the refused create"
    );

    // Another key of the same tenant has its own allowance.
    let db = app.db.clone();
    let other = omnirail::keys::create_key(&db, &app.tenant, Some("second"))
        .await
        .unwrap()
        .secret;
    let res = app
        .client
        .get(app.url("/api/v1/omni/templates"))
        .header("x-api-key", other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // The allowance comes back at the stated rate.
    // Not synchronisation: the time passing is what is tested; a longer wait only makes the allowance surer.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let (s, body) = app.get("/api/v1/omni/templates").await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn without_a_configured_rate_nothing_is_limited() {
    let app = TestApp::spawn().await;
    for _ in 0..50 {
        let (s, _) = app.get("/api/v1/omni/templates").await;
        assert_eq!(s, StatusCode::OK);
    }
}

#[tokio::test]
async fn json_nested_too_deep_is_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let mut context = json!("leaf");
    for _ in 0..40 {
        context = json!({ "a": context });
    }
    let mut body = seed_journey();
    body["context"] = context;
    let (s, res) = app.post("/api/v1/omni/journeys", &body).await;
    assert_problem(s, &res, 400, "json_too_deep");
    assert_eq!(app.count("journeys").await, 0);

    // Thirty levels are a body like any other.
    let mut context = json!("leaf");
    for _ in 0..30 {
        context = json!({ "a": context });
    }
    body["context"] = context;
    let (s, res) = app.post("/api/v1/omni/journeys", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
}

#[tokio::test]
async fn a_request_head_over_the_bound_is_431() {
    let app = TestApp::spawn_with(|c| c.limits.max_header_bytes = 8192).await;
    // Over the bound: problem details.
    let res = app
        .req(Method::GET, "/api/v1/omni/templates")
        .header("x-padding", "a".repeat(10_000))
        .send()
        .await
        .unwrap();
    let (s, body) = (res.status(), res.json::<Value>().await.unwrap());
    assert_problem(s, &body, 431, "headers_too_large");

    // Over twice the bound: refused while it is read, the connection closed.
    let res = app
        .req(Method::GET, "/api/v1/omni/templates")
        .header("x-padding", "a".repeat(40_000))
        .send()
        .await;
    if let Ok(res) = res {
        assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
    // More than 100 headers.
    let mut req = app.req(Method::GET, "/api/v1/omni/templates");
    for i in 0..120 {
        req = req.header(format!("x-h{i}"), "v");
    }
    if let Ok(res) = req.send().await {
        assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
    // The server is unharmed.
    let (s, _) = app.get("/api/v1/omni/templates").await;
    assert_eq!(s, StatusCode::OK);
}

/// Holds the journeys table against writes from another connection until dropped: on SQLite
/// the database's write lock (`BEGIN IMMEDIATE`), on PostgreSQL a table lock.
async fn hold_journeys(app: &TestApp) -> omnirail::store::Tx {
    let mut tx = app.db.begin().await.unwrap();
    if app.db.backend() == Backend::Postgres {
        sqlx::query("LOCK TABLE journeys IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx
}

/// A journey create answered 503 `code` with a `Retry-After`.
async fn create_refused_503(app: &TestApp, code: &str) {
    let res = app
        .req(Method::POST, "/api/v1/omni/journeys")
        .json(&seed_journey())
        .send()
        .await
        .unwrap();
    assert!(retry_after(&res) >= 1);
    let (s, body) = (res.status(), res.json::<Value>().await.unwrap());
    assert_problem(s, &body, 503, code);
}

#[tokio::test]
async fn a_write_lock_held_past_the_database_wait_is_503_database_busy() {
    let app = TestApp::spawn().await;
    if app.db.backend() == Backend::Postgres {
        // PostgreSQL waits for a lock as long as the request may (no lock_timeout is set);
        // there, database_busy is a deadlock or a serialization failure, mapped by the same
        // code (error.rs's unit tests).
        eprintln!("SQLite's busy_timeout only: this runs in the SQLite pass");
        return;
    }
    app.post("/api/v1/omni/templates", &seed_template()).await;
    // Another process's writer: a second pool on the same file holds SQLite's write lock
    // longer than the server's busy_timeout (5 s).
    let other = omnirail::store::Db::connect(&app.config).await.unwrap();
    let lock = other.begin().await.unwrap();
    create_refused_503(&app, "database_busy").await;
    lock.rollback().await.unwrap();
    other.close().await;
    assert_eq!(app.count("journeys").await, 0);
    let (s, body) = app.post("/api/v1/omni/journeys", &seed_journey()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_busy_database_inside_a_reaction_is_503_database_busy_and_changes_nothing() {
    let app = TestApp::spawn().await;
    if app.db.backend() != Backend::Postgres {
        // SQLite's one writer takes its lock when the transaction begins, never inside a
        // reaction: the test above covers it there.
        eprintln!("a deadlock inside the transaction: this runs in the PostgreSQL pass");
        return;
    }
    let approval = json!({
        "entityType": "contract", "entityId": "ctr_001", "approvalType": "limit_increase",
        "requestedBy": "usr_rm_001", "approvers": [{ "userId": "usr_credit_001", "required": true }],
        "expiresAt": at(86_400_000)
    });
    // A request notifies its approver (a default notification rule): the rule's insert waits
    // for a lock another transaction holds, which then waits for the approval the request
    // wrote. PostgreSQL ends the cycle by failing the request's transaction (40P01) after its
    // deadlock_timeout (1 s); the other transaction waits longer before it checks.
    let mut other = app.db.begin().await.unwrap();
    for sql in [
        "SET LOCAL deadlock_timeout = '60s'",
        "LOCK TABLE notifications IN EXCLUSIVE MODE",
    ] {
        sqlx::query(sql).execute(&mut *other).await.unwrap();
    }
    let req = app
        .req(Method::POST, "/api/v1/omni/approvals")
        .json(&approval);
    let requested = tokio::spawn(async move {
        let res = req.send().await.unwrap();
        let status = res.status();
        let wait = res.headers().get("retry-after").cloned();
        (status, wait, res.json::<Value>().await.unwrap())
    });
    let reader = app.db.reader().clone();
    wait_until("the rule's insert waiting for the lock", || async {
        if requested.is_finished() {
            return Some(());
        }
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE c.relname = 'notifications' AND NOT l.granted",
        )
        .fetch_one(&reader)
        .await
        .unwrap();
        (waiting > 0).then_some(())
    })
    .await;
    if requested.is_finished() {
        panic!("the request did not wait: {:?}", requested.await.unwrap());
    }
    sqlx::query("LOCK TABLE approvals IN EXCLUSIVE MODE")
        .execute(&mut *other)
        .await
        .unwrap();
    other.rollback().await.unwrap();
    let (status, wait, body) = requested.await.unwrap();
    assert_problem(status, &body, 503, "database_busy");
    assert!(wait.is_some(), "no Retry-After");
    assert_eq!(app.count("approvals").await, 0);
    assert_eq!(app.count("notifications").await, 0);
    let (s, body) = app.post("/api/v1/omni/approvals", &approval).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(app.count("notifications").await, 1);
}

#[tokio::test]
async fn a_request_past_its_time_limit_is_503_and_changes_nothing() {
    let app = TestApp::spawn_with(|c| c.limits.request_timeout_secs = 1).await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let lock = hold_journeys(&app).await;
    create_refused_503(&app, "request_timeout").await;
    lock.rollback().await.unwrap();
    // The abandoned request left nothing (its transaction went with it), and the server goes
    // on.
    assert_eq!(app.count("journeys").await, 0);
    let (s, body) = app.post("/api/v1/omni/journeys", &seed_journey()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(app.count("journeys").await, 1);
}

#[tokio::test]
async fn a_saturated_pool_answers_503_overloaded_instead_of_queueing() {
    let app = TestApp::spawn_with(|c| {
        c.db_max_connections = 2;
        c.db_acquire_timeout_secs = 1;
    })
    .await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let lock = hold_journeys(&app).await;
    let mut calls = Vec::new();
    for n in 0..5 {
        let mut body = seed_journey();
        body["customerId"] = json!(format!("ent_customer_{n}"));
        let req = app.req(Method::POST, "/api/v1/omni/journeys").json(&body);
        calls.push(tokio::spawn(async move {
            let res = req.send().await.unwrap();
            let wait = res.headers().get("retry-after").cloned();
            (res.status(), wait, res.json::<Value>().await.unwrap())
        }));
    }
    // The first calls hold the connections, waiting for the lock, and cannot finish while it
    // is held; the rest find none and are refused: the lock is let go once one has been.
    wait_until("a call refused while the lock is held", || async {
        calls.iter().any(|c| c.is_finished()).then_some(())
    })
    .await;
    lock.rollback().await.unwrap();
    let mut created = 0;
    let mut overloaded = 0;
    for call in calls {
        let (s, wait, body) = call.await.unwrap();
        match s {
            StatusCode::CREATED => created += 1,
            _ => {
                assert_problem(s, &body, 503, "overloaded");
                assert!(wait.is_some(), "Retry-After on {body}");
                overloaded += 1;
            }
        }
    }
    assert!(overloaded >= 1, "no call was refused");
    assert_eq!(
        app.count("journeys").await,
        created,
        "only answered creates"
    );
}

/// Opens a connection that sends a request head one byte at a time and never finishes it;
/// says on `started` once it has begun.
async fn slow_client(addr: String, started: tokio::sync::mpsc::Sender<()>) -> Duration {
    let begun = std::time::Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: omnirail\r\nX-Slow: ";
    stream.write_all(head).await.unwrap();
    let _ = started.send(()).await;
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => {
                // Closed by the server (or answered 408): either way the slot is freed.
                let _ = read;
                return begun.elapsed();
            }
            // Not synchronisation: the slow client's pace.
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if stream.write_all(b"a").await.is_err() {
                    return begun.elapsed();
                }
            }
        }
        assert!(begun.elapsed() < PATIENCE, "never closed");
    }
}

#[tokio::test]
async fn slow_clients_cannot_hold_every_connection() {
    let app = TestApp::spawn_with(|c| {
        c.limits.header_read_timeout_secs = 1;
        c.limits.max_connections = 40;
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let (started, mut begun) = tokio::sync::mpsc::channel(40);
    let slow: Vec<_> = (0..40)
        .map(|_| tokio::spawn(slow_client(addr.clone(), started.clone())))
        .collect();
    for _ in 0..40 {
        begun.recv().await.expect("a slow client began");
    }
    // Every slot is taken by a slow client; this request waits for the head timeout to free
    // one, then is served.
    let res = tokio::time::timeout(PATIENCE, app.get("/api/v1/omni/templates"))
        .await
        .expect("a normal request is served while slow clients keep sending");
    assert_eq!(res.0, StatusCode::OK);
    for client in slow {
        client.await.unwrap();
    }
}

#[tokio::test]
async fn a_body_that_stalls_is_408_the_clients_doing() {
    let app = TestApp::spawn_with(|c| c.limits.request_timeout_secs = 1).await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let addr = app.url("").trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Half a body promised at 200 bytes, then nothing: the server waits for the rest until
    // its time limit, and says whose the delay was.
    let head = format!(
        "POST /api/v1/omni/journeys HTTP/1.1\r\nHost: {addr}\r\nx-api-key: {}\r\n\
         content-type: application/json\r\ncontent-length: 200\r\n\r\n{{\"templateId\":",
        app.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // The answer arrives when the server's limit passes (the socket stays open).
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n{") {
        let n = tokio::time::timeout(crate::helpers::PATIENCE, stream.read(&mut buf))
            .await
            .expect("an answer within the test's patience")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"body_timeout\""), "{text}");
    // Sent by hand, so noted for the error coverage check by hand.
    log_response(
        "POST",
        "/api/v1/omni/journeys",
        StatusCode::REQUEST_TIMEOUT,
        &json!({ "code": "body_timeout" }),
    );
    assert_eq!(app.count("journeys").await, 0);
}

/// What a transaction asks to run once committed runs after its commit and never after a
/// rollback, on both databases (the cache of ids known to be stored relies on it).
#[tokio::test]
async fn work_after_a_commit_runs_only_once_it_committed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let db = crate::helpers::TestDb::new().await;
    let db = db.open().await;
    let ran = Arc::new(AtomicUsize::new(0));
    for commit in [false, true] {
        let mut tx = db.begin().await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
        let seen = ran.clone();
        tx.after_commit(move || {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 0, "not before the commit");
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
    }
    assert_eq!(ran.load(Ordering::SeqCst), 1, "after the commit only");
}

/// An HTTP/2 client (cleartext, prior knowledge) that has spoken and then sends nothing is
/// sent `GOAWAY` after `keep_alive_secs`, and its connection is closed once the grace for
/// closing has passed, though it never answers the closing PING: it cannot hold a connection
/// slot for ever (the head timeout no longer applies to it).
#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let app = TestApp::spawn_with(|c| {
        c.limits.keep_alive_secs = 1;
        // The grace a closing connection has is the request time limit and 5 s.
        c.limits.request_timeout_secs = 1;
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The connection preface and an empty SETTINGS frame.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let begun = std::time::Instant::now();
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("the idle connection is closed")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        // Whole frames: a 9-byte header (24-bit length, type, flags, stream), then the payload.
        while buf.len() >= 9 {
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            frames.push(kind);
            if kind == 4 && flags & 1 == 0 {
                // The server's SETTINGS, acknowledged as a client must.
                stream
                    .write_all(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
                    .await
                    .unwrap();
            }
            buf.drain(..9 + len);
        }
    }
    assert!(
        frames.contains(&7),
        "a GOAWAY came before the close: {frames:?}"
    );
    assert!(begun.elapsed() < PATIENCE);
}

/// `GET /healthz` on a raw HTTP/1.1 connection, and its answer's status line.
async fn healthz_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: omnirail\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("{\"status\":\"ok\"}") {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Keep-alive has its own timer, apart from the head's: a connection idle between requests for
/// longer than the head timeout stays open for its next request, and is closed once the
/// keep-alive has passed.
#[tokio::test]
async fn keep_alive_has_its_own_timer_apart_from_the_heads() {
    let app = TestApp::spawn_with(|c| {
        c.limits.header_read_timeout_secs = 1;
        c.limits.keep_alive_secs = 3;
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(healthz_on(&mut stream).await, "HTTP/1.1 200 OK");
    // Not synchronisation: the idleness under test, past the head's bound.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(healthz_on(&mut stream).await, "HTTP/1.1 200 OK");
    // Then idle: closed after the keep-alive.
    let begun = std::time::Instant::now();
    let mut chunk = [0u8; 64];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
        .await
        .expect("the idle connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without a byte more");
    assert!(
        begun.elapsed() >= Duration::from_secs(2),
        "{:?}",
        begun.elapsed()
    );
}
