-- Retries and cancellation.
-- attempt: 1 for a first run, n+1 for the n-th automatic retry.
-- previous_run_id: the run this one retries (automatic retry or the Retry button).
-- not_before: a queued run is not started before this time (retry delays).
ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN previous_run_id TEXT;
ALTER TABLE runs ADD COLUMN not_before TEXT;

CREATE INDEX runs_by_previous ON runs (previous_run_id);
