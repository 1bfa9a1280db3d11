//! Strict input (issue 20, section 1): a field or query parameter the API does not take is
//! refused wherever it is sent, a key given twice is refused, and every problem of a body is
//! reported at once, in the API's words. The walks over the OpenAPI document make a new
//! operation that reads its input laxly fail here.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, at, documented_operations, fill_path, send};

const EXTRA: &str = "zzNotAField";

/// A path with its parameters filled with values each parameter accepts.
fn concrete(path: &str) -> String {
    let channel = if path.contains("notification-providers") {
        "sms"
    } else {
        "web"
    };
    fill_path(
        path,
        &[
            ("{channel}", channel),
            ("{provider}", "twilio"),
            ("{eventType}", "omni.journey.created"),
            ("{code}", "WELCOME"),
        ],
        "x_1",
    )
}

/// The errors of a 422 answer, as (field, message).
fn fields(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or("").to_owned(),
                        e["message"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a request to this operation carries besides its body: the API key, or the headers of
/// the onboarding API and a session token.
fn request(app: &TestApp, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    let url = app.url(&concrete(path));
    if path.starts_with("/omni/") {
        app.client
            .request(method, url)
            .header("api-version", "1.0")
            .header("x-api-key", &app.key)
            .bearer_auth(token)
    } else {
        app.req(method, &concrete(path))
    }
}

#[tokio::test]
async fn every_json_body_refuses_a_field_it_does_not_take() {
    let app = TestApp::spawn().await;
    crate::onboarding::configure(&app).await;
    let (token, _, _) = crate::onboarding::start(&app, "ent_strict").await;
    let mut checked = 0;
    for (method, path, op) in documented_operations() {
        if op["requestBody"]["content"]["application/json"].is_null() {
            continue;
        }
        // A tagged body needs its tag before its fields mean anything.
        let mut body = match path.as_str() {
            "/api/v1/omni/notification-providers/{channel}" => json!({ "type": "twilio" }),
            _ => json!({}),
        };
        body[EXTRA] = json!(true);
        let (s, res) = send(request(&app, method.clone(), &path, &token).json(&body)).await;
        assert_problem(s, &res, 422, "validation_failed");
        assert!(
            fields(&res).contains(&(EXTRA.into(), "unknown field".into())),
            "{method} {path}: {res}"
        );
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} operations take a JSON body");
}

#[tokio::test]
async fn every_operation_refuses_a_query_parameter_it_does_not_take() {
    let app = TestApp::spawn().await;
    let mut checked = 0;
    for (method, path, op) in documented_operations() {
        let url = format!("{}?{EXTRA}=1", concrete(&path));
        let (s, res) = send(app.req(method.clone(), &url)).await;
        assert_problem(s, &res, 422, "validation_failed");
        assert_eq!(
            fields(&res),
            [(EXTRA.to_owned(), "unknown query parameter".to_owned())],
            "{method} {path}"
        );
        assert!(
            op["responses"]["422"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("query parameter")),
            "{method} {path} does not document it"
        );
        checked += 1;
    }
    assert!(checked >= 80, "only {checked} operations");
    // A known parameter misspelt: refused, not ignored (which would list everything).
    let (s, res) = app.get("/api/v1/omni/approvals?statuss=requested").await;
    assert_problem(s, &res, 422, "validation_failed");
    assert_eq!(res["errors"][0]["field"], "statuss");
    let (s, _) = app.get("/api/v1/omni/approvals?status=requested").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_misspelt_required_flag_cannot_turn_four_eyes_into_one() {
    let app = TestApp::spawn().await;
    let approvals_before = app.count("approvals").await;
    let (s, res) = app
        .post(
            "/api/v1/omni/approvals",
            &json!({
                "entityType": "contract", "entityId": "ctr_1", "approvalType": "limit_increase",
                "requestedBy": "usr_rm_001",
                "approvers": [
                    { "userId": "usr_a", "requried": true },
                    { "userId": "usr_b", "requried": true }
                ],
                "expiresAt": at(86_400_000)
            }),
        )
        .await;
    assert_problem(s, &res, 422, "validation_failed");
    assert_eq!(
        fields(&res),
        [
            ("approvers[0].requried".into(), "unknown field".into()),
            ("approvers[1].requried".into(), "unknown field".into()),
        ]
    );
    assert_eq!(app.count("approvals").await, approvals_before);

    // A limit under another name would grant unlimited authority: refused.
    let (s, res) = app
        .post(
            "/api/v1/omni/delegations",
            &json!({
                "delegatorId": "usr_boss", "delegateeId": "usr_deputy", "scope": ["approvals"],
                "maxAmount": { "amount": 1000, "currency": "SAR" },
                "validFrom": at(-86_400_000), "validTo": at(86_400_000)
            }),
        )
        .await;
    assert_problem(s, &res, 422, "validation_failed");
    assert_eq!(fields(&res), [("maxAmount".into(), "unknown field".into())]);
    assert_eq!(app.count("delegations").await, 0);
}

#[tokio::test]
async fn a_key_given_twice_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let text = r#"{"entityType": "contract", "entityId": "ctr_1", "approvalType": "x",
        "requestedBy": "usr_rm_001",
        "approvers": [{"userId": "usr_a", "required": true, "required": false}]}"#;
    let (s, res) = send(
        app.req(Method::POST, "/api/v1/omni/approvals")
            .header("content-type", "application/json")
            .body(text),
    )
    .await;
    assert_problem(s, &res, 422, "validation_failed");
    assert!(
        fields(&res).contains(&(
            "approvers[0].required".into(),
            "given more than once".into()
        )),
        "{res}"
    );
    assert_eq!(app.count("approvals").await, 0);
}

#[tokio::test]
async fn every_mistyped_field_is_named_at_once_without_rust_words() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/omni/templates", &crate::helpers::seed_template())
        .await;
    let (s, res) = app
        .post(
            "/api/v1/omni/journeys",
            &json!({
                "templateId": 7, "customerId": ["ent_1"], "channel": "pigeon",
                "priority": 1.5, "context": "not an object", "unexpected": null
            }),
        )
        .await;
    assert_problem(s, &res, 422, "validation_failed");
    let got = fields(&res);
    for field in [
        "templateId",
        "customerId",
        "channel",
        "priority",
        "unexpected",
    ] {
        assert!(got.iter().any(|(f, _)| f == field), "{field} in {res}");
    }
    for (_, message) in &got {
        for rust in [
            "invalid type",
            "expected",
            "floating point",
            "i64",
            "u32",
            "line ",
            "column",
            "struct ",
        ] {
            assert!(!message.contains(rust), "{message} in {res}");
        }
    }
    assert_eq!(app.count("journeys").await, 0);
}
