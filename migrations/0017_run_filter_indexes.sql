-- The runs list's trigger and error-type filters read an index range instead of
-- the whole table. A trigger filter matches its retries too (`scheduler` also
-- finds `scheduler_retry`), so the trigger is indexed without that suffix; the
-- query must use the same expression (`db::run_list::TRIGGER_KIND`).
CREATE INDEX runs_by_trigger ON runs (replace(triggered_by, '_retry', ''), started_at, id);
CREATE INDEX runs_by_pipeline_trigger
    ON runs (pipeline_name, replace(triggered_by, '_retry', ''), started_at, id);
CREATE INDEX runs_by_error_type ON runs (error_type, started_at, id) WHERE error_type IS NOT NULL;
-- The runs list groups automatic retries under their first run and counts the
-- first runs as the total less these retries.
CREATE INDEX runs_retries ON runs (pipeline_name) WHERE attempt > 1;
