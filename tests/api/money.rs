//! Money (issue 20, section 2): exact decimals in the currency's major unit, read from a
//! JSON number or string without a float, held to the currency's minor unit, compared
//! exactly, stored in minor units, answered as a JSON number.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, at, send};

const DAY: i64 = 86_400_000;

fn approval(amount: Value) -> Value {
    json!({
        "entityType": "contract", "entityId": "ctr_001", "approvalType": "limit_increase",
        "requestedBy": "usr_rm_001",
        "approvers": [{ "userId": "usr_boss", "required": true }],
        "amount": amount, "expiresAt": at(DAY)
    })
}

/// Posts a body given as text, so that numbers reach the server exactly as written here.
async fn post_text(app: &TestApp, path: &str, text: String) -> (StatusCode, Value) {
    send(
        app.req(Method::POST, path)
            .header("content-type", "application/json")
            .body(text),
    )
    .await
}

/// The answer's `data.amount` as the text the server wrote.
async fn amount_text(app: &TestApp, id: &str) -> String {
    let res = app
        .req(Method::GET, &format!("/api/v1/omni/approvals/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = res.find(r#""amount":{"#).expect("an amount");
    let end = start + res[start..].find('}').unwrap() + 1;
    res[start..end].to_owned()
}

#[tokio::test]
async fn amounts_are_read_and_answered_exactly_in_major_units() {
    let app = TestApp::spawn().await;
    for (sent, answered) in [
        (
            r#"1000.50"#,
            r#""amount":{"amount":1000.5,"currency":"SAR"}"#,
        ),
        (
            r#""1000.50""#,
            r#""amount":{"amount":1000.5,"currency":"SAR"}"#,
        ),
        (
            r#"2000000"#,
            r#""amount":{"amount":2000000,"currency":"SAR"}"#,
        ),
        // Digits past what a float holds come back as they were sent.
        (
            r#"99999999999999.99"#,
            r#""amount":{"amount":99999999999999.99,"currency":"SAR"}"#,
        ),
        (r#""0.07""#, r#""amount":{"amount":0.07,"currency":"SAR"}"#),
    ] {
        let mut body = approval(json!(null)).to_string();
        body = body.replace(
            r#""amount":null"#,
            &format!(r#""amount":{{"amount":{sent},"currency":"SAR"}}"#),
        );
        let (s, res) = post_text(&app, "/api/v1/omni/approvals", body).await;
        assert_eq!(s, StatusCode::CREATED, "{sent}: {res}");
        let id = res["data"]["id"].as_str().unwrap();
        assert_eq!(amount_text(&app, id).await, answered, "{sent}");
    }
}

#[tokio::test]
async fn more_decimals_than_the_currency_has_are_refused_with_every_other_problem() {
    let app = TestApp::spawn().await;
    let before = app.count("approvals").await;
    for (amount, message) in [
        (
            json!({ "amount": 1.005, "currency": "SAR" }),
            "must have at most 2 decimals: SAR has 2 in its minor unit",
        ),
        (
            json!({ "amount": "10.5", "currency": "JPY" }),
            "must be a whole amount: JPY has no minor unit",
        ),
        (
            json!({ "amount": 0.0001, "currency": "KWD" }),
            "must have at most 3 decimals: KWD has 3 in its minor unit",
        ),
        (
            json!({ "amount": -5, "currency": "SAR" }),
            "must not be negative",
        ),
        (
            json!({ "amount": 1e14, "currency": "SAR" }),
            "must be below 100000000000000 (10^14)",
        ),
    ] {
        let (s, res) = app
            .post("/api/v1/omni/approvals", &approval(amount.clone()))
            .await;
        assert_problem(s, &res, 422, "validation_failed");
        assert_eq!(res["errors"][0]["field"], "amount.amount", "{amount}");
        assert_eq!(res["errors"][0]["message"], message, "{amount}");
    }
    // Not a decimal: named in the API's words, with the other field's problem.
    let (s, res) = app
        .post(
            "/api/v1/omni/approvals",
            &approval(json!({ "amount": "1,000.00", "currency": "sar" })),
        )
        .await;
    assert_problem(s, &res, 422, "validation_failed");
    assert_eq!(res["errors"][0]["field"], "amount.amount", "{res}");
    assert!(
        res["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("must be a decimal amount"),
        "{res}"
    );
    // A whole KWD amount with three decimals is fine.
    let (s, res) = app
        .post(
            "/api/v1/omni/approvals",
            &approval(json!({ "amount": 0.125, "currency": "KWD" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    assert_eq!(app.count("approvals").await, before + 1);
}

#[tokio::test]
async fn a_deputys_limit_is_compared_to_the_last_minor_unit() {
    let app = TestApp::spawn().await;
    let (s, res) = post_text(
        &app,
        "/api/v1/omni/delegations",
        json!({
            "delegatorId": "usr_boss", "delegateeId": "usr_deputy", "scope": ["approvals"],
            "maxApprovalAmount": { "amount": "1000000.00", "currency": "SAR" },
            "validFrom": at(-DAY), "validTo": at(DAY)
        })
        .to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    assert_eq!(res["data"]["maxApprovalAmount"]["amount"], json!(1_000_000));
    let deputy =
        json!({ "approverId": "usr_deputy", "decision": "approve", "onBehalfOf": "usr_boss" });
    for (amount, allowed) in [
        ("1000000.01", false),
        ("1000000.00", true),
        ("999999.99", true),
    ] {
        let (s, res) = app
            .post(
                "/api/v1/omni/approvals",
                &approval(json!({ "amount": amount, "currency": "SAR" })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{res}");
        let id = res["data"]["id"].as_str().unwrap();
        let (s, res) = app
            .post(&format!("/api/v1/omni/approvals/{id}/decisions"), &deputy)
            .await;
        if allowed {
            assert_eq!(s, StatusCode::CREATED, "{amount}: {res}");
        } else {
            assert_problem(s, &res, 403, "delegation_limit_exceeded");
            assert!(
                res["detail"].as_str().unwrap().contains("1000000 SAR"),
                "{res}"
            );
        }
    }
}

#[tokio::test]
async fn a_journeys_requested_amount_must_be_money() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/omni/templates", &crate::helpers::seed_template())
        .await;
    let (s, res) = app
        .post(
            "/api/v1/omni/journeys",
            &json!({ "templateId": "tmpl_onboarding_sme", "customerId": "ent_1",
                     "context": { "requestedAmount": { "amount": 10.001, "currency": "SAR" } } }),
        )
        .await;
    assert_problem(s, &res, 422, "validation_failed");
    assert_eq!(res["errors"][0]["field"], "context.requestedAmount.amount");
    assert_eq!(app.count("journeys").await, 0);
}

#[tokio::test]
async fn the_migration_turns_whole_major_units_into_minor_units() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for currency in ["SAR", "JPY", "KWD", "CLF", "XAU"] {
        let (s, res) = app
            .post(
                "/api/v1/omni/delegations",
                &json!({
                    "delegatorId": "usr_boss", "delegateeId": format!("usr_{}", currency.to_lowercase()),
                    "scope": ["approvals"],
                    "maxApprovalAmount": { "amount": 7, "currency": currency },
                    "validFrom": at(-DAY), "validTo": at(DAY)
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{res}");
        ids.push((currency, res["data"]["id"].as_str().unwrap().to_owned()));
    }
    // What a store written before the migration held: 7 in major units.
    for (_, id) in &ids {
        sqlx::query("UPDATE delegations SET max_amount = 7 WHERE id = $1")
            .bind(id)
            .execute(app.db.reader())
            .await
            .unwrap();
    }
    let sql = if app.db.backend() == omnirail::store::Backend::Postgres {
        include_str!("../../migrations/postgres/0010_money_in_minor_units.sql")
    } else {
        include_str!("../../migrations/sqlite/0010_money_in_minor_units.sql")
    };
    for statement in sql
        .split(';')
        .filter_map(|s| s.find("UPDATE").map(|at| &s[at..]))
    {
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(app.db.reader())
            .await
            .unwrap();
    }
    for (currency, id) in &ids {
        let (_, res) = app.get(&format!("/api/v1/omni/delegations/{id}")).await;
        assert_eq!(
            res["data"]["maxApprovalAmount"],
            json!({ "amount": 7, "currency": currency }),
            "{currency}"
        );
    }
}
