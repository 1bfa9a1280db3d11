//! `/api/v1/omni/timeline`: an entity's events, their chain's verification, and its export.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store::{self, LinkRow, TimelineFilter};
use crate::AppState;
use crate::actor::Proof;
use crate::api::{ApiQuery, Data, PageRequest, Paginated, data, stored_json};
use crate::auth::Tenant;
use crate::directory;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::events;
use crate::events::chain::{self, Link, Verifier};
use crate::time::{parse_rfc3339, to_rfc3339};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(timeline))
        .routes(routes!(verify))
        .routes(routes!(export))
}

string_enum!(
    /// The entity types a timeline is kept for.
    TimelineEntity {
        Customer = "customer",
        Journey = "journey",
        Contract = "contract",
        Approval = "approval",
        User = "user",
        Onboarding = "onboarding",
        Notification = "notification",
        ApiKey = "api_key",
    }
);

/// Query of `GET /timeline` (seed 001).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TimelineQuery {
    /// Required.
    #[param(required = true, example = "ent_customer_456")]
    entity_id: Option<String>,
    /// Required.
    #[param(required = true, value_type = TimelineEntity, inline, example = "customer")]
    entity_type: Option<String>,
    /// RFC 3339; events at or after.
    from_date: Option<String>,
    /// RFC 3339; events at or before.
    to_date: Option<String>,
    /// Comma-separated: exact names (`journey.created`) or prefixes (`journey.*`); the
    /// `omni.`-prefixed webhook names are accepted too.
    #[param(example = "journey.*,approval.approved")]
    event_types: Option<String>,
    /// `asc` (default, oldest first) or `desc`.
    order: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 50, max 200).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    per_page: Option<String>,
}

/// Query of `GET /timeline/verify` and `GET /timeline/export`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct EntityQuery {
    #[param(required = true, example = "ent_customer_456")]
    entity_id: Option<String>,
    #[param(required = true, value_type = TimelineEntity, inline, example = "customer")]
    entity_type: Option<String>,
}

/// One event on a timeline (seed 001).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineItem {
    #[schema(example = "evt_001")]
    pub id: String,
    pub timestamp: String,
    /// The event's name without `omni.`: `journey.created`.
    #[schema(example = "journey.created")]
    pub event_type: String,
    pub actor_id: Option<String>,
    /// From the staff directory; `null` when the actor has no name there.
    pub actor_name: Option<String>,
    /// Whether an actor token from the tenant's identity provider proved the actor; `false`
    /// when the caller only named them (or the event has no actor). Inside the hash chain.
    pub actor_verified: bool,
    /// The provider that proved the actor, when one did.
    pub actor_issuer: Option<String>,
    /// The API key whose call made the change, by id (never the key); `null` for a change a
    /// customer's session token, the console or the server itself made. Inside the hash chain.
    #[schema(example = "key_01HZX3")]
    pub key_id: Option<String>,
    pub channel: Option<String>,
    #[schema(example = "Journey advanced: KYC Verification completed")]
    pub summary: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// The first link that fails verification.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokenLink {
    /// The event whose link breaks; `null` when the chain's last links are missing.
    pub event_id: Option<String>,
    pub chain_seq: i64,
    /// `sequence_gap`, `previous_hash_mismatch`, `content_mismatch` or `head_mismatch`.
    pub reason: String,
}

/// One chain's verification.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainVerification {
    #[schema(example = "customer:ent_customer_456")]
    pub chain_key: String,
    pub valid: bool,
    pub events: i64,
    pub head: String,
    pub broken_at: Option<BrokenLink>,
}

/// The verification of the chains that hold an entity's events.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Whether every chain verifies.
    pub valid: bool,
    /// Events verified, across the chains.
    pub events: i64,
    /// Hash of the last link when one chain holds the entity's events (always so for a
    /// customer); `null` when several do (see `chains`).
    pub head: Option<String>,
    /// The first broken link, when `valid` is false.
    pub broken_at: Option<BrokenLink>,
    pub chains: Vec<ChainVerification>,
}

/// The entity named by the query: both parameters are required (400 naming the missing one)
/// and the type must be one the timeline knows (422).
fn entity(id: Option<String>, kind: Option<String>) -> ApiResult<(String, &'static str)> {
    let missing: Vec<&str> = [("entityId", id.is_none()), ("entityType", kind.is_none())]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
    if !missing.is_empty() {
        let mut e = ApiError::bad_request(
            "missing_query_parameter",
            format!("Required query parameter missing: {}", missing.join(", ")),
        );
        e.errors = missing
            .iter()
            .map(|m| FieldError::new(*m, "is required"))
            .collect();
        return Err(e);
    }
    let (Some(id), Some(kind)) = (id, kind) else {
        return Err(ApiError::internal());
    };
    let kind = TimelineEntity::parse(&kind).ok_or_else(|| {
        invalid(
            "entityType",
            &format!("must be one of: {}", TimelineEntity::listed()),
        )
    })?;
    if id.trim().is_empty() {
        return Err(invalid("entityId", "must not be empty"));
    }
    Ok((id, kind.as_str()))
}

fn invalid(field: &str, message: &str) -> ApiError {
    let mut e = ApiError::unprocessable("invalid_query_parameter", format!("{field} {message}"));
    e.errors = vec![FieldError::new(field, message)];
    e
}

fn date(field: &str, raw: Option<&str>) -> ApiResult<Option<i64>> {
    raw.map(|s| parse_rfc3339(s).ok_or_else(|| invalid(field, "must be an RFC 3339 date-time")))
        .transpose()
}

/// Splits `eventTypes` into exact stored names and stored prefixes.
fn event_types(raw: Option<&str>) -> ApiResult<(Vec<String>, Vec<String>)> {
    let (mut exact, mut prefixes) = (Vec::new(), Vec::new());
    let Some(raw) = raw else {
        return Ok((exact, prefixes));
    };
    let tokens: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.len() > 20 {
        return Err(invalid("eventTypes", "must list at most 20 types"));
    }
    for token in tokens {
        let name = token.strip_prefix("omni.").unwrap_or(token);
        let (body, prefix) = match name.strip_suffix('*') {
            Some(body) => (body, true),
            None => (name, false),
        };
        let valid = body.len() <= 100
            && body
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if !valid || (!prefix && body.is_empty()) {
            return Err(invalid(
                "eventTypes",
                "must be event names such as journey.created, or prefixes such as journey.*",
            ));
        }
        if prefix {
            prefixes.push(format!("omni.{body}"));
        } else {
            exact.push(format!("omni.{body}"));
        }
    }
    Ok((exact, prefixes))
}

/// An entity's activity timeline.
#[utoipa::path(
    get, path = "/timeline", operation_id = "omni.timeline.get", tag = "Timeline",
    params(TimelineQuery),
    responses(
        (status = 200, description = "A page of the entity's events, oldest first (an entity without events, or unknown, has an empty page)", body = Paginated<TimelineItem>),
        (status = 400, description = "`entityId` or `entityType` missing (`missing_query_parameter`, naming it); `page`/`perPage` not a number (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Unknown `entityType` or `order`, a date that is not RFC 3339, a malformed `eventTypes`, `page`/`perPage` out of range (`invalid_query_parameter`); `fromDate` after `toDate` (`invalid_date_range`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn timeline(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<TimelineQuery>,
) -> ApiResult<Response> {
    let (entity_id, entity_type) = entity(q.entity_id, q.entity_type)?;
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 50, 200)?;
    let from = date("fromDate", q.from_date.as_deref())?;
    let to = date("toDate", q.to_date.as_deref())?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        let mut e = ApiError::unprocessable("invalid_date_range", "fromDate is after toDate");
        e.errors = vec![FieldError::new("fromDate", "must not be after toDate")];
        return Err(e);
    }
    let newest_first = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(invalid("order", "must be asc or desc")),
    };
    let (exact, prefixes) = event_types(q.event_types.as_deref())?;
    let filter = TimelineFilter {
        entity_type,
        entity_id: &entity_id,
        from,
        to,
        exact,
        prefixes,
        newest_first,
    };
    let (rows, total) = store::page(
        app.db.reader(),
        &tenant.id,
        &filter,
        page.limit(),
        page.offset(),
    )
    .await?;
    // Each actor by the name they had when the event happened.
    let actors: Vec<(&str, i64)> = rows
        .iter()
        .filter_map(|r| Some((r.actor_id.as_deref()?, r.occurred_at)))
        .collect();
    let mut conn = app.db.read_conn().await?;
    let names = directory::store::names_at(&mut conn, &tenant.id, &actors).await?;
    let data = rows
        .into_iter()
        .map(|r| {
            let (actor_verified, actor_issuer) = Proof::shown(r.actor_proof.as_deref());
            TimelineItem {
                timestamp: to_rfc3339(r.occurred_at),
                event_type: events::shown_type(&r.event_type).to_owned(),
                actor_name: r
                    .actor_id
                    .clone()
                    .and_then(|a| names.get(&(a, r.occurred_at)).cloned()),
                metadata: stored_json(&r.metadata),
                actor_verified,
                actor_issuer,
                key_id: r.key_id,
                id: r.id,
                actor_id: r.actor_id,
                channel: r.channel,
                summary: r.summary,
            }
        })
        .collect();
    Ok(page.answer(data, total))
}

fn link(r: &LinkRow) -> Link<'_> {
    Link {
        tenant_id: &r.tenant_id,
        chain_key: &r.chain_key,
        chain_seq: r.chain_seq,
        id: &r.id,
        event_type: &r.event_type,
        occurred_at: r.occurred_at,
        actor_id: r.actor_id.as_deref(),
        channel: r.channel.as_deref(),
        summary: &r.summary,
        metadata: &r.metadata,
        payload: &r.payload,
        actor_proof: r.actor_proof.as_deref(),
        key_id: r.key_id.as_deref(),
        commitment: r.content_hash.as_deref().map(|hash| chain::Commitment {
            hash,
            salt: r.content_salt.as_deref(),
        }),
        prev_hash: &r.prev_hash,
    }
}

/// The chains an entity's verification and export cover: a customer's own chain, or every chain
/// that holds the entity's events.
async fn chain_keys(
    pool: &sqlx::AnyPool,
    tenant: &str,
    entity_type: &str,
    entity_id: &str,
) -> ApiResult<Vec<String>> {
    if entity_type == "customer" {
        return Ok(vec![format!("customer:{entity_id}")]);
    }
    Ok(store::chains_of(pool, tenant, entity_type, entity_id).await?)
}

/// Walks one chain in pages of links read by `chain_seq`; each page's hashes are computed on a
/// blocking thread while the next page is read, so reading and hashing use both cores.
async fn verify_chain(pool: &sqlx::AnyPool, tenant: &str, key: &str) -> ApiResult<Verifier> {
    type Hashed = (Vec<LinkRow>, Vec<String>);
    let mut verifier = Verifier::default();
    let mut pending: Option<tokio::task::JoinHandle<Hashed>> = None;
    let mut after = 0;
    loop {
        let batch = store::links_after(pool, tenant, key, after, 2_000).await?;
        let next = batch.last().map(|last| last.chain_seq).map(|last| {
            after = last;
            tokio::task::spawn_blocking(move || {
                let hashes = batch.iter().map(|r| chain::intact_hash(&link(r))).collect();
                (batch, hashes)
            })
        });
        if let Some(task) = pending.take() {
            let (rows, hashes) = task.await.map_err(|e| {
                tracing::error!(error = %e, "hashing task failed");
                ApiError::internal()
            })?;
            let intact = rows
                .iter()
                .zip(&hashes)
                .all(|(r, h)| verifier.push_hashed(&link(r), &r.hash, h));
            if !intact {
                return Ok(verifier);
            }
        }
        match next {
            Some(task) => pending = Some(task),
            None => return Ok(verifier),
        }
    }
}

/// Verify the hash chains that hold an entity's events.
#[utoipa::path(
    get, path = "/timeline/verify", operation_id = "omni.timeline.verify", tag = "Timeline",
    params(EntityQuery),
    responses(
        (status = 200, description = "The verification: `valid`, the events checked, the head hash, and the first broken link if any", body = Data<Verification>),
        (status = 400, description = "`entityId` or `entityType` missing (`missing_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Unknown `entityType` (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn verify(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<EntityQuery>,
) -> ApiResult<Response> {
    let (entity_id, entity_type) = entity(q.entity_id, q.entity_type)?;
    let pool = app.db.reader();
    let keys = chain_keys(pool, &tenant.id, entity_type, &entity_id).await?;
    let mut chains = Vec::with_capacity(keys.len());
    for key in keys {
        let verifier = verify_chain(pool, &tenant.id, &key).await?;
        let stored = store::chain_head(pool, &tenant.id, &key).await?;
        let verdict = verifier.finish(stored.as_ref().map(|(n, h)| (*n, h.as_str())));
        if let Some((_, _, why)) = &verdict.broken {
            tracing::error!(tenant = %tenant.id, chain = %key, reason = why.as_str(), "a hash chain does not verify");
            metrics::counter!("omnirail_chain_verification_failures_total", "reason" => why.as_str())
                .increment(1);
        }
        chains.push(ChainVerification {
            chain_key: key,
            valid: verdict.broken.is_none(),
            events: verdict.links,
            head: verdict.head,
            broken_at: verdict.broken.map(|(event_id, chain_seq, why)| BrokenLink {
                event_id,
                chain_seq,
                reason: why.as_str().to_owned(),
            }),
        });
    }
    let first_broken = chains.iter().find_map(|c| {
        c.broken_at.as_ref().map(|b| BrokenLink {
            event_id: b.event_id.clone(),
            chain_seq: b.chain_seq,
            reason: b.reason.clone(),
        })
    });
    let v = Verification {
        valid: chains.iter().all(|c| c.valid),
        events: chains.iter().map(|c| c.events).sum(),
        head: match chains.as_slice() {
            [one] => Some(one.head.clone()),
            _ => None,
        },
        broken_at: first_broken,
        chains,
    };
    Ok(data(StatusCode::OK, v))
}

/// One line of an export: a link of a chain, with every hashed field as stored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportedLink {
    /// `event`.
    pub record: &'static str,
    pub tenant_id: String,
    pub chain_key: String,
    pub chain_seq: i64,
    pub id: String,
    /// As stored and hashed: `omni.journey.created`.
    pub event_type: String,
    /// Milliseconds since the epoch, as hashed.
    pub occurred_at: i64,
    pub timestamp: String,
    pub actor_id: Option<String>,
    pub channel: Option<String>,
    pub summary: String,
    /// The stored JSON text, as hashed.
    pub metadata: String,
    /// The stored JSON text, as hashed.
    pub payload: String,
    /// The proof of the actor, as stored and hashed (a JSON text), when a token from the
    /// tenant's identity provider proved them; `null` otherwise. A link with one is hashed as
    /// `omnirail.event.v2`.
    pub actor_proof: Option<String>,
    /// The API key whose call made the change, by id (never the key), as stored and hashed;
    /// `null` when no key made it. A link with one is hashed as `omnirail.event.v3`.
    pub key_id: Option<String>,
    /// The salted commitment to the content (summary, metadata, payload) a link hashes in its
    /// place (`omnirail.event.v4`), and its salt; `null` for links recorded before commitments
    /// (migration 0021). Once the content is erased the salt is `null` too, and `erasedAt` says
    /// when.
    pub content_hash: Option<String>,
    pub content_salt: Option<String>,
    pub erased_at: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl From<LinkRow> for ExportedLink {
    fn from(r: LinkRow) -> Self {
        Self {
            record: "event",
            timestamp: to_rfc3339(r.occurred_at),
            tenant_id: r.tenant_id,
            chain_key: r.chain_key,
            chain_seq: r.chain_seq,
            id: r.id,
            event_type: r.event_type,
            occurred_at: r.occurred_at,
            actor_id: r.actor_id,
            channel: r.channel,
            summary: r.summary,
            metadata: r.metadata,
            payload: r.payload,
            actor_proof: r.actor_proof,
            key_id: r.key_id,
            content_hash: r.content_hash,
            content_salt: r.content_salt,
            erased_at: r.erased_at.map(to_rfc3339),
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// Export the chains that hold an entity's events as JSON Lines: each chain's links in order,
/// then a `{"record": "chain_head", "chainKey", "length", "headHash"}` line.
#[utoipa::path(
    get, path = "/timeline/export", operation_id = "omni.timeline.export", tag = "Timeline",
    params(EntityQuery),
    responses(
        (status = 200, description = "JSON Lines, streamed: one `ExportedLink` per event, then one `chain_head` line per chain. docs/timeline.md tells how to re-verify it.", body = String, content_type = "application/x-ndjson"),
        (status = 400, description = "`entityId` or `entityType` missing (`missing_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Unknown `entityType` (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn export(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<EntityQuery>,
) -> ApiResult<Response> {
    let (entity_id, entity_type) = entity(q.entity_id, q.entity_type)?;
    let pool = app.db.reader().clone();
    let keys = chain_keys(&pool, &tenant.id, entity_type, &entity_id).await?;
    struct Cursor {
        pool: sqlx::AnyPool,
        tenant: String,
        keys: std::vec::IntoIter<String>,
        current: Option<String>,
        after: i64,
    }
    let cursor = Cursor {
        pool,
        tenant: tenant.id,
        keys: keys.into_iter(),
        current: None,
        after: 0,
    };
    // Batches of links by key (chain_seq), so memory stays flat whatever the chain's length.
    let stream = futures::stream::unfold(cursor, |mut c| async move {
        loop {
            let key = match &c.current {
                Some(k) => k.clone(),
                None => {
                    let k = c.keys.next()?;
                    c.current = Some(k.clone());
                    c.after = 0;
                    k
                }
            };
            let batch = match store::links_after(&c.pool, &c.tenant, &key, c.after, 500).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "timeline export failed mid-stream");
                    return Some((Err(std::io::Error::other("export failed")), c));
                }
            };
            let mut out = Vec::new();
            if batch.is_empty() {
                let head = store::chain_head(&c.pool, &c.tenant, &key)
                    .await
                    .ok()
                    .flatten();
                let (length, head_hash) = head.unwrap_or((0, chain::GENESIS.to_owned()));
                let line = json!({
                    "record": "chain_head", "chainKey": key, "length": length, "headHash": head_hash,
                });
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
                c.current = None;
                return Some((Ok(Bytes::from(out)), c));
            }
            for row in batch {
                c.after = row.chain_seq;
                if let Ok(line) = serde_json::to_vec(&ExportedLink::from(row)) {
                    out.extend_from_slice(&line);
                    out.push(b'\n');
                }
            }
            if !out.is_empty() {
                return Some((Ok(Bytes::from(out)), c));
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}
