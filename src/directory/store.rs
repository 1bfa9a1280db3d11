//! SQL for the staff directory. Every statement is scoped by tenant.

use std::collections::HashMap;

use crate::store::Conn;
use sqlx::AnyPool;

use crate::error::StoreError;

/// A user row with its roles and teams.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub roles: Vec<String>,
    pub teams: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl UserRow {
    fn with(self, roles: Vec<String>, teams: Vec<String>) -> User {
        User {
            id: self.id,
            name: self.name,
            email: self.email,
            phone: self.phone,
            roles,
            teams,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Creates each of `ids` not yet stored, with only its id, in one statement; returns the ids
/// it inserted (the others were already there). Stored users are left as they are.
pub async fn insert_missing_users(
    conn: &mut Conn,
    tenant: &str,
    ids: &[&str],
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut inserted = Vec::new();
    for chunk in ids.chunks(200) {
        // Only placeholders are generated; every value is bound.
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("($1, ${}, $2, $2)", i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO users (tenant_id, id, created_at, updated_at) VALUES {} \
             ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id",
            rows.join(", ")
        );
        let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        inserted.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(inserted)
}

/// Whether `user` is a member of `team`.
pub async fn is_member(
    conn: &mut Conn,
    tenant: &str,
    team: &str,
    user: &str,
) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM team_members WHERE tenant_id = $1 AND team_id = $2 AND user_id = $3",
    )
    .bind(tenant)
    .bind(team)
    .bind(user)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Creates or replaces a user with its roles and teams; `true` if the user was new.
pub async fn put_user(conn: &mut Conn, tenant: &str, u: &User) -> Result<bool, StoreError> {
    let existed: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT created_at, name FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(&u.id)
            .fetch_optional(&mut *conn)
            .await?;
    let renamed = match &existed {
        Some((_, before)) => before != &u.name,
        None => u.name.is_some(),
    };
    sqlx::query(
        "INSERT INTO users (tenant_id, id, name, email, phone, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name, email = excluded.email,
             phone = excluded.phone, updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(&u.id)
    .bind(&u.name)
    .bind(&u.email)
    .bind(&u.phone)
    .bind(u.created_at)
    .bind(u.updated_at)
    .execute(&mut *conn)
    .await?;
    if renamed {
        // The name from now on: what the timeline shows for this user's later events. (Two
        // renames in one millisecond: the later one wins.)
        sqlx::query(
            "INSERT INTO user_names (tenant_id, user_id, valid_from, name) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, user_id, valid_from) DO UPDATE SET name = excluded.name",
        )
        .bind(tenant)
        .bind(&u.id)
        .bind(u.updated_at)
        .bind(&u.name)
        .execute(&mut *conn)
        .await?;
    }
    replace_roles(conn, tenant, &u.id, &u.roles).await?;
    sqlx::query("DELETE FROM team_members WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant)
        .bind(&u.id)
        .execute(&mut *conn)
        .await?;
    for team in &u.teams {
        ensure_team(conn, tenant, team, u.updated_at).await?;
        sqlx::query("INSERT INTO team_members (tenant_id, team_id, user_id) VALUES ($1, $2, $3)")
            .bind(tenant)
            .bind(team)
            .bind(&u.id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(existed.is_none())
}

async fn ensure_team(conn: &mut Conn, tenant: &str, id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO teams (tenant_id, id, created_at, updated_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (tenant_id, id) DO NOTHING",
    )
    .bind(tenant)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether `id` is a user of the tenant's directory.
pub async fn user_exists(pool: &AnyPool, tenant: &str, id: &str) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}

/// A user's roles, in order.
pub async fn roles_of(pool: &AnyPool, tenant: &str, user: &str) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT role FROM user_roles WHERE tenant_id = $1 AND user_id = $2 ORDER BY role",
    )
    .bind(tenant)
    .bind(user)
    .fetch_all(pool)
    .await?)
}

/// Replaces a user's roles (as its identity provider states them), leaving the rest of it.
pub async fn set_roles(
    conn: &mut Conn,
    tenant: &str,
    user: &str,
    roles: &[String],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET updated_at = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(user)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    replace_roles(conn, tenant, user, roles).await
}

async fn replace_roles(
    conn: &mut Conn,
    tenant: &str,
    user: &str,
    roles: &[String],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM user_roles WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant)
        .bind(user)
        .execute(&mut *conn)
        .await?;
    for role in roles {
        sqlx::query("INSERT INTO user_roles (tenant_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(tenant)
            .bind(user)
            .bind(role)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn get_user(ex: &AnyPool, tenant: &str, id: &str) -> Result<Option<User>, StoreError> {
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT id, name, email, phone, created_at, updated_at FROM users
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(ex)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let roles = sqlx::query_scalar(
        "SELECT role FROM user_roles WHERE tenant_id = $1 AND user_id = $2 ORDER BY role",
    )
    .bind(tenant)
    .bind(id)
    .fetch_all(ex)
    .await?;
    let teams = sqlx::query_scalar(
        "SELECT team_id FROM team_members WHERE tenant_id = $1 AND user_id = $2 ORDER BY team_id",
    )
    .bind(tenant)
    .bind(id)
    .fetch_all(ex)
    .await?;
    Ok(Some(row.with(roles, teams)))
}

// `$n IS NULL OR ...` keeps one statement for every combination of filters.
macro_rules! user_filter {
    () => {
        " FROM users u WHERE u.tenant_id = $1 \
         AND ($2 IS NULL OR EXISTS (SELECT 1 FROM user_roles r \
              WHERE r.tenant_id = u.tenant_id AND r.user_id = u.id AND r.role = $2)) \
         AND ($3 IS NULL OR EXISTS (SELECT 1 FROM team_members m \
              WHERE m.tenant_id = u.tenant_id AND m.user_id = u.id AND m.team_id = $3))"
    };
}
macro_rules! user_page {
    () => {
        concat!(
            "SELECT u.id",
            user_filter!(),
            " ORDER BY u.id LIMIT $4 OFFSET $5"
        )
    };
}

/// A page of users in id order, filtered by role and team, with the total.
pub async fn list_users(
    pool: &AnyPool,
    tenant: &str,
    role: Option<&str>,
    team: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<User>, i64), StoreError> {
    macro_rules! bind_filter {
        ($q:expr) => {
            $q.bind(tenant).bind(role).bind(team)
        };
    }
    let total: i64 = bind_filter!(sqlx::query_scalar(concat!(
        "SELECT COUNT(*)",
        user_filter!()
    )))
    .fetch_one(pool)
    .await?;
    let rows: Vec<UserRow> = bind_filter!(sqlx::query_as(concat!(
        "SELECT id, name, email, phone, created_at, updated_at FROM users \
         WHERE tenant_id = $1 AND id IN (",
        user_page!(),
        ") ORDER BY id"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let roles: Vec<(String, String)> = bind_filter!(sqlx::query_as(concat!(
        "SELECT user_id, role FROM user_roles WHERE tenant_id = $1 AND user_id IN (",
        user_page!(),
        ") ORDER BY role"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let teams: Vec<(String, String)> = bind_filter!(sqlx::query_as(concat!(
        "SELECT user_id, team_id FROM team_members WHERE tenant_id = $1 AND user_id IN (",
        user_page!(),
        ") ORDER BY team_id"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let mut roles = group(roles);
    let mut teams = group(teams);
    let users = rows
        .into_iter()
        .map(|r| {
            let (ro, te) = (
                roles.remove(&r.id).unwrap_or_default(),
                teams.remove(&r.id).unwrap_or_default(),
            );
            r.with(ro, te)
        })
        .collect();
    Ok((users, total))
}

fn group(pairs: Vec<(String, String)>) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (key, value) in pairs {
        map.entry(key).or_default().push(value);
    }
    map
}

/// A team with its members.
#[derive(Debug, Clone)]
pub struct Team {
    pub id: String,
    pub name: Option<String>,
    pub members: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Creates or replaces a team and its member list; `true` if the team was new. Members not
/// yet known are created with only their id.
pub async fn put_team(conn: &mut Conn, tenant: &str, t: &Team) -> Result<bool, StoreError> {
    let existed: Option<i64> =
        sqlx::query_scalar("SELECT created_at FROM teams WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(&t.id)
            .fetch_optional(&mut *conn)
            .await?;
    sqlx::query(
        "INSERT INTO teams (tenant_id, id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(&t.id)
    .bind(&t.name)
    .bind(t.created_at)
    .bind(t.updated_at)
    .execute(&mut *conn)
    .await?;
    let members: Vec<&str> = t.members.iter().map(String::as_str).collect();
    let mut members = members;
    members.sort_unstable();
    members.dedup();
    insert_missing_users(conn, tenant, &members, t.updated_at).await?;
    sqlx::query("DELETE FROM team_members WHERE tenant_id = $1 AND team_id = $2")
        .bind(tenant)
        .bind(&t.id)
        .execute(&mut *conn)
        .await?;
    for member in &t.members {
        sqlx::query("INSERT INTO team_members (tenant_id, team_id, user_id) VALUES ($1, $2, $3)")
            .bind(tenant)
            .bind(&t.id)
            .bind(member)
            .execute(&mut *conn)
            .await?;
    }
    Ok(existed.is_none())
}

pub async fn get_team(ex: &AnyPool, tenant: &str, id: &str) -> Result<Option<Team>, StoreError> {
    let row: Option<(String, Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT id, name, created_at, updated_at FROM teams WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(ex)
    .await?;
    let Some((id, name, created_at, updated_at)) = row else {
        return Ok(None);
    };
    let members = sqlx::query_scalar(
        "SELECT user_id FROM team_members WHERE tenant_id = $1 AND team_id = $2 ORDER BY user_id",
    )
    .bind(tenant)
    .bind(&id)
    .fetch_all(ex)
    .await?;
    Ok(Some(Team {
        id,
        name,
        members,
        created_at,
        updated_at,
    }))
}

/// Whether the user holds `role`.
pub async fn has_role(
    conn: &mut Conn,
    tenant: &str,
    user: &str,
    role: &str,
) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_roles WHERE tenant_id = $1 AND user_id = $2 AND role = $3",
    )
    .bind(tenant)
    .bind(user)
    .bind(role)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Whether the user holds any role at all.
pub async fn has_any_role(conn: &mut Conn, tenant: &str, user: &str) -> Result<bool, StoreError> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM user_roles WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant)
            .bind(user)
            .fetch_one(conn)
            .await?;
    Ok(n > 0)
}

/// Every user holding `role`, in id order.
/// Whether any user of the tenant holds `role`.
pub async fn role_is_held(conn: &mut Conn, tenant: &str, role: &str) -> Result<bool, StoreError> {
    let held: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM user_roles WHERE tenant_id = $1 AND role = $2 LIMIT 1")
            .bind(tenant)
            .bind(role)
            .fetch_optional(conn)
            .await?;
    Ok(held.is_some())
}

pub async fn users_with_role(
    conn: &mut Conn,
    tenant: &str,
    role: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT user_id FROM user_roles WHERE tenant_id = $1 AND role = $2 ORDER BY user_id",
    )
    .bind(tenant)
    .bind(role)
    .fetch_all(conn)
    .await?)
}

/// Each actor's name at the instant of each of their events: `(actor, at)` pairs to the name
/// the actor had then (from the name history `put_user` keeps), where they had one.
pub async fn names_at(
    conn: &mut Conn,
    tenant: &str,
    wanted: &[(&str, i64)],
) -> Result<HashMap<(String, i64), String>, StoreError> {
    let mut ids: Vec<&str> = wanted.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    // Each actor's names, oldest first.
    let mut history: HashMap<String, Vec<(i64, Option<String>)>> = HashMap::new();
    for chunk in ids.chunks(500) {
        // Only placeholders are generated; every value is bound.
        let placeholders: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT user_id, valid_from, name FROM user_names
             WHERE tenant_id = $1 AND user_id IN ({}) ORDER BY user_id, valid_from",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, i64, Option<String>)>(sqlx::AssertSqlSafe(sql))
            .bind(tenant);
        for id in chunk {
            q = q.bind(*id);
        }
        for (user, from, name) in q.fetch_all(&mut *conn).await? {
            history.entry(user).or_default().push((from, name));
        }
    }
    let mut out = HashMap::new();
    for (id, at) in wanted {
        let name = history.get(*id).and_then(|names| {
            names
                .iter()
                .take_while(|(from, _)| from <= at)
                .last()
                .and_then(|(_, name)| name.clone())
        });
        if let Some(name) = name {
            out.insert(((*id).to_owned(), *at), name);
        }
    }
    Ok(out)
}

/// The names of the given users that have one, in one query.
pub async fn names(
    conn: &mut Conn,
    tenant: &str,
    ids: &[&str],
) -> Result<HashMap<String, String>, StoreError> {
    let mut ids: Vec<&str> = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        // Only placeholders are generated; every value is bound.
        let placeholders: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, name FROM users WHERE tenant_id = $1 AND name IS NOT NULL AND id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql)).bind(tenant);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// The teams of each of `users` who is in any, in team id order.
pub async fn teams_of(
    conn: &mut Conn,
    tenant: &str,
    users: &[&str],
) -> Result<HashMap<String, Vec<String>>, StoreError> {
    let mut users: Vec<&str> = users.to_vec();
    users.sort_unstable();
    users.dedup();
    let mut pairs = Vec::new();
    for chunk in users.chunks(500) {
        // Only placeholders are generated; every value is bound.
        let placeholders: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT user_id, team_id FROM team_members WHERE tenant_id = $1 AND user_id IN ({}) \
             ORDER BY team_id",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql)).bind(tenant);
        for u in chunk {
            q = q.bind(*u);
        }
        pairs.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(group(pairs))
}

/// The managers of an assignee: the members of the team (for a team), or of the user's teams
/// (for a user), who hold the role `manager`; the user themself excluded. In id order.
pub async fn managers_of(
    conn: &mut Conn,
    tenant: &str,
    assignee: &str,
    is_team: bool,
) -> Result<Vec<String>, StoreError> {
    let teams = if is_team {
        "SELECT $2"
    } else {
        "SELECT t.team_id FROM team_members t WHERE t.tenant_id = $1 AND t.user_id = $2"
    };
    let sql = format!(
        "SELECT DISTINCT m.user_id FROM team_members m
         JOIN user_roles r ON r.tenant_id = m.tenant_id AND r.user_id = m.user_id
             AND r.role = 'manager'
         WHERE m.tenant_id = $1 AND m.team_id IN ({teams}) AND m.user_id <> $2
         ORDER BY m.user_id"
    );
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(assignee)
        .fetch_all(conn)
        .await?)
}
