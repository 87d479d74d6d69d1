//! Hostile input from a pipeline repository or a request, over real HTTP against
//! the real app: symbolic links out of a pipeline directory, overflowing numbers,
//! oversized forms, forbidden environment overrides.

mod common;

use common::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_linked_out_of_the_pipeline_are_never_shown() {
    let app = TestApp::start(&[("leak/main.py", "print(1)\n"), ("env/main.py", "")]).await;
    let key_file = app.dir.path().join("data/encryption.key");
    let key = std::fs::read_to_string(&key_file).expect("the app generated a key");
    let dir = app.pipelines_dir();
    std::os::unix::fs::symlink(&key_file, dir.join("leak/requirements.txt")).unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", dir.join("env/pipeline.json")).unwrap();
    let (status, _) = app.post_json("/api/pipelines/refresh", "").await;
    assert_eq!(status, 200);

    for name in ["leak", "env"] {
        let (status, page) = app.get_text(&format!("/pipelines/{name}")).await;
        assert_eq!(status, 200);
        assert!(!page.contains(key.trim()), "{name}: the key leaked");
        assert!(!page.contains("PATH="), "{name}: the environment leaked");
        assert!(
            page.contains("leads outside the pipeline directory"),
            "{name}: {page}"
        );
        assert!(
            !page.contains(key_file.to_str().unwrap()),
            "the host path is not printed"
        );
        let (_, json) = app.get_json(&format!("/api/pipelines/{name}")).await;
        assert_eq!(json["valid"], false, "{json}");
        assert!(!json.to_string().contains(key.trim()));
        let (status, body) = app
            .post_json(&format!("/api/pipelines/{name}/run"), "{}")
            .await;
        assert_eq!(status, 422, "an invalid pipeline cannot run: {body}");
    }

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fastflow"))
        .args(["check", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("INVALID leak") && text.contains("INVALID env"), "{text}");
    assert!(
        text.contains("error: leak/requirements.txt: is a symbolic link that leads outside"),
        "{text}"
    );
    assert!(!text.contains(key.trim()));
    app.stop().await;
}
