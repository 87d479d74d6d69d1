-- Runs: one row per pipeline run (and per retry attempt). The queue is this table:
-- PENDING rows are waiting, claimed in (started_at, rowid) order.
CREATE TABLE runs (
    id                   TEXT PRIMARY KEY NOT NULL,           -- UUID
    pipeline_name        TEXT NOT NULL,
    status               TEXT NOT NULL
        CHECK (status IN ('PENDING', 'RUNNING', 'SUCCESS', 'FAILED', 'INTERRUPTED')),
    triggered_by         TEXT NOT NULL DEFAULT 'manual',
    env_vars             TEXT NOT NULL DEFAULT '{}',          -- JSON object, run overrides
    parameters           TEXT NOT NULL DEFAULT '{}',          -- JSON object
    started_at           TEXT NOT NULL,                       -- when triggered (Fast-Flow 1.x meaning)
    claimed_at           TEXT,                                -- taken from the queue
    container_started_at TEXT,
    finished_at          TEXT,
    exit_code            INTEGER,
    error_type           TEXT
        CHECK (error_type IS NULL OR error_type IN
               ('pipeline_error', 'timeout', 'oom', 'infrastructure_error', 'cancelled')),
    error_message        TEXT,
    image                TEXT,
    container_id         TEXT,
    log_file             TEXT NOT NULL,
    log_lines            INTEGER NOT NULL DEFAULT 0,
    log_bytes            INTEGER NOT NULL DEFAULT 0,
    log_truncated        INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX runs_by_started ON runs (started_at DESC);
CREATE INDEX runs_by_pipeline ON runs (pipeline_name, started_at DESC);
CREATE INDEX runs_by_status ON runs (status);

-- Facts about this installation (e.g. the id that labels its containers).
CREATE TABLE instance (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
