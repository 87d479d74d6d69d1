-- The repository to sync from, as stored from the Sync page or
-- `POST /api/sync/repo-config` (each environment variable that is set wins).
-- Credentials are Fernet tokens made with ENCRYPTION_KEY, never plain text.
CREATE TABLE git_repo_config (
    id                               INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    repo_url                         TEXT,
    branch                           TEXT,
    pipelines_subdir                 TEXT,
    token_encrypted                  TEXT,
    deploy_key_encrypted             TEXT,
    github_app_id                    TEXT,
    github_app_installation_id       TEXT,
    github_app_private_key_encrypted TEXT,
    webhook_secret_encrypted         TEXT,
    updated_at                       TEXT NOT NULL
);

-- Which repository (credentials stripped) and folder the active snapshot was
-- served with: after a restart it serves the same way until the configuration
-- in force has synced, even when that configuration changed meanwhile.
ALTER TABLE git_sync_state ADD COLUMN repo_url TEXT NOT NULL DEFAULT '';
ALTER TABLE git_sync_state ADD COLUMN pipelines_subdir TEXT;
