-- The first-run setup link: while no user exists, each start makes one (the
-- previous stops working), valid once and for 24 hours. Only its SHA-256 is kept.
CREATE TABLE setup_link (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    token_hash TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

-- Usernames are told apart ignoring ASCII case, as a login form reads them.
CREATE UNIQUE INDEX users_username_nocase ON users (username COLLATE NOCASE);
