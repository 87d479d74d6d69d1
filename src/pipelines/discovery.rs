//! Scans `PIPELINES_DIR` exactly as Fast-Flow does: every immediate subdirectory
//! with a `main.py` is a pipeline named after the directory; metadata comes from
//! `pipeline.json`, else `{name}.json`; `requirements.txt` is optional.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::confined::PipelineDir;
use super::fields::FieldIssue;
use super::host::{HostResources, fit_to_host};
use super::metadata::{PipelineMetadata, parse_metadata};

/// requirements.txt is shown in the UI; anything larger is cut for display only.
const MAX_REQUIREMENTS_DISPLAY: u64 = 64 * 1024;
/// A metadata file larger than this is refused (the pipeline is invalid).
pub const MAX_METADATA_BYTES: u64 = 1024 * 1024;

/// One discovered pipeline, valid or not.
#[derive(Debug, Clone, Serialize)]
pub struct Pipeline {
    pub name: String,
    #[serde(skip)]
    pub dir: PathBuf,
    /// The metadata file that was read (file name only), if any.
    pub metadata_file: Option<String>,
    pub has_requirements: bool,
    #[serde(skip)]
    pub requirements: Option<String>,
    pub metadata: PipelineMetadata,
    /// Problems that make the pipeline unrunnable; empty means valid.
    pub errors: Vec<FieldIssue>,
    pub warnings: Vec<FieldIssue>,
    /// The git commit the folder comes from (git sync); `None` for a plain directory.
    #[serde(skip)]
    pub revision: Option<std::sync::Arc<super::Revision>>,
}

impl Pipeline {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors as one line each, prefixed with the file they come from.
    pub fn error_lines(&self) -> Vec<String> {
        self.errors.iter().map(|e| self.located(e)).collect()
    }

    /// `file: problem` for one error or warning of this pipeline.
    pub fn located(&self, issue: &FieldIssue) -> String {
        match self.file_of(issue) {
            Some(file) => format!("{file}: {issue}"),
            None => issue.to_string(),
        }
    }

    /// The file an issue is in; `None` for the directory itself.
    pub fn file_of<'a>(&'a self, issue: &'a FieldIssue) -> Option<&'a str> {
        match issue.file.as_deref() {
            Some("") => None,
            Some(file) => Some(file),
            None => Some(self.metadata_file.as_deref().unwrap_or("main.py")),
        }
    }
}

/// The result of one scan.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub pipelines: BTreeMap<String, Arc<Pipeline>>,
    /// Set when the directory itself could not be read.
    pub dir_error: Option<String>,
}

/// Fast-Flow names are directory names; refuse anything that could leave the directory
/// or be confused with a path or option.
pub fn is_valid_pipeline_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Pipelines by name, each checked on its own (before the checks across pipelines).
pub type Found = BTreeMap<String, Arc<Pipeline>>;

/// Scans `root`. Never fails: problems are recorded on the snapshot or the pipeline.
/// With `host`, hard limits above the engine host's are lowered to it (with a warning).
pub fn scan(root: &Path, host: Option<&HostResources>) -> Snapshot {
    let (found, dir_error) = scan_each(root, host);
    assemble(&found, dir_error)
}

/// Every pipeline folder of `root`, loaded on its own; or why `root` cannot be read.
pub fn scan_each(root: &Path, host: Option<&HostResources>) -> (Found, Option<String>) {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) => {
            return (
                Found::new(),
                Some(format!("PIPELINES_DIR {}: {e}", root.display())),
            );
        }
    };
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut found = Found::new();
    for entry in entries.flatten() {
        // A name that is not UTF-8 keeps its bytes visible (and distinct): `"a\xFFb"`.
        let name = entry
            .file_name()
            .into_string()
            .unwrap_or_else(|raw| format!("{raw:?}"));
        if let Some(p) = load_folder(&canonical_root, &entry.path(), &name, host) {
            found.insert(name, Arc::new(p));
        }
    }
    (found, None)
}

/// The folder `name` of `root` as a pipeline, or `None` if it is none (any more).
pub fn scan_one(root: &Path, name: &str, host: Option<&HostResources>) -> Option<Pipeline> {
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    load_folder(&canonical_root, &root.join(name), name, host)
}

fn load_folder(
    canonical_root: &Path,
    dir: &Path,
    name: &str,
    host: Option<&HostResources>,
) -> Option<Pipeline> {
    if name.starts_with('.') {
        return None;
    }
    // Any `main.py` entry (file, link, even a broken one) makes a pipeline; whether
    // it may be used is decided in `load_pipeline`, so a bad one is shown, not hidden.
    if !dir.is_dir() || dir.join("main.py").symlink_metadata().is_err() {
        return None;
    }
    let mut pipeline = load_pipeline(canonical_root, dir, name);
    if let Some(host) = host {
        let m = &mut pipeline.metadata;
        fit_to_host(&mut m.limits, host, "", &mut pipeline.warnings);
        for (i, schedule) in m.schedules.iter_mut().enumerate() {
            let prefix = format!("schedules[{i}]");
            fit_to_host(&mut schedule.limits, host, &prefix, &mut pipeline.warnings);
        }
    }
    Some(pipeline)
}

/// The snapshot of `found` with the checks across pipelines (downstream chains);
/// only pipelines those checks speak about are copied.
pub fn assemble(found: &Found, dir_error: Option<String>) -> Snapshot {
    let mut pipelines = found.clone();
    super::downstream::check(&mut pipelines);
    Snapshot {
        pipelines,
        dir_error,
    }
}

fn load_pipeline(root: &Path, dir: &Path, name: &str) -> Pipeline {
    let mut pipeline = Pipeline {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        metadata_file: None,
        has_requirements: false,
        requirements: None,
        metadata: PipelineMetadata::default(),
        errors: Vec::new(),
        warnings: Vec::new(),
        revision: None,
    };
    let fail = |pipeline: &mut Pipeline, message: String| {
        // An empty file name: the problem is the directory itself.
        pipeline.errors.push(FieldIssue::in_file("", message));
    };
    if !is_valid_pipeline_name(name) {
        fail(
            &mut pipeline,
            format!(
                "directory name `{}` is not a valid pipeline name (letters, digits, `_`, `-`, `.`; not starting with `.` or `-`)",
                name.escape_debug()
            ),
        );
        return pipeline;
    }
    // A symlinked pipeline directory must stay inside PIPELINES_DIR.
    match dir.canonicalize() {
        Ok(real) if real == root => {
            fail(
                &mut pipeline,
                "the directory is a symbolic link to PIPELINES_DIR itself; refused (a run would see every pipeline)".into(),
            );
            return pipeline;
        }
        Ok(real) if real.starts_with(root) => pipeline.dir = real,
        Ok(_) => {
            fail(
                &mut pipeline,
                "the directory is a symbolic link that leads outside PIPELINES_DIR; refused".into(),
            );
            return pipeline;
        }
        Err(e) => {
            fail(
                &mut pipeline,
                format!("cannot resolve the directory: {}", e.kind()),
            );
            return pipeline;
        }
    }
    let files = match PipelineDir::open(&pipeline.dir) {
        Ok(d) => d,
        Err(e) => {
            fail(
                &mut pipeline,
                format!("cannot open the directory: {}", e.kind()),
            );
            return pipeline;
        }
    };
    if let Err(problem) = files.has_file("main.py") {
        pipeline
            .errors
            .push(FieldIssue::in_file("main.py", problem.to_string()));
    }
    read_metadata(&files, &mut pipeline);
    match files.read_prefix("requirements.txt", MAX_REQUIREMENTS_DISPLAY) {
        Ok(None) => {}
        Ok(Some(text)) => {
            pipeline.has_requirements = true;
            pipeline.requirements = Some(String::from_utf8_lossy(&text.bytes).into_owned());
        }
        Err(problem) => {
            pipeline.has_requirements = true;
            pipeline
                .errors
                .push(FieldIssue::in_file("requirements.txt", problem.to_string()));
        }
    }
    pipeline
}

/// Reads `pipeline.json`, else `{name}.json`, into the pipeline.
fn read_metadata(files: &PipelineDir, pipeline: &mut Pipeline) {
    let named = format!("{}.json", pipeline.name);
    let present: Vec<&str> = ["pipeline.json", named.as_str()]
        .into_iter()
        .filter(|f| files.exists(f))
        .collect();
    let Some(file) = present.first() else {
        return;
    };
    pipeline.metadata_file = Some(file.to_string());
    match files.read(file, MAX_METADATA_BYTES) {
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(text) => {
                let parsed = parse_metadata(&text);
                pipeline.metadata = parsed.metadata;
                pipeline.errors.extend(parsed.errors);
                pipeline.warnings = parsed.warnings;
            }
            Err(e) => pipeline.errors.push(FieldIssue {
                file: None,
                field: String::new(),
                message: format!(
                    "is not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            }),
        },
        // Removed between the listing and the read: the next scan sees the new state.
        Ok(None) => pipeline.metadata_file = None,
        Err(problem) => pipeline.errors.push(FieldIssue {
            file: None,
            field: String::new(),
            message: problem.to_string(),
        }),
    }
    if present.len() > 1 {
        pipeline.warnings.push(FieldIssue {
            file: None,
            field: String::new(),
            message: format!("both pipeline.json and {named} exist; {named} is ignored"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn discovers_like_fast_flow() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "plain/main.py", "print(1)");
        write(d, "with_json/main.py", "");
        write(d, "with_json/pipeline.json", r#"{"description": "hi"}"#);
        write(d, "named/main.py", "");
        write(d, "named/named.json", r#"{"tags": ["x"]}"#);
        write(d, "broken/main.py", "");
        write(d, "broken/pipeline.json", "{nope");
        write(d, "reqs/main.py", "");
        write(d, "reqs/requirements.txt", "six==1.16.0\n");
        write(d, "no_main/helper.py", "");
        write(d, ".hidden/main.py", "");
        write(d, "main.py", "");
        let s = scan(d, None);
        let names: Vec<&str> = s.pipelines.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["broken", "named", "plain", "reqs", "with_json"]);
        assert_eq!(
            s.pipelines["with_json"].metadata.description.as_deref(),
            Some("hi")
        );
        assert_eq!(
            s.pipelines["named"].metadata_file.as_deref(),
            Some("named.json")
        );
        assert_eq!(s.pipelines["named"].metadata.tags, vec!["x"]);
        assert!(!s.pipelines["broken"].is_valid());
        assert!(s.pipelines["broken"].error_lines()[0].starts_with("pipeline.json: invalid JSON"));
        assert!(s.pipelines["reqs"].has_requirements);
        assert!(s.pipelines["plain"].is_valid());
    }

    #[test]
    fn symlink_outside_root_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "main.py", "");
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("escape")).unwrap();
        let s = scan(t.path(), None);
        let p = &s.pipelines["escape"];
        assert!(!p.is_valid());
        assert!(p.errors[0].message.contains("outside PIPELINES_DIR"));
    }

    #[test]
    fn files_linked_outside_make_the_pipeline_invalid_and_are_never_read() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("encryption.key");
        std::fs::write(&secret, "SECRET-KEY-VALUE").unwrap();
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        for (name, linked) in [
            ("reqs", "requirements.txt"),
            ("meta", "pipeline.json"),
            ("named", "named.json"),
            ("entry", "main.py"),
        ] {
            if linked != "main.py" {
                write(d, &format!("{name}/main.py"), "print(1)");
            }
            std::fs::create_dir_all(d.join(name)).unwrap();
            std::os::unix::fs::symlink(&secret, d.join(name).join(linked)).unwrap();
        }
        let s = scan(d, None);
        for (name, linked) in [
            ("reqs", "requirements.txt"),
            ("meta", "pipeline.json"),
            ("named", "named.json"),
            ("entry", "main.py"),
        ] {
            let p = &s.pipelines[name];
            assert!(!p.is_valid(), "{name} must be invalid");
            let lines = p.error_lines().join("\n");
            assert!(lines.contains(linked), "{name}: {lines}");
            assert!(
                lines.contains("leads outside the pipeline directory"),
                "{name}: {lines}"
            );
            assert!(!lines.contains(outside.path().to_str().unwrap()), "{lines}");
            assert!(!lines.contains("SECRET"), "{lines}");
            assert!(
                p.requirements.is_none(),
                "{name}: the target must not be read"
            );
        }
        // A link that stays inside the directory is fine.
        write(d, "inside/main.py", "");
        write(d, "inside/deps/base.txt", "six==1.16.0\n");
        std::os::unix::fs::symlink("deps/base.txt", d.join("inside/requirements.txt")).unwrap();
        let p = &scan(d, None).pipelines["inside"];
        assert!(p.is_valid(), "{:?}", p.errors);
        assert_eq!(p.requirements.as_deref(), Some("six==1.16.0\n"));
    }

    #[test]
    fn a_link_to_the_root_or_odd_names_are_invalid_and_distinct() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "main.py", "");
        std::os::unix::fs::symlink(".", d.join("everything")).unwrap();
        use std::os::unix::ffi::OsStrExt;
        for raw in [&b"a\xffb"[..], b"a\xfeb", b"two\nlines"] {
            let dir = d.join(std::ffi::OsStr::from_bytes(raw));
            write(&dir, "main.py", "");
        }
        let s = scan(d, None);
        let root = &s.pipelines["everything"];
        assert!(
            root.error_lines()[0].contains("PIPELINES_DIR itself"),
            "{:?}",
            root.errors
        );
        // Three odd directories, three entries, none with a raw newline in its messages.
        let odd: Vec<&Arc<Pipeline>> = s
            .pipelines
            .values()
            .filter(|p| !p.is_valid() && p.name != "everything")
            .collect();
        assert_eq!(odd.len(), 3, "{:?}", s.pipelines.keys().collect::<Vec<_>>());
        assert!(odd.iter().all(|p| !p.error_lines()[0].contains('\n')));
    }

    #[test]
    fn oversized_or_binary_metadata_is_an_error_not_a_crash() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "big/main.py", "");
        let huge = format!("{{\"description\": \"{}\"}}", "x".repeat(2 << 20));
        write(d, "big/pipeline.json", &huge);
        write(d, "bin/main.py", "");
        std::fs::write(d.join("bin/pipeline.json"), b"{\"a\": \"\xff\"}").unwrap();
        let s = scan(d, None);
        assert!(s.pipelines["big"].error_lines()[0].contains("larger than 1.0 MiB"));
        assert!(s.pipelines["bin"].error_lines()[0].contains("not UTF-8"));
    }

    #[test]
    fn missing_dir_is_reported_not_fatal() {
        let s = scan(Path::new("/nonexistent/fastflow/pipelines"), None);
        assert!(s.pipelines.is_empty());
        assert!(s.dir_error.unwrap().contains("/nonexistent"));
    }

    #[test]
    fn names() {
        assert!(is_valid_pipeline_name("etl_daily-2.v1"));
        for bad in ["", ".", "..", "../x", "a/b", "-rf", "with space", ".hidden"] {
            assert!(!is_valid_pipeline_name(bad), "{bad}");
        }
    }
}
