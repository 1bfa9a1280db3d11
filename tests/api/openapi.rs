//! The OpenAPI document is generated from the code; this snapshot keeps it from drifting.
//! After an intended change: `UPDATE_OPENAPI=1 cargo test openapi` and commit `docs/openapi.json`.

use serde_json::Value;

use crate::helpers::{TestApp, send};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

async fn served_document() -> Value {
    let app = TestApp::spawn().await;
    let (status, doc) = send(app.client.get(app.url("/openapi.json"))).await;
    assert!(status.is_success());
    doc
}

#[tokio::test]
async fn openapi_document_matches_the_committed_snapshot() {
    let doc = served_document().await;
    let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(SNAPSHOT, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        committed == text,
        "docs/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test openapi` and commit it"
    );
}

#[tokio::test]
async fn every_seed_endpoint_is_documented_with_its_errors() {
    let doc = served_document().await;
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/omni/templates", "post"),
        ("/api/v1/omni/templates", "get"),
        ("/api/v1/omni/templates/{id}", "get"),
        ("/api/v1/omni/templates/{id}", "patch"),
        ("/api/v1/omni/journeys", "post"),
        ("/api/v1/omni/journeys", "get"),
        ("/api/v1/omni/journeys/{id}", "get"),
        ("/api/v1/omni/journeys/{id}/advance", "post"),
        ("/api/v1/omni/journeys/{id}/assign", "post"),
        ("/api/v1/omni/journeys/{id}/complete", "post"),
        ("/api/v1/omni/journeys/{id}/cancel", "post"),
        ("/api/v1/omni/notifications", "post"),
        ("/api/v1/omni/notifications", "get"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} is missing");
        let responses = op["responses"].as_object().unwrap();
        for code in ["400", "401", "500", "503"] {
            assert!(responses.contains_key(code), "{method} {path} lacks {code}");
        }
        if path.contains("{id}") {
            assert!(responses.contains_key("404"), "{method} {path} lacks 404");
        }
        if method != "get" {
            for code in ["413", "415", "422"] {
                assert!(responses.contains_key(code), "{method} {path} lacks {code}");
            }
            let params = op["parameters"].as_array().unwrap();
            assert!(
                params.iter().any(|p| p["name"] == "Idempotency-Key"),
                "{method} {path}"
            );
        }
        assert!(op["security"].is_array(), "{method} {path} has no security");
    }
    let problem = &doc["components"]["schemas"]["Problem"]["properties"];
    for field in ["type", "title", "status", "detail", "code", "errors"] {
        assert!(problem.get(field).is_some(), "Problem lacks {field}");
    }
    let journey = &doc["components"]["schemas"]["JourneyView"]["properties"];
    for field in [
        "id",
        "status",
        "templateId",
        "customerId",
        "channel",
        "currentStepIndex",
        "currentStep",
        "totalSteps",
        "completedSteps",
        "assigneeId",
        "priority",
        "dueAt",
        "createdAt",
        "updatedAt",
    ] {
        assert!(journey.get(field).is_some(), "JourneyView lacks {field}");
    }
}

#[tokio::test]
async fn webhook_operations_are_documented_and_no_parameter_is_listed_twice() {
    let doc = served_document().await;
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/omni/webhooks/endpoints", "post"),
        ("/api/v1/omni/webhooks/endpoints", "get"),
        ("/api/v1/omni/webhooks/endpoints/{id}", "get"),
        ("/api/v1/omni/webhooks/endpoints/{id}", "patch"),
        ("/api/v1/omni/webhooks/endpoints/{id}", "delete"),
        ("/api/v1/omni/webhooks/endpoints/{id}/rotate-secret", "post"),
        ("/api/v1/omni/webhooks/endpoints/{id}/messages", "get"),
        ("/api/v1/omni/webhooks/endpoints/{id}/replay", "post"),
        ("/api/v1/omni/webhooks/endpoints/{id}/stats", "get"),
        ("/api/v1/omni/webhooks/messages/{id}", "get"),
        ("/api/v1/omni/webhooks/messages/{id}/attempts", "get"),
        ("/api/v1/omni/webhooks/messages/{id}/retry", "post"),
        ("/api/v1/omni/webhooks/event-types", "get"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} is missing");
        if path.contains("{id}") {
            assert!(
                op["responses"].get("404").is_some(),
                "{method} {path} lacks 404"
            );
        }
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let mut seen = std::collections::HashSet::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let key = (p["name"].to_string(), p["in"].to_string());
                assert!(
                    seen.insert(key),
                    "{method} {path} lists {} twice",
                    p["name"]
                );
            }
        }
    }
}

/// No schema is impossible to satisfy: an `allOf` that adds properties to a schema refusing
/// unknown ones (`additionalProperties: false`) accepts no value at all, and a client
/// generator or a fuzzer (Schemathesis) cannot build a request from it.
#[tokio::test]
async fn no_schema_adds_properties_to_one_that_refuses_them() {
    let doc = served_document().await;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let strict = |r: &Value| {
        r["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .is_some_and(|name| schemas[name]["additionalProperties"] == Value::Bool(false))
    };
    let mut stack = vec![(String::from("#"), &doc)];
    while let Some((at, value)) = stack.pop() {
        if let Some(all_of) = value["allOf"].as_array() {
            let adds = all_of.iter().any(|s| s["properties"].is_object());
            assert!(
                !(adds && all_of.iter().any(strict)),
                "{at}: allOf adds properties to a schema with additionalProperties false"
            );
        }
        match value {
            Value::Object(map) => {
                stack.extend(map.iter().map(|(k, v)| (format!("{at}/{k}"), v)));
            }
            Value::Array(items) => {
                stack.extend(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (format!("{at}/{i}"), v)),
                );
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn every_reference_in_the_document_resolves() {
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc = served_document().await;
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 50, "only {} references", found.len());
    for r in found {
        let pointer = r.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} resolves to nothing");
    }
}

#[tokio::test]
async fn every_operation_id_is_unique_and_shaped_for_sdks() {
    // `omni.journeys.create`, `omni.approvals.decisions.create`, `sessions.handoff`: dotted
    // resource paths in camelCase, ending in the action, which generators turn into methods.
    let doc = served_document().await;
    let mut seen = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            let parts: Vec<&str> = id.split('.').collect();
            assert!(
                parts.len() >= 2
                    && parts.iter().all(|p| {
                        p.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                            && p.chars().all(|c| c.is_ascii_alphanumeric())
                    }),
                "{method} {path}: operationId {id:?} is not a dotted camelCase path"
            );
            if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("operationId {id} is used by {other} and {method} {path}");
            }
        }
    }
    for (id, op) in [
        ("omni.journeys.create", "post /api/v1/omni/journeys"),
        (
            "omni.journeys.advance",
            "post /api/v1/omni/journeys/{id}/advance",
        ),
        (
            "omni.approvals.decisions.create",
            "post /api/v1/omni/approvals/{id}/decisions",
        ),
        ("omni.timeline.get", "get /api/v1/omni/timeline"),
        (
            "omni.webhooks.messages.attempts.list",
            "get /api/v1/omni/webhooks/messages/{id}/attempts",
        ),
        ("sessions.handoff", "post /api/v1/sessions/handoff"),
        ("onboarding.start", "post /omni/start"),
    ] {
        assert_eq!(seen.get(id).map(String::as_str), Some(op), "{id}");
    }
}

#[tokio::test]
async fn envelopes_refer_to_their_items_instead_of_copying_them() {
    let doc = served_document().await;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut checked = 0;
    for (name, schema) in schemas {
        let item = name
            .strip_prefix("Data_Vec_")
            .or_else(|| name.strip_prefix("Paginated_"))
            .or_else(|| name.strip_prefix("Data_"));
        let Some(item) = item else { continue };
        if !schemas.contains_key(item) {
            continue; // `Data<Vec<String>>`: no component to refer to
        }
        let data = &schema["properties"]["data"];
        let reference = data["$ref"].as_str().or(data["items"]["$ref"].as_str());
        assert_eq!(
            reference,
            Some(format!("#/components/schemas/{item}").as_str()),
            "{name}: {data}"
        );
        checked += 1;
    }
    assert!(checked > 20, "{checked} envelopes");
}
