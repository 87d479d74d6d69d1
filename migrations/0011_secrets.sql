-- Secrets and parameters (Fast-Flow's `secrets` table): a secret's value is a
-- Fernet token made with ENCRYPTION_KEY(S); a parameter's (is_parameter = 1)
-- is plain, visible configuration, as in Fast-Flow.
CREATE TABLE secrets (
    key          TEXT PRIMARY KEY NOT NULL,
    value        TEXT NOT NULL,
    is_parameter INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
