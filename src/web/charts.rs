//! Server-rendered SVG charts of a run's CPU and memory samples, with the hard
//! and soft limits drawn in. No JavaScript, no chart library: numbers only.

use std::fmt::Write;

use crate::runner::metrics::Sample;

const W: f64 = 560.0;
const H: f64 = 150.0;
const PAD_L: f64 = 46.0;
const PAD_R: f64 = 10.0;
const PAD_T: f64 = 18.0;
const PAD_B: f64 = 20.0;

/// A horizontal reference line (a limit).
pub struct Limit {
    pub label: &'static str,
    pub value: f64,
    pub class: &'static str,
}

/// One chart: a title, the unit of the y axis, and one value per sample.
pub struct Series<'a> {
    pub title: &'a str,
    pub unit: &'a str,
    pub values: Vec<f64>,
    pub limits: Vec<Limit>,
}

/// CPU (percent of one core) and memory (MiB) charts for the samples.
pub fn run_charts(
    samples: &[Sample],
    cpu_hard: Option<f64>,
    cpu_soft: Option<f64>,
    mem_hard_mb: Option<f64>,
    mem_soft_mb: Option<f64>,
) -> String {
    let mut cpu_limits = Vec::new();
    if let Some(h) = cpu_hard {
        cpu_limits.push(Limit {
            label: "hard",
            value: h * 100.0,
            class: "hard",
        });
    }
    if let Some(s) = cpu_soft {
        cpu_limits.push(Limit {
            label: "soft",
            value: s * 100.0,
            class: "soft",
        });
    }
    let mut mem_limits = Vec::new();
    if let Some(h) = mem_hard_mb {
        mem_limits.push(Limit {
            label: "hard",
            value: h,
            class: "hard",
        });
    }
    if let Some(s) = mem_soft_mb {
        mem_limits.push(Limit {
            label: "soft",
            value: s,
            class: "soft",
        });
    }
    let cpu = Series {
        title: "CPU",
        unit: "% of a core",
        values: samples.iter().map(|s| s.cpu_percent).collect(),
        limits: cpu_limits,
    };
    let mem = Series {
        title: "Memory",
        unit: "MiB",
        values: samples.iter().map(|s| s.ram_mb).collect(),
        limits: mem_limits,
    };
    format!("{}{}", svg(&cpu), svg(&mem))
}

fn svg(series: &Series<'_>) -> String {
    let max_value = series.values.iter().copied().fold(0.0, f64::max);
    let max_limit = series.limits.iter().map(|l| l.value).fold(0.0, f64::max);
    let top = nice_ceiling(max_value.max(max_limit) * 1.1);
    let plot_w = W - PAD_L - PAD_R;
    let plot_h = H - PAD_T - PAD_B;
    let x = |i: usize| {
        PAD_L
            + if series.values.len() > 1 {
                plot_w * i as f64 / (series.values.len() - 1) as f64
            } else {
                0.0
            }
    };
    let y = |v: f64| PAD_T + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));
    let mut out = String::new();
    let last = series.values.last().copied();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{title}"><text x="{PAD_L}" y="12" class="title">{title} ({unit}){now}</text>"#,
        title = series.title,
        unit = series.unit,
        now = last
            .map(|v| format!(" — now {v:.1}, peak {max_value:.1}"))
            .unwrap_or_default()
    );
    for frac in [0.0, 0.5, 1.0] {
        let v = top * frac;
        let _ = write!(
            out,
            r#"<line x1="{PAD_L}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" class="axis">{label}</text>"#,
            label = axis_label(v),
            x2 = W - PAD_R,
            yy = y(v),
            tx = PAD_L - 4.0,
            ty = y(v) + 4.0
        );
    }
    for limit in &series.limits {
        let _ = write!(
            out,
            r#"<line x1="{PAD_L}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" class="limit {c}"/><text x="{tx}" y="{ty:.1}" class="limit-label {c}">{label} {v:.0}</text>"#,
            x2 = W - PAD_R,
            yy = y(limit.value),
            c = limit.class,
            tx = W - PAD_R - 70.0,
            ty = y(limit.value) - 3.0,
            label = limit.label,
            v = limit.value
        );
    }
    if series.values.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{cx}" y="{cy}" class="empty">no samples yet</text>"#,
            cx = PAD_L + plot_w / 2.0 - 40.0,
            cy = PAD_T + plot_h / 2.0
        );
    } else {
        let points: Vec<String> = series
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="series" points="{}"/>"#,
            points.join(" ")
        );
        // One sample makes no line: a dot shows where it is.
        if let [only] = series.values.as_slice() {
            let _ = write!(
                out,
                r#"<circle class="series-dot" cx="{:.1}" cy="{:.1}" r="3"/>"#,
                x(0),
                y(*only)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A scale value without a misleading rounding (half of 1 is "0.5", not "0").
fn axis_label(v: f64) -> String {
    if v >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let text = format!("{v:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// 1, 2, 2.5, 5 × 10^n at or above `v` (at least 1).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let exp = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * exp >= v {
            return m * exp;
        }
    }
    10.0 * exp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu: f64, ram: f64) -> Sample {
        Sample {
            timestamp: chrono::Utc::now(),
            cpu_percent: cpu,
            cpu_percent_of_limit: None,
            ram_mb: ram,
            ram_limit_mb: None,
            soft_limit_exceeded: false,
        }
    }

    #[test]
    fn charts_draw_series_and_limits() {
        let svg = run_charts(
            &[sample(10.0, 50.0), sample(48.0, 70.0)],
            Some(0.5),
            Some(0.4),
            Some(128.0),
            None,
        );
        assert_eq!(svg.matches("<svg").count(), 2);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("limit hard") && svg.contains("limit soft"));
        assert!(svg.contains("hard 50") && svg.contains("hard 128"));
        assert!(svg.contains("now 48.0, peak 48.0"));
        let empty = run_charts(&[], None, None, None, None);
        assert!(empty.contains("no samples yet"));
    }

    #[test]
    fn axis_labels_differ_on_small_scales() {
        assert_eq!(axis_label(0.5), "0.5");
        assert_eq!(axis_label(1.25), "1.25");
        assert_eq!(axis_label(2.0), "2");
        assert_eq!(axis_label(25.0), "25");
    }

    #[test]
    fn ceilings() {
        assert_eq!(nice_ceiling(0.3), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(110.0), 200.0);
        assert_eq!(nice_ceiling(240.0), 250.0);
    }
}
