-- The SSH host key pinned on first use for the git remote's host.
CREATE TABLE git_host_keys (
    host       TEXT PRIMARY KEY NOT NULL,
    key_type   TEXT NOT NULL,
    key_base64 TEXT NOT NULL,
    pinned_at  TEXT NOT NULL
);
