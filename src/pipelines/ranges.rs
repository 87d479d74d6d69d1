//! The documented range of every number a pipeline repository can set, in one
//! place. Readers reject values outside them at discovery (file, field, range and
//! the value given), so no later arithmetic on them can overflow or panic.
//! `docs/pipelines.md` lists the same ranges.

/// An inclusive range and the unit it is measured in, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Range<T> {
    pub min: T,
    pub max: T,
    pub unit: &'static str,
}

impl<T: PartialOrd + Copy> Range<T> {
    pub fn contains(&self, v: T) -> bool {
        self.min <= v && v <= self.max
    }
}

const DAY: u64 = 86_400;

/// `timeout` (pipeline and schedule): 0 means no timeout; at most 365 days.
pub const TIMEOUT: Range<u64> = Range {
    min: 0,
    max: 365 * DAY,
    unit: "seconds; 0 = no timeout",
};
/// `retry_attempts`: retries after the first attempt.
pub const RETRY_ATTEMPTS: Range<u64> = Range {
    min: 0,
    max: 100,
    unit: "retries",
};
/// Every delay of a `retry_strategy` (`delay`, `initial_delay`, `max_delay`, `delays[]`).
pub const RETRY_DELAY: Range<u64> = Range {
    min: 0,
    max: 7 * DAY,
    unit: "seconds",
};
/// `retry_strategy.multiplier` of `exponential_backoff`.
pub const RETRY_MULTIPLIER: Range<f64> = Range {
    min: 1.0,
    max: 100.0,
    unit: "a factor",
};
/// Entries of `retry_strategy.delays` (`custom_schedule`).
pub const RETRY_DELAYS_LEN: usize = 100;
/// `max_instances`.
pub const MAX_INSTANCES: Range<u64> = Range {
    min: 1,
    max: 1000,
    unit: "runs at once",
};
/// `schedule_interval_seconds` (pipeline and schedule): at most 366 days.
pub const INTERVAL: Range<u64> = Range {
    min: 1,
    max: 366 * DAY,
    unit: "seconds",
};
/// Fast-Flow's default `restart_cooldown`, in seconds.
pub const DEFAULT_RESTART_COOLDOWN: u64 = 60;
/// `restart_cooldown`.
pub const RESTART_COOLDOWN: Range<u64> = Range {
    min: 0,
    max: DAY,
    unit: "seconds",
};
/// `cpu_hard_limit` / `cpu_soft_limit`: Docker refuses less than 0.01 CPU. A hard
/// limit above the engine host's CPUs is lowered to them, with a warning.
pub const CPU: Range<f64> = Range {
    min: 0.01,
    max: 1024.0,
    unit: "CPU cores",
};
/// `mem_hard_limit`: Docker refuses less than 6 MiB. Above the engine host's
/// memory it is lowered to it, with a warning.
pub const MEM_HARD: Range<u64> = Range {
    min: 6 << 20,
    max: 1 << 50,
    unit: "bytes",
};
/// `mem_soft_limit` (monitored only).
pub const MEM_SOFT: Range<u64> = Range {
    min: 1 << 20,
    max: 1 << 50,
    unit: "bytes",
};

/// Items of lists and maps.
pub const MAX_TAGS: usize = 100;
pub const MAX_SECRETS: usize = 200;
pub const MAX_SCHEDULES: usize = 100;
pub const MAX_DOWNSTREAM: usize = 100;
pub const MAX_ENV_KEYS: usize = 200;
/// Bytes of one `default_env` / `encrypted_env` value.
pub const MAX_ENV_VALUE_BYTES: usize = 64 * 1024;
