use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, send, wait_until};

async fn start(app: &TestApp, channel: &str) -> String {
    let (s, b) = app
        .post(
            "/api/v1/sessions",
            &json!({ "customer_id": "cust_123456", "channel": channel, "device_id": "device_web_001",
                     "context": { "current_flow": "PAYMENT", "transaction_draft_id": "draft_abc789" } }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["session_id"].as_str().unwrap().to_owned()
}

/// Seed 000's handoff body, on a real source session.
async fn handoff(app: &TestApp, source: &str) -> Value {
    let (s, b) = app
        .post(
            "/api/v1/sessions/handoff",
            &json!({ "source_session_id": source, "target_channel": "MOBILE_IOS",
                     "context": { "current_flow": "PAYMENT", "transaction_draft_id": "draft_abc789" } }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b
}

fn resume_body(token: &str) -> Value {
    json!({ "handoff_token": token, "channel": "MOBILE_IOS", "device_id": "device_abc123" })
}

#[tokio::test]
async fn a_web_session_is_handed_off_and_resumed_on_mobile() {
    let app = TestApp::spawn().await;
    let web = start(&app, "WEB").await;
    let (s, got) = app.get(&format!("/api/v1/sessions/{web}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["channel"], "WEB");
    assert_eq!(got["status"], "active");

    let asked = app.clock.now_ms();
    let h = handoff(&app, &web).await;
    let token = h["handoff_token"].as_str().unwrap();
    assert!(token.starts_with("ho_") && token.len() >= 3 + 22, "{h}");
    assert_eq!(h["target_channel"], "MOBILE_IOS");
    assert_eq!(h["context_preserved"], true);
    let expires = omnirail::time::parse_rfc3339(h["expires_at"].as_str().unwrap()).unwrap();
    let (before, after) = (asked, app.clock.now_ms());
    assert!(
        (before + 300_000..=after + 300_000).contains(&expires),
        "five minutes after it was made: {expires} vs {before}..{after}"
    );

    let (s, r) = app
        .post("/api/v1/sessions/resume", &resume_body(token))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["context", "customer_id", "handoff_complete", "session_id"]
    );
    assert_eq!(r["customer_id"], "cust_123456");
    assert_eq!(r["context"]["transaction_draft_id"], "draft_abc789");
    assert_eq!(r["handoff_complete"], true);
    let mobile = r["session_id"].as_str().unwrap();
    let (_, m) = app.get(&format!("/api/v1/sessions/{mobile}")).await;
    assert_eq!(m["channel"], "MOBILE_IOS");
    assert_eq!(m["device_id"], "device_abc123");
    assert!(m["handoff_id"].as_str().unwrap().starts_with("hof_"));
    assert_eq!(got["handoff_id"], Value::Null);

    // Both events are on the customer's timeline, linking the two sessions.
    let (_, t) = app
        .get("/api/v1/omni/timeline?entityType=customer&entityId=cust_123456")
        .await;
    let types: Vec<&str> = t["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "session.started",
            "session.handoff_created",
            "session.resumed"
        ]
    );
    assert_eq!(t["data"][2]["metadata"]["sourceSessionId"], web.as_str());
    assert_eq!(t["data"][2]["metadata"]["sessionId"], mobile);
    assert_eq!(app.events_of("session", &web).await.len(), 3);

    // The unified profile counts sessions per channel.
    let (_, p) = app
        .get("/api/v1/customers/cust_123456/profile/unified")
        .await;
    assert_eq!(p["channels"]["web"]["sessions"], 1);
    assert_eq!(p["channels"]["mobile_ios"]["sessions"], 1);
}

#[tokio::test]
async fn a_token_is_single_use_channel_bound_and_tenant_bound() {
    let app = TestApp::spawn().await;
    let web = start(&app, "web").await;
    let h = handoff(&app, &web).await;
    let token = h["handoff_token"].as_str().unwrap();
    let mut wrong = resume_body(token);
    wrong["channel"] = json!("MOBILE_ANDROID");
    let (s, b) = app.post("/api/v1/sessions/resume", &wrong).await;
    assert_problem(s, &b, 422, "channel_mismatch");
    let other = app.other_tenant_key().await;
    let (s, b) = crate::helpers::send(
        app.client
            .post(app.url("/api/v1/sessions/resume"))
            .header("x-api-key", other)
            .json(&resume_body(token)),
    )
    .await;
    assert_problem(s, &b, 404, "not_found");
    let (s, _) = app
        .post("/api/v1/sessions/resume", &resume_body(token))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app
        .post("/api/v1/sessions/resume", &resume_body(token))
        .await;
    assert_problem(s, &b, 409, "handoff_used");
    let (s, b) = app
        .post("/api/v1/sessions/resume", &resume_body("ho_unknown"))
        .await;
    assert_problem(s, &b, 404, "not_found");
}

#[tokio::test]
async fn twenty_concurrent_resumes_of_one_token_make_one_session() {
    let app = TestApp::spawn().await;
    let web = start(&app, "WEB").await;
    let h = handoff(&app, &web).await;
    let token = h["handoff_token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let req = app
            .req(reqwest::Method::POST, "/api/v1/sessions/resume")
            .json(&resume_body(&token));
        tasks.push(tokio::spawn(crate::helpers::send(req)));
    }
    let mut ok = 0;
    for t in tasks {
        let (s, b) = t.await.unwrap();
        match s.as_u16() {
            200 => ok += 1,
            409 => assert_eq!(b["code"], "handoff_used"),
            other => panic!("{other}: {b}"),
        }
    }
    assert_eq!(ok, 1);
    let resumed = app
        .events_of("session", &web)
        .await
        .into_iter()
        .filter(|e| e.event_type == "omni.session.resumed")
        .count();
    assert_eq!(resumed, 1);
}

#[tokio::test]
async fn expired_tokens_are_410_and_ended_sessions_cannot_hand_off() {
    let app = TestApp::spawn().await;
    let web = start(&app, "WEB").await;
    let h = handoff(&app, &web).await;
    app.advance_past(h["expires_at"].as_str().unwrap());
    let (s, b) = app
        .post(
            "/api/v1/sessions/resume",
            &resume_body(h["handoff_token"].as_str().unwrap()),
        )
        .await;
    assert_problem(s, &b, 410, "handoff_expired");

    let (s, ended) = app
        .req(reqwest::Method::DELETE, &format!("/api/v1/sessions/{web}"))
        .send()
        .await
        .map(|r| r.status())
        .map(|s| (s, ()))
        .unwrap();
    assert_eq!(s, StatusCode::OK, "{ended:?}");
    let (_, got) = app.get(&format!("/api/v1/sessions/{web}")).await;
    assert_eq!(got["status"], "ended");
    assert_eq!(got["end_reason"], "ended_by_client");
    let (s, b) = app
        .post(
            "/api/v1/sessions/handoff",
            &json!({ "source_session_id": web, "target_channel": "MOBILE_IOS" }),
        )
        .await;
    assert_problem(s, &b, 409, "session_ended");
    let ended_events = app
        .events_of("session", &web)
        .await
        .into_iter()
        .filter(|e| e.event_type == "omni.session.ended")
        .count();
    assert_eq!(ended_events, 1);
}

#[tokio::test]
async fn an_idle_session_reads_ended_and_its_end_is_recorded_once() {
    // A short timeout, so that the background sweep looks every second.
    let app = TestApp::spawn_with(|c| c.session_idle_timeout_secs = 1).await;
    let web = start(&app, "WEB").await;
    app.advance(std::time::Duration::from_secs(2));
    let (_, got) = app.get(&format!("/api/v1/sessions/{web}")).await;
    assert_eq!(got["status"], "ended");
    assert_eq!(got["end_reason"], "idle_timeout");
    let (s, b) = app
        .post(
            "/api/v1/sessions/handoff",
            &json!({ "source_session_id": web, "target_channel": "MOBILE_IOS" }),
        )
        .await;
    assert_problem(s, &b, 409, "session_ended");
    // The background sweep records the end once; a later sweep (or another node) adds nothing.
    let ended = |events: Vec<omnirail::events::StoredEvent>| {
        events
            .into_iter()
            .filter(|e| e.event_type == "omni.session.ended")
            .count()
    };
    wait_until("the background sweep to record the idle end", || async {
        (ended(app.events_of("session", &web).await) > 0).then_some(())
    })
    .await;
    let state = app.state();
    assert_eq!(omnirail::sessions::sweep_idle(&state).await.unwrap(), 0);
    assert_eq!(ended(app.events_of("session", &web).await), 1);
    let (_, got) = app.get(&format!("/api/v1/sessions/{web}")).await;
    assert_eq!(got["end_reason"], "idle_timeout");

    let (s, b) = app
        .post(
            "/api/v1/sessions",
            &json!({ "customer_id": "bad id", "channel": "FAX", "device_id": "" }),
        )
        .await;
    assert_problem(s, &b, 422, "validation_failed");
}

#[tokio::test]
async fn the_seeds_request_bodies_work_verbatim() {
    let app = TestApp::spawn().await;
    // The web session seed 000 hands off, under the id the seed gives it.
    let (s, b) = app
        .post(
            "/api/v1/sessions",
            &json!({ "session_id": "sess_web_123", "customer_id": "cust_123456", "channel": "WEB",
                     "device_id": "device_web_001" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["session_id"], "sess_web_123");

    // Create Cross-Channel Session, byte for byte.
    let handoff = r#"{
"source_session_id" : "sess_web_123",
"target_channel" : "MOBILE_IOS",
"context" : {
"current_flow" : "PAYMENT",
"transaction_draft_id" : "draft_abc789"
}
}"#;
    let (s, h) = send(
        app.req(Method::POST, "/api/v1/sessions/handoff")
            .header("content-type", "application/json")
            .body(handoff),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    let token = h["handoff_token"].as_str().unwrap();
    assert_eq!(h["target_channel"], "MOBILE_IOS");
    assert_eq!(h["context_preserved"], true);

    // Resume Session on New Channel, byte for byte: the seed's token is only an example, so it
    // is unknown here; with the real one in its place the same body resumes.
    let resume = r#"{
"handoff_token" : "ho_xyz123",
"channel" : "MOBILE_IOS",
"device_id" : "device_abc123"
}"#;
    let post = |body: String| {
        send(
            app.req(Method::POST, "/api/v1/sessions/resume")
                .header("content-type", "application/json")
                .body(body),
        )
    };
    let (s, b) = post(resume.to_owned()).await;
    assert_problem(s, &b, 404, "not_found");
    let (s, r) = post(resume.replace("ho_xyz123", token)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["customer_id"], "cust_123456");
    assert_eq!(
        r["context"],
        json!({ "current_flow": "PAYMENT", "transaction_draft_id": "draft_abc789" })
    );
    assert_eq!(r["handoff_complete"], true);

    // The unified profile's own fields, as a PUT body, read back in the seed's shape.
    let profile = r#"{
"profile" : {
"name" : "John Doe" ,
"email" : "john@example.com" ,
"phone" : "+44123456789"
},
"preferences" : {
"notification_channel" : "PUSH" ,
"preferred_language" : "en"
}
}"#;
    let (s, b) = send(
        app.req(Method::PUT, "/api/v1/customers/cust_123456")
            .header("content-type", "application/json")
            .body(profile),
    )
    .await;
    assert!(s.is_success(), "{s} {b}");
    let (_, u) = app
        .get("/api/v1/customers/cust_123456/profile/unified")
        .await;
    assert_eq!(u["profile"]["phone"], "+44123456789");
    assert_eq!(u["preferences"]["notification_channel"], "PUSH");
    assert_eq!(u["channels"]["web"]["sessions"], 1);
    assert_eq!(u["channels"]["mobile_ios"]["sessions"], 1);

    // A chosen id is taken once; a malformed one is refused.
    for (id, status, code) in [
        ("sess_web_123", 409, "session_exists"),
        ("web_123", 422, "validation_failed"),
        ("sess_", 422, "validation_failed"),
    ] {
        let (s, b) = app
            .post(
                "/api/v1/sessions",
                &json!({ "session_id": id, "customer_id": "cust_123456", "channel": "WEB", "device_id": "d" }),
            )
            .await;
        assert_problem(s, &b, status, code);
    }
}

#[tokio::test]
async fn ending_a_session_revokes_the_handoffs_it_issued() {
    let app = TestApp::spawn().await;
    // Ended by the client.
    let web = start(&app, "WEB").await;
    let h = handoff(&app, &web).await;
    let res = app
        .req(Method::DELETE, &format!("/api/v1/sessions/{web}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let token = h["handoff_token"].as_str().unwrap();
    let (s, b) = app
        .post("/api/v1/sessions/resume", &resume_body(token))
        .await;
    assert_problem(s, &b, 410, "handoff_revoked");
    assert_eq!(
        app.count("channel_sessions").await,
        1,
        "no session was made"
    );

    // Ended by idling (here before the handoff itself would expire): revoked from the moment
    // the session reads ended, whether or not a sweep has recorded it yet.
    let app = TestApp::spawn_with(|c| {
        c.session_idle_timeout_secs = 120;
        c.handoff_ttl_secs = 3600;
    })
    .await;
    let web = start(&app, "WEB").await;
    let h = handoff(&app, &web).await;
    app.advance(std::time::Duration::from_secs(121));
    let (_, got) = app.get(&format!("/api/v1/sessions/{web}")).await;
    assert_eq!(got["status"], "ended");
    let token = h["handoff_token"].as_str().unwrap();
    let (s, b) = app
        .post("/api/v1/sessions/resume", &resume_body(token))
        .await;
    assert_problem(s, &b, 410, "handoff_revoked");
}
