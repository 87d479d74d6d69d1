//! The pipeline list at scale: the page shows 100 pipelines at a time with a
//! search, and `GET /api/pipelines` pages and searches on request while its
//! default stays the full Fast-Flow 1.x list.

mod common;

use common::TestApp;

/// `p000` … `p249`; every tenth is tagged `nightly`, p007 says "Loads the CRM".
fn many_pipelines() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for i in 0..250 {
        files.push((format!("p{i:03}/main.py"), "print('hi')\n".to_string()));
        let meta = match i {
            7 => r#"{"description": "Loads the CRM export"}"#.to_string(),
            i if i % 10 == 0 => r#"{"tags": ["nightly"]}"#.to_string(),
            _ => continue,
        };
        files.push((format!("p{i:03}/pipeline.json"), meta));
    }
    files
}

/// The pipeline names linked in a list page or fragment, in order.
fn listed(html: &str) -> Vec<String> {
    html.split("class=\"name\" href=\"/pipelines/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_string))
        .collect()
}

fn names(json: &serde_json::Value) -> Vec<String> {
    json.as_array()
        .map(|list| {
            list.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_a_hundred_at_a_time_and_searches() {
    let files = many_pipelines();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let app = TestApp::start(&refs).await;

    let (status, html) = app.get_text("/pipelines").await;
    assert_eq!(status, 200);
    let first = listed(&html);
    assert_eq!(first.len(), 100, "first page");
    assert_eq!(first.first().map(String::as_str), Some("p000"));
    assert_eq!(first.last().map(String::as_str), Some("p099"));
    assert!(html.contains("1–100 of 250"), "pager text missing");
    assert!(html.contains("href=\"/pipelines?page=2\""), "no next link");

    let (_, third) = app.get_text("/pipelines?page=3").await;
    let third = listed(&third);
    assert_eq!(third.len(), 50);
    assert_eq!(third.first().map(String::as_str), Some("p200"));
    // A page past the end shows the last one rather than nothing.
    let (status, past) = app.get_text("/pipelines?page=99").await;
    assert_eq!(status, 200);
    assert_eq!(listed(&past), third);

    // Search by tag, by description (any case), and a search that finds nothing.
    let (_, tagged) = app.get_text("/pipelines?q=NIGHTLY").await;
    let tagged = listed(&tagged);
    assert_eq!(tagged.len(), 25, "{tagged:?}");
    assert!(tagged.iter().all(|n| n.ends_with('0')));
    let (_, crm) = app.get_text("/pipelines?q=crm%20export").await;
    assert_eq!(listed(&crm), vec!["p007".to_string()]);
    let (_, none) = app.get_text("/pipelines?q=%3Cscript%3E").await;
    assert!(listed(&none).is_empty());
    assert!(
        none.contains("No pipeline matches “&#60;script&#62;”")
            || none.contains("No pipeline matches “&lt;script&gt;”"),
        "the search is shown, escaped"
    );
    let (status, long) = app
        .get_text(&format!("/pipelines?q={}", "x".repeat(201)))
        .await;
    assert_eq!(status, 400, "{long}");
    assert!(long.contains("200 characters"), "{long}");

    // The fragment works without htmx and refreshes itself with the same query.
    let (status, fragment) = app.get_text("/fragments/pipelines?q=p&page=2").await;
    assert_eq!(status, 200);
    assert!(!fragment.contains("<html"), "fragment is the list alone");
    let shown = listed(&fragment);
    assert_eq!(shown.len(), 100);
    assert_eq!(shown.first().map(String::as_str), Some("p100"));
    // Askama writes `&` in an attribute as `&#38;` (the browser reads it as `&`).
    let fragment = fragment.replace("&#38;", "&amp;");
    assert!(
        fragment.contains("hx-get=\"/fragments/pipelines?q=p&amp;page=2\""),
        "the poll keeps search and page"
    );
    assert!(
        fragment.contains("hx-sync=\"#pipelines:drop\""),
        "a refresh never overtakes a search"
    );
    // Under htmx the address bar follows the search and page.
    let resp = app
        .client
        .clone()
        .get(app.url("/fragments/pipelines?q=p&page=2"))
        .header("HX-Request", "true")
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.headers()["hx-replace-url"], "/pipelines?q=p&page=2");
    let (status, bad) = app.get_text("/pipelines?page=abc").await;
    assert_eq!(status, 400);
    assert!(
        bad.contains("page must be a whole number") && bad.contains("<html"),
        "{bad}"
    );
    let (status, _) = app.get_text("/runs?page=abc").await;
    assert_eq!(status, 400);
    let (status, huge) = app.get_text("/pipelines?page=18446744073709551616").await;
    assert_eq!(status, 200, "a page past the end shows the last");
    assert_eq!(listed(&huge).len(), 50);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_everything_by_default_and_pages_on_request() {
    common::require_docker().await;
    let files = many_pipelines();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let app = TestApp::start(&refs).await;
    let client = app.client.clone();

    let all = client
        .get(app.url("/api/pipelines"))
        .send()
        .await
        .expect("GET");
    assert_eq!(all.headers()["x-total-count"], "250");
    let all: serde_json::Value = all.json().await.expect("JSON");
    assert_eq!(names(&all).len(), 250, "1.x clients get every pipeline");

    let tail = client
        .get(app.url("/api/pipelines?limit=10&offset=245"))
        .send()
        .await
        .expect("GET");
    assert_eq!(tail.headers()["x-total-count"], "250");
    let tail: serde_json::Value = tail.json().await.expect("JSON");
    assert_eq!(names(&tail), ["p245", "p246", "p247", "p248", "p249"]);

    let (_, tagged) = app.get_json("/api/pipelines?q=nightly&limit=3").await;
    assert_eq!(names(&tagged), ["p000", "p010", "p020"]);

    for (query, says) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("offset=-1", "offset"),
        ("limit=abc", "limit"),
    ] {
        let (status, body) = app.get_json(&format!("/api/pipelines?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains(says)),
            "{query}: {body}"
        );
    }
    let (status, body) = app
        .get_json(&format!("/api/pipelines?q={}", "y".repeat(201)))
        .await;
    assert_eq!(status, 400, "{body}");

    // A page carries the statistics of its pipelines (read for that page only).
    let (run, _) = app.run_to_end("p120", "{}").await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    let (_, page) = app.get_json("/api/pipelines?limit=2&offset=120").await;
    assert_eq!(names(&page), ["p120", "p121"]);
    assert_eq!(page[0]["total_runs"], 1, "{page}");
    assert_eq!(page[0]["last_run_id"], run["id"]);
    assert_eq!(page[1]["total_runs"], 0);
    let (_, html) = app.get_text("/pipelines?page=2").await;
    let row = html
        .split("href=\"/pipelines/p120\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_default();
    assert!(
        row.contains(&format!("/runs/{}", run["id"].as_str().unwrap_or("?"))),
        "the page shows p120's last run: {row}"
    );
    app.stop().await;
}
