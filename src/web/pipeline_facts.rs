//! The facts the pipeline page states in words: what a run configuration
//! changes, the webhook URLs, the retry delays, CPU amounts.

use crate::pipelines::Pipeline;

/// What a run configuration changes, in one line.
pub(super) fn run_config_summary(s: &crate::pipelines::metadata::ScheduleSpec) -> String {
    let mut parts = Vec::new();
    match (&s.schedule_cron, s.schedule_interval_seconds) {
        (Some(c), _) => parts.push(format!("cron {c}")),
        (None, Some(i)) => parts.push(format!("every {i}s")),
        (None, None) => parts.push("no schedule".into()),
    }
    if !s.enabled {
        parts.push("schedule disabled".into());
    }
    let env: Vec<&str> = s
        .default_env
        .keys()
        .chain(s.encrypted_env.keys())
        .map(String::as_str)
        .collect();
    if !env.is_empty() {
        parts.push(format!("env {}", env.join(", ")));
    }
    let l = &s.limits;
    if let Some(c) = l.cpu_hard_limit {
        parts.push(format!("CPU {}", cores(c)));
    }
    if let Some(m) = &l.mem_hard_limit {
        parts.push(format!("memory {}", m.text));
    }
    if let Some(t) = s.timeout {
        parts.push(format!("timeout {t}s"));
    }
    if let Some(r) = s.retry_attempts {
        parts.push(format!("{r} retries"));
    }
    if s.webhook_key.is_some() {
        parts.push("own webhook".into());
    }
    parts.join(" · ")
}

/// Each webhook URL, per run configuration (its key selects the configuration).
pub(super) fn webhook_urls(p: &Pipeline, base_url: &str) -> Vec<(String, String)> {
    let base = base_url.trim_end_matches('/');
    let url = |key: &str| {
        format!(
            "{base}/api/webhooks/{}/{}",
            url_segment(&p.name),
            url_segment(key)
        )
    };
    let mut out = Vec::new();
    if let Some(key) = &p.metadata.webhook_key {
        out.push(("pipeline defaults".to_string(), url(key)));
    }
    for s in &p.metadata.schedules {
        if let Some(key) = &s.webhook_key {
            out.push((format!("run configuration {}", s.id), url(key)));
        }
    }
    out
}

/// Percent-encodes everything but unreserved characters.
fn url_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The strategy in words, with the delays before each retry (at most four shown).
pub(super) fn retry_delays(
    strategy: Option<&crate::pipelines::metadata::RetryStrategy>,
    retries: u32,
) -> String {
    use crate::pipelines::metadata::RetryStrategy;
    if retries == 0 {
        return "— (no retries)".into();
    }
    let shown = retries.min(4);
    let delays: Vec<String> = (1..=shown)
        .map(|n| format!("{}s", crate::runner::retry::delay(strategy, n).as_secs()))
        .collect();
    let kind = match strategy {
        None => "fixed (default)",
        Some(RetryStrategy::FixedDelay { .. }) => "fixed_delay",
        Some(RetryStrategy::ExponentialBackoff { .. }) => "exponential_backoff",
        Some(RetryStrategy::CustomSchedule { .. }) => "custom_schedule",
    };
    let more = if retries > shown { " …" } else { "" };
    format!("{kind}: {}{more}", delays.join(", "))
}

/// `1 core`, `0.5 cores`, `2 cores`.
pub(super) fn cores(c: f64) -> String {
    if c == 1.0 {
        "1 core".into()
    } else {
        format!("{c} cores")
    }
}

/// The pipeline's `notify` as the Configuration tab states it: (what, value).
pub fn notify_facts(p: &Pipeline) -> Vec<(&'static str, String)> {
    let Some(n) = &p.metadata.notify else {
        return Vec::new();
    };
    let mut facts = vec![(
        "Events",
        match &n.on {
            None => "the server's (Settings → Notifications)".to_string(),
            Some(on) if on.is_empty() => "none: this pipeline is never told".to_string(),
            Some(on) => on.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "),
        },
    )];
    if !n.email.is_empty() {
        facts.push(("Also e-mailed to", n.email.join(", ")));
    }
    if let Some(shown) = &n.webhook_shown {
        facts.push(("Own webhook", format!("{shown} ({})", n.format().as_str())));
    }
    facts
}
