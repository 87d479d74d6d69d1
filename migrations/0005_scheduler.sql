-- Scheduling: which run configuration a run used, which run started it (downstream
-- triggers), whether it waits for the previous run of its job (overlap "queue");
-- the scheduler's jobs (override state, cursor) and the slot ledger.
ALTER TABLE runs ADD COLUMN run_config_id TEXT;
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
ALTER TABLE runs ADD COLUMN wait_for_previous INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
-- Queued and running runs of a pipeline, for the overlap check: stays small.
CREATE INDEX runs_active ON runs (pipeline_name, run_config_id) WHERE status IN ('PENDING', 'RUNNING');

CREATE TABLE schedule_jobs (
    id               TEXT PRIMARY KEY NOT NULL,
    pipeline_name    TEXT NOT NULL,
    run_config_id    TEXT,
    kind             TEXT NOT NULL CHECK (kind IN ('schedule', 'once', 'restart')),
    -- The trigger as last seen; when it changes, slots count from defined_at again.
    fingerprint      TEXT NOT NULL,
    defined_at       TEXT NOT NULL,
    -- NULL follows pipeline.json; 0/1 is a user's override that survives edits and restarts.
    enabled_override INTEGER,
    override_at      TEXT,
    last_slot_time   TEXT,
    last_run_time    TEXT,
    run_count        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE schedule_slots (
    job_id         TEXT NOT NULL,
    scheduled_time TEXT NOT NULL,
    outcome        TEXT NOT NULL
        CHECK (outcome IN ('started', 'skipped_overlap', 'skipped_disabled', 'missed', 'caught_up')),
    reason         TEXT NOT NULL,
    run_id         TEXT,
    recorded_at    TEXT NOT NULL,
    -- A slot is recorded, and so fires, at most once.
    PRIMARY KEY (job_id, scheduled_time)
) WITHOUT ROWID;
CREATE INDEX slots_by_run ON schedule_slots (run_id) WHERE run_id IS NOT NULL;
