//! API keys an organisation manages: `/api/v1/omni/api-keys`, scopes, expiry, last use, and
//! the key named in every event it makes.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::timeline::verify_offline;

const KEYS: &str = "/api/v1/omni/api-keys";

/// A request with `key` instead of the test's own.
fn with_key(app: &TestApp, key: &str, method: Method, path: &str) -> RequestBuilder {
    app.client
        .request(method, app.url(path))
        .header("x-api-key", key)
        .header("api-version", "1.0")
}

/// Creates a key through the API with the test's (admin) key: `(id, secret)`.
async fn new_key(app: &TestApp, name: &str, scopes: &[&str]) -> (String, String) {
    let (s, body) = app
        .post(KEYS, &json!({ "name": name, "scopes": scopes }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let field = |k: &str| body["data"][k].as_str().unwrap().to_owned();
    (field("id"), field("key"))
}

/// The test's own key's id, as the API lists it.
async fn own_key_id(app: &TestApp) -> String {
    let (s, body) = app.get(&format!("{KEYS}?perPage=100")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "test")
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .expect("the test's key is listed")
}

#[tokio::test]
async fn an_admin_key_issues_lists_and_revokes_keys_and_the_key_is_shown_once() {
    let app = TestApp::spawn().await;
    let admin = own_key_id(&app).await;
    let expires = app.at(30 * DAY);
    let (s, body) = app
        .post(
            KEYS,
            &json!({ "name": "Core banking", "scopes": ["journeys:write", "read"], "expiresAt": expires }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let created = &body["data"];
    let id = created["id"].as_str().unwrap();
    let secret = created["key"].as_str().unwrap();
    assert!(
        id.starts_with("key_") && secret.starts_with("omk_"),
        "{body}"
    );
    assert_eq!(created["scopes"], json!(["read", "journeys:write"]));
    assert_eq!(created["status"], "active");
    assert_eq!(created["createdBy"], admin.as_str());
    assert_eq!(created["expiresAt"], expires.as_str());
    assert_eq!(created["lastUsedAt"], Value::Null);

    // The key works, for what its scopes allow.
    let (s, body) = send(with_key(&app, secret, Method::GET, KEYS)).await;
    assert_problem(s, &body, 403, "insufficient_scope");
    let (s, body) = send(with_key(&app, secret, Method::GET, "/api/v1/omni/journeys")).await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // Never shown again: not when read, not when listed.
    let (s, body) = app.get(&format!("{KEYS}/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["data"].get("key").is_none(), "{body}");
    assert_eq!(body["data"]["name"], "Core banking");
    let (s, list) = app.get(KEYS).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["pagination"]["total"], 2, "{list}");
    assert_eq!(list["data"][0]["id"], id, "newest first: {list}");
    assert!(!list.to_string().contains("omk_"), "{list}");

    // Revoked: refused from then on, on every node, and a second revocation is a conflict.
    let (s, body) = app.post(&format!("{KEYS}/{id}/revoke"), &json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "revoked");
    assert!(body["data"]["revokedAt"].is_string());
    let (s, body) = eventually(
        || with_key(&app, secret, Method::GET, "/api/v1/omni/journeys"),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_problem(s, &body, 401, "invalid_api_key");
    let (s, body) = app.post(&format!("{KEYS}/{id}/revoke"), &json!({})).await;
    assert_problem(s, &body, 409, "api_key_revoked");

    // Issuing and revoking are events of the key's own chain, which verifies.
    let (s, body) = app
        .get(&format!(
            "/api/v1/omni/timeline?entityType=api_key&entityId={id}&order=asc"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let types: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["api_key.created", "api_key.revoked"]);
    assert!(!body.to_string().contains(secret));
    assert_eq!(body["data"][1]["keyId"], admin.as_str(), "{body}");
    let (s, body) = app
        .get(&format!(
            "/api/v1/omni/timeline/verify?entityType=api_key&entityId={id}"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["valid"], true, "{body}");
}

#[tokio::test]
async fn another_tenants_key_is_not_found_and_bad_input_changes_nothing() {
    let app = TestApp::spawn().await;
    let (other, _) = {
        let other_key = app.other_tenant_key().await;
        let (s, body) = send(
            app.client
                .post(app.url(KEYS))
                .header("x-api-key", &other_key)
                .json(&json!({ "name": "theirs", "scopes": ["read"] })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        (body["data"]["id"].as_str().unwrap().to_owned(), other_key)
    };
    let (s, body) = app.get(&format!("{KEYS}/{other}")).await;
    assert_problem(s, &body, 404, "not_found");
    let (s, body) = app
        .post(&format!("{KEYS}/{other}/revoke"), &json!({}))
        .await;
    assert_problem(s, &body, 404, "not_found");
    let (s, body) = app
        .post(&format!("{KEYS}/key_nope/revoke"), &json!({}))
        .await;
    assert_problem(s, &body, 404, "not_found");

    let before = app.event_count().await;
    let (s, body) = app
        .post(
            KEYS,
            &json!({ "name": " ", "scopes": ["journeys:delete", "root"], "expiresAt": at(-DAY) }),
        )
        .await;
    assert_problem(s, &body, 422, "validation_failed");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["name", "scopes[0]", "scopes[1]", "expiresAt"],
        "{body}"
    );
    for bad in [
        json!({ "name": "x", "scopes": [] }),
        json!({ "name": "x", "scopes": ["read"], "expiresAt": "tomorrow" }),
        json!({ "name": "x", "scopes": ["read"], "owner": "me" }),
        json!({ "name": "x" }),
    ] {
        let (s, body) = app.post(KEYS, &bad).await;
        assert_problem(s, &body, 422, "validation_failed");
    }
    assert_eq!(app.event_count().await, before, "nothing was issued");
    let (_, list) = app.get(KEYS).await;
    assert_eq!(list["pagination"]["total"], 1, "{list}");
}

#[tokio::test]
async fn scopes_allow_what_they_name_and_refuse_the_rest_with_the_scope_needed() {
    let app = TestApp::spawn().await;
    crate::onboarding::configure(&app).await;
    let journey = app.seed_journey().await;
    let (_, kiosk) = new_key(&app, "Branch kiosk", &["onboarding:write"]).await;
    let (_, reader) = new_key(&app, "Reporting", &["read"]).await;
    let (_, full) = new_key(&app, "Core banking", &["full"]).await;
    let (_, worker) = new_key(&app, "Journey worker", &["journeys:write"]).await;

    // The kiosk starts onboarding sessions, and nothing else.
    let start = json!({ "countryCode": "ALL", "configurationId": "cfg_sme", "externalCustomerId": "ent_kiosk_1" });
    let (s, body) = send(with_key(&app, &kiosk, Method::POST, "/omni/start").json(&start)).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let before = app.event_count().await;
    let (s, body) =
        send(with_key(&app, &kiosk, Method::POST, "/api/v1/omni/journeys").json(&seed_journey()))
            .await;
    assert_problem(s, &body, 403, "insufficient_scope");
    assert_eq!(body["requiredScope"], "journeys:write", "{body}");
    assert_eq!(body["grantedScopes"], json!(["onboarding:write"]));
    assert_eq!(
        app.event_count().await,
        before,
        "a refused call changes nothing"
    );
    let (s, body) = send(with_key(&app, &kiosk, Method::GET, "/api/v1/omni/journeys")).await;
    assert_problem(s, &body, 403, "insufficient_scope");
    assert_eq!(body["requiredScope"], "journeys:read");

    // A reader reads everything but the admin routes, and changes nothing.
    let path = format!("/api/v1/omni/journeys/{journey}");
    let (s, _) = send(with_key(&app, &reader, Method::GET, &path)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) =
        send(with_key(&app, &reader, Method::POST, &format!("{path}/cancel")).json(&json!({})))
            .await;
    assert_problem(s, &body, 403, "insufficient_scope");
    assert_eq!(body["requiredScope"], "journeys:write");
    let (s, body) = send(with_key(&app, &reader, Method::GET, KEYS)).await;
    assert_problem(s, &body, 403, "insufficient_scope");
    assert_eq!(body["requiredScope"], "admin");

    // Full does everything but manage keys and credentials.
    let (s, _) = send(with_key(
        &app,
        &full,
        Method::GET,
        "/api/v1/omni/timeline?entityType=journey&entityId=x",
    ))
    .await;
    assert_eq!(s, StatusCode::OK);
    for (method, path) in [
        (Method::GET, KEYS),
        (Method::GET, "/api/v1/omni/identity-provider"),
        (Method::GET, "/api/v1/omni/notification-providers"),
    ] {
        let (s, body) = send(with_key(&app, &full, method, path)).await;
        assert_problem(s, &body, 403, "insufficient_scope");
        assert_eq!(body["requiredScope"], "admin");
    }

    // An area's write scope reads it too, and no other area.
    let (s, _) = send(with_key(&app, &worker, Method::GET, &path)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = send(
        with_key(&app, &worker, Method::POST, &format!("{path}/assign"))
            .json(&json!({ "assigneeId": "usr_rm_002" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = send(with_key(
        &app,
        &worker,
        Method::GET,
        "/api/v1/omni/approvals",
    ))
    .await;
    assert_problem(s, &body, 403, "insufficient_scope");
    assert_eq!(body["requiredScope"], "approvals:read");
}

/// Every operation a key reaches is guarded by the scope its path and method need: a key
/// without it is refused, whatever the operation (one added later included).
#[tokio::test]
async fn every_keyed_operation_refuses_a_key_without_its_scope() {
    let app = TestApp::spawn().await;
    // Two keys of unrelated areas: each operation is outside one of them at least.
    let (_, sla) = new_key(&app, "sla", &["sla:read"]).await;
    let (_, sessions) = new_key(&app, "sessions", &["sessions:read"]).await;
    let mut checked = 0;
    for (method, template, op) in documented_operations() {
        let keyed = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("apiKey").is_some()));
        if !keyed {
            continue;
        }
        let need = omnirail::auth::scopes::Need::of(&method, &template);
        assert_ne!(
            need,
            omnirail::auth::scopes::Need::Unknown,
            "{method} {template} is in no area of src/auth/scopes.rs"
        );
        let scope = need.scope();
        let key = if scope.starts_with("sla:") {
            &sessions
        } else {
            &sla
        };
        let path = fill_path(&template, &[], "x");
        let (s, body) = send(with_key(&app, key, method.clone(), &path).json(&json!({}))).await;
        assert_problem(s, &body, 403, "insufficient_scope");
        assert_eq!(body["requiredScope"], scope.as_str(), "{method} {template}");
        let described = op["responses"]["403"]["description"].as_str().unwrap_or("");
        assert!(
            described.contains(&format!("`{scope}`")),
            "{method} {template} documents its scope: {described}"
        );
        checked += 1;
    }
    assert!(checked > 60, "only {checked} keyed operations");
}

#[tokio::test]
async fn an_expired_key_is_refused_and_listed_as_expired() {
    let app = TestApp::spawn().await;
    let expires = app.at(DAY);
    let (s, body) = app
        .post(
            KEYS,
            &json!({ "name": "Temp", "scopes": ["read"], "expiresAt": expires }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (id, secret) = (
        body["data"]["id"].as_str().unwrap().to_owned(),
        body["data"]["key"].as_str().unwrap().to_owned(),
    );
    let get = || with_key(&app, &secret, Method::GET, "/api/v1/omni/journeys");
    // Twice, so that the key is remembered before it expires.
    for _ in 0..2 {
        let (s, _) = send(get()).await;
        assert_eq!(s, StatusCode::OK);
    }
    app.advance_past(&expires);
    let (s, body) = send(get()).await;
    assert_problem(s, &body, 401, "api_key_expired");
    let (_, body) = app.get(&format!("{KEYS}/{id}")).await;
    assert_eq!(body["data"]["status"], "expired", "{body}");
}

#[tokio::test]
async fn the_last_use_is_kept_to_the_minute_without_a_write_per_request() {
    let app = TestApp::spawn().await;
    let (id, secret) = new_key(&app, "Used", &["read"]).await;
    let last_use = || async {
        let (_, body) = app.get(&format!("{KEYS}/{id}")).await;
        body["data"]["lastUsedAt"].as_str().map(str::to_owned)
    };
    let use_key = || async {
        let (s, _) = send(with_key(
            &app,
            &secret,
            Method::GET,
            "/api/v1/omni/journeys",
        ))
        .await;
        assert_eq!(s, StatusCode::OK);
    };
    assert_eq!(last_use().await, None, "never used");
    let first = app.at(0);
    use_key().await;
    let seen = wait_until("the key's first use is recorded", || async {
        last_use().await
    })
    .await;
    assert!(seen >= first, "{seen} before {first}");
    // Used again within the minute: not written again.
    app.advance(Duration::from_secs(30));
    use_key().await;
    // Used a minute and more later: written again.
    app.advance(Duration::from_secs(31));
    let later = app.at(0);
    use_key().await;
    let moved = wait_until("the key's later use is recorded", || async {
        last_use().await.filter(|t| *t >= later)
    })
    .await;
    assert!(moved > seen);
    // The CLI lists it too.
    let listed = omnirail::keys::keys(&app.db, &app.tenant).await.unwrap();
    assert!(
        listed
            .iter()
            .any(|k| k.id == id && k.last_used_at.is_some())
    );
}

#[tokio::test]
async fn every_event_names_the_key_that_made_it_inside_the_hash_chain() {
    let app = TestApp::spawn().await;
    let (key_id, secret) = new_key(&app, "Core banking", &["full"]).await;
    let (s, body) = send(
        with_key(&app, &secret, Method::POST, "/api/v1/omni/templates").json(&seed_template()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) =
        send(with_key(&app, &secret, Method::POST, "/api/v1/omni/journeys").json(&seed_journey()))
            .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let journey = body["data"]["id"].as_str().unwrap().to_owned();
    // A change the test's own key makes names that key.
    let (s, _) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/assign"),
            &json!({ "assigneeId": "usr_rm_002" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let admin = own_key_id(&app).await;

    let customer = "entityType=customer&entityId=ent_customer_456";
    let (s, body) = app
        .get(&format!("/api/v1/omni/timeline?{customer}&order=asc"))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let keys: Vec<(&str, &str)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["eventType"].as_str().unwrap(),
                e["keyId"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("journey.created", key_id.as_str()),
            ("journey.assigned", admin.as_str())
        ]
    );
    assert!(!body.to_string().contains(&secret));

    // The export carries it, the server and the reference script verify it...
    let (s, body) = app
        .get(&format!("/api/v1/omni/timeline/verify?{customer}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["data"]["valid"], true, "{body}");
    let export = app.export(customer).await;
    assert!(
        export.contains(&format!("\"keyId\":\"{key_id}\"")),
        "{export}"
    );
    verify_offline(&export, true);
    verify_offline(&export.replacen(&key_id, &admin, 1), false);

    // ... and a key changed in the database breaks the chain.
    sqlx::query("UPDATE events SET key_id = $1 WHERE key_id = $2")
        .bind(&admin)
        .bind(&key_id)
        .execute(app.db.reader())
        .await
        .unwrap();
    let (_, body) = app
        .get(&format!("/api/v1/omni/timeline/verify?{customer}"))
        .await;
    assert_eq!(body["data"]["valid"], false, "{body}");
    assert_eq!(body["data"]["brokenAt"]["reason"], "content_mismatch");
}

#[tokio::test]
async fn a_retried_creation_answers_the_same_key_without_showing_it_again() {
    let app = TestApp::spawn().await;
    let create = || {
        app.req(Method::POST, KEYS)
            .header("idempotency-key", "key-create-1")
            .json(&json!({ "name": "Once", "scopes": ["read"] }))
    };
    let (s, first) = send(create()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let secret = first["data"]["key"].as_str().unwrap().to_owned();
    let (s, again) = send(create()).await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    assert_eq!(again["data"]["id"], first["data"]["id"]);
    assert!(again["data"].get("key").is_none(), "{again}");
    let stored: Vec<String> = sqlx::query_scalar("SELECT response_body FROM idempotency_keys")
        .fetch_all(app.db.reader())
        .await
        .unwrap();
    assert!(
        stored.iter().all(|b| !b.contains(&secret)),
        "the key is never stored"
    );
    let (_, list) = app.get(KEYS).await;
    assert_eq!(list["pagination"]["total"], 2, "{list}");
}
