//! The OpenAPI 3.1 document: generated from the handlers' annotations, then completed here
//! with what every operation shares (authentication, `Idempotency-Key`, the errors any
//! request can meet), so no operation can forget them.

use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, HttpMethod, ObjectBuilder, Ref, RefOr, Required, Type};

use crate::error::PROBLEM_JSON;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Omnirail",
        description = "Omnichannel engagement engine: customer journeys, approvals, delegations, \
                       timeline, notifications, cross-channel sessions and onboarding.\n\n\
                       Authenticate with a tenant API key in `x-api-key` or `Authorization: Bearer`. \
                       Every error is RFC 9457 problem details with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(crate::error::ProblemDoc, crate::error::FieldError)),
    tags(
        (name = "Journey templates", description = "Reusable journey definitions with versioned steps"),
        (name = "Journeys", description = "Customer journeys and their lifecycle"),
        (name = "Delegations", description = "Delegations of authority from one user to another, with scope, limit and validity"),
        (name = "Approvals", description = "Multi-party approval requests and their decisions"),
        (name = "Timeline", description = "An entity's activity, and the verification and export of its tamper-evident hash chain"),
        (name = "Customers", description = "Customer records and the unified customer profile (seed 000: snake_case, no envelope)"),
        (name = "Channels", description = "Channels on or off within the tenant's plan (seed 000)"),
        (name = "Sessions", description = "Cross-channel sessions, handoff and resume (seed 000: snake_case, no envelope)"),
        (name = "Staff directory", description = "Users with their roles and teams: who may approve and assign"),
        (name = "Operations", description = "Health and readiness probes"),
    )
)]
pub struct ApiDoc;

/// Adds the shared parts to every operation of `doc`.
fn complete(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "apiKey",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "x-api-key",
            "Tenant API key",
        ))),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("Tenant API key as a bearer token"))
                .build(),
        ),
    );

    for (path, item) in doc.paths.paths.iter_mut() {
        let authenticated = path.starts_with("/api/");
        for method in [
            HttpMethod::Get,
            HttpMethod::Post,
            HttpMethod::Patch,
            HttpMethod::Put,
            HttpMethod::Delete,
        ] {
            let op = match method {
                HttpMethod::Get => item.get.as_mut(),
                HttpMethod::Post => item.post.as_mut(),
                HttpMethod::Patch => item.patch.as_mut(),
                HttpMethod::Put => item.put.as_mut(),
                HttpMethod::Delete => item.delete.as_mut(),
                _ => None,
            };
            if let Some(op) = op {
                complete_operation(op, &method, authenticated);
            }
        }
    }
}

fn complete_operation(op: &mut Operation, method: &HttpMethod, authenticated: bool) {
    let has_body = op.request_body.is_some();
    if authenticated {
        op.security = Some(vec![
            SecurityRequirement::new("apiKey", Vec::<String>::new()),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);
        add_error(
            op,
            "400",
            "Malformed request: body not JSON (`malformed_json`), unreadable query or path (`invalid_query`, `invalid_path`), a query parameter not a number (`invalid_query_parameter`), a bad `Idempotency-Key` (`invalid_idempotency_key`)",
        );
        add_error(
            op,
            "401",
            "No API key (`unauthenticated`), or an unknown or revoked one (`invalid_api_key`)",
        );
        op.parameters.get_or_insert_with(Vec::new).push(RefOr::T(
            ParameterBuilder::new()
                .name("X-Omni-Channel")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "The channel the call is made through, either case (`MOBILE_IOS`): its changes are \
                     recorded and counted in channel analytics under it. A body's own `channel` wins. \
                     One that names no channel is 422 `validation_failed`.",
                ))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        ));
        add_error(
            op,
            "422",
            "An `X-Omni-Channel` header that names no channel (`validation_failed`)",
        );
    }
    if matches!(method, HttpMethod::Post | HttpMethod::Patch) && authenticated {
        op.parameters.get_or_insert_with(Vec::new).push(RefOr::T(
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Retrying with the same key and body replays the first answer and changes nothing; \
                     the same key with another request is 422 `idempotency_key_reused`. Kept 24 h.",
                ))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(255))))
                .build(),
        ));
        add_error(
            op,
            "422",
            "The `Idempotency-Key` was used for a different request (`idempotency_key_reused`)",
        );
    }
    if has_body {
        add_error(
            op,
            "413",
            "Body larger than the limit, 1 MiB by default (`payload_too_large`)",
        );
        add_error(
            op,
            "415",
            "Body not sent as `application/json` (`unsupported_media_type`)",
        );
        add_error(
            op,
            "422",
            "Body of the wrong shape: missing or mistyped field, with its path (`validation_failed`)",
        );
    }
    add_error(
        op,
        "500",
        "Unexpected failure (`internal_error`); the details are in the server log under the request id",
    );
    if authenticated {
        add_error(
            op,
            "503",
            "Database saturated (`overloaded`), with `Retry-After`",
        );
    }
}

/// Documents an error answer; a status documented already gains this description too.
fn add_error(op: &mut Operation, status: &str, description: &str) {
    match op.responses.responses.get_mut(status) {
        Some(RefOr::T(existing)) => {
            if !existing.description.contains(description) {
                let mut more = description.chars();
                let first = more.next().map(|c| c.to_ascii_lowercase());
                existing.description = format!(
                    "{}; {}{}",
                    existing.description,
                    first.unwrap_or_default(),
                    more.as_str()
                );
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            op.responses.responses.insert(
                status.to_owned(),
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            PROBLEM_JSON,
                            Content::new(Some(Ref::from_schema_name("Problem"))),
                        )
                        .build(),
                ),
            );
        }
    }
}

/// The complete document.
pub fn document(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    complete(&mut doc);
    doc
}
