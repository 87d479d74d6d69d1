//! CPU and memory of a running container, from the engine's stats stream (about
//! one sample a second): appended to `LOGS_DIR/<run_id>_metrics.jsonl`, announced
//! on the run's hub, peaks kept on the run row, soft limits flagged once per run.

use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptionsBuilder;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::RunnerDeps;
use super::hub::HubEvent;
use crate::db::{self, Run};
use crate::pipelines::metadata::ResourceLimits;

/// Peaks are written to the database at most this often while a run goes on.
const PEAK_WRITE_EVERY: u32 = 5;
/// The engine's first CPU figure needs a second of history anyway; runs shorter than
/// this are not sampled, which spares the engine a stats stream per short run.
const FIRST_SAMPLE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// One sample; field names follow Fast-Flow 1.x's metrics file, plus a few more.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    pub timestamp: DateTime<Utc>,
    /// Percent of one CPU core (200 = two full cores).
    pub cpu_percent: f64,
    /// Percent of `cpu_hard_limit`, when set.
    pub cpu_percent_of_limit: Option<f64>,
    pub ram_mb: f64,
    pub ram_limit_mb: Option<f64>,
    pub soft_limit_exceeded: bool,
}

pub fn metrics_path(logs_dir: &Path, run_id: &str) -> PathBuf {
    logs_dir.join(format!("{run_id}_metrics.jsonl"))
}

/// Samples an API answer, a replay or a chart gets at most.
pub const MAX_POINTS: usize = 2000;

/// Stored samples of a run, evenly thinned to at most a given number.
#[derive(Debug, Default)]
pub struct SampleSeries {
    pub samples: Vec<Sample>,
    /// Samples stored in all.
    pub total: u64,
    /// One sample in this many is returned (1 = all).
    pub every: u64,
}

/// At most `max_points` samples of a run, evenly spaced and always ending with the
/// newest, whatever the file's size: one pass counts lines, a second parses only
/// the ones kept (a run of days is a file of many megabytes; its peaks are exact on
/// the run row). An unreadable line is skipped, not fatal. Blocks: call it from
/// `spawn_blocking`.
pub fn read_samples(path: &Path, max_points: usize) -> std::io::Result<SampleSeries> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SampleSeries::default()),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut total = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        total += memchr::memchr_iter(b'\n', buf).count() as u64;
        let n = buf.len();
        reader.consume(n);
    }
    let max = max_points.max(1) as u64;
    let every = total.div_ceil(max).max(1);
    reader.seek(std::io::SeekFrom::Start(0))?;
    let mut samples = Vec::with_capacity(total.min(max) as usize);
    let mut raw = Vec::new();
    for index in 0..total {
        raw.clear();
        if reader.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        // Keep every `every`-th sample counted back from the newest one.
        if (total - 1 - index) % every != 0 {
            continue;
        }
        if let Ok(sample) = serde_json::from_slice(&raw) {
            samples.push(sample);
        }
    }
    Ok(SampleSeries {
        samples,
        total,
        every,
    })
}

/// CPU percent of one core between this sample and the previous one, as `docker stats` computes it.
fn cpu_percent(stats: &ContainerStatsResponse) -> Option<f64> {
    let now = stats.cpu_stats.as_ref()?;
    let pre = stats.precpu_stats.as_ref()?;
    let used =
        now.cpu_usage.as_ref()?.total_usage? as f64 - pre.cpu_usage.as_ref()?.total_usage? as f64;
    let system = now.system_cpu_usage? as f64 - pre.system_cpu_usage? as f64;
    if system <= 0.0 || pre.system_cpu_usage == Some(0) {
        return None;
    }
    let cpus = now
        .online_cpus
        .map(f64::from)
        .or_else(|| {
            now.cpu_usage
                .as_ref()?
                .percpu_usage
                .as_ref()
                .map(|v| v.len() as f64)
        })
        .unwrap_or(1.0);
    Some((used / system * cpus * 100.0).max(0.0))
}

/// Memory in use without the page cache (`cache` on cgroup v1, `inactive_file` on v2).
fn memory_bytes(stats: &ContainerStatsResponse) -> Option<(u64, Option<u64>)> {
    let mem = stats.memory_stats.as_ref()?;
    let usage = mem.usage?;
    let cache = mem
        .stats
        .as_ref()
        .and_then(|s| s.get("inactive_file").or_else(|| s.get("cache")).copied())
        .unwrap_or(0);
    Some((usage.saturating_sub(cache), mem.limit))
}

/// The first soft limit a sample exceeds, described for the user.
fn exceeded(limits: &ResourceLimits, cpu_percent: f64, ram_bytes: u64) -> Option<String> {
    let cores = cpu_percent / 100.0;
    if let Some(soft) = limits.cpu_soft_limit
        && cores > soft
    {
        return Some(format!(
            "CPU {cores:.2} cores exceeded cpu_soft_limit {soft}"
        ));
    }
    if let Some(soft) = &limits.mem_soft_limit
        && ram_bytes > soft.bytes
    {
        return Some(format!(
            "memory {} exceeded mem_soft_limit {}",
            crate::byte_size::human_bytes(ram_bytes),
            soft.text
        ));
    }
    None
}

/// What sampling a run produced, and what went wrong with it (said on the run).
#[derive(Debug, Default)]
pub struct SamplingReport {
    pub samples: u64,
    pub peak_memory: Option<u64>,
    /// Highest `failcnt` seen: how often the cgroup hit its memory limit (cgroup v1).
    pub limit_hits: u64,
    /// Stats the engine sent without usable CPU or memory figures.
    pub unusable: u64,
    /// How long this process had a stats stream open for the run.
    pub sampled_for: std::time::Duration,
    problem: Option<String>,
}

impl SamplingReport {
    fn note(&mut self, problem: String) {
        if self.problem.is_none() {
            // Said in the server log too: the run's own log may be on the same full disk.
            tracing::warn!("resource sampling: {problem}");
            self.problem = Some(problem);
        }
    }

    /// Why the run has no (or incomplete) samples, if it should have some: a
    /// problem noted, or a stats stream open for 3 s or more that gave nothing usable.
    pub fn problem(&self) -> Option<String> {
        if let Some(p) = &self.problem {
            return Some(format!("resource sampling: {p}"));
        }
        (self.samples == 0 && self.sampled_for >= std::time::Duration::from_secs(3)).then(|| {
            format!(
                "resource sampling: no samples in {}s ({} stats without usable figures)",
                self.sampled_for.as_secs(),
                self.unusable
            )
        })
    }
}

/// Samples until the stats stream ends or `stop` fires; stores and announces each
/// sample; reports the peaks and any problem instead of failing silently.
pub async fn sample(
    deps: &RunnerDeps,
    run: &Run,
    limits: &ResourceLimits,
    container: &str,
    stop: CancellationToken,
) -> SamplingReport {
    let mut report = SamplingReport::default();
    tokio::select! {
        _ = stop.cancelled() => return report,
        _ = tokio::time::sleep(FIRST_SAMPLE_AFTER) => {}
    }
    let options = StatsOptionsBuilder::new()
        .stream(true)
        .one_shot(false)
        .build();
    let opened = std::time::Instant::now();
    let mut stream = deps.docker.stats(container, Some(options));
    let path = metrics_path(&deps.config.logs_dir, &run.id);
    let mut file = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        Ok(f) => Some(f),
        Err(e) => {
            report.note(format!("samples cannot be stored: {e}"));
            None
        }
    };
    let mem_hard = limits.mem_hard_limit.as_ref().map(|m| m.bytes);
    let hub = deps.hubs.sender(&run.id);
    let (mut peak_cpu, mut peak_mem, mut since_write, mut warned) =
        (0.0f64, 0u64, 0u32, run.soft_limit_warning.is_some());
    loop {
        let item = tokio::select! {
            item = stream.next() => item,
            _ = stop.cancelled() => None,
        };
        let stats = match item {
            None => break,
            Some(Ok(stats)) => stats,
            Some(Err(e)) => {
                report.note(format!("the engine's stats stream failed: {e}"));
                break;
            }
        };
        if let Some(hits) = stats.memory_stats.as_ref().and_then(|m| m.failcnt) {
            report.limit_hits = report.limit_hits.max(hits);
        }
        let (Some(cpu), Some((ram, engine_limit))) = (cpu_percent(&stats), memory_bytes(&stats))
        else {
            report.unusable += 1;
            continue;
        };
        let warning = exceeded(limits, cpu, ram);
        let sample = Sample {
            timestamp: Utc::now(),
            cpu_percent: round2(cpu),
            cpu_percent_of_limit: limits.cpu_hard_limit.map(|h| round2(cpu / h)),
            ram_mb: round2(ram as f64 / 1_048_576.0),
            ram_limit_mb: mem_hard
                .or(engine_limit)
                .map(|l| round2(l as f64 / 1_048_576.0)),
            soft_limit_exceeded: warning.is_some(),
        };
        report.samples += 1;
        if let Some(f) = file.as_mut()
            && let Err(e) = serde_json::to_string(&sample)
                .map_err(std::io::Error::other)
                .and_then(|line| writeln!(f, "{line}"))
        {
            report.note(format!("samples cannot be stored: {e}"));
            file = None;
        }
        let _ = hub.send(HubEvent::Metric(Arc::new(sample)));
        if let Some(w) = warning
            && !warned
        {
            warned = true;
            tracing::info!(run = %run.id, "{w}");
            if let Err(e) = db::runs::set_soft_limit_warning(&deps.pool, &run.id, &w).await {
                tracing::warn!(run = %run.id, error = %e, "could not record the soft-limit warning");
            }
            let _ = hub.send(HubEvent::Changed);
        }
        since_write += 1;
        if cpu > peak_cpu || ram > peak_mem {
            peak_cpu = peak_cpu.max(cpu);
            peak_mem = peak_mem.max(ram);
            if since_write >= PEAK_WRITE_EVERY {
                since_write = 0;
                let _ = db::runs::set_peaks(&deps.pool, &run.id, round2(peak_cpu), peak_mem as i64)
                    .await;
            }
        }
    }
    report.sampled_for = opened.elapsed();
    if peak_mem > 0 {
        report.peak_memory = Some(peak_mem);
        let _ = db::runs::set_peaks(&deps.pool, &run.id, round2(peak_cpu), peak_mem as i64).await;
    }
    report
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_thins_to_the_limit_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(f, "not json").unwrap();
        for i in 0..10_000 {
            let sample = Sample {
                timestamp: Utc::now(),
                cpu_percent: i as f64,
                cpu_percent_of_limit: None,
                ram_mb: 1.0,
                ram_limit_mb: None,
                soft_limit_exceeded: false,
            };
            writeln!(f, "{}", serde_json::to_string(&sample).unwrap()).unwrap();
        }
        let series = read_samples(&path, 100).unwrap();
        assert_eq!(series.total, 10_001);
        assert!(series.samples.len() <= 100, "{}", series.samples.len());
        assert_eq!(
            series.samples.last().unwrap().cpu_percent,
            9_999.0,
            "the newest is kept"
        );
        let all = read_samples(&path, 1_000_000).unwrap();
        assert_eq!((all.samples.len(), all.every), (10_000, 1));
    }
}
