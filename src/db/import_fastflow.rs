//! The statements of `fastflow import-fastflow`: reading a Python Fast-Flow 1.x
//! database (its `pipeline_runs` and `secrets` tables, columns by name) and
//! writing what it held into ours without touching rows we already have.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::Row;

use super::{DbError, Pool};

/// One run as Fast-Flow 1.x stored it (timestamps naive UTC, JSON as text).
pub struct SourceRun {
    pub id: String,
    pub pipeline_name: String,
    pub status: String,
    pub env_vars: Option<String>,
    pub parameters: Option<String>,
    pub setup_duration: Option<f64>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub exit_code: Option<i64>,
    pub triggered_by: String,
    pub run_config_id: Option<String>,
    pub git_sha: Option<String>,
    pub git_branch: Option<String>,
    pub git_commit_message: Option<String>,
}

/// The Alembic revision the source database is at, if it has one.
pub async fn source_revision(source: &Pool) -> Result<Option<String>, DbError> {
    let has_table: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'",
    )
    .fetch_optional(source)
    .await?;
    if has_table.is_none() {
        return Ok(None);
    }
    let row: Option<(String,)> = sqlx::query_as("SELECT version_num FROM alembic_version")
        .fetch_optional(source)
        .await?;
    Ok(row.map(|(v,)| v))
}

/// Every run of the source, oldest first.
pub async fn source_runs(source: &Pool) -> Result<Vec<SourceRun>, DbError> {
    let rows = sqlx::query(
        "SELECT id, pipeline_name, status, env_vars, parameters, setup_duration, started_at,
                finished_at, exit_code, triggered_by, run_config_id, git_sha, git_branch,
                git_commit_message
         FROM pipeline_runs ORDER BY started_at, id",
    )
    .fetch_all(source)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SourceRun {
                id: r.try_get("id")?,
                pipeline_name: r.try_get("pipeline_name")?,
                status: r.try_get("status")?,
                env_vars: r.try_get("env_vars")?,
                parameters: r.try_get("parameters")?,
                setup_duration: r.try_get("setup_duration")?,
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                exit_code: r.try_get("exit_code")?,
                triggered_by: r.try_get("triggered_by")?,
                run_config_id: r.try_get("run_config_id")?,
                git_sha: r.try_get("git_sha")?,
                git_branch: r.try_get("git_branch")?,
                git_commit_message: r.try_get("git_commit_message")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// `(key, value, is_parameter, created_at, updated_at)` of every source secret.
pub async fn source_secrets(
    source: &Pool,
) -> Result<Vec<(String, String, bool, String, String)>, DbError> {
    Ok(sqlx::query_as(
        r#"SELECT "key", value, is_parameter, created_at, updated_at FROM secrets ORDER BY "key""#,
    )
    .fetch_all(source)
    .await?)
}

/// A Fast-Flow 1.x timestamp (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC without an
/// offset; an RFC 3339 one is taken too).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                .map(|t| t.and_utc())
        })
}

/// A finished run to store as it was.
pub struct ImportedRun<'a> {
    pub id: &'a str,
    pub pipeline_name: &'a str,
    pub status: &'a str,
    pub triggered_by: &'a str,
    pub env_vars: &'a str,
    pub parameters: &'a str,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub exit_code: Option<i64>,
    pub error_type: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub log_file: &'a str,
    pub attempt: i64,
    pub previous_run_id: Option<&'a str>,
    pub setup_duration: Option<f64>,
    pub run_config_id: Option<&'a str>,
    pub git_sha: Option<&'a str>,
    pub git_branch: Option<&'a str>,
    pub git_subject: Option<&'a str>,
}

/// Stores `run` unless a run with its id exists; true when it was stored. It is
/// written as running and ended in the same transaction, so the database's own
/// end-of-run trigger counts it (per day and pipeline) like any other run.
pub async fn insert_run(pool: &Pool, run: &ImportedRun<'_>) -> Result<bool, DbError> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "INSERT OR IGNORE INTO runs (id, pipeline_name, status, triggered_by, env_vars, parameters,
             started_at, finished_at, exit_code, error_type, error_message, log_file, attempt,
             previous_run_id, setup_duration, run_config_id, git_sha, git_branch, git_subject)
         VALUES (?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(run.id)
    .bind(run.pipeline_name)
    .bind(run.triggered_by)
    .bind(run.env_vars)
    .bind(run.parameters)
    .bind(run.started_at)
    .bind(run.finished_at)
    .bind(run.exit_code)
    .bind(run.error_type)
    .bind(run.error_message)
    .bind(run.log_file)
    .bind(run.attempt)
    .bind(run.previous_run_id)
    .bind(run.setup_duration)
    .bind(run.run_config_id)
    .bind(run.git_sha)
    .bind(run.git_branch)
    .bind(run.git_subject)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE runs SET status = ? WHERE id = ? AND status = 'RUNNING'")
        .bind(run.status)
        .bind(run.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Stores a secret or parameter unless the key exists; true when it was stored.
pub async fn insert_secret(
    pool: &Pool,
    key: &str,
    value: &str,
    is_parameter: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT OR IGNORE INTO secrets (key, value, is_parameter, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(key)
    .bind(value)
    .bind(is_parameter)
    .bind(created_at)
    .bind(updated_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One user as Fast-Flow 1.x stored it; columns a database older than 1.x's last
/// migration lacks are `None`.
pub struct SourceUser {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub role: String,
    pub blocked: bool,
    pub status: Option<String>,
    pub created_at: String,
    pub last_login_at: Option<String>,
    /// `(provider, subject, login)` for each provider id the user has.
    pub identities: Vec<(&'static str, String, Option<String>)>,
}

/// Every user of the source.
pub async fn source_users(source: &Pool) -> Result<Vec<SourceUser>, DbError> {
    let rows = sqlx::query("SELECT * FROM users ORDER BY created_at, id")
        .fetch_all(source)
        .await?;
    let text = |r: &sqlx::sqlite::SqliteRow, c: &str| -> Option<String> {
        r.try_get::<Option<String>, _>(c).ok().flatten()
    };
    rows.iter()
        .map(|r| {
            let mut identities = Vec::new();
            for (provider, column) in [
                ("github", "github_id"),
                ("google", "google_id"),
                ("microsoft", "microsoft_id"),
                ("custom", "custom_oauth_id"),
            ] {
                if let Some(subject) = text(r, column).filter(|s| !s.is_empty()) {
                    let login = (provider == "github")
                        .then(|| text(r, "github_login"))
                        .flatten();
                    identities.push((provider, subject, login));
                }
            }
            Ok(SourceUser {
                id: r.try_get("id")?,
                username: r.try_get("username")?,
                email: text(r, "email"),
                role: r.try_get("role")?,
                blocked: r
                    .try_get::<Option<bool>, _>("blocked")
                    .ok()
                    .flatten()
                    .unwrap_or(false),
                status: text(r, "status"),
                created_at: r.try_get("created_at")?,
                last_login_at: text(r, "last_login_at"),
                identities,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// A user to store with their provider identities.
pub struct ImportedUser<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub role: &'a str,
    pub status: &'a str,
    pub blocked: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub identities: &'a [(&'static str, String, Option<String>)],
}

/// Stores `user` and their identities unless the id, the username or one of the
/// provider subjects is taken here; true when stored.
pub async fn insert_user(pool: &Pool, user: &ImportedUser<'_>) -> Result<bool, DbError> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "INSERT OR IGNORE INTO users (id, username, email, role, status, blocked, created_at, last_login_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(user.id)
    .bind(user.username)
    .bind(user.email)
    .bind(user.role)
    .bind(user.status)
    .bind(user.blocked)
    .bind(user.created_at)
    .bind(user.last_login_at)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    for (provider, subject, login) in user.identities {
        let linked = sqlx::query(
            "INSERT OR IGNORE INTO user_identities (user_id, provider, subject, email, login, linked_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id)
        .bind(provider)
        .bind(subject)
        .bind(user.email)
        .bind(login)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await?;
        if linked.rows_affected() == 0 {
            // Someone here signs in with that subject already: the user stays out.
            return Ok(false);
        }
    }
    tx.commit().await?;
    Ok(true)
}
