//! `/api/v1/omni/users` and `/api/v1/omni/teams`: the staff directory.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store::{self, Team, User};
use crate::AppState;
use crate::api::SLUG_RULE;
use crate::api::{
    ApiJson, ApiPath, ApiQuery, Data, PageRequest, Paginated, data, put_status, reject,
};
use crate::api::{check_text, is_e164, is_email, is_slug};
use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::ids::ID_RULE;
use crate::ids::is_external_id;

use crate::time::to_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(put_user, get_user))
        .routes(routes!(put_team, get_team))
}

/// Body of `PUT /users/{id}`: the whole user, replacing what was there.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PutUser {
    #[schema(example = "Sara Al-Harbi")]
    pub name: Option<String>,
    #[schema(example = "sara.alharbi@bank.example")]
    pub email: Option<String>,
    /// E.164, e.g. `+966501234567`.
    #[schema(example = "+966501234567")]
    pub phone: Option<String>,
    /// Words of `[a-z0-9_]`: `relationship_manager`, `credit_analyst`, `manager`, ...
    #[serde(default)]
    pub roles: Vec<String>,
    /// Team ids; teams not yet known are created with only their id.
    #[serde(default)]
    pub teams: Vec<String>,
}

/// A member of staff.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    #[schema(example = "usr_credit_001")]
    pub id: String,
    /// `null` for a user known only because something referred to it.
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub roles: Vec<String>,
    pub teams: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            name: u.name,
            email: u.email,
            phone: u.phone,
            roles: u.roles,
            teams: u.teams,
            created_at: to_rfc3339(u.created_at),
            updated_at: to_rfc3339(u.updated_at),
        }
    }
}

/// Body of `PUT /teams/{id}`: the whole team, replacing what was there.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PutTeam {
    #[schema(example = "Credit Committee")]
    pub name: Option<String>,
    /// User ids; users not yet known are created with only their id.
    #[serde(default)]
    pub members: Vec<String>,
}

/// A team and its members.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamView {
    #[schema(example = "team_credit")]
    pub id: String,
    pub name: Option<String>,
    pub members: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Team> for TeamView {
    fn from(t: Team) -> Self {
        Self {
            id: t.id,
            name: t.name,
            members: t.members,
            created_at: to_rfc3339(t.created_at),
            updated_at: to_rfc3339(t.updated_at),
        }
    }
}

/// Sorted and without repeats.
fn unique(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn check_list(
    errors: &mut Vec<FieldError>,
    field: &str,
    items: &[String],
    valid: fn(&str) -> bool,
    rule: &str,
) {
    if items.len() > 50 {
        errors.push(FieldError::new(field, "must have at most 50 entries"));
    }
    for (i, item) in items.iter().enumerate() {
        if !valid(item) {
            errors.push(FieldError::new(format!("{field}[{i}]"), rule));
        }
    }
}

/// Create or replace a member of staff.
#[utoipa::path(
    put, path = "/users/{id}", operation_id = "omni.users.put", tag = "Staff directory",
    params(("id" = String, Path, description = "The bank's own user id, e.g. `usr_credit_001`")),
    request_body = PutUser,
    responses(
        (status = 200, description = "User replaced", body = Data<UserView>),
        (status = 201, description = "User created", body = Data<UserView>),
        (status = 422, description = "Invalid id or fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_user(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PutUser>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    if !is_external_id(&id) {
        errors.push(FieldError::new("id", ID_RULE));
    }
    if let Some(name) = &body.name {
        check_text(&mut errors, "name", name, 200, true);
    }
    if body.email.as_deref().is_some_and(|e| !is_email(e)) {
        errors.push(FieldError::new("email", "must be an email address"));
    }
    if body.phone.as_deref().is_some_and(|p| !is_e164(p)) {
        errors.push(FieldError::new(
            "phone",
            "must be an E.164 number such as +966501234567",
        ));
    }
    check_list(&mut errors, "roles", &body.roles, is_slug, SLUG_RULE);
    check_list(&mut errors, "teams", &body.teams, is_external_id, ID_RULE);
    reject(errors)?;

    let now = app.db.now_ms();
    let mut user = User {
        id,
        name: body.name,
        email: body.email,
        phone: body.phone,
        roles: unique(body.roles),
        teams: unique(body.teams),
        created_at: now,
        updated_at: now,
    };
    let mut tx = app.db.begin().await?;
    let created = store::put_user(&mut tx, &tenant.id, &user).await?;
    // Requests waiting for one of these roles go to this user (approvals, wired in lib.rs).
    (app.hooks.roles_given)(&mut tx, &tenant.id, &user.id, &user.roles, now).await?;
    tx.commit().await?;
    if !created {
        // The answer shows when the user was first known.
        if let Some(stored) = store::get_user(app.db.reader(), &tenant.id, &user.id).await? {
            user = stored;
        }
    }
    Ok(data(put_status(created), UserView::from(user)))
}

/// Get a member of staff.
#[utoipa::path(
    get, path = "/users/{id}", operation_id = "omni.users.get", tag = "Staff directory",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = Data<UserView>),
        (status = 404, description = "No such user in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_user(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let user = store::get_user(app.db.reader(), &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    Ok(data(StatusCode::OK, UserView::from(user)))
}

/// Query of `GET /users`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct UserQuery {
    /// Only users holding this role.
    role: Option<String>,
    /// Only members of this team.
    team: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 20, max 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

/// List the staff directory in id order.
#[utoipa::path(
    get, path = "/users", operation_id = "omni.users.list", tag = "Staff directory",
    params(UserQuery),
    responses(
        (status = 200, description = "A page of users", body = Paginated<UserView>),
        (status = 422, description = "`page`/`perPage` out of range (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_users(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Response> {
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 20, 100)?;
    let (users, total) = store::list_users(
        app.db.reader(),
        &tenant.id,
        q.role.as_deref(),
        q.team.as_deref(),
        page.limit(),
        page.offset(),
    )
    .await?;
    Ok(page.answer(users.into_iter().map(UserView::from).collect(), total))
}

/// Create or replace a team and its members.
#[utoipa::path(
    put, path = "/teams/{id}", operation_id = "omni.teams.put", tag = "Staff directory",
    params(("id" = String, Path, description = "The bank's own team id, e.g. `team_credit`")),
    request_body = PutTeam,
    responses(
        (status = 200, description = "Team replaced", body = Data<TeamView>),
        (status = 201, description = "Team created", body = Data<TeamView>),
        (status = 422, description = "Invalid id or fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_team(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PutTeam>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    if !is_external_id(&id) {
        errors.push(FieldError::new("id", ID_RULE));
    }
    if let Some(name) = &body.name {
        check_text(&mut errors, "name", name, 200, true);
    }
    if body.members.len() > 500 {
        errors.push(FieldError::new("members", "must have at most 500 entries"));
    }
    for (i, m) in body.members.iter().enumerate() {
        if !is_external_id(m) {
            errors.push(FieldError::new(format!("members[{i}]"), ID_RULE));
        }
    }
    reject(errors)?;

    let now = app.db.now_ms();
    let team = Team {
        id,
        name: body.name,
        members: unique(body.members),
        created_at: now,
        updated_at: now,
    };
    let mut tx = app.db.begin().await?;
    let created = store::put_team(&mut tx, &tenant.id, &team).await?;
    tx.commit().await?;
    let stored = store::get_team(app.db.reader(), &tenant.id, &team.id)
        .await?
        .unwrap_or(team);
    Ok(data(put_status(created), TeamView::from(stored)))
}

/// Get a team and its members.
#[utoipa::path(
    get, path = "/teams/{id}", operation_id = "omni.teams.get", tag = "Staff directory",
    params(("id" = String, Path, description = "Team id")),
    responses(
        (status = 200, description = "The team", body = Data<TeamView>),
        (status = 404, description = "No such team in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_team(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let team = store::get_team(app.db.reader(), &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Team"))?;
    Ok(data(StatusCode::OK, TeamView::from(team)))
}
