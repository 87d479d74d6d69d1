//! Many live viewers of one loud run: every viewer gets every line exactly once,
//! in order, whether it keeps up (shared live batches) or falls behind (it then
//! reads on from the file).

mod common;

use std::time::Duration;

use common::TestApp;
use futures_util::StreamExt;

const LINES: u64 = 60_000;

/// Reads an SSE body to its `end` event; `pause` slows the reader at the start so
/// it falls behind the live channel. Returns the `seq` of each line event.
async fn json_viewer(resp: reqwest::Response, pause: Duration) -> (Vec<u64>, String) {
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut seqs = Vec::new();
    let mut end = String::new();
    let mut chunks = 0u32;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, body.next()).await {
        let chunk = chunk.expect("SSE chunk");
        chunks += 1;
        if chunks < 20 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        buf.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        while let Some(pos) = buf.find("\n\n") {
            let event: String = buf.drain(..pos + 2).collect();
            if event.starts_with("event: end") {
                end = event;
            } else if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                let line: serde_json::Value = serde_json::from_str(data).expect("JSON line");
                seqs.push(line["seq"].as_u64().expect("seq"));
            }
        }
        if !end.is_empty() {
            break;
        }
    }
    (seqs, end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_viewers_fast_and_slow_each_get_every_line_once() {
    let app = TestApp::start(&[(
        "loud/main.py",
        &format!("import time\ntime.sleep(1.5)\nfor i in range({LINES}):\n    print(f'line {{i}} ' + 'x' * 40)\n"),
    )])
    .await;
    let id = app.trigger("loud", "").await;
    let open = |path: String| {
        let client = app.client.clone();
        let url = app.url(&path);
        async move { client.get(url).send().await.expect("open the stream") }
    };
    let mut viewers = Vec::new();
    for i in 0..12 {
        let resp = open(format!("/api/runs/{id}/logs/stream")).await;
        assert_eq!(resp.status(), 200);
        // Every third viewer reads slowly at first and falls behind the live batches.
        let pause = if i % 3 == 0 {
            Duration::from_millis(150)
        } else {
            Duration::ZERO
        };
        viewers.push(tokio::spawn(json_viewer(resp, pause)));
    }
    let ui = open(format!("/runs/{id}/log/stream")).await;
    let ui = tokio::spawn(common::read_sse(ui, Duration::from_secs(180)));

    for (i, viewer) in viewers.into_iter().enumerate() {
        let (seqs, end) = viewer.await.expect("viewer task");
        assert!(end.contains("SUCCESS"), "viewer {i} ended with {end:?}");
        assert_eq!(seqs.len() as u64, LINES, "viewer {i}: every line once");
        assert!(
            seqs.iter().zip(1..).all(|(seq, want)| *seq == want),
            "viewer {i}: lines in order without gap or repeat"
        );
    }
    let events = ui.await.expect("UI viewer");
    let lines: usize = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("line"))
        .map(|e| e.data.matches("class=\"l out\"").count())
        .sum();
    assert_eq!(lines as u64, LINES, "the UI stream shows every line once");
    let last_ids: Vec<u64> = events
        .iter()
        .filter_map(|e| e.id.as_deref()?.parse().ok())
        .collect();
    assert!(last_ids.windows(2).all(|w| w[0] < w[1]), "event ids rise");
    assert_eq!(last_ids.last(), Some(&LINES));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_share_framed_chunks_and_stay_exact_from_any_position() {
    let app = TestApp::start(&[(
        "seven/main.py",
        "for i in range(7001):\n    print(f'n{i}')\n",
    )])
    .await;
    let (run, _) = app.run_to_end("seven", "").await;
    let id = run["id"].as_str().expect("run id").to_string();
    // The same positions twice: the second viewer of each takes chunks the first framed.
    for after in [0u64, 0, 1999, 2000, 2500, 2500, 6999, 7001] {
        let resp = app
            .client
            .get(app.url(&format!("/api/runs/{id}/logs/stream?after={after}")))
            .send()
            .await
            .expect("stream");
        let (seqs, end) = json_viewer(resp, Duration::ZERO).await;
        assert!(end.contains("SUCCESS"), "after {after}: {end}");
        let want: Vec<u64> = (after + 1..=7001).collect();
        assert_eq!(seqs, want, "after {after}: every later line once, in order");
    }
    let ui = app
        .client
        .get(app.url(&format!("/runs/{id}/log/stream?after=1999")))
        .send()
        .await
        .expect("UI stream");
    let events = common::read_sse(ui, Duration::from_secs(30)).await;
    let html: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("line"))
        .map(|e| e.data.as_str())
        .collect();
    assert_eq!(html.matches("class=\"l out\"").count(), 5002);
    assert!(
        html.contains("n1999<") && !html.contains(">n1998<"),
        "starts at line 2000"
    );
    app.stop().await;
}
