//! The engine host's CPUs and memory, and fitting hard limits to them. Docker
//! refuses a CPU limit above the host's CPUs; pipeline repositories written on a
//! bigger machine (a 4-CPU limit run on a 2-core host) are common, so such a
//! limit is lowered to what the host has, with a warning on the pipeline, rather
//! than failing every run.

use super::fields::{FieldIssue, MemorySize};
use super::metadata::ResourceLimits;

/// What the machine that runs the containers has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostResources {
    pub cpus: f64,
    pub memory_bytes: u64,
}

impl HostResources {
    /// This machine, until the engine tells us about its own (usually the same).
    pub fn local() -> Option<Self> {
        // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
        let (cpus, pages, page_size) = unsafe {
            (
                libc::sysconf(libc::_SC_NPROCESSORS_ONLN),
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        Self::from_engine(cpus, pages.checked_mul(page_size)?)
    }

    /// From the engine's `/info` (`NCPU`, `MemTotal`); `None` if either is unknown.
    pub fn from_engine(cpus: i64, memory_bytes: i64) -> Option<Self> {
        (cpus > 0 && memory_bytes > 0).then_some(Self {
            cpus: cpus as f64,
            memory_bytes: memory_bytes as u64,
        })
    }
}

/// Lowers hard (and soft) limits above the host's to the host's, with a warning per field.
pub fn fit_to_host(
    limits: &mut ResourceLimits,
    host: &HostResources,
    prefix: &str,
    warnings: &mut Vec<FieldIssue>,
) {
    let path = |f: &str| {
        if prefix.is_empty() {
            f.to_string()
        } else {
            format!("{prefix}.{f}")
        }
    };
    for (field, cpu) in [
        ("cpu_hard_limit", &mut limits.cpu_hard_limit),
        ("cpu_soft_limit", &mut limits.cpu_soft_limit),
    ] {
        if let Some(value) = cpu.as_mut()
            && *value > host.cpus
        {
            warnings.push(FieldIssue {
                file: None,
                field: path(field),
                message: format!(
                    "{value} CPUs is more than the Docker host has ({}); using {}",
                    host.cpus, host.cpus
                ),
            });
            *value = host.cpus;
        }
    }
    for (field, mem) in [
        ("mem_hard_limit", &mut limits.mem_hard_limit),
        ("mem_soft_limit", &mut limits.mem_soft_limit),
    ] {
        if let Some(value) = mem.as_mut()
            && value.bytes > host.memory_bytes
        {
            let host_text = format!("{}m", host.memory_bytes >> 20);
            warnings.push(FieldIssue {
                file: None,
                field: path(field),
                message: format!(
                    "`{}` is more memory than the Docker host has ({}); using {host_text}",
                    value.text,
                    crate::byte_size::human_bytes(host.memory_bytes)
                ),
            });
            *value = MemorySize {
                text: host_text,
                bytes: (host.memory_bytes >> 20) << 20,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipelines::metadata::parse_metadata;

    #[test]
    fn limits_above_the_host_are_lowered_with_a_warning() {
        let mut m = parse_metadata(
            r#"{"cpu_hard_limit": 4, "cpu_soft_limit": 3, "mem_hard_limit": "64g", "mem_soft_limit": "1g"}"#,
        )
        .metadata;
        let host = HostResources {
            cpus: 2.0,
            memory_bytes: 8 << 30,
        };
        let mut warnings = Vec::new();
        fit_to_host(&mut m.limits, &host, "", &mut warnings);
        assert_eq!(m.limits.cpu_hard_limit, Some(2.0));
        assert_eq!(m.limits.cpu_soft_limit, Some(2.0));
        assert_eq!(m.limits.mem_hard_limit.as_ref().unwrap().bytes, 8 << 30);
        assert_eq!(m.limits.mem_soft_limit.as_ref().unwrap().bytes, 1 << 30);
        let fields: Vec<&str> = warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(
            fields,
            ["cpu_hard_limit", "cpu_soft_limit", "mem_hard_limit"]
        );
        assert!(warnings[0].message.contains("using 2"));
        assert!(HostResources::local().is_some_and(|h| h.cpus >= 1.0));
    }
}
