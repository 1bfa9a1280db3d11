//! Staff identity against a real OpenID provider (`oidc::Provider`): actor tokens obtained
//! through the provider's own sign-in, checked beside the API key; actor fields held to the
//! proven person; the proof inside the hash chain; rotation, outages and two tenants.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, documented_operations, log_response, send};
use crate::oidc::{AUDIENCE, Provider};

const PROVIDER: &str = "/api/v1/omni/identity-provider";

/// A server that may reach a provider on loopback over http, as the tests' provider is.
async fn app_for_providers() -> TestApp {
    TestApp::spawn_with(|c| {
        c.identity.allow_http = true;
        c.identity.allow_private_providers = true;
    })
    .await
}

/// Points the tenant of `key` at `provider`, with `extra` settings; answers the stored setting.
async fn configure(app: &TestApp, key: &str, provider: &Provider, extra: Value) -> Value {
    let mut body = json!({ "issuer": provider.issuer(), "audience": AUDIENCE });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (s, res) = send(
        app.client
            .put(app.url(PROVIDER))
            .header("x-api-key", key)
            .json(&body),
    )
    .await;
    assert!(s.is_success(), "{res}");
    res["data"].clone()
}

/// A call with the tenant's key and a person's actor token.
fn as_person(app: &TestApp, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    app.req(method, path).bearer_auth(token)
}

async fn put_user(app: &TestApp, id: &str, roles: Value) {
    let (s, body) = app
        .put(
            &format!("/api/v1/omni/users/{id}"),
            &json!({ "name": id, "roles": roles }),
        )
        .await;
    assert!(s.is_success(), "{body}");
}

async fn journey(app: &TestApp, id: &str) -> Value {
    let (s, body) = app.get(&format!("/api/v1/omni/journeys/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["data"].clone()
}

async fn customer_timeline(app: &TestApp) -> Vec<Value> {
    let (s, body) = app
        .get("/api/v1/omni/timeline?entityType=customer&entityId=ent_customer_456&perPage=200")
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_proven_approver_decides_and_the_proof_is_inside_the_chain() {
    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    let app = app_for_providers().await;
    let (s, body) = app.get(PROVIDER).await;
    assert_problem(s, &body, 404, "not_found");

    let set = configure(&app, &app.key, &provider, json!({})).await;
    assert_eq!(set["issuer"], provider.issuer());
    assert_eq!(set["audience"], AUDIENCE);
    assert_eq!(set["userClaim"], "sub");
    assert_eq!(set["actorTokens"], "optional");
    assert_eq!(set["actorTokenHeader"], "Authorization: Bearer");
    assert_eq!(set["jwksUri"], format!("{}/jwks", provider.issuer()));
    let (s, again) = app.get(PROVIDER).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["data"], set);
    let (s, _) = app
        .put(
            PROVIDER,
            &json!({ "issuer": provider.issuer(), "audience": AUDIENCE }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "a second PUT replaces");

    app.seed_credit_analyst().await;
    let id = app.seed_journey().await;
    app.pass_steps(&id, &["step_kyc", "step_docs"]).await;
    let approval = journey(&app, &id).await["currentStep"]["approvalId"]
        .as_str()
        .unwrap()
        .to_owned();

    // The approver signs in at the bank's provider; the decision names nobody: the token does.
    let token = provider.token("usr_credit_001").await;
    let decide = |token: &str| {
        as_person(
            &app,
            Method::POST,
            &format!("/api/v1/omni/approvals/{approval}/decisions"),
            token,
        )
        .header("idempotency-key", "decide-once")
        .json(&json!({ "decision": "approve", "comment": "Within appetite" }))
    };
    let (s, body) = send(decide(&token)).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    // The same key and body from another person is not their retry; from the same person (a
    // fresh token) it is.
    let (s, other) = send(decide(&provider.token("usr_rm_001").await)).await;
    assert_problem(s, &other, 422, "idempotency_key_reused");
    let (s, again) = send(decide(&provider.token("usr_credit_001").await)).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(again, body);
    let decision = &body["data"]["decisions"][0];
    assert_eq!(decision["approverId"], "usr_credit_001");
    assert_eq!(decision["actorVerified"], true);
    assert_eq!(decision["actorIssuer"], provider.issuer());
    assert_eq!(body["data"]["status"], "approved");

    // The timeline says who was proven and who was only named.
    let events = customer_timeline(&app).await;
    let approved = events
        .iter()
        .find(|e| e["eventType"] == "approval.approved")
        .expect("approval.approved on the timeline");
    assert_eq!(approved["actorId"], "usr_credit_001");
    assert_eq!(approved["actorVerified"], true);
    assert_eq!(approved["actorIssuer"], provider.issuer());
    let advanced = events
        .iter()
        .find(|e| e["eventType"] == "journey.advanced")
        .unwrap();
    assert_eq!(advanced["actorId"], "usr_rm_001");
    assert_eq!(advanced["actorVerified"], false);

    // The proof is in the chain: it verifies, the export carries it, and removing it is seen.
    let verify = "/api/v1/omni/timeline/verify?entityType=customer&entityId=ent_customer_456";
    let (_, v) = app.get(verify).await;
    assert_eq!(v["data"]["valid"], true, "{v}");
    let res = app
        .req(
            Method::GET,
            "/api/v1/omni/timeline/export?entityType=customer&entityId=ent_customer_456",
        )
        .send()
        .await
        .unwrap();
    let export = res.text().await.unwrap();
    let proven: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| !l["actorProof"].is_null())
        .collect();
    assert!(!proven.is_empty());
    let proof: Value = serde_json::from_str(proven[0]["actorProof"].as_str().unwrap()).unwrap();
    assert_eq!(proof["verified"], true);
    assert_eq!(proof["issuer"], provider.issuer());
    assert_eq!(proof["subject"], "usr_credit_001");
    assert!(proof["tokenId"].is_string(), "the token's jti: {proof}");
    assert!(!export.contains(&token), "the token itself is never kept");
    crate::timeline::verify_offline(&export, true);

    sqlx::query("UPDATE events SET actor_proof = NULL WHERE actor_proof IS NOT NULL")
        .execute(app.db.reader())
        .await
        .unwrap();
    let (_, v) = app.get(verify).await;
    assert_eq!(v["data"]["valid"], false);
    assert_eq!(v["data"]["brokenAt"]["reason"], "content_mismatch");
}

/// The operations whose body names a person acting, and that field: what the OpenAPI document
/// shows, so that a new one is not left out.
fn actor_fields_in_the_document() -> BTreeSet<(String, String, String)> {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    let mut found = BTreeSet::new();
    for (method, path, op) in documented_operations() {
        let Some(schema) = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
        else {
            continue;
        };
        let props = &doc["components"]["schemas"][schema]["properties"];
        for field in props.as_object().into_iter().flatten().map(|(k, _)| k) {
            let names_an_actor = field.ends_with("By")
                || ["approverId", "delegatorId", "actorId"].contains(&field.as_str());
            if names_an_actor {
                found.insert((method.to_string(), path.clone(), field.clone()));
            }
        }
    }
    found
}

#[tokio::test]
async fn every_actor_field_is_held_to_the_proven_person() {
    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    let app = app_for_providers().await;
    configure(&app, &app.key, &provider, json!({})).await;
    put_user(
        &app,
        "usr_rm_001",
        json!(["relationship_manager", "manager"]),
    )
    .await;
    app.seed_credit_analyst().await;
    let id = app.seed_journey().await;
    let (s, body) = app
        .post(
            "/api/v1/omni/approvals",
            &json!({ "entityType": "contract", "entityId": "ctr_1", "approvalType": "credit_committee",
                     "requestedBy": "usr_maker_001", "approvers": [{ "userId": "usr_rm_001" }] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let approval = body["data"]["id"].as_str().unwrap().to_owned();
    let valid_to = app.at(7 * 24 * 3600 * 1000);
    let (s, body) = app
        .post(
            "/api/v1/omni/delegations",
            &json!({ "delegatorId": "usr_rm_001", "delegateeId": "usr_deputy_001",
                     "scope": ["approvals"], "validTo": valid_to }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let delegation = body["data"]["id"].as_str().unwrap().to_owned();

    // Each operation, its field, and a body that would succeed but for the field.
    let someone = "usr_someone_else";
    let mut journey_body = crate::helpers::seed_journey();
    journey_body["createdBy"] = json!(someone);
    let cases: Vec<(Method, String, String, &str, Value)> = vec![
        (
            Method::POST,
            "/journeys".into(),
            "/api/v1/omni/journeys".into(),
            "createdBy",
            journey_body,
        ),
        (
            Method::POST,
            "/journeys/{id}/advance".into(),
            format!("/api/v1/omni/journeys/{id}/advance"),
            "advancedBy",
            json!({ "completedStepId": "step_kyc", "advancedBy": someone }),
        ),
        (
            Method::POST,
            "/journeys/{id}/assign".into(),
            format!("/api/v1/omni/journeys/{id}/assign"),
            "assignedBy",
            json!({ "assigneeId": "usr_rm_002", "assignedBy": someone }),
        ),
        (
            Method::POST,
            "/journeys/{id}/complete".into(),
            format!("/api/v1/omni/journeys/{id}/complete"),
            "completedBy",
            json!({ "completedBy": someone }),
        ),
        (
            Method::POST,
            "/journeys/{id}/cancel".into(),
            format!("/api/v1/omni/journeys/{id}/cancel"),
            "cancelledBy",
            json!({ "cancelledBy": someone }),
        ),
        (
            Method::POST,
            "/approvals".into(),
            "/api/v1/omni/approvals".into(),
            "requestedBy",
            json!({ "entityType": "contract", "entityId": "ctr_2", "approvalType": "credit_committee",
                    "requestedBy": someone, "approvers": [{ "userId": "usr_credit_001" }] }),
        ),
        (
            Method::POST,
            "/approvals/{id}/decisions".into(),
            format!("/api/v1/omni/approvals/{approval}/decisions"),
            "approverId",
            json!({ "approverId": someone, "decision": "approve" }),
        ),
        (
            Method::POST,
            "/delegations".into(),
            "/api/v1/omni/delegations".into(),
            "delegatorId",
            json!({ "delegatorId": someone, "delegateeId": "usr_deputy_002", "scope": ["approvals"], "validTo": valid_to }),
        ),
        (
            Method::POST,
            "/delegations/{id}/revoke".into(),
            format!("/api/v1/omni/delegations/{delegation}/revoke"),
            "revokedBy",
            json!({ "revokedBy": someone }),
        ),
    ];
    // The cases are every actor field the document shows, and the server's own list.
    let listed: BTreeSet<(String, String, String)> = cases
        .iter()
        .map(|(m, template, _, field, _)| {
            (
                m.to_string(),
                format!("/api/v1/omni{template}"),
                (*field).to_owned(),
            )
        })
        .collect();
    assert_eq!(listed, actor_fields_in_the_document());
    let server: BTreeSet<&str> = omnirail::identity::ACTOR_BODIES
        .iter()
        .map(|(_, f)| *f)
        .collect();
    let tested: BTreeSet<&str> = cases.iter().map(|c| c.3).collect();
    assert_eq!(server, tested);

    let token = provider.token("usr_rm_001").await;
    let events = app.event_count().await;
    for (method, _, path, field, body) in &cases {
        let (s, res) = send(as_person(&app, method.clone(), path, &token).json(body)).await;
        assert_problem(s, &res, 403, "actor_mismatch");
        assert!(
            res["detail"].as_str().unwrap().contains(field),
            "{field}: {res}"
        );
    }
    assert_eq!(app.event_count().await, events, "nothing changed");
    assert_eq!(journey(&app, &id).await["currentStep"]["id"], "step_kyc");

    // Omitted, each field is the proven person; named as them, it is accepted as it is.
    let (s, body) = send(
        as_person(
            &app,
            Method::POST,
            &format!("/api/v1/omni/journeys/{id}/advance"),
            &token,
        )
        .json(&json!({ "completedStepId": "step_kyc" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = send(
        as_person(
            &app,
            Method::POST,
            &format!("/api/v1/omni/journeys/{id}/advance"),
            &token,
        )
        .json(&json!({ "completedStepId": "step_docs", "advancedBy": "usr_rm_001" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let steps = journey(&app, &id).await["steps"].clone();
    assert_eq!(steps[0]["history"][0]["actorId"], "usr_rm_001", "{steps}");
    let advanced: Vec<Value> = customer_timeline(&app)
        .await
        .into_iter()
        .filter(|e| e["eventType"] == "journey.advanced")
        .collect();
    assert_eq!(advanced.len(), 2);
    for e in &advanced {
        assert_eq!(e["actorId"], "usr_rm_001");
        assert_eq!(e["actorVerified"], true, "{e}");
    }
    // A deputy deciding for the approver under a delegation is the deputy, proven.
    let (s, body) = send(
        as_person(
            &app,
            Method::POST,
            "/api/v1/omni/delegations",
            &provider.token("usr_rm_001").await,
        )
        .json(&json!({ "delegateeId": "usr_deputy_003", "scope": ["approvals"], "validTo": valid_to })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["delegatorId"], "usr_rm_001");
    put_user(&app, "usr_deputy_003", json!([])).await;
    let deputy = provider.token("usr_deputy_003").await;
    let (s, body) = send(
        as_person(
            &app,
            Method::POST,
            &format!("/api/v1/omni/approvals/{approval}/decisions"),
            &deputy,
        )
        .json(&json!({ "decision": "approve", "onBehalfOf": "usr_rm_001" })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let decision = &body["data"]["decisions"][0];
    assert_eq!(decision["approverId"], "usr_deputy_003");
    assert_eq!(decision["onBehalfOf"], "usr_rm_001");
    assert_eq!(decision["actorVerified"], true);
}

#[tokio::test]
async fn where_tokens_are_required_a_named_person_without_one_is_refused() {
    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    let app = app_for_providers().await;
    let set = configure(
        &app,
        &app.key,
        &provider,
        json!({ "actorTokens": "required" }),
    )
    .await;
    assert_eq!(set["actorTokens"], "required");
    put_user(&app, "usr_rm_001", json!([])).await;
    app.seed_credit_analyst().await;
    // The seed's body names no actor: the bank's backend starts the journey.
    let id = app.seed_journey().await;
    let events = app.event_count().await;
    let advance = format!("/api/v1/omni/journeys/{id}/advance");
    let (s, body) = app
        .post(
            &advance,
            &json!({ "completedStepId": "step_kyc", "advancedBy": "usr_rm_001" }),
        )
        .await;
    assert_problem(s, &body, 401, "actor_token_required");
    assert!(body["detail"].as_str().unwrap().contains("advancedBy"));
    let (s, body) = app
        .post(
            "/api/v1/omni/approvals",
            &json!({ "entityType": "contract", "entityId": "ctr_1", "approvalType": "credit_committee",
                     "requestedBy": "usr_rm_001", "approvers": [{ "userId": "usr_credit_001" }] }),
        )
        .await;
    assert_problem(s, &body, 401, "actor_token_required");
    assert_eq!(app.event_count().await, events, "nothing changed");
    assert_eq!(journey(&app, &id).await["currentStep"]["id"], "step_kyc");

    // Naming nobody, no person is claimed: the backend's own change goes through.
    let (s, body) = app
        .post(&advance, &json!({ "completedStepId": "step_kyc" }))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // With the person's token, their change goes through as theirs.
    let token = provider.token("usr_rm_001").await;
    let (s, body) = send(
        as_person(&app, Method::POST, &advance, &token)
            .json(&json!({ "completedStepId": "step_docs" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let steps = journey(&app, &id).await["steps"].clone();
    assert_eq!(steps[1]["history"][0]["actorId"], "usr_rm_001", "{steps}");
    // A decision always names a person: without a token and without one named it is a 422.
    let (s, body) = app
        .post(
            "/api/v1/omni/approvals/apr_missing/decisions",
            &json!({ "decision": "approve" }),
        )
        .await;
    assert_problem(s, &body, 422, "validation_failed");
    assert_eq!(body["errors"][0]["field"], "approverId");
}

/// A token's three parts, base64url without padding.
fn jwt(header: &Value, claims: &Value, signature: &str) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", b64(header), b64(claims))
}

#[tokio::test]
async fn bad_tokens_are_refused_each_with_its_code_and_change_nothing() {
    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    let app = app_for_providers().await;
    configure(&app, &app.key, &provider, json!({})).await;
    put_user(&app, "usr_rm_001", json!([])).await;
    let id = app.seed_journey().await;
    let advance = format!("/api/v1/omni/journeys/{id}/advance");
    // Passing the KYC step with an actor token: the change every bad token tries.
    let kyc_as = |token: &str| {
        send(
            as_person(&app, Method::POST, &advance, token)
                .json(&json!({ "completedStepId": "step_kyc" })),
        )
    };
    let token = provider.token("usr_rm_001").await;
    let [head, claims, _] = token.split('.').collect::<Vec<_>>()[..] else {
        panic!("not a JWT: {token}");
    };
    let other = provider.token("usr_rm_001").await;
    let other_signature = other.rsplit('.').next().unwrap();
    let real_claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    let cases: Vec<(String, &str)> = vec![
        ("not-a-token".into(), "actor_token_malformed"),
        ("a.b.c".into(), "actor_token_malformed"),
        (
            jwt(&json!({ "alg": "none" }), &real_claims, ""),
            "actor_token_algorithm",
        ),
        (
            jwt(
                &json!({ "alg": "HS256", "typ": "JWT" }),
                &real_claims,
                "c2ln",
            ),
            "actor_token_algorithm",
        ),
        (
            format!("{head}.{claims}.{other_signature}"),
            "actor_token_signature",
        ),
        (
            provider
                .token_for("usr_rm_001", "https://other.bank.example/api")
                .await,
            "actor_token_audience",
        ),
        (provider.token("usr_nobody_009").await, "actor_unknown_user"),
    ];
    let events = app.event_count().await;
    for (bad, code) in &cases {
        let (s, body) = kyc_as(bad).await;
        assert_problem(s, &body, 401, code);
        assert!(!body.to_string().contains(bad.as_str()), "never echoed");
    }
    // A user claim the tokens do not carry.
    configure(
        &app,
        &app.key,
        &provider,
        json!({ "userClaim": "employee_number" }),
    )
    .await;
    let (s, body) = kyc_as(&token).await;
    assert_problem(s, &body, 401, "actor_token_claim_missing");
    // Another claim that does name the user: the provider's `employee_id` (`emp-<login>`).
    configure(
        &app,
        &app.key,
        &provider,
        json!({ "userClaim": "employee_id" }),
    )
    .await;
    put_user(&app, "emp-usr_rm_001", json!([])).await;
    let (s, body) = send(as_person(
        &app,
        Method::GET,
        &format!("/api/v1/omni/journeys/{id}"),
        &token,
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // A provider whose clock runs ten minutes ahead: its tokens are not valid yet here.
    let Some(fast) = Provider::start_with(json!({}), &["--clock-ahead-secs", "600"]).await else {
        return;
    };
    configure(&app, &app.key, &fast, json!({})).await;
    let early = fast.token("usr_rm_001").await;
    let (s, body) = kyc_as(&early).await;
    assert_problem(s, &body, 401, "actor_token_not_yet_valid");
    configure(&app, &app.key, &provider, json!({})).await;
    // Past its expiry (an hour, and a minute's leeway) by the server's clock.
    app.advance(Duration::from_secs(3600 + 61));
    let (s, body) = kyc_as(&token).await;
    assert_problem(s, &body, 401, "actor_token_expired");
    assert_eq!(app.event_count().await, events, "nothing changed");
    assert_eq!(journey(&app, &id).await["currentStep"]["id"], "step_kyc");
}

#[tokio::test]
async fn keys_rotated_at_the_provider_are_fetched_again_at_most_once_a_minute() {
    let Some(mut provider) = Provider::start(json!({})).await else {
        return;
    };
    let app = app_for_providers().await;
    configure(&app, &app.key, &provider, json!({})).await;
    assert_eq!(provider.fetches().await, (1, 1), "discovery and keys, once");
    put_user(&app, "usr_rm_001", json!([])).await;
    let journeys = "/api/v1/omni/journeys";
    let old = provider.token("usr_rm_001").await;
    let (s, _) = send(as_person(&app, Method::GET, journeys, &old)).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the keys fetched with the settings serve"
    );
    assert_eq!(provider.fetches().await, (1, 1));

    // The provider rotates to k2 and drops k1 (its counts start again at zero).
    provider.rotate("k2").await;
    let new = provider.token("usr_rm_001").await;
    // Within a minute of the last fetch, an unknown key is not fetched for.
    let (s, body) = send(as_person(&app, Method::GET, journeys, &new)).await;
    assert_problem(s, &body, 401, "actor_token_key_unknown");
    assert_eq!(provider.fetches().await, (0, 0));
    // A minute on, the first token naming it fetches the keys again, with no restart.
    app.advance(Duration::from_secs(61));
    for _ in 0..3 {
        let (s, body) = send(as_person(&app, Method::GET, journeys, &new)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    assert_eq!(provider.fetches().await, (0, 1));
    // The dropped key's tokens are refused, and cost no fetch.
    let (s, body) = send(as_person(&app, Method::GET, journeys, &old)).await;
    assert_problem(s, &body, 401, "actor_token_key_unknown");
    assert_eq!(provider.fetches().await, (0, 1));
}

#[tokio::test]
async fn a_stopped_provider_leaves_cached_keys_working_and_without_them_is_503() {
    let Some(mut provider) = Provider::start(json!({})).await else {
        return;
    };
    let mut app = app_for_providers().await;
    configure(&app, &app.key, &provider, json!({})).await;
    put_user(&app, "usr_rm_001", json!([])).await;
    let token = provider.token("usr_rm_001").await;
    let journeys = "/api/v1/omni/journeys";
    provider.stop();
    let (s, body) = send(as_person(&app, Method::GET, journeys, &token)).await;
    assert_eq!(s, StatusCode::OK, "cached keys still check tokens: {body}");

    // A process that never fetched them cannot check a token, and says when to retry.
    app.restart().await;
    let res = as_person(&app, Method::GET, journeys, &token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.unwrap();
    log_response("GET", journeys, status, &body);
    assert_problem(status, &body, 503, "identity_provider_unavailable");
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Calls that carry no token are not held up by the provider.
    let (s, _) = app.get(journeys).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn two_tenants_with_two_providers_cannot_cross() {
    let Some(provider_a) = Provider::start(json!({})).await else {
        return;
    };
    let Some(provider_b) = Provider::start(json!({})).await else {
        return;
    };
    let app = app_for_providers().await;
    let (_, key_b) = crate::helpers::tenant_with_key(&app.db, "Bank B").await;
    configure(&app, &app.key, &provider_a, json!({})).await;
    configure(&app, &key_b, &provider_b, json!({})).await;
    // The same staff id in both tenants' directories.
    for key in [&app.key, &key_b] {
        let (s, body) = send(
            app.client
                .put(app.url("/api/v1/omni/users/usr_rm_001"))
                .header("x-api-key", key)
                .json(&json!({ "name": "RM" })),
        )
        .await;
        assert!(s.is_success(), "{body}");
    }
    let token_a = provider_a.token("usr_rm_001").await;
    let token_b = provider_b.token("usr_rm_001").await;
    let call = |key: &str, token: &str| {
        app.client
            .get(app.url("/api/v1/omni/journeys"))
            .header("x-api-key", key)
            .bearer_auth(token)
    };
    let (s, _) = send(call(&app.key, &token_a)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = send(call(&key_b, &token_b)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = send(call(&app.key, &token_b)).await;
    assert_problem(s, &body, 401, "actor_token_issuer");
    let (s, body) = send(call(&key_b, &token_a)).await;
    assert_problem(s, &body, 401, "actor_token_issuer");
    assert_eq!(
        provider_a.fetches().await.1,
        1,
        "B's tokens fetch none of A's keys"
    );
}

#[tokio::test]
async fn roles_in_the_token_are_synced_into_the_directory() {
    let roles = json!({ "usr_credit_002": ["credit_analyst", "manager", "Not A Role"] });
    let Some(provider) = Provider::start(roles).await else {
        return;
    };
    let app = app_for_providers().await;
    configure(&app, &app.key, &provider, json!({ "rolesClaim": "roles" })).await;
    put_user(&app, "usr_credit_002", json!(["teller"])).await;
    let token = provider.token("usr_credit_002").await;
    let (s, _) = send(as_person(
        &app,
        Method::GET,
        "/api/v1/omni/journeys",
        &token,
    ))
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, user) = app.get("/api/v1/omni/users/usr_credit_002").await;
    assert_eq!(user["data"]["roles"], json!(["credit_analyst", "manager"]));
    assert_eq!(user["data"]["name"], "usr_credit_002", "the rest stays");
}

#[tokio::test]
async fn the_setting_is_checked_and_its_url_guarded() {
    // By default a provider must be https and outside the network.
    let app = TestApp::spawn().await;
    for issuer in [
        "http://idp.bank.example",
        "https://127.0.0.1:9",
        "ftp://idp.bank.example",
    ] {
        let (s, body) = app
            .put(PROVIDER, &json!({ "issuer": issuer, "audience": AUDIENCE }))
            .await;
        assert_problem(s, &body, 422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "issuer", "{issuer}: {body}");
    }
    let (s, body) = app
        .put(
            PROVIDER,
            &json!({ "issuer": "https://idp.bank.example", "audience": "", "userClaim": "", "rolesClaim": "has space" }),
        )
        .await;
    assert_problem(s, &body, 422, "validation_failed");
    assert_eq!(body["errors"].as_array().unwrap().len(), 3, "{body}");

    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    let app = app_for_providers().await;
    let closed = format!("http://127.0.0.1:{}", crate::cli::free_port());
    // Unreachable, or a document naming another issuer (a trailing slash is another issuer).
    for issuer in [closed, format!("{}/", provider.issuer())] {
        let (s, body) = app
            .put(PROVIDER, &json!({ "issuer": issuer, "audience": AUDIENCE }))
            .await;
        assert_problem(s, &body, 422, "identity_provider_unreachable");
    }
    let (s, body) = app.get(PROVIDER).await;
    assert_problem(s, &body, 404, "not_found");
}
