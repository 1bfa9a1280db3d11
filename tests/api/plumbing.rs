//! Authentication, idempotency, probes, request ids.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, assert_problem, eventually, seed_journey, seed_template, send};

#[tokio::test]
async fn keys_are_accepted_in_x_api_key_or_bearer_and_refused_otherwise() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/v1/omni/journeys");
    let (s, _) = send(app.client.get(&url).header("x-api-key", &app.key)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = send(app.client.get(&url).bearer_auth(&app.key)).await;
    assert_eq!(s, StatusCode::OK);

    let (s, res) = send(app.client.get(&url)).await;
    assert_problem(s, &res, 401, "unauthenticated");
    let (s, res) = send(
        app.client
            .get(&url)
            .header("x-api-key", "omk_not_a_real_key"),
    )
    .await;
    assert_problem(s, &res, 401, "invalid_api_key");
    let (s, res) = send(
        app.client
            .get(&url)
            .header("authorization", "Basic dXNlcjpwYXNz"),
    )
    .await;
    assert_problem(s, &res, 401, "invalid_api_key");
    // A valid key beside another one: refused, whichever is valid; the same key twice is fine,
    // and another credential beside x-api-key (a gateway's Basic credentials, a bearer token
    // that is no API key) names no key.
    let other = app.other_tenant_key().await;
    for (header, bearer) in [
        (&app.key, "omk_wrong"),
        (&app.key, other.as_str()),
        (&"omk_wrong".to_owned(), app.key.as_str()),
    ] {
        let (s, res) = send(
            app.client
                .get(&url)
                .header("x-api-key", header)
                .bearer_auth(bearer),
        )
        .await;
        assert_problem(s, &res, 401, "conflicting_credentials");
    }
    let (s, _) = send(
        app.client
            .get(&url)
            .header("x-api-key", &app.key)
            .bearer_auth(&app.key),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = send(
        app.client
            .get(&url)
            .header("x-api-key", &app.key)
            .header("authorization", "Basic dXNlcjpwYXNz"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // A bearer token beside x-api-key that is no API key is a person's actor token: checked,
    // never ignored (tests/api/identity.rs has the rest).
    let (s, res) = send(
        app.client
            .get(&url)
            .header("x-api-key", &app.key)
            .header("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig"),
    )
    .await;
    assert_problem(s, &res, 401, "identity_provider_not_configured");
    // Without x-api-key, it is told where the key goes.
    let (s, res) = send(
        app.client
            .get(&url)
            .header("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig"),
    )
    .await;
    assert_problem(s, &res, 401, "unauthenticated");
    let (s, res) = send(app.client.post(&url).json(&seed_journey())).await;
    assert_problem(s, &res, 401, "unauthenticated");
}

#[tokio::test]
async fn a_revoked_key_gets_401() {
    let app = TestApp::spawn().await;
    let key = omnirail::keys::create_key(&app.db, &app.tenant, Some("temp"))
        .await
        .unwrap();
    let url = app.url("/api/v1/omni/templates");
    let get = || app.client.get(&url).header("x-api-key", &key.secret);
    // Twice, so that on PostgreSQL the key is remembered before it is revoked.
    for _ in 0..2 {
        let (s, _) = send(get()).await;
        assert_eq!(s, StatusCode::OK);
    }
    assert!(omnirail::keys::revoke_key(&app.db, &key.id).await.unwrap());
    let (s, res) = eventually(get, StatusCode::UNAUTHORIZED).await;
    assert_problem(s, &res, 401, "invalid_api_key");
    assert!(
        !omnirail::keys::revoke_key(&app.db, &key.id).await.unwrap(),
        "revoking twice reports no change"
    );
    // The tenant's other key is unaffected.
    let (s, _) = send(app.req(Method::GET, "/api/v1/omni/templates")).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn keys_are_stored_only_as_hashes() {
    let app = TestApp::spawn().await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_all(app.db.reader())
        .await
        .unwrap();
    assert!(!stored.is_empty());
    assert!(
        stored
            .iter()
            .all(|h| h.len() == 64 && !h.contains(&app.key))
    );
    assert_eq!(stored[0], omnirail::ids::sha256_hex(&app.key));
}

#[tokio::test]
async fn same_idempotency_key_and_body_replays_the_first_answer_once() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let create = || {
        app.req(Method::POST, "/api/v1/omni/journeys")
            .header("idempotency-key", "create-42")
            .json(&seed_journey())
    };
    let first = create().send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: serde_json::Value = first.json().await.unwrap();
    let events = app.event_count().await;

    let again = create().send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(first, again);
    assert_eq!(app.count("journeys").await, 1);
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn same_idempotency_key_with_another_body_is_422() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    let advance = |step: &str| {
        app.req(Method::POST, &format!("/api/v1/omni/journeys/{id}/advance"))
            .header("idempotency-key", "adv-1")
            .json(&json!({ "completedStepId": step }))
    };
    let (s, _) = send(advance("step_kyc")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, res) = send(advance("step_docs")).await;
    assert_problem(s, &res, 422, "idempotency_key_reused");
    // A retry of the first advance is answered from the record, not refused as not current.
    let (s, res) = send(advance("step_kyc")).await;
    assert_eq!(s, StatusCode::OK, "{res}");
    assert_eq!(res["data"]["completedSteps"], 1);
    // The same key on another endpoint is another request.
    let (s, res) = send(
        app.req(Method::POST, &format!("/api/v1/omni/journeys/{id}/cancel"))
            .header("idempotency-key", "adv-1")
            .json(&json!({ "completedStepId": "step_kyc" })),
    )
    .await;
    assert_problem(s, &res, 422, "idempotency_key_reused");
}

#[tokio::test]
async fn concurrent_requests_with_one_idempotency_key_apply_once() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let req = app
            .req(Method::POST, "/api/v1/omni/journeys")
            .header("idempotency-key", "burst")
            .json(&seed_journey());
        tasks.push(tokio::spawn(async move { send(req).await }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (s, body) = t.await.unwrap();
        assert_eq!(s, StatusCode::CREATED, "{body}");
        ids.insert(body["data"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "every answer names the one journey created");
    assert_eq!(app.count("journeys").await, 1);
}

#[tokio::test]
async fn failed_requests_are_not_recorded_so_a_fixed_retry_runs() {
    let app = TestApp::spawn().await;
    let req = || {
        app.req(Method::POST, "/api/v1/omni/journeys")
            .header("idempotency-key", "k-fail")
            .json(&seed_journey())
    };
    let (s, res) = send(req()).await;
    assert_problem(s, &res, 422, "unknown_template");
    assert_eq!(app.count("idempotency_keys").await, 0);
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let (s, _) = send(req()).await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn idempotency_keys_are_per_tenant_and_bounded() {
    let app = TestApp::spawn().await;
    let other = app.other_tenant_key().await;
    for key in [&app.key, &other] {
        let (s, _) = send(
            app.client
                .post(app.url("/api/v1/omni/templates"))
                .header("x-api-key", key)
                .header("idempotency-key", "shared")
                .json(&seed_template()),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (s, res) = send(
        app.req(Method::POST, "/api/v1/omni/templates")
            .header("idempotency-key", "k".repeat(256))
            .json(&seed_template()),
    )
    .await;
    assert_problem(s, &res, 400, "invalid_idempotency_key");
}

#[tokio::test]
async fn expired_idempotency_records_are_purged_after_the_retention() {
    let app = TestApp::spawn().await;
    let (s, _) = send(
        app.req(Method::POST, "/api/v1/omni/templates")
            .header("idempotency-key", "old")
            .json(&seed_template()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let sweep = || async {
        omnirail::retention::sweep::sweep(&app.state(), "test")
            .await
            .unwrap()
            .idempotency_records
    };
    assert_eq!(sweep().await, 0, "a fresh record is kept");
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - $1")
        .bind(25 * 3_600_000_i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(sweep().await, 1);
    assert_eq!(app.count("idempotency_keys").await, 0);
}

#[tokio::test]
async fn probes_answer_without_a_key() {
    let app = TestApp::spawn().await;
    let (s, body) = send(app.client.get(app.url("/healthz"))).await;
    assert_eq!((s, body), (StatusCode::OK, json!({ "status": "ok" })));
    let (s, body) = send(app.client.get(app.url("/readyz"))).await;
    assert_eq!((s, body), (StatusCode::OK, json!({ "status": "ok" })));
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.db.close().await;
    let (s, body) = send(app.client.get(app.url("/readyz"))).await;
    assert_problem(s, &body, 503, "database_unavailable");
    let (s, _) = send(app.client.get(app.url("/healthz"))).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "req-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-abc-123");
    let res = app
        .req(Method::GET, "/api/v1/omni/journeys/jrn_x")
        .send()
        .await
        .unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    // An unfit id (too long, or with characters logs should not carry) is replaced.
    for unfit in ["x".repeat(129), "a b".to_owned(), "<script>".to_owned()] {
        let res = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", &unfit)
            .send()
            .await
            .unwrap();
        let echoed = res.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(
            echoed.len(),
            36,
            "{unfit} was replaced by a UUID, not {echoed}"
        );
    }
}

#[tokio::test]
async fn docs_page_and_its_assets_ship_inside_the_binary() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        html.contains("<title>Omnirail API reference</title>"),
        "{html}"
    );
    assert!(
        !html.contains("https://"),
        "no asset is loaded from elsewhere"
    );
    let res = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.bytes().await.unwrap().len() > 100_000);
    let (s, doc) = send(app.client.get(app.url("/openapi.json"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
}

/// Every operation the document says takes an actor token beside its key checks it before
/// anything else: none leaves a person's token unchecked (the onboarding session's start, under
/// its own router, once did).
#[tokio::test]
async fn every_operation_that_takes_an_actor_token_checks_it() {
    let app = TestApp::spawn().await;
    let (_, doc) = send(app.client.get(app.url("/openapi.json"))).await;
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let takes_token = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("actorToken").is_some()));
            if !takes_token {
                continue;
            }
            // Any value in a path parameter: the check comes before the handler reads it.
            let concrete: String = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut req = app
                .client
                .request(method.clone(), app.url(&concrete))
                .header("x-api-key", &app.key)
                .header("api-version", "1.0")
                .header("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig");
            if method != Method::GET && method != Method::DELETE {
                req = req.json(&json!({}));
            }
            let (s, res) = send(req).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}: {res}");
            assert_eq!(
                res["code"], "identity_provider_not_configured",
                "{method} {path}"
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}
