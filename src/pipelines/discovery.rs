//! Scans `PIPELINES_DIR` exactly as Fast-Flow does: every immediate subdirectory
//! with a `main.py` is a pipeline named after the directory; metadata comes from
//! `pipeline.json`, else `{name}.json`; `requirements.txt` is optional.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::fields::FieldIssue;
use super::metadata::{PipelineMetadata, parse_metadata};

/// requirements.txt is shown in the UI; anything larger is cut for display only.
const MAX_REQUIREMENTS_DISPLAY: u64 = 64 * 1024;

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
}

impl Pipeline {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors as one line each, prefixed with the file they come from.
    pub fn error_lines(&self) -> Vec<String> {
        let file = self.metadata_file.as_deref().unwrap_or("main.py");
        self.errors.iter().map(|e| format!("{file}: {e}")).collect()
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

/// Scans `root`. Never fails: problems are recorded on the snapshot or the pipeline.
pub fn scan(root: &Path) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) => {
            snapshot.dir_error = Some(format!("PIPELINES_DIR {}: {e}", root.display()));
            return snapshot;
        }
    };
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let dir = entry.path();
        if !dir.is_dir() || !dir.join("main.py").is_file() {
            continue;
        }
        let pipeline = load_pipeline(&canonical_root, &dir, &name);
        snapshot.pipelines.insert(name, Arc::new(pipeline));
    }
    snapshot
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
    };
    if !is_valid_pipeline_name(name) {
        pipeline.errors.push(FieldIssue {
            field: String::new(),
            message: format!(
                "directory name `{name}` is not a valid pipeline name (letters, digits, `_`, `-`, `.`; not starting with `.` or `-`)"
            ),
        });
        return pipeline;
    }
    // A symlinked pipeline directory must stay inside PIPELINES_DIR.
    match dir.canonicalize() {
        Ok(real) if real.starts_with(root) => pipeline.dir = real,
        Ok(real) => {
            pipeline.errors.push(FieldIssue {
                field: String::new(),
                message: format!(
                    "directory resolves to {} which is outside PIPELINES_DIR; refused",
                    real.display()
                ),
            });
            return pipeline;
        }
        Err(e) => {
            pipeline.errors.push(FieldIssue {
                field: String::new(),
                message: format!("cannot resolve directory: {e}"),
            });
            return pipeline;
        }
    }

    let named = format!("{name}.json");
    let candidates = ["pipeline.json", named.as_str()];
    let present: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|f| dir.join(f).is_file())
        .collect();
    if let Some(file) = present.first() {
        pipeline.metadata_file = Some(file.to_string());
        match std::fs::read_to_string(dir.join(file)) {
            Ok(text) => {
                let parsed = parse_metadata(&text);
                pipeline.metadata = parsed.metadata;
                pipeline.errors = parsed.errors;
                pipeline.warnings = parsed.warnings;
            }
            Err(e) => pipeline.errors.push(FieldIssue {
                field: String::new(),
                message: format!("cannot read: {e}"),
            }),
        }
        if present.len() > 1 {
            pipeline.warnings.push(FieldIssue {
                field: String::new(),
                message: format!("both pipeline.json and {named} exist; {named} is ignored"),
            });
        }
    }

    let req = dir.join("requirements.txt");
    if req.is_file() {
        pipeline.has_requirements = true;
        pipeline.requirements = read_prefix(&req, MAX_REQUIREMENTS_DISPLAY);
    }
    pipeline
}

fn read_prefix(path: &Path, max: u64) -> Option<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(max)
        .read_to_end(&mut buf)
        .ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
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
        let s = scan(d);
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
        let s = scan(t.path());
        let p = &s.pipelines["escape"];
        assert!(!p.is_valid());
        assert!(p.errors[0].message.contains("outside PIPELINES_DIR"));
    }

    #[test]
    fn missing_dir_is_reported_not_fatal() {
        let s = scan(Path::new("/nonexistent/fastflow/pipelines"));
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
