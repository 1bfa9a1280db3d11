//! Tenancy of ids (issue 20, section 3): an id a client chooses is unique within its tenant
//! only. Another tenant may hold the same id, and no answer tells one tenant that another
//! holds an id.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, documented_operations, seed_template, send};

/// A request as the tenant whose key is `key`.
async fn call(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let req = app
        .client
        .request(method, app.url(path))
        .header("x-api-key", key);
    send(match body {
        Some(body) => req.json(body),
        None => req,
    })
    .await
}

/// Every operation that takes an id of the client's choosing: (method, path, body, where the
/// created thing is read back).
fn chosen_ids() -> Vec<(Method, &'static str, Value, &'static str)> {
    vec![
        (
            Method::POST,
            "/api/v1/omni/templates",
            seed_template(),
            "/api/v1/omni/templates/tmpl_onboarding_sme",
        ),
        (
            Method::PUT,
            "/api/v1/omni/users/usr_credit_001",
            json!({ "name": "Sara", "roles": ["credit_analyst"] }),
            "/api/v1/omni/users/usr_credit_001",
        ),
        (
            Method::PUT,
            "/api/v1/omni/teams/team_sme",
            json!({ "name": "SME desk" }),
            "/api/v1/omni/teams/team_sme",
        ),
        (
            Method::PUT,
            "/api/v1/customers/ent_customer_456",
            json!({ "profile": { "name": "Fatima" } }),
            "/api/v1/customers/ent_customer_456/profile/unified",
        ),
        (
            Method::PUT,
            "/api/v1/customers/ent_customer_456/devices/dev_1",
            json!({ "platform": "android", "push_token": "tok_1" }),
            "/api/v1/customers/ent_customer_456/devices",
        ),
        (
            Method::POST,
            "/api/v1/sessions",
            json!({ "session_id": "sess_web_123", "customer_id": "ent_customer_456", "channel": "WEB", "device_id": "d1" }),
            "/api/v1/sessions/sess_web_123",
        ),
        (
            Method::POST,
            "/api/v1/omni/onboarding/configurations",
            json!({ "id": "cfg_sme", "name": "SME", "templateId": "tmpl_onboarding_sme", "countries": ["ALL"] }),
            "/api/v1/omni/onboarding/configurations/cfg_sme",
        ),
        (
            Method::PUT,
            "/api/v1/omni/notification-templates/WELCOME",
            json!({ "defaultLanguage": "en", "content": { "en": { "email": { "subject": "Hi", "text": "Hello" } } } }),
            "/api/v1/omni/notification-templates/WELCOME",
        ),
    ]
}

#[tokio::test]
async fn two_tenants_may_choose_the_same_ids_and_neither_learns_of_the_other() {
    let app = TestApp::spawn().await;
    let other = app.other_tenant_key().await;
    let third = app.other_tenant_key().await;
    for (method, path, body, read) in chosen_ids() {
        // The third tenant has what came before but never this: what it sees is what "no
        // such id" looks like.
        let (never_status, never) = call(&app, &third, Method::GET, read, None).await;
        let (s, res) = call(&app, &app.key, method.clone(), path, Some(&body)).await;
        assert!(s.is_success(), "{method} {path} as the first tenant: {res}");
        // Before the other tenant creates it, it looks exactly as it does to the third one.
        let (s, res) = call(&app, &other, Method::GET, read, None).await;
        assert_eq!(
            (s, strip(&res)),
            (never_status, strip(&never)),
            "{read} leaks"
        );
        let (s, res) = call(&app, &other, method.clone(), path, Some(&body)).await;
        assert!(
            s.is_success(),
            "{method} {path} as the second tenant: {s} {res}"
        );
        for key in [&app.key, &other] {
            let (s, _) = call(&app, key, Method::GET, read, None).await;
            assert_eq!(s, StatusCode::OK, "{read}");
        }
        let (s, res) = call(&app, &third, method.clone(), path, Some(&body)).await;
        assert!(s.is_success(), "{method} {path} as the third tenant: {res}");
    }
}

/// An answer without what differs between two requests anyway (its request id).
fn strip(res: &Value) -> Value {
    let mut res = res.clone();
    if let Some(o) = res.as_object_mut() {
        o.remove("requestId");
        o.remove("instance");
    }
    res
}

/// Path parameters that name one of a fixed list (a channel, an event type), not an id a
/// client chooses.
const VOCABULARIES: &[&str] = &["{channel}", "{eventType}", "{provider}"];

#[test]
fn every_id_a_client_chooses_is_in_the_tenancy_walk() {
    let covered: Vec<(Method, String)> = chosen_ids()
        .into_iter()
        .map(|(method, path, _, _)| (method, path.to_owned()))
        .collect();
    let doc: Value =
        serde_json::from_str(include_str!("../../docs/openapi.json")).expect("the document");
    for (method, path, op) in documented_operations() {
        // A PUT names what it creates in its path; a POST may take an id in its body.
        let creates_at_path = method == Method::PUT
            && path.ends_with('}')
            && !VOCABULARIES.iter().any(|v| path.ends_with(v));
        let schema = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .map(|name| &doc["components"]["schemas"][name]);
        let takes_id = method == Method::POST
            && schema.is_some_and(|s| {
                ["id", "session_id", "sessionId", "code"]
                    .iter()
                    .any(|f| !s["properties"][f].is_null())
            });
        if !creates_at_path && !takes_id {
            continue;
        }
        let template = path.split('{').next().unwrap_or_default();
        assert!(
            covered.iter().any(|(m, p)| *m == method
                && p.starts_with(template)
                && p.matches('/').count() == path.matches('/').count()),
            "{method} {path} takes an id of the client's choosing: add it to chosen_ids()"
        );
    }
}
