//! A pipeline's run-duration history as server-rendered SVG: one bar per run,
//! oldest left, coloured by outcome, each a link to its run with its duration
//! in a `<title>`.

use std::fmt::Write;

use super::views::fmt_duration;
use crate::run_status::RunStatus;

const W: f64 = 560.0;
const H: f64 = 140.0;
const LEFT: f64 = 46.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 16.0;

/// `(run id, status, duration in seconds)`, newest first as lists return them.
pub fn duration_bars(runs: &[(String, RunStatus, Option<f64>)]) -> String {
    let timed: Vec<_> = runs
        .iter()
        .rev()
        .filter_map(|(id, s, d)| {
            d.filter(|d| d.is_finite() && *d >= 0.0)
                .map(|d| (id, *s, d))
        })
        .collect();
    if timed.is_empty() {
        return r#"<svg class="chart" viewBox="0 0 560 60" role="img" aria-label="Run durations"><text x="280" y="34" class="empty" text-anchor="middle">No finished runs yet: durations appear here.</text></svg>"#.to_string();
    }
    let longest = timed
        .iter()
        .map(|(_, _, d)| *d)
        .fold(0.0_f64, f64::max)
        .max(0.1);
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / timed.len() as f64;
    let bar = (slot * 0.75).clamp(1.0, 24.0);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="Durations of the last {} runs, longest {}"><text x="{LEFT}" y="10" class="title">Duration of the last {} runs</text>"#,
        timed.len(),
        fmt_duration(longest),
        timed.len()
    );
    for (frac, label) in [
        (1.0, fmt_duration(longest)),
        (0.5, fmt_duration(longest / 2.0)),
        (0.0, "0".into()),
    ] {
        let y = TOP + plot_h * (1.0 - frac);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{}" y="{:.1}" class="axis">{label}</text>"#,
            W - 8.0,
            LEFT - 4.0,
            y + 3.0
        );
    }
    for (i, (id, status, d)) in timed.iter().enumerate() {
        let h = (d / longest * plot_h).max(1.0);
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let y = TOP + plot_h - h;
        let _ = write!(
            svg,
            r#"<a href="/runs/{id}"><rect class="s-{}" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}"><title>{status} in {}</title></rect></a>"#,
            status.as_str().to_ascii_lowercase(),
            fmt_duration(*d)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_longest_run_oldest_left() {
        let runs = vec![
            ("b".to_string(), RunStatus::Failed, Some(2.0)),
            ("a".to_string(), RunStatus::Success, Some(4.0)),
            ("c".to_string(), RunStatus::Running, None),
        ];
        let svg = duration_bars(&runs);
        assert!(svg.find("/runs/a") < svg.find("/runs/b"), "{svg}");
        assert!(svg.contains("SUCCESS in 4.0s") && svg.contains("FAILED in 2.0s"));
        assert!(
            !svg.contains("/runs/c"),
            "a run without a duration has no bar"
        );
        assert!(duration_bars(&[]).contains("No finished runs yet"));
    }
}
