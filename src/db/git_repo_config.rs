//! The repository configuration stored from the Sync page (one row): URL,
//! branch, subfolder and the credentials as Fernet tokens.

use chrono::Utc;

use super::{DbError, Pool};

/// The stored row; `*_encrypted` are Fernet tokens, never plain values.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredRepoConfig {
    pub repo_url: Option<String>,
    pub branch: Option<String>,
    pub pipelines_subdir: Option<String>,
    pub token_encrypted: Option<String>,
    pub deploy_key_encrypted: Option<String>,
    pub github_app_id: Option<String>,
    pub github_app_installation_id: Option<String>,
    pub github_app_private_key_encrypted: Option<String>,
    pub webhook_secret_encrypted: Option<String>,
}

pub async fn get(pool: &Pool) -> Result<Option<StoredRepoConfig>, DbError> {
    Ok(sqlx::query_as(
        "SELECT repo_url, branch, pipelines_subdir, token_encrypted, deploy_key_encrypted,
                github_app_id, github_app_installation_id, github_app_private_key_encrypted,
                webhook_secret_encrypted
         FROM git_repo_config WHERE id = 1",
    )
    .fetch_optional(pool)
    .await?)
}

/// Replaces the stored configuration.
pub async fn put(pool: &Pool, c: &StoredRepoConfig) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO git_repo_config (id, repo_url, branch, pipelines_subdir, token_encrypted,
                deploy_key_encrypted, github_app_id, github_app_installation_id,
                github_app_private_key_encrypted, webhook_secret_encrypted, updated_at)
         VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET
            repo_url = excluded.repo_url, branch = excluded.branch,
            pipelines_subdir = excluded.pipelines_subdir,
            token_encrypted = excluded.token_encrypted,
            deploy_key_encrypted = excluded.deploy_key_encrypted,
            github_app_id = excluded.github_app_id,
            github_app_installation_id = excluded.github_app_installation_id,
            github_app_private_key_encrypted = excluded.github_app_private_key_encrypted,
            webhook_secret_encrypted = excluded.webhook_secret_encrypted,
            updated_at = excluded.updated_at",
    )
    .bind(&c.repo_url)
    .bind(&c.branch)
    .bind(&c.pipelines_subdir)
    .bind(&c.token_encrypted)
    .bind(&c.deploy_key_encrypted)
    .bind(&c.github_app_id)
    .bind(&c.github_app_installation_id)
    .bind(&c.github_app_private_key_encrypted)
    .bind(&c.webhook_secret_encrypted)
    .bind(Utc::now())
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes the stored configuration; whether there was one.
pub async fn delete(pool: &Pool) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM git_repo_config WHERE id = 1")
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
