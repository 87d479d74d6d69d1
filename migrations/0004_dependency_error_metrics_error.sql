-- A failed requirements.txt install gets its own error_type ('dependency_error'), and a
-- run records why it has no resource samples (metrics_error). SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt with the same rows and indexes.
CREATE TABLE runs_new (
    id                   TEXT PRIMARY KEY NOT NULL,
    pipeline_name        TEXT NOT NULL,
    status               TEXT NOT NULL
        CHECK (status IN ('PENDING', 'RUNNING', 'SUCCESS', 'FAILED', 'INTERRUPTED')),
    triggered_by         TEXT NOT NULL DEFAULT 'manual',
    env_vars             TEXT NOT NULL DEFAULT '{}',
    parameters           TEXT NOT NULL DEFAULT '{}',
    started_at           TEXT NOT NULL,
    claimed_at           TEXT,
    container_started_at TEXT,
    finished_at          TEXT,
    exit_code            INTEGER,
    error_type           TEXT
        CHECK (error_type IS NULL OR error_type IN
               ('pipeline_error', 'dependency_error', 'timeout', 'oom', 'infrastructure_error', 'cancelled')),
    error_message        TEXT,
    image                TEXT,
    container_id         TEXT,
    log_file             TEXT NOT NULL,
    log_lines            INTEGER NOT NULL DEFAULT 0,
    log_bytes            INTEGER NOT NULL DEFAULT 0,
    log_truncated        INTEGER NOT NULL DEFAULT 0,
    attempt              INTEGER NOT NULL DEFAULT 1,
    previous_run_id      TEXT,
    not_before           TEXT,
    setup_duration       REAL,
    peak_cpu_percent     REAL,
    peak_memory_bytes    INTEGER,
    soft_limit_warning   TEXT,
    metrics_error        TEXT
);

INSERT INTO runs_new (id, pipeline_name, status, triggered_by, env_vars, parameters, started_at,
                      claimed_at, container_started_at, finished_at, exit_code, error_type,
                      error_message, image, container_id, log_file, log_lines, log_bytes,
                      log_truncated, attempt, previous_run_id, not_before, setup_duration,
                      peak_cpu_percent, peak_memory_bytes, soft_limit_warning)
SELECT id, pipeline_name, status, triggered_by, env_vars, parameters, started_at,
       claimed_at, container_started_at, finished_at, exit_code, error_type,
       error_message, image, container_id, log_file, log_lines, log_bytes,
       log_truncated, attempt, previous_run_id, not_before, setup_duration,
       peak_cpu_percent, peak_memory_bytes, soft_limit_warning
FROM runs;

DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;

CREATE INDEX runs_by_started ON runs (started_at DESC);
CREATE INDEX runs_by_pipeline ON runs (pipeline_name, started_at DESC);
CREATE INDEX runs_by_status ON runs (status);
CREATE INDEX runs_by_previous ON runs (previous_run_id);
