-- Per-run facts recorded while a run executes: environment setup time (container
-- start until main.py starts), peaks of the resource samples, soft-limit warnings.
ALTER TABLE runs ADD COLUMN setup_duration REAL;
ALTER TABLE runs ADD COLUMN peak_cpu_percent REAL;
ALTER TABLE runs ADD COLUMN peak_memory_bytes INTEGER;
ALTER TABLE runs ADD COLUMN soft_limit_warning TEXT;

-- Counters that survive log retention: totals per pipeline and per day.
CREATE TABLE run_counters (
    day           TEXT NOT NULL,      -- YYYY-MM-DD (UTC) of the run's end
    pipeline_name TEXT NOT NULL,
    total         INTEGER NOT NULL DEFAULT 0,
    succeeded     INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    interrupted   INTEGER NOT NULL DEFAULT 0,
    duration_sum  REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (day, pipeline_name)
);
