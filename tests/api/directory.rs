use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{DAY, TestApp, assert_problem, at};

#[tokio::test]
async fn put_creates_then_replaces_a_user_and_get_reads_it() {
    let app = TestApp::spawn().await;
    let body = json!({
        "name": "Sara Al-Harbi", "email": "sara@bank.example", "phone": "+966501234567",
        "roles": ["credit_analyst", "manager"], "teams": ["team_credit"]
    });
    let (s, created) = app.put("/api/v1/omni/users/usr_credit_001", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let u = &created["data"];
    assert_eq!(u["id"], "usr_credit_001");
    assert_eq!(u["roles"], json!(["credit_analyst", "manager"]));
    assert_eq!(u["teams"], json!(["team_credit"]));

    let (s, replaced) = app
        .put(
            "/api/v1/omni/users/usr_credit_001",
            &json!({ "name": "Sara A.", "roles": ["credit_analyst"] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["data"]["name"], "Sara A.");
    assert_eq!(
        replaced["data"]["email"],
        json!(null),
        "PUT replaces the whole user"
    );
    assert_eq!(replaced["data"]["teams"], json!([]));
    assert_eq!(replaced["data"]["createdAt"], created["data"]["createdAt"]);

    let (s, got) = app.get("/api/v1/omni/users/usr_credit_001").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["data"], replaced["data"]);
    // The team the user left still exists, without members.
    let (s, team) = app.get("/api/v1/omni/teams/team_credit").await;
    assert_eq!(s, StatusCode::OK, "{team}");
    assert_eq!(team["data"]["members"], json!([]));
}

#[tokio::test]
async fn list_filters_by_role_and_team() {
    let app = TestApp::spawn().await;
    for (id, roles, teams) in [
        ("usr_a", json!(["credit_analyst"]), json!(["team_credit"])),
        ("usr_b", json!(["credit_analyst", "manager"]), json!([])),
        (
            "usr_c",
            json!(["relationship_manager"]),
            json!(["team_credit"]),
        ),
    ] {
        let (s, _) = app
            .put(
                &format!("/api/v1/omni/users/{id}"),
                &json!({ "roles": roles, "teams": teams }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, all) = app.get("/api/v1/omni/users").await;
    assert_eq!(ids(&all), ["usr_a", "usr_b", "usr_c"]);
    assert_eq!(all["pagination"]["total"], 3);
    let (_, analysts) = app.get("/api/v1/omni/users?role=credit_analyst").await;
    assert_eq!(ids(&analysts), ["usr_a", "usr_b"]);
    assert_eq!(analysts["pagination"]["total"], 2);
    let (_, team) = app.get("/api/v1/omni/users?team=team_credit").await;
    assert_eq!(ids(&team), ["usr_a", "usr_c"]);
    assert_eq!(team["data"][0]["roles"], json!(["credit_analyst"]));
    let (_, both) = app
        .get("/api/v1/omni/users?role=credit_analyst&team=team_credit&perPage=1")
        .await;
    assert_eq!(ids(&both), ["usr_a"]);
}

#[tokio::test]
async fn a_team_put_creates_unknown_members_with_only_their_id() {
    let app = TestApp::spawn().await;
    let (s, body) = app
        .put(
            "/api/v1/omni/teams/team_credit",
            &json!({ "name": "Credit Committee", "members": ["usr_new_1", "usr_new_2"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["members"], json!(["usr_new_1", "usr_new_2"]));
    let (s, u) = app.get("/api/v1/omni/users/usr_new_1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(u["data"]["name"], json!(null));
    assert_eq!(u["data"]["teams"], json!(["team_credit"]));
    let (s, body) = app
        .put(
            "/api/v1/omni/teams/team_credit",
            &json!({ "members": ["usr_new_2"] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["members"], json!(["usr_new_2"]));
}

#[tokio::test]
async fn users_named_by_delegations_and_approvals_exist_with_only_their_id() {
    let app = TestApp::spawn().await;
    let (s, body) = app
        .post(
            "/api/v1/omni/delegations",
            &json!({ "delegatorId": "usr_m", "delegateeId": "usr_d", "scope": ["approvals"], "validTo": at(DAY) }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    for id in ["usr_m", "usr_d"] {
        let (s, u) = app.get(&format!("/api/v1/omni/users/{id}")).await;
        assert_eq!(s, StatusCode::OK, "{id}");
        assert_eq!(u["data"]["roles"], json!([]));
    }
    // Naming the user later keeps the id and fills in the rest; views show the name.
    app.put("/api/v1/omni/users/usr_m", &json!({ "name": "Mona" }))
        .await;
    let id = body["data"]["id"].as_str().unwrap();
    let (_, d) = app.get(&format!("/api/v1/omni/delegations/{id}")).await;
    assert_eq!(d["data"]["delegatorName"], "Mona");
    assert_eq!(d["data"]["delegateeName"], json!(null));
}

#[tokio::test]
async fn invalid_users_are_422_naming_each_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (s, body) = app
        .put(
            "/api/v1/omni/users/usr_x",
            &json!({ "email": "not-an-email", "phone": "0501234567", "roles": ["Credit Analyst"], "teams": ["bad team"] }),
        )
        .await;
    assert_problem(s, &body, 422, "validation_failed");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "phone", "roles[0]", "teams[0]"]);
    let (s, body) = app.put("/api/v1/omni/users/bad%20id", &json!({})).await;
    assert_problem(s, &body, 422, "validation_failed");
    assert_eq!(app.count("users").await, 0);
    let (s, body) = app.get("/api/v1/omni/users/usr_x").await;
    assert_problem(s, &body, 404, "not_found");
}

#[tokio::test]
async fn another_tenants_users_are_not_found() {
    let app = TestApp::spawn().await;
    app.put("/api/v1/omni/users/usr_a", &json!({ "name": "A" }))
        .await;
    let other = app.other_tenant_key().await;
    let (s, body) = crate::helpers::send(
        app.client
            .get(app.url("/api/v1/omni/users/usr_a"))
            .header("x-api-key", other),
    )
    .await;
    assert_problem(s, &body, 404, "not_found");
}
