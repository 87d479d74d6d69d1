//! The vocabulary of a run's life: its status (Fast-Flow 1.x values) and, for
//! failed runs, what kind of failure it was.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "TEXT", rename_all = "UPPERCASE")]
pub enum RunStatus {
    Pending,
    Running,
    Success,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        Self::Pending,
        Self::Running,
        Self::Success,
        Self::Failed,
        Self::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
            Self::Interrupted => "INTERRUPTED",
        }
    }

    /// A finished run never changes status again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Success | Self::Failed | Self::Interrupted)
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum ErrorType {
    /// The user's code failed (non-zero exit).
    PipelineError,
    /// Setting up the environment failed (`requirements.txt`, Python download): main.py never started.
    DependencyError,
    Timeout,
    /// Killed for running out of memory (`mem_hard_limit` or the host's).
    Oom,
    /// Fast-Flow or Docker failed, not the pipeline.
    InfrastructureError,
    Cancelled,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PipelineError => "pipeline_error",
            Self::DependencyError => "dependency_error",
            Self::Timeout => "timeout",
            Self::Oom => "oom",
            Self::InfrastructureError => "infrastructure_error",
            Self::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
