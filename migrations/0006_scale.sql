-- Scale: every list is one index range in (started_at, id) order, so keyset paging
-- ("older than this run") costs the same on page 1 and page 2 000; totals and
-- statistics are kept as runs change, never counted from the whole history.

-- Each filter combination has an index ending in (started_at, id), the list order.
-- The id breaks ties between runs triggered in the same instant.
DROP INDEX runs_by_started;
DROP INDEX runs_by_pipeline;
DROP INDEX runs_by_status;
CREATE INDEX runs_by_started ON runs (started_at, id);
CREATE INDEX runs_by_pipeline ON runs (pipeline_name, started_at, id);
CREATE INDEX runs_by_status ON runs (status, started_at, id);
CREATE INDEX runs_by_pipeline_status ON runs (pipeline_name, status, started_at, id);
-- Retention by age looks runs up by when they ended.
CREATE INDEX runs_by_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;

-- How many rows of `runs` exist per pipeline and status: the `total` of every list
-- filter is a sum over at most five rows per pipeline. Kept exact by the triggers
-- below (in the writing transaction), so it counts what a list can show.
CREATE TABLE run_totals (
    pipeline_name TEXT NOT NULL,
    status        TEXT NOT NULL,
    runs          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pipeline_name, status)
);
INSERT INTO run_totals (pipeline_name, status, runs)
SELECT pipeline_name, status, COUNT(*) FROM runs GROUP BY pipeline_name, status;

-- Lifetime counters per pipeline (they survive retention, like run_counters per day).
CREATE TABLE pipeline_counters (
    pipeline_name TEXT PRIMARY KEY NOT NULL,
    total         INTEGER NOT NULL DEFAULT 0,
    succeeded     INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    interrupted   INTEGER NOT NULL DEFAULT 0,
    duration_sum  REAL NOT NULL DEFAULT 0
);
INSERT INTO pipeline_counters (pipeline_name, total, succeeded, failed, interrupted, duration_sum)
SELECT pipeline_name, SUM(total), SUM(succeeded), SUM(failed), SUM(interrupted), SUM(duration_sum)
FROM run_counters GROUP BY pipeline_name;

CREATE TRIGGER run_totals_on_insert AFTER INSERT ON runs BEGIN
    INSERT INTO run_totals (pipeline_name, status, runs) VALUES (new.pipeline_name, new.status, 1)
    ON CONFLICT (pipeline_name, status) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER run_totals_on_update AFTER UPDATE OF pipeline_name, status ON runs
WHEN old.status <> new.status OR old.pipeline_name <> new.pipeline_name BEGIN
    UPDATE run_totals SET runs = runs - 1
    WHERE pipeline_name = old.pipeline_name AND status = old.status;
    INSERT INTO run_totals (pipeline_name, status, runs) VALUES (new.pipeline_name, new.status, 1)
    ON CONFLICT (pipeline_name, status) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER run_totals_on_delete AFTER DELETE ON runs BEGIN
    UPDATE run_totals SET runs = runs - 1
    WHERE pipeline_name = old.pipeline_name AND status = old.status;
END;

-- A run is counted once, in the statement that ends it (finish, cancel, interrupt),
-- so a crash can never leave a finished run uncounted or count it twice.
CREATE TRIGGER run_counters_on_end AFTER UPDATE OF status ON runs
WHEN old.status IN ('PENDING', 'RUNNING')
 AND new.status IN ('SUCCESS', 'FAILED', 'INTERRUPTED') AND new.finished_at IS NOT NULL BEGIN
    INSERT INTO run_counters (day, pipeline_name, total, succeeded, failed, interrupted, duration_sum)
    VALUES (strftime('%Y-%m-%d', new.finished_at), new.pipeline_name, 1,
            new.status = 'SUCCESS', new.status = 'FAILED', new.status = 'INTERRUPTED',
            COALESCE((julianday(new.finished_at)
                      - julianday(COALESCE(new.container_started_at, new.started_at))) * 86400.0, 0))
    ON CONFLICT (day, pipeline_name) DO UPDATE SET
        total = total + excluded.total, succeeded = succeeded + excluded.succeeded,
        failed = failed + excluded.failed, interrupted = interrupted + excluded.interrupted,
        duration_sum = duration_sum + excluded.duration_sum;
    INSERT INTO pipeline_counters (pipeline_name, total, succeeded, failed, interrupted, duration_sum)
    VALUES (new.pipeline_name, 1, new.status = 'SUCCESS', new.status = 'FAILED', new.status = 'INTERRUPTED',
            COALESCE((julianday(new.finished_at)
                      - julianday(COALESCE(new.container_started_at, new.started_at))) * 86400.0, 0))
    ON CONFLICT (pipeline_name) DO UPDATE SET
        total = total + excluded.total, succeeded = succeeded + excluded.succeeded,
        failed = failed + excluded.failed, interrupted = interrupted + excluded.interrupted,
        duration_sum = duration_sum + excluded.duration_sum;
END;
