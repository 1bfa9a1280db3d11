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
            ("{eventType}", "omni.journey.assigned"),
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
/// the onboarding API and a session token (except to start a session, which takes the key
/// alone: a bearer token beside the key is a person's actor token).
fn request(app: &TestApp, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    let url = app.url(&concrete(path));
    if path == "/omni/start" {
        app.client
            .request(method, url)
            .header("api-version", "1.0")
            .header("x-api-key", &app.key)
    } else if path.starts_with("/omni/") {
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

/// Every whole number or number the schema at `schema` takes, as (path, schema), following
/// references, arrays and maps. Free-form objects have no properties and are not entered.
fn numbers_in(schema: &Value, components: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.rsplit('/').next().unwrap_or_default();
        // A type that refers to itself is walked once.
        if !path.split('.').any(|p| p == format!("<{name}>")) {
            let inner = &components[name];
            numbers_in(inner, components, &format!("{path}.<{name}>"), out);
        }
        return;
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for option in schema[key].as_array().into_iter().flatten() {
            numbers_in(option, components, path, out);
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"integer") || types.contains(&"number") {
        out.push((path.to_owned(), schema.clone()));
    }
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        numbers_in(property, components, &format!("{path}.{name}"), out);
    }
    if schema["items"].is_object() {
        numbers_in(&schema["items"], components, &format!("{path}[]"), out);
    }
    if schema["additionalProperties"].is_object() {
        numbers_in(
            &schema["additionalProperties"],
            components,
            &format!("{path}{{}}"),
            out,
        );
    }
}

#[test]
fn every_number_a_request_takes_documents_its_range() {
    let doc: Value =
        serde_json::from_str(include_str!("../../docs/openapi.json")).expect("the document");
    let components = &doc["components"]["schemas"];
    let mut found = Vec::new();
    for (method, path, op) in documented_operations() {
        for parameter in op["parameters"].as_array().into_iter().flatten() {
            let at = format!(
                "{method} {path} {}",
                parameter["name"].as_str().unwrap_or("")
            );
            numbers_in(&parameter["schema"], components, &at, &mut found);
        }
        for (_, content) in op["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            numbers_in(
                &content["schema"],
                components,
                &format!("{method} {path} body"),
                &mut found,
            );
        }
    }
    assert!(found.len() > 20, "only {} numbers found", found.len());
    let unbounded: Vec<&String> = found
        .iter()
        .filter(|(_, schema)| {
            schema["minimum"].is_null()
                || (schema["maximum"].is_null() && schema["exclusiveMaximum"].is_null())
        })
        .map(|(at, _)| at)
        .collect();
    assert!(
        unbounded.is_empty(),
        "numbers without a documented range: {unbounded:#?}"
    );
}

#[tokio::test]
async fn every_number_in_a_query_is_held_to_its_documented_range() {
    let app = TestApp::spawn().await;
    crate::onboarding::configure(&app).await;
    let (token, _, _) = crate::onboarding::start(&app, "ent_strict").await;
    let mut checked = 0;
    for (method, path, op) in documented_operations() {
        if method != Method::GET {
            continue;
        }
        for parameter in op["parameters"].as_array().into_iter().flatten() {
            let schema = &parameter["schema"];
            let (Some(min), Some(max)) = (schema["minimum"].as_i64(), schema["maximum"].as_i64())
            else {
                continue;
            };
            let name = parameter["name"].as_str().expect("a name");
            // The parameters a list cannot go without, given values it takes.
            let required: String = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["required"] == true && p["in"] == "query")
                .map(|p| match p["name"].as_str() {
                    Some("entityType") => "entityType=customer&".to_owned(),
                    Some(other) => format!("{other}=x_1&"),
                    None => String::new(),
                })
                .collect();
            let url = |n: &str| format!("{path}?{required}{name}={n}");
            for outside in [(min - 1).to_string(), (max + 1).to_string(), "9".repeat(20)] {
                let (s, res) = send(request(&app, Method::GET, &url(&outside), &token)).await;
                assert_problem(s, &res, 422, "invalid_query_parameter");
                assert_eq!(res["errors"][0]["field"], name, "{path} {name}={outside}");
                assert_eq!(
                    res["errors"][0]["message"],
                    format!("must be between {min} and {max}"),
                    "{path} {name}={outside}"
                );
            }
            if name == "perPage" {
                // One default and one maximum for every list; the timeline keeps seed 001's.
                let (default, most) = if path.ends_with("/timeline") {
                    (50, 200)
                } else {
                    (20, 100)
                };
                assert_eq!(max, most, "{path}");
                // (The list of a thing, which does not exist here, is left out.)
                if !path.contains('{') {
                    let url = format!("{path}?{}", required.trim_end_matches('&'));
                    let (s, res) = send(request(&app, Method::GET, &url, &token)).await;
                    assert_eq!(s, StatusCode::OK, "{path}: {res}");
                    assert_eq!(res["pagination"]["perPage"], default, "{path}");
                }
            }
            for inside in [min, max] {
                let (s, res) = send(request(
                    &app,
                    Method::GET,
                    &url(&inside.to_string()),
                    &token,
                ))
                .await;
                assert_ne!(s.as_u16(), 422, "{path} {name}={inside}: {res}");
                assert_ne!(s.as_u16(), 400, "{path} {name}={inside}: {res}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} bounded query parameters");
}

#[tokio::test]
async fn a_duration_beyond_its_range_is_refused_and_none_can_open_an_approval_in_the_past() {
    let app = TestApp::spawn().await;
    let mut template = crate::helpers::seed_template();
    template["steps"][0]["timeoutHours"] = json!(99_999_999_999u64);
    template["slaHours"] = json!(0);
    template["estimatedDurationDays"] = json!(1.5);
    template["steps"][1]["order"] = json!(-2);
    let (s, res) = app.post("/api/v1/omni/templates", &template).await;
    assert_problem(s, &res, 422, "validation_failed");
    assert_eq!(
        fields(&res),
        [
            (
                "estimatedDurationDays".into(),
                "must be a whole number from 1 to 3650".into()
            ),
            (
                "slaHours".into(),
                "must be a whole number from 1 to 87600".into()
            ),
            (
                "steps[0].timeoutHours".into(),
                "must be a whole number from 1 to 87600".into()
            ),
            (
                "steps[1].order".into(),
                "must be a whole number from 1 to 1000000".into()
            ),
        ]
    );
    assert_eq!(app.count("journey_templates").await, 0);

    // The longest timeout an approval step takes opens a request that expires ten years on,
    // not one that wrapped into the past.
    let (s, res) = app
        .post(
            "/api/v1/omni/templates",
            &json!({ "id": "tmpl_long", "name": "Long", "steps": [
                { "id": "a", "name": "A", "type": "approval", "order": 1,
                  "approvers": ["usr_a"], "timeoutHours": 87_600 }
            ] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    let (s, j) = app
        .post(
            "/api/v1/omni/journeys",
            &json!({ "templateId": "tmpl_long", "customerId": "ent_1" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    let approval = j["data"]["currentStep"]["approvalId"]
        .as_str()
        .expect("an approval");
    let (_, a) = app.get(&format!("/api/v1/omni/approvals/{approval}")).await;
    let ms =
        |field: &str| omnirail::time::parse_rfc3339(a["data"][field].as_str().unwrap()).unwrap();
    assert_eq!(ms("expiresAt") - ms("createdAt"), 87_600 * 3_600_000);
    assert_eq!(a["data"]["status"], "requested");
}

#[tokio::test]
async fn a_path_that_names_nothing_is_told_so_whatever_the_body() {
    let app = TestApp::spawn().await;
    // Every operation whose path names one of a fixed list: an unknown word with a bad body
    // is answered about the path, not the body.
    let mut checked = 0;
    for (method, path, _) in documented_operations() {
        let Some(parameter) = ["{channel}", "{eventType}"]
            .into_iter()
            .find(|p| path.ends_with(p))
        else {
            continue;
        };
        if method == Method::GET || method == Method::DELETE {
            continue;
        }
        let url = path.replace(parameter, "fax");
        let (s, res) = send(app.req(method.clone(), &url).json(&json!({ EXTRA: 1 }))).await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {res}"
        );
        let about_path = s == StatusCode::NOT_FOUND
            || res["field"] == parameter.trim_matches(['{', '}'])
            || res["errors"][0]["field"] == parameter.trim_matches(['{', '}']);
        assert!(about_path, "{method} {url} answers about the body: {res}");
        checked += 1;
    }
    assert!(checked >= 3, "only {checked}");
}
