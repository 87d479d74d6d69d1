//! Accessibility and reading without JavaScript, in a real browser (headless
//! Chromium, no network): on every page, in light and dark mode, all visible
//! text meets WCAG AA contrast against the background it is drawn on, every
//! form control has a label, and with scripts turned off each page still
//! shows what it is for.

mod common;

use std::time::Duration;

use common::TestApp;
use serde_json::{Value, json};

/// Text below WCAG AA: 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold).
/// The background is the first opaque one among the ancestors, with any
/// translucent layers above it blended in; disabled controls are exempt.
const LOW_CONTRAST: &str = r#"(() => {
  const rgb = s => { const m = /rgba?\(([^)]+)\)/.exec(s || ''); if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(parseFloat);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const over = (top, under) => ({r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a), b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const background = el => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; } }
    let base = {r: 255, g: 255, b: 255, a: 1};
    for (let i = layers.length - 1; i >= 0; i--) base = over(layers[i], base);
    return base; };
  const bad = []; const seen = new Set();
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const text = walk.currentNode.textContent.trim(); const el = walk.currentNode.parentElement;
    if (!text || !el || el.closest('title, option, script, style, [aria-hidden=true], :disabled')) continue;
    const box = el.getBoundingClientRect(); const cs = getComputedStyle(el);
    if (box.width === 0 || box.height === 0 || cs.visibility === 'hidden' || parseFloat(cs.opacity) === 0) continue;
    const svg = el instanceof SVGElement;
    const ink = rgb(svg ? cs.fill : cs.color); if (!ink) continue;
    const bg = background(el); const fg = over(ink, bg);
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(cs.fontSize); const bold = parseInt(cs.fontWeight, 10) >= 700;
    const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    const key = el.tagName + '.' + el.className + ':' + cs.color;
    if (ratio < need && !seen.has(key)) { seen.add(key);
      bad.push(`${ratio.toFixed(2)}:1 < ${need} <${el.tagName.toLowerCase()} class="${el.getAttribute('class') || ''}"> "${text.slice(0, 40)}" ${cs.color} on rgb(${Math.round(bg.r)},${Math.round(bg.g)},${Math.round(bg.b)})`); }
  }
  return bad;
})()"#;

/// Visible form controls without a label (a `<label for>`, a wrapping label,
/// `aria-label` or `aria-labelledby`; buttons need text or `aria-label`).
const UNLABELLED: &str = r#"(() => [...document.querySelectorAll('input, select, textarea, button')].filter(c => {
  if (c.type === 'hidden' || c.getBoundingClientRect().width === 0) return false;
  if (c.getAttribute('aria-label') || c.getAttribute('aria-labelledby') || c.closest('label')) return false;
  if (c.tagName === 'BUTTON' || c.type === 'submit') return !(c.textContent.trim() || c.value);
  return !(c.id && document.querySelector('label[for="' + CSS.escape(c.id) + '"]'));
}).map(c => c.outerHTML.slice(0, 120)))()"#;

fn pages(run: &str) -> Vec<String> {
    [
        "/",
        "/pipelines",
        "/pipelines/report",
        "/pipelines/report?tab=runs",
        "/pipelines/report?tab=configuration",
        "/pipelines/report?tab=source",
        "/runs",
        "/scheduler",
        "/sync",
        "/secrets",
        "/users",
        "/audit",
        "/settings",
        "/settings/notifications",
        "/system",
        "/no/such/page",
    ]
    .iter()
    .map(|p| p.to_string())
    .chain([format!("/runs/{run}")])
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_contrast_labels_and_reading_without_javascript() {
    let app = TestApp::start(&[
        (
            "report/main.py",
            "import sys\nprint('\\x1b[32mgreen\\x1b[0m report ready')\nprint('Traceback: boom', file=sys.stderr)\nsys.exit(1)\n",
        ),
        (
            "report/pipeline.json",
            r#"{"description": "Builds the report", "tags": ["nightly"], "schedule_cron": "0 3 * * *"}"#,
        ),
        ("report/requirements.txt", "requests==2.32.3\n"),
        ("broken/main.py", "print('x')\n"),
        ("broken/pipeline.json", "{ not json"),
    ])
    .await;
    let (run, _) = app.run_to_end("report", "").await;
    assert_eq!(run["status"], "FAILED");
    let run = run["id"].as_str().expect("run id").to_string();
    let base = app.url("");
    let token = app.token.clone();
    tokio::task::spawn_blocking(move || {
        let mut b = common::cdp::Browser::launch();
        b.open(&format!("{base}/"), json!({"Authorization": format!("Bearer {token}")}));
        b.viewport(1280, 900, false);
        let mut problems = Vec::new();
        for scheme in ["light", "dark"] {
            b.call(
                "Emulation.setEmulatedMedia",
                json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
            );
            for path in pages(&run) {
                b.navigate(&format!("{base}{path}"));
                std::thread::sleep(Duration::from_millis(400));
                let scheme_now = b.eval("matchMedia('(prefers-color-scheme: dark)').matches");
                assert_eq!(scheme_now, json!(scheme == "dark"), "the emulated scheme holds");
                for line in list(b.eval(LOW_CONTRAST)) {
                    problems.push(format!("{scheme} {path}: {line}"));
                }
                if scheme == "light" {
                    for control in list(b.eval(UNLABELLED)) {
                        problems.push(format!("{path}: no label: {control}"));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "accessibility problems:\n{}", problems.join("\n"));

        // The check can fail: grey on white is below 4.5:1.
        // (Set through the CSSOM: the page's CSP refuses inline style attributes.)
        b.eval("(() => { const p = document.createElement('p'); p.textContent = 'faint'; p.style.color = '#aaa'; p.style.background = '#fff'; document.body.appendChild(p); })()");
        assert_eq!(list(b.eval(LOW_CONTRAST)).iter().filter(|l| l.contains("faint")).count(), 1);

        // Without scripts every page still shows what it is for.
        b.call("Emulation.setScriptExecutionDisabled", json!({"value": true}));
        for (path, must_show) in [
            ("/".to_string(), "Last 24 h".to_string()),
            ("/pipelines".into(), "href=\"/pipelines/report\"".into()),
            ("/pipelines/report?tab=source".into(), "requests==2.32.3".into()),
            ("/runs".into(), format!("href=\"/runs/{run}\"")),
            (format!("/runs/{run}"), "report ready".into()),
            ("/scheduler".into(), "0 3 * * *".into()),
        ] {
            b.navigate(&format!("{base}{path}"));
            assert_eq!(b.eval("typeof window.htmx"), json!("undefined"), "scripts are off");
            let html = b.dom();
            assert!(html.contains(&must_show), "{path} without JavaScript lacks {must_show:?}");
        }
    })
    .await
    .unwrap();
    app.stop().await;
}

fn list(v: Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
