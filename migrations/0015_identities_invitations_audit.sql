-- A user's sign-in identities at OAuth providers: one per provider and user,
-- and a provider's subject belongs to one user only.
CREATE TABLE user_identities (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider  TEXT NOT NULL CHECK (provider IN ('github', 'google', 'microsoft', 'custom')),
    subject   TEXT NOT NULL,
    -- What the provider said at the last sign-in (shown on the Users page).
    email     TEXT,
    login     TEXT,
    linked_at TEXT NOT NULL,
    PRIMARY KEY (user_id, provider),
    UNIQUE (provider, subject)
);

-- Invitations (Fast-Flow's `invitations`): the link carries the token; only its
-- SHA-256 is kept. Used once, before `expires_at`, by the e-mail it names.
CREATE TABLE invitations (
    id              TEXT PRIMARY KEY NOT NULL,
    recipient_email TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('READONLY', 'WRITE', 'ADMIN')),
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used_at         TEXT,
    used_by         TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_by      TEXT
);

-- Who changed what, from where: sign-ins (and failed ones), every change made
-- through the app, the CLI's token changes.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    actor_id    TEXT,
    client_addr TEXT,
    action      TEXT NOT NULL,
    target      TEXT,
    outcome     TEXT NOT NULL DEFAULT 'ok',
    detail      TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
