use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

async fn session(app: &TestApp, channel: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/sessions",
        &json!({ "customer_id": "cust_1", "channel": channel, "device_id": "d1" }),
    )
    .await
}

fn enabled(list: &Value, channel: &str) -> (bool, bool) {
    let c = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == channel)
        .unwrap();
    (
        c["included"].as_bool().unwrap(),
        c["enabled"].as_bool().unwrap(),
    )
}

#[tokio::test]
async fn enterprise_has_every_channel_and_a_disabled_one_refuses_sessions() {
    let app = TestApp::spawn().await;
    let (s, list) = app.get("/api/v1/channels").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["plan"], "enterprise");
    assert_eq!(list["channels"].as_array().unwrap().len(), 7);
    assert_eq!(enabled(&list, "CALL_CENTER"), (true, true));

    let web = session(&app, "WEB").await.1["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A handoff made while the phone channel was on cannot be resumed once it is off.
    let (_, h) = app
        .post(
            "/api/v1/sessions/handoff",
            &json!({ "source_session_id": web, "target_channel": "MOBILE_IOS" }),
        )
        .await;
    let resume = json!({ "handoff_token": h["handoff_token"], "channel": "MOBILE_IOS",
                         "device_id": "d2" });
    let (s, c) = app
        .put("/api/v1/channels/mobile_ios", &json!({ "enabled": false }))
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["channel"], "MOBILE_IOS");
    assert_eq!(c["enabled"], false);
    let (s, b) = session(&app, "MOBILE_IOS").await;
    assert_problem(s, &b, 403, "channel_disabled");
    let (s, b) = app
        .post(
            "/api/v1/sessions/handoff",
            &json!({ "source_session_id": web, "target_channel": "MOBILE_IOS" }),
        )
        .await;
    assert_problem(s, &b, 403, "channel_disabled");
    let (s, b) = app.post("/api/v1/sessions/resume", &resume).await;
    assert_problem(s, &b, 403, "channel_disabled");
    app.put("/api/v1/channels/MOBILE_IOS", &json!({ "enabled": true }))
        .await;
    let (s, _) = session(&app, "MOBILE_IOS").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = app
        .put("/api/v1/channels/FAX", &json!({ "enabled": true }))
        .await;
    assert_problem(s, &b, 404, "not_found");
}

#[tokio::test]
async fn plans_gate_channels() {
    let app = TestApp::spawn().await;
    app.set_plan("professional").await;
    let (_, list) = app.get("/api/v1/channels").await;
    assert_eq!(list["plan"], "professional");
    assert_eq!(enabled(&list, "MOBILE_ANDROID"), (true, true));
    assert_eq!(enabled(&list, "BRANCH"), (false, false));
    let (s, b) = app
        .put("/api/v1/channels/BRANCH", &json!({ "enabled": true }))
        .await;
    assert_problem(s, &b, 403, "channel_not_in_plan");
    let (s, b) = session(&app, "BRANCH").await;
    assert_problem(s, &b, 403, "channel_disabled");

    app.set_plan("custom").await;
    let (s, b) = session(&app, "WEB").await;
    assert_problem(s, &b, 403, "channel_disabled");
    app.put("/api/v1/channels/WEB", &json!({ "enabled": true }))
        .await;
    let (s, web) = session(&app, "WEB").await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "custom plans choose channels one by one"
    );
    app.put("/api/v1/channels/MOBILE_IOS", &json!({ "enabled": true }))
        .await;
    let handoff = json!({ "source_session_id": web["session_id"], "target_channel": "MOBILE_IOS" });
    let (s, h) = app.post("/api/v1/sessions/handoff", &handoff).await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    let resume = json!({ "handoff_token": h["handoff_token"], "channel": "MOBILE_IOS",
                         "device_id": "d2" });

    // The starter plan has no sessions at all.
    app.set_plan("starter").await;
    for (s, b) in [
        app.get("/api/v1/channels").await,
        session(&app, "WEB").await,
        app.put("/api/v1/channels/WEB", &json!({ "enabled": true }))
            .await,
        app.post("/api/v1/sessions/handoff", &handoff).await,
        app.post("/api/v1/sessions/resume", &resume).await,
    ] {
        assert_problem(s, &b, 403, "plan_not_included");
    }
}
