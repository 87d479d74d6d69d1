//! The notification settings made on the Settings page: one row whose NULL
//! columns leave the environment's value in force. Credentials arrive here
//! already encrypted.

use chrono::{DateTime, Utc};

use super::{DbError, Pool};

#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct NotifySettingsRow {
    pub email_enabled: Option<bool>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<i64>,
    pub smtp_user: Option<String>,
    pub smtp_password_encrypted: Option<String>,
    pub smtp_from: Option<String>,
    pub smtp_tls: Option<String>,
    pub email_recipients: Option<String>,
    pub teams_enabled: Option<bool>,
    pub teams_webhook_url_encrypted: Option<String>,
    pub webhook_url_encrypted: Option<String>,
    pub webhook_format: Option<String>,
    pub notify_on: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<String>,
}

const COLUMNS: &str = "email_enabled, smtp_host, smtp_port, smtp_user, smtp_password_encrypted, \
     smtp_from, smtp_tls, email_recipients, teams_enabled, teams_webhook_url_encrypted, \
     webhook_url_encrypted, webhook_format, notify_on, updated_at, updated_by";

/// The stored overrides (all NULL when the page never saved).
pub async fn get(pool: &Pool) -> Result<NotifySettingsRow, DbError> {
    get_with(pool).await
}

async fn get_with<'e, E: sqlx::SqliteExecutor<'e>>(ex: E) -> Result<NotifySettingsRow, DbError> {
    let row: Option<NotifySettingsRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notification_settings WHERE id = 1"
    ))
    .fetch_optional(ex)
    .await?;
    Ok(row.unwrap_or_default())
}

/// Replaces every override at once (the page sends the whole form).
pub async fn put(pool: &Pool, row: &NotifySettingsRow) -> Result<(), DbError> {
    put_with(pool, row).await
}

/// Changes the stored row with `change` in one transaction, so changes made at
/// the same time never undo each other; `change`'s refusal stores nothing.
pub async fn update(
    pool: &Pool,
    change: impl FnOnce(&mut NotifySettingsRow) -> Result<(), String>,
) -> Result<Result<(), String>, DbError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut row = get_with(&mut *tx).await?;
    if let Err(why) = change(&mut row) {
        return Ok(Err(why));
    }
    put_with(&mut *tx, &row).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

async fn put_with<'e, E: sqlx::SqliteExecutor<'e>>(
    ex: E,
    row: &NotifySettingsRow,
) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO notification_settings (id, {COLUMNS}) \
         VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET \
           email_enabled = excluded.email_enabled, smtp_host = excluded.smtp_host, \
           smtp_port = excluded.smtp_port, smtp_user = excluded.smtp_user, \
           smtp_password_encrypted = excluded.smtp_password_encrypted, \
           smtp_from = excluded.smtp_from, smtp_tls = excluded.smtp_tls, \
           email_recipients = excluded.email_recipients, teams_enabled = excluded.teams_enabled, \
           teams_webhook_url_encrypted = excluded.teams_webhook_url_encrypted, \
           webhook_url_encrypted = excluded.webhook_url_encrypted, \
           webhook_format = excluded.webhook_format, notify_on = excluded.notify_on, \
           updated_at = excluded.updated_at, updated_by = excluded.updated_by"
    ))
    .bind(row.email_enabled)
    .bind(&row.smtp_host)
    .bind(row.smtp_port)
    .bind(&row.smtp_user)
    .bind(&row.smtp_password_encrypted)
    .bind(&row.smtp_from)
    .bind(&row.smtp_tls)
    .bind(&row.email_recipients)
    .bind(row.teams_enabled)
    .bind(&row.teams_webhook_url_encrypted)
    .bind(&row.webhook_url_encrypted)
    .bind(&row.webhook_format)
    .bind(&row.notify_on)
    .bind(row.updated_at)
    .bind(&row.updated_by)
    .execute(ex)
    .await?;
    Ok(())
}
