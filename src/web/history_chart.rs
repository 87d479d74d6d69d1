//! A pipeline's run-duration history as server-rendered SVG: one bar per run,
//! oldest left, coloured by outcome, each a link to its run with its duration
//! in a `<title>`.

use std::fmt::Write;

use super::views::fmt_duration;
use crate::run_status::RunStatus;

const W: f64 = 560.0;
const H: f64 = 140.0;
const LEFT: f64 = 46.0;
const TOP: f64 = 8.0;
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
    let longest = timed.iter().map(|(_, _, d)| *d).fold(0.0_f64, f64::max);
    // The scale's top is a round number, so its two labels differ and read easily.
    let top = round_up(longest);
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / timed.len() as f64;
    let bar = (slot * 0.75).clamp(1.0, 24.0);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="Durations of the last {} finished runs, longest {}">"#,
        timed.len(),
        fmt_duration(longest),
    );
    for (frac, label) in [(1.0, tick(top)), (0.5, tick(top / 2.0)), (0.0, "0".into())] {
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
        let h = (d / top * plot_h).max(1.0);
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

/// The smallest 1, 2 or 5 × 10ⁿ seconds at or above `seconds` (at least 0.1 s).
fn round_up(seconds: f64) -> f64 {
    let s = seconds.max(0.1);
    let magnitude = 10f64.powf(s.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= s * 0.999_999)
        .unwrap_or(10.0 * magnitude)
}

/// A scale label: hundredths below a second ("0.05s"), else as durations read.
fn tick(seconds: f64) -> String {
    if seconds < 1.0 {
        let text = format!("{seconds:.2}");
        format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
    } else {
        fmt_duration(seconds)
    }
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
        // A fast run gets labels that differ from each other.
        let quick = duration_bars(&[("q".to_string(), RunStatus::Success, Some(0.07))]);
        assert!(
            quick.contains(">0.1s<") && quick.contains(">0.05s<"),
            "{quick}"
        );
        assert_eq!(round_up(3.2), 5.0);
        assert_eq!(round_up(40.0), 50.0);
        assert_eq!(round_up(100.0), 100.0);
        assert_eq!(tick(300.0), "5m 00s");
    }
}
