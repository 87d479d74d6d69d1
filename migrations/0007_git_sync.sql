-- Git sync: the active snapshot, the sync log, and which commit each run ran.

CREATE TABLE git_sync_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    commit_sha  TEXT NOT NULL,
    branch      TEXT NOT NULL,
    subject     TEXT NOT NULL DEFAULT '',
    commit_time TEXT,
    synced_at   TEXT NOT NULL
);

CREATE TABLE git_sync_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  TEXT NOT NULL,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    trigger     TEXT NOT NULL,
    success     INTEGER NOT NULL,
    branch      TEXT NOT NULL,
    old_commit  TEXT,
    new_commit  TEXT,
    subject     TEXT,
    added       TEXT NOT NULL DEFAULT '[]',   -- JSON array of pipeline names
    changed     TEXT NOT NULL DEFAULT '[]',
    removed     TEXT NOT NULL DEFAULT '[]',
    error       TEXT
);

ALTER TABLE runs ADD COLUMN git_sha TEXT;
ALTER TABLE runs ADD COLUMN git_branch TEXT;
ALTER TABLE runs ADD COLUMN git_subject TEXT;
