-- Users (Fast-Flow's `users`: role READONLY / WRITE / ADMIN, status active /
-- pending / rejected, blocked), their OAuth identities, and personal API tokens.
-- `session_epoch` rises whenever a user's sessions must all end (blocked, role
-- changed, deleted): a session made under an older epoch is refused.
CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT,
    role          TEXT NOT NULL DEFAULT 'READONLY' CHECK (role IN ('READONLY', 'WRITE', 'ADMIN')),
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'pending', 'rejected')),
    blocked       INTEGER NOT NULL DEFAULT 0,
    -- argon2id PHC string, for local accounts only.
    password_hash TEXT,
    session_epoch INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    last_login_at TEXT
);
CREATE INDEX users_email ON users (email);

-- A token is shown once; only the SHA-256 of its secret is kept. A token made
-- with `fastflow token create` has no owner (`user_id` NULL): the operator's.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('READONLY', 'WRITE', 'ADMIN')),
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT
);
-- One live token of a name per owner (the CLI's tokens share the NULL owner).
CREATE UNIQUE INDEX api_tokens_owner_name ON api_tokens (COALESCE(user_id, ''), name)
    WHERE revoked_at IS NULL;
