-- Git sync settings changed from the Sync page or the API (the environment wins).
CREATE TABLE git_sync_settings (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
