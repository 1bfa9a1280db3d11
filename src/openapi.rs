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
                       A call made by a person carries, beside the key in `x-api-key`, their \
                       access token from the tenant's identity provider in `Authorization: \
                       Bearer` (docs/identity.md). Every error is RFC 9457 problem details with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(crate::error::ProblemDoc, crate::error::FieldError)),
    tags(
        (name = "Journey templates", description = "Reusable journey definitions with versioned steps"),
        (name = "Journeys", description = "Customer journeys and their lifecycle"),
        (name = "Delegations", description = "Delegations of authority from one user to another, with scope, limit and validity"),
        (name = "SLA", description = "Deadlines that act: the tenant's at-risk share, approval reminders, business calendar and escalation rules"),
        (name = "Approvals", description = "Multi-party approval requests and their decisions"),
        (name = "Timeline", description = "An entity's activity, and the verification and export of its tamper-evident hash chain"),
        (name = "Customers", description = "Customer records and the unified customer profile (seed 000: snake_case, no envelope)"),
        (name = "Channels", description = "Channels on or off within the tenant's plan (seed 000)"),
        (name = "Sessions", description = "Cross-channel sessions, handoff and resume (seed 000: snake_case, no envelope)"),
        (name = "Onboarding", description = "Onboarding configurations, and the bank's view of onboardings, their data and documents"),
        (name = "Onboarding sessions", description = "Seed 002: the customer-facing onboarding API, started with an API key and continued with a session token; every call carries `api-version: 1.0`"),
        (name = "Staff directory", description = "Users with their roles and teams: who may approve and assign"),
        (name = "Staff identity", description = "The tenant's OpenID Connect provider, whose access tokens prove the person behind a call (actor tokens)"),
        (name = "Webhooks", description = "Signed messages (Standard Webhooks) for every event, to the tenant's endpoints: delivery with retries, attempts, replay and statistics"),
        (name = "Retention", description = "How long the tenant keeps webhook messages, notifications, ended sessions and onboarding documents (keys holding `admin`)"),
        (name = "API keys", description = "The tenant's API keys: create with scopes and an expiry, list with their last use, revoke (keys holding `admin`)"),
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

    components.add_security_scheme(
        "actorToken",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "A person's access token from the tenant's identity provider, beside the \
                     API key in `x-api-key`: the actor fields of the body must name that person \
                     (or are filled with them)",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "sessionToken",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "Onboarding session token (`ost_...`) of `POST /omni/start` or `POST /omni/resume`",
                ))
                .build(),
        ),
    );

    for (path, item) in doc.paths.paths.iter_mut() {
        let rail = Rail::of(path);
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
                complete_operation(op, &method, rail);
                if rail.takes_api_key() {
                    add_scope(op, &method, path);
                }
            }
        }
    }
}

/// How an operation is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rail {
    /// `/api/...`: a tenant API key.
    Api,
    /// `/omni/start`: a tenant API key, and `api-version`.
    OmniStart,
    /// The other `/omni/...` operations: a session token, and `api-version`.
    OmniSession,
    /// `/omni/resume`: the handoff token in the body is the credential; `api-version`.
    OmniResume,
    /// A provider's signed report (`/api/v1/omni/notifications/providers/...`): no API key,
    /// the provider's signature is the credential.
    ProviderCallback,
    /// Probes.
    Open,
}

impl Rail {
    fn of(path: &str) -> Self {
        match path {
            p if p.starts_with("/api/v1/omni/notifications/providers/") => Rail::ProviderCallback,
            p if p.starts_with("/api/") => Rail::Api,
            "/omni/start" => Rail::OmniStart,
            "/omni/resume" => Rail::OmniResume,
            p if p.starts_with("/omni/") => Rail::OmniSession,
            _ => Rail::Open,
        }
    }

    fn takes_api_key(self) -> bool {
        matches!(self, Rail::Api | Rail::OmniStart)
    }
}

fn header_param(
    name: &str,
    required: bool,
    description: &str,
    schema: ObjectBuilder,
) -> RefOr<utoipa::openapi::path::Parameter> {
    RefOr::T(
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(if required {
                Required::True
            } else {
                Required::False
            })
            .description(Some(description))
            .schema(Some(schema))
            .build(),
    )
}

fn complete_operation(op: &mut Operation, method: &HttpMethod, rail: Rail) {
    let has_body = op.request_body.is_some();
    let multipart = matches!(&op.request_body, Some(RefOr::T(b))
        if b.content.keys().any(|k| k.starts_with("multipart/")));
    let json_body = matches!(&op.request_body, Some(RefOr::T(b))
        if b.content.keys().any(|k| k == "application/json"));
    if matches!(rail, Rail::OmniStart | Rail::OmniSession | Rail::OmniResume) {
        op.parameters
            .get_or_insert_with(Vec::new)
            .push(header_param(
                "api-version",
                true,
                "Version of the onboarding API: `1.0`.",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["1.0"])),
            ));
        add_error(
            op,
            "400",
            "No `api-version` header (`api_version_required`), or one other than `1.0` (`api_version_unsupported`), with `supportedVersions`",
        );
    }
    if rail.takes_api_key() {
        op.security = Some(vec![
            SecurityRequirement::new("apiKey", Vec::<String>::new()),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("apiKey", Vec::<String>::new())
                .add("actorToken", Vec::<String>::new()),
        ]);
        add_error(
            op,
            "400",
            "Malformed request: body not JSON (`malformed_json`), unreadable query or path (`invalid_query`, `invalid_path`), a query parameter not a number (`invalid_query_parameter`), a bad `Idempotency-Key` (`invalid_idempotency_key`)",
        );
        add_error(
            op,
            "401",
            "No API key (`unauthenticated`), an unknown or revoked one (`invalid_api_key`), or \
             `x-api-key` and `Authorization: Bearer` naming different keys \
             (`conflicting_credentials`)",
        );
        add_error(
            op,
            "401",
            "An actor token beside the key (`Authorization: Bearer`) that does not prove a \
             person: not a signed JWT (`actor_token_malformed`), an algorithm other than RS256, \
             ES256 or PS256 (`actor_token_algorithm`), another issuer (`actor_token_issuer`), a \
             key its provider does not publish (`actor_token_key_unknown`), a bad signature \
             (`actor_token_signature`), another audience (`actor_token_audience`), expired \
             (`actor_token_expired`), not yet valid (`actor_token_not_yet_valid`), no user claim \
             or no `exp` (`actor_token_claim_missing`), a user not in the directory \
             (`actor_unknown_user`), a tenant without an identity provider \
             (`identity_provider_not_configured`)",
        );
        add_error(
            op,
            "503",
            "The tenant's identity provider unreachable for the keys an actor token needs \
             (`identity_provider_unavailable`), with `Retry-After`",
        );
        let body_schema = match &op.request_body {
            Some(RefOr::T(b)) => b.content.get("application/json").and_then(|c| match c {
                RefOr::T(Content {
                    schema: Some(RefOr::Ref(r)),
                    ..
                }) => r.ref_location.rsplit('/').next().map(str::to_owned),
                _ => None,
            }),
            _ => None,
        };
        if let Some(field) = body_schema.as_deref().and_then(|name| {
            crate::identity::ACTOR_BODIES
                .iter()
                .find(|(body, _)| *body == name)
                .map(|(_, field)| field)
        }) {
            add_error(
                op,
                "401",
                &format!(
                    "`{field}` naming a person without an actor token, where the tenant's \
                     identity provider requires one (`actor_token_required`)"
                ),
            );
            add_error(
                op,
                "403",
                &format!(
                    "`{field}` naming someone other than the person the actor token proves \
                     (`actor_mismatch`)"
                ),
            );
        }
        op.parameters
            .get_or_insert_with(Vec::new)
            .push(header_param(
                "X-Omni-Channel",
                false,
                "The channel the call is made through, either case (`MOBILE_IOS`): its changes are \
             recorded and counted in channel analytics under it. A body's own `channel` wins. \
             One that names no channel is 422 `validation_failed`.",
                ObjectBuilder::new().schema_type(Type::String),
            ));
        add_error(
            op,
            "422",
            "An `X-Omni-Channel` header that names no channel (`validation_failed`)",
        );
    }
    if rail == Rail::ProviderCallback {
        op.security = Some(Vec::new());
    }
    if rail == Rail::OmniSession {
        op.security = Some(vec![SecurityRequirement::new(
            "sessionToken",
            Vec::<String>::new(),
        )]);
        add_error(
            op,
            "401",
            "No session token (`unauthenticated`), or an unknown one (`invalid_session_token`)",
        );
        add_error(op, "410", "The session has expired (`session_expired`)");
    }
    if matches!(method, HttpMethod::Post | HttpMethod::Patch)
        && matches!(rail, Rail::Api | Rail::OmniStart | Rail::OmniSession)
    {
        op.parameters
            .get_or_insert_with(Vec::new)
            .push(header_param(
                "Idempotency-Key",
                false,
                "Retrying with the same key and body replays the first answer and changes nothing; \
             the same key with another request is 422 `idempotency_key_reused`. Kept 24 h, or the tenant's own `idempotencyHours`.",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255)),
            ));
        if rail == Rail::OmniSession {
            add_error(
                op,
                "400",
                "A bad `Idempotency-Key` (`invalid_idempotency_key`)",
            );
        }
        add_error(
            op,
            "422",
            "The `Idempotency-Key` was used for a different request (`idempotency_key_reused`)",
        );
    }
    if has_body && !multipart && !rail.takes_api_key() {
        add_error(op, "400", "Body not JSON (`malformed_json`)");
    }
    if json_body {
        add_error(
            op,
            "400",
            "Body nesting arrays and objects more than 32 deep (`json_too_deep`)",
        );
    }
    if rail.takes_api_key() {
        add_error(
            op,
            "429",
            "Over the API key's request rate, when `limits.rate_per_second` sets one (`rate_limited`), with `Retry-After`",
        );
    }
    if has_body && !multipart {
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
            "Body of the wrong shape: a field the operation does not take, a key given twice, a missing or mistyped field, each with its path, all at once (`validation_failed`)",
        );
    }
    if has_body {
        add_error(
            op,
            "408",
            "The body had not arrived whole within `limits.request_timeout_secs`, 30 s by default (`body_timeout`); nothing was changed",
        );
    }
    add_error(
        op,
        "422",
        "A query parameter the operation does not take (`validation_failed`, each named with `unknown query parameter`)",
    );
    add_error(
        op,
        "500",
        "Unexpected failure (`internal_error`); the details are in the server log under the request id",
    );
    if rail != Rail::Open {
        add_error(
            op,
            "503",
            "Database saturated (`overloaded`), or a conflicting write holding a lock (`database_busy`), with `Retry-After`",
        );
    }
    add_error(
        op,
        "431",
        "Request line and headers over `limits.max_header_bytes`, 16 KiB by default (`headers_too_large`)",
    );
    add_error(
        op,
        "503",
        "Not answered within `limits.request_timeout_secs`, 30 s by default (`request_timeout`), with `Retry-After`; nothing was changed",
    );
}

/// Documents an error answer; a status documented already gains this description too.
/// The scope a keyed operation needs, in its description and its 403.
fn add_scope(op: &mut Operation, method: &HttpMethod, path: &str) {
    let method = match method {
        HttpMethod::Get => axum::http::Method::GET,
        HttpMethod::Post => axum::http::Method::POST,
        HttpMethod::Patch => axum::http::Method::PATCH,
        HttpMethod::Put => axum::http::Method::PUT,
        _ => axum::http::Method::DELETE,
    };
    let need = crate::auth::scopes::Need::of(&method, path);
    let scope = need.scope();
    let granted = if scope == "admin" {
        "`admin`".to_owned()
    } else {
        format!("`{scope}`, `full` or `admin`")
    };
    let line = format!("Needs an API key with {granted}.");
    op.description = Some(match op.description.take() {
        Some(d) if !d.is_empty() => format!("{d}\n\n{line}"),
        _ => line,
    });
    add_error(
        op,
        "403",
        &format!(
            "The API key's scopes do not include {granted} (`insufficient_scope`, with \
             `requiredScope` and `grantedScopes`)"
        ),
    );
}

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
    close_request_schemas(&mut doc);
    if let Some(components) = doc.components.as_mut() {
        inline_strict_variants(&mut components.schemas);
        reference_envelope_items(&mut components.schemas);
    }
    doc
}

/// utoipa writes the item of a generic envelope (`Data<JourneyView>`, `Paginated<JourneyView>`,
/// `Data<Vec<RuleView>>`) inline, a copy of the item's own schema. Each envelope refers to the
/// item's component instead, so that generators make one type per object.
fn reference_envelope_items(schemas: &mut SchemaMap) {
    use utoipa::openapi::schema::{ArrayItems, Schema};
    let names: Vec<String> = schemas.keys().cloned().collect();
    for name in names {
        let (item, list) = if let Some(item) = name.strip_prefix("Data_Vec_") {
            (item, true)
        } else if let Some(item) = name.strip_prefix("Paginated_") {
            (item, true)
        } else if let Some(item) = name.strip_prefix("Data_") {
            (item, false)
        } else {
            continue;
        };
        if !schemas.contains_key(item) {
            continue;
        }
        let reference = RefOr::Ref(Ref::from_schema_name(item));
        let Some(RefOr::T(Schema::Object(envelope))) = schemas.get_mut(&name) else {
            continue;
        };
        let Some(data) = envelope.properties.get_mut("data") else {
            continue;
        };
        match (list, data) {
            (true, RefOr::T(Schema::Array(array))) => {
                array.items = ArrayItems::RefOrSchema(Box::new(reference));
            }
            (false, data) => *data = reference,
            _ => {}
        }
    }
}

type SchemaMap = std::collections::BTreeMap<String, RefOr<utoipa::openapi::schema::Schema>>;

/// A request body refuses a field it does not declare (`api::input`), at any depth: its
/// schemas say so (`additionalProperties: false`) wherever they declare properties. Objects the
/// API documents as free-form declare none, and stay open.
fn close_request_schemas(doc: &mut utoipa::openapi::OpenApi) {
    let mut refs = Vec::new();
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            let Some(RefOr::T(body)) = op.request_body.as_mut() else {
                continue;
            };
            if let Some(RefOr::T(content)) = body.content.get_mut("application/json")
                && let Some(schema) = content.schema.as_mut()
            {
                close(schema, &mut refs);
            }
        }
    }
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let mut closed = std::collections::HashSet::new();
    while let Some(name) = refs.pop() {
        if !closed.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = components.schemas.get_mut(&name) {
            close(schema, &mut refs);
        }
    }
}

/// Closes `schema` and what it holds inline; notes the components it refers to in `refs`.
fn close(schema: &mut RefOr<utoipa::openapi::schema::Schema>, refs: &mut Vec<String>) {
    use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Schema};
    let schema = match schema {
        RefOr::Ref(r) => {
            if let Some(name) = r.ref_location.strip_prefix("#/components/schemas/") {
                refs.push(name.to_owned());
            }
            return;
        }
        RefOr::T(schema) => schema,
    };
    match schema {
        Schema::Object(o) => {
            if !o.properties.is_empty() && o.additional_properties.is_none() {
                o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
            for property in o.properties.values_mut() {
                close(property, refs);
            }
        }
        Schema::Array(a) => {
            if let ArrayItems::RefOrSchema(items) = &mut a.items {
                close(items, refs);
            }
        }
        Schema::OneOf(o) => o.items.iter_mut().for_each(|i| close(i, refs)),
        Schema::AllOf(a) => a.items.iter_mut().for_each(|i| close(i, refs)),
        Schema::AnyOf(a) => a.items.iter_mut().for_each(|i| close(i, refs)),
        _ => {}
    }
}

/// utoipa writes a variant of an internally tagged enum (`#[serde(tag = "type")]`) as
/// `allOf: [{$ref: Variant}, {type: {enum: [...]}}]`. When the variant's struct refuses unknown
/// fields (`additionalProperties: false`), no value satisfies both: the tag is unknown to the
/// struct. Such a variant is written out whole instead: the struct's schema, with the tag among
/// its properties.
fn inline_strict_variants(schemas: &mut SchemaMap) {
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    let strict = |name: &str, schemas: &SchemaMap| match schemas.get(name) {
        Some(RefOr::T(Schema::Object(o)))
            if matches!(
                o.additional_properties.as_deref(),
                Some(AdditionalProperties::FreeForm(false))
            ) =>
        {
            Some(o.clone())
        }
        _ => None,
    };
    let names: Vec<String> = schemas.keys().cloned().collect();
    for name in names {
        let Some(RefOr::T(Schema::OneOf(one_of))) = schemas.get(&name) else {
            continue;
        };
        let mut one_of = one_of.clone();
        let mut changed = false;
        for item in &mut one_of.items {
            let RefOr::T(Schema::AllOf(all_of)) = item else {
                continue;
            };
            let [RefOr::Ref(target), RefOr::T(Schema::Object(tag))] = all_of.items.as_slice()
            else {
                continue;
            };
            let target = target
                .ref_location
                .trim_start_matches("#/components/schemas/");
            let Some(mut whole) = strict(target, schemas) else {
                continue;
            };
            for (key, value) in &tag.properties {
                whole.properties.insert(key.clone(), value.clone());
            }
            whole.required.extend(tag.required.iter().cloned());
            *item = RefOr::T(Schema::Object(whole));
            changed = true;
        }
        if changed {
            schemas.insert(name, RefOr::T(Schema::OneOf(one_of)));
        }
    }
}
