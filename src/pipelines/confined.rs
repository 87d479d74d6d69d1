//! Reading the files of one pipeline directory without ever leaving it.
//!
//! Every name is resolved beneath the directory by `cap-std` (with `openat2`
//! `RESOLVE_BENEATH` where the kernel has it), so a symbolic link to
//! `/etc/shadow`, `/proc/self/environ` or `../../data/encryption.key` is refused
//! instead of followed. Links that stay inside the directory work as before.
//! Only regular files are read (opened non-blocking, so a FIFO cannot hang a
//! scan), and never more than a caller-given number of bytes. Error messages
//! never print where a link points.

use std::io::Read;
use std::path::Path;

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

/// Why a file of a pipeline directory could not be used.
#[derive(Debug)]
pub enum FileProblem {
    /// A symbolic link (in the name or a parent) that resolves outside the directory.
    Outside,
    /// A symbolic link whose target does not exist.
    BrokenLink,
    /// Symbolic links that point at each other.
    LinkLoop,
    /// Not a regular file (a directory, FIFO, socket or device).
    NotRegular(&'static str),
    /// Larger than the caller's limit.
    TooLarge {
        max: u64,
    },
    Io(std::io::Error),
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Outside => f.write_str(
                "is a symbolic link that leads outside the pipeline directory; refused (copy the file into the directory instead)",
            ),
            Self::BrokenLink => f.write_str("is a symbolic link to a file that does not exist"),
            Self::LinkLoop => f.write_str("is a loop of symbolic links"),
            Self::NotRegular(kind) => write!(f, "is a {kind}, not a regular file"),
            Self::TooLarge { max } => write!(
                f,
                "is larger than {}; refused",
                crate::byte_size::human_bytes(*max)
            ),
            Self::Io(e) => write!(f, "cannot be read: {}", io_reason(e)),
        }
    }
}

/// The OS reason without any path (io::Error from cap-std carries none, but be sure).
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::NotFound => "not found".into(),
        _ => e
            .raw_os_error()
            .map(|code| std::io::Error::from_raw_os_error(code).to_string())
            .unwrap_or_else(|| e.kind().to_string()),
    }
}

/// A file's contents, possibly cut at the limit.
#[derive(Debug)]
pub struct FileBytes {
    pub bytes: Vec<u8>,
    /// False when the file was longer than the limit and only its start was read.
    pub complete: bool,
}

/// An open pipeline directory; all reads stay beneath it.
pub struct PipelineDir {
    dir: Dir,
}

impl PipelineDir {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            dir: Dir::open_ambient_dir(path, cap_std::ambient_authority())?,
        })
    }

    /// Whether an entry called `name` exists (a link counts, wherever it points).
    pub fn exists(&self, name: &str) -> bool {
        self.dir.symlink_metadata(name).is_ok()
    }

    /// Whether `name` exists as a regular file inside the directory (`Ok(false)` when absent).
    pub fn has_file(&self, name: &str) -> Result<bool, FileProblem> {
        match self.open_regular(name)? {
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    /// Reads `name` whole; `Ok(None)` when absent; `TooLarge` past `max` bytes.
    pub fn read(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>, FileProblem> {
        match self.read_prefix(name, max)? {
            None => Ok(None),
            Some(f) if f.complete => Ok(Some(f.bytes)),
            Some(_) => Err(FileProblem::TooLarge { max }),
        }
    }

    /// Reads at most `max` bytes of `name`; `Ok(None)` when absent.
    pub fn read_prefix(&self, name: &str, max: u64) -> Result<Option<FileBytes>, FileProblem> {
        let Some(file) = self.open_regular(name)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        file.take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(FileProblem::Io)?;
        let complete = bytes.len() as u64 <= max;
        bytes.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        Ok(Some(FileBytes { bytes, complete }))
    }

    fn open_regular(&self, name: &str) -> Result<Option<cap_std::fs::File>, FileProblem> {
        let link = match self.dir.symlink_metadata(name) {
            Ok(meta) => meta.file_type().is_symlink(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if is_escape(&e) => return Err(FileProblem::Outside),
            Err(e) => return Err(FileProblem::Io(e)),
        };
        let mut options = OpenOptions::new();
        // Non-blocking: opening a FIFO for reading would otherwise wait for a writer.
        options
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
        let file = match self.dir.open_with(name, &options) {
            Ok(f) => f,
            Err(e) if link && e.kind() == std::io::ErrorKind::NotFound => {
                return Err(FileProblem::BrokenLink);
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(FileProblem::LinkLoop),
            Err(e) if link || is_escape(&e) => return Err(FileProblem::Outside),
            Err(e) => return Err(FileProblem::Io(e)),
        };
        let file_type = file.metadata().map_err(FileProblem::Io)?.file_type();
        if !file_type.is_file() {
            return Err(FileProblem::NotRegular(describe(&file_type)));
        }
        Ok(Some(file))
    }
}

/// cap-std's "a path led outside" (a custom error, not an OS one), or `openat2`'s EXDEV.
fn is_escape(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EXDEV)
        || (e.kind() == std::io::ErrorKind::PermissionDenied && e.raw_os_error().is_none())
}

fn describe(t: &cap_std::fs::FileType) -> &'static str {
    use cap_std::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "named pipe (FIFO)"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() || t.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, tempfile::TempDir) {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.key"), "TOP-SECRET").unwrap();
        let pipeline = tempfile::tempdir().unwrap();
        std::fs::write(pipeline.path().join("main.py"), "print(1)").unwrap();
        (outside, pipeline)
    }

    #[test]
    fn links_that_leave_are_refused_without_naming_the_target() {
        let (outside, p) = setup();
        let secret = outside.path().join("secret.key");
        symlink(&secret, p.path().join("abs.txt")).unwrap();
        std::fs::create_dir(p.path().join("sub")).unwrap();
        symlink("../../", p.path().join("sub/up")).unwrap();
        let rel = pathdiff(&secret, p.path());
        symlink(&rel, p.path().join("rel.txt")).unwrap();
        symlink("/etc", p.path().join("etc")).unwrap();
        let dir = PipelineDir::open(p.path()).unwrap();
        for name in ["abs.txt", "rel.txt", "etc/passwd"] {
            let err = dir.read(name, 1 << 20).unwrap_err();
            assert!(matches!(err, FileProblem::Outside), "{name}: {err:?}");
            let text = err.to_string();
            assert!(!text.contains(outside.path().to_str().unwrap()) && !text.contains("/etc"));
        }
        let via_parent = format!(
            "sub/up/{}",
            outside.path().file_name().unwrap().to_str().unwrap()
        );
        assert!(
            dir.read(&format!("{via_parent}/secret.key"), 1 << 20)
                .is_err()
        );
        assert!(dir.read("../x", 1 << 20).is_err());
    }

    #[test]
    fn links_inside_work_and_absent_files_are_none() {
        let (_o, p) = setup();
        std::fs::create_dir(p.path().join("conf")).unwrap();
        std::fs::write(p.path().join("conf/reqs.txt"), "six\n").unwrap();
        symlink("conf/reqs.txt", p.path().join("requirements.txt")).unwrap();
        let dir = PipelineDir::open(p.path()).unwrap();
        assert_eq!(
            dir.read("requirements.txt", 100).unwrap().unwrap(),
            b"six\n"
        );
        assert!(dir.read("pipeline.json", 100).unwrap().is_none());
        assert!(dir.has_file("main.py").unwrap());
        symlink("conf/missing.txt", p.path().join("dangling.txt")).unwrap();
        assert!(matches!(
            dir.read("dangling.txt", 100),
            Err(FileProblem::BrokenLink)
        ));
    }

    #[test]
    fn a_loop_of_links_is_called_a_loop() {
        let (_o, p) = setup();
        symlink("b.txt", p.path().join("a.txt")).unwrap();
        symlink("a.txt", p.path().join("b.txt")).unwrap();
        let dir = PipelineDir::open(p.path()).unwrap();
        let err = dir.read("a.txt", 10).unwrap_err();
        assert!(matches!(err, FileProblem::LinkLoop), "{err:?}");
    }

    #[test]
    fn fifos_directories_and_huge_files_are_refused_without_hanging() {
        let (_o, p) = setup();
        let fifo = std::ffi::CString::new(p.path().join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        std::fs::create_dir(p.path().join("adir")).unwrap();
        std::fs::write(p.path().join("big"), vec![b'x'; 2048]).unwrap();
        let dir = PipelineDir::open(p.path()).unwrap();
        assert!(matches!(
            dir.read("fifo", 10),
            Err(FileProblem::NotRegular(_))
        ));
        assert!(matches!(
            dir.read("adir", 10),
            Err(FileProblem::NotRegular(_))
        ));
        assert!(matches!(
            dir.read("big", 1024),
            Err(FileProblem::TooLarge { max: 1024 })
        ));
        let prefix = dir.read_prefix("big", 1024).unwrap().unwrap();
        assert_eq!((prefix.bytes.len(), prefix.complete), (1024, false));
    }

    /// `target` relative to `base`, through `..` (both absolute).
    fn pathdiff(target: &Path, base: &Path) -> std::path::PathBuf {
        let ups = base.components().count() - 1;
        let mut rel = std::path::PathBuf::new();
        for _ in 0..ups {
            rel.push("..");
        }
        rel.join(target.strip_prefix("/").unwrap())
    }
}
