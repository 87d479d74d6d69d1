-- Failure notifications.
--
-- notification_settings: what the Settings page overrides (one row, id 1).
-- NULL means "the environment's value". Credentials (the SMTP password and the
-- webhook URLs, whose path is often their token) are Fernet tokens.
CREATE TABLE notification_settings (
    id                          INTEGER PRIMARY KEY CHECK (id = 1),
    email_enabled               INTEGER,
    smtp_host                   TEXT,
    smtp_port                   INTEGER,
    smtp_user                   TEXT,
    smtp_password_encrypted     TEXT,
    smtp_from                   TEXT,
    smtp_tls                    TEXT,
    email_recipients            TEXT,
    teams_enabled               INTEGER,
    teams_webhook_url_encrypted TEXT,
    webhook_url_encrypted       TEXT,
    webhook_format              TEXT,
    notify_on                   TEXT,
    updated_at                  TEXT,
    updated_by                  TEXT
);

-- One row per message and target, with its delivery result. A webhook's URL
-- is not stored: `source` says where to read it when the message is sent
-- (settings or the pipeline's notify.webhook); `target` is what may be shown.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT,
    pipeline_name   TEXT NOT NULL,
    event           TEXT NOT NULL,
    channel         TEXT NOT NULL,
    source          TEXT NOT NULL,
    target          TEXT NOT NULL,
    format          TEXT,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT,
    sent_at         TEXT
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_by_run ON notifications (run_id);

-- The last final outcome of each pipeline (success or a kind of failure), so a
-- success after failures is told as a recovery.
CREATE TABLE notify_pipeline_state (
    pipeline_name TEXT PRIMARY KEY,
    last_outcome  TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    at            TEXT NOT NULL
);
