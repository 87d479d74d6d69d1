//! Fast-Flow: a lightweight, Docker-native, Python-centric task orchestrator.

/// Wiring: database, discovery, runner and web server under one shutdown token.
pub mod app;
/// The audit trail: who changed what, from where.
pub mod audit;
/// Roles, API tokens, passwords, OAuth sign-in, invitations, the setup link and
/// the first checks of every request.
pub mod auth;
/// `fastflow backup` and `restore`.
pub mod backup;
/// Human-readable byte counts.
pub mod byte_size;
/// `fastflow check`: validates a pipelines directory for CI.
pub mod check;
/// The runtime of one-shot commands.
pub mod command_runtime;
/// Typed configuration from the environment.
pub mod config;
/// The lock a running server holds on `DATA_DIR`.
pub mod data_lock;
/// Pool, migrations and every SQL statement.
pub mod db;
/// Pipelines from a git repository: sync, snapshots, webhooks, warm-ups.
pub mod gitsync;
/// `fastflow import-fastflow`: a Python Fast-Flow 1.x database's history and secrets.
pub mod import_fastflow;
/// Log output (text or JSON) and the start-up summary line.
pub mod logging;
/// Failure notifications: e-mail and webhooks, queued and retried.
pub mod notify;
/// Pipeline discovery and `pipeline.json` metadata.
pub mod pipelines;
/// The Prometheus metrics `/metrics` serves.
pub mod prometheus;
/// What `/ready` and start-up check: directories, free space.
pub mod readiness;
/// This build's version and whether a newer release exists.
pub mod release_check;
/// Removes old runs with their files.
pub mod retention;
/// Run statuses and error types.
pub mod run_status;
/// Executes runs in Docker: queue dispatch, containers, logs, live hubs.
pub mod runner;
/// Fires the schedules that pipeline.json declares, with a slot ledger.
pub mod scheduler;
/// Secret values and the encryption key.
pub mod secrets;
/// Pages, fragments, SSE, JSON API.
pub mod web;
