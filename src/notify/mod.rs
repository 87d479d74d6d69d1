//! Failure notifications. When a run's outcome is final (after its retries),
//! `Notifier::run_ended` decides what it is told as (failure, timeout, OOM,
//! recovery, success), which targets want it (the server's settings and the
//! pipeline's `notify`), and stores one pending message per target. The
//! dispatcher (`dispatcher.rs`) sends them in the background with retries, so
//! neither a slow mail server nor a dead webhook ever holds up a run.

pub mod dispatcher;
pub mod email;
pub mod message;
pub mod settings;
pub mod webhook;
pub mod webhook_guard;

use std::sync::Arc;

use chrono::Utc;

use crate::config::Config;
use crate::db::notifications::{FAILED, NewDelivery, PENDING};
use crate::db::{self, DbError, Pool, Run};
use crate::pipelines::PipelineRegistry;
use crate::pipelines::notify_spec::{NotifyEvent, NotifySpec, WebhookFormat, shown_url};
use crate::run_status::{ErrorType, RunStatus};
use crate::secrets::Cipher;

/// Messages waiting at most; past it a new one is recorded as failed at once,
/// so a dead mail server cannot grow the table without bound.
pub const MAX_PENDING: i64 = 1000;
/// Test sends per minute, all callers together: a WRITE user cannot turn the
/// test button into a mail cannon.
pub const TEST_SENDS_PER_MINUTE: u32 = 10;
/// The longest a test send may take (the page waits for it).
const TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Where a webhook message's URL is read when it is sent.
pub const SOURCE_SETTINGS_WEBHOOK: &str = "settings:webhook";
pub const SOURCE_SETTINGS_TEAMS: &str = "settings:teams";
pub const SOURCE_PIPELINE_WEBHOOK: &str = "pipeline:webhook";
pub const SOURCE_EMAIL: &str = "email";

/// Why one attempt failed, and whether another may succeed.
#[derive(Debug, Clone)]
pub struct SendError {
    pub message: String,
    pub retry: bool,
}

impl SendError {
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: true,
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: false,
        }
    }
}

/// Why a test send failed.
#[derive(Debug, Clone)]
pub struct TestFailure {
    pub message: String,
    pub kind: TestFailureKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestFailureKind {
    /// The channel is not set up (or the database failed).
    NotSetUp,
    /// Over [`TEST_SENDS_PER_MINUTE`].
    TooMany,
    /// The server or webhook refused or did not answer.
    Refused,
}

/// What a final outcome is, for notifications; `None` for a cancel.
fn outcome_of(status: RunStatus, error_type: Option<ErrorType>) -> Option<NotifyEvent> {
    match (status, error_type) {
        (RunStatus::Success, _) => Some(NotifyEvent::Success),
        (RunStatus::Failed, Some(ErrorType::Cancelled)) => None,
        (RunStatus::Failed, Some(ErrorType::Timeout)) => Some(NotifyEvent::Timeout),
        (RunStatus::Failed, Some(ErrorType::Oom)) => Some(NotifyEvent::Oom),
        (RunStatus::Failed, _) => Some(NotifyEvent::Failure),
        _ => None,
    }
}

pub struct Notifier {
    pool: Pool,
    config: Arc<Config>,
    cipher: Arc<Cipher>,
    registry: Arc<PipelineRegistry>,
    http: reqwest::Client,
    /// For pipelines' own webhooks: refuses the engine, link-local and loopback.
    pipeline_http: reqwest::Client,
    forbidden: Arc<webhook_guard::Forbidden>,
    wake: tokio::sync::Notify,
    /// The address the server really listens at, when BASE_URL named port 0 (tests).
    base_url: std::sync::OnceLock<String>,
    test_sends: governor::DefaultDirectRateLimiter,
}

impl Notifier {
    pub fn new(
        pool: Pool,
        config: Arc<Config>,
        cipher: Arc<Cipher>,
        registry: Arc<PipelineRegistry>,
    ) -> Arc<Self> {
        let forbidden = Arc::new(webhook_guard::Forbidden::from_config(&config));
        Arc::new(Self {
            pipeline_http: webhook_guard::client(forbidden.clone()),
            forbidden,
            pool,
            config,
            cipher,
            registry,
            http: webhook::client(),
            wake: tokio::sync::Notify::new(),
            base_url: std::sync::OnceLock::new(),
            test_sends: governor::RateLimiter::direct(governor::Quota::per_minute(
                std::num::NonZeroU32::new(TEST_SENDS_PER_MINUTE)
                    .unwrap_or(std::num::NonZeroU32::MIN),
            )),
        })
    }

    /// Links point here when FRONTEND_URL is unset (the address bound at start).
    pub fn set_base_url(&self, base: String) {
        let _ = self.base_url.set(base);
    }

    pub async fn settings(&self) -> Result<settings::Effective, DbError> {
        let mut s = settings::load(&self.pool, &self.config, &self.cipher).await?;
        if let (None, Some(base)) = (&self.config.notify.frontend_url, self.base_url.get()) {
            s.link_base = base.clone();
        }
        Ok(s)
    }

    /// A run's outcome is final: records its outcome and queues what it is
    /// told as. Only database writes: sending happens in the dispatcher.
    pub async fn run_ended(
        &self,
        spec: Option<&NotifySpec>,
        run: &Run,
        status: RunStatus,
        error_type: Option<ErrorType>,
    ) {
        // A busy database (many writers at once) gets a few more tries.
        for attempt in 1..=5 {
            match self.queue_for_run(spec, run, status, error_type).await {
                Ok(()) => return,
                Err(e) if attempt < 5 && e.is_busy() => {
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => {
                    tracing::error!(run_id = %run.id, error = %e, "could not queue the run's notifications");
                    return;
                }
            }
        }
    }

    async fn queue_for_run(
        &self,
        spec: Option<&NotifySpec>,
        run: &Run,
        status: RunStatus,
        error_type: Option<ErrorType>,
    ) -> Result<(), DbError> {
        let Some(outcome) = outcome_of(status, error_type) else {
            return Ok(());
        };
        let previous = db::notifications::swap_outcome(
            &self.pool,
            &run.pipeline_name,
            outcome.as_str(),
            &run.id,
            Utc::now(),
        )
        .await?;
        let event = match (outcome, previous.as_deref()) {
            (NotifyEvent::Success, Some("failure" | "timeout" | "oom")) => NotifyEvent::Recovery,
            (o, _) => o,
        };
        let settings = self.settings().await?;
        let on = spec
            .and_then(|s| s.on.as_deref())
            .unwrap_or(&settings.notify_on);
        if !event.wanted_by(on) {
            return Ok(());
        }
        let targets = targets(&settings, spec);
        for t in &targets {
            self.queue(Some(&run.id), &run.pipeline_name, event.as_str(), t)
                .await?;
        }
        if !targets.is_empty() {
            tracing::info!(run_id = %run.id, event = event.as_str(), messages = targets.len(), "notifications queued");
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Stores one message: pending for the dispatcher, or (`test`) being sent
    /// by the caller, which the dispatcher never takes.
    async fn queue(
        &self,
        run_id: Option<&str>,
        pipeline: &str,
        event: &str,
        t: &Target,
    ) -> Result<i64, DbError> {
        let full = db::notifications::pending_count(&self.pool).await? >= MAX_PENDING;
        let queue_full = format!("not sent: {MAX_PENDING} notifications are already waiting");
        let error = t.unusable.clone().or(full.then_some(queue_full));
        db::notifications::insert(
            &self.pool,
            &NewDelivery {
                run_id,
                pipeline_name: pipeline,
                event,
                channel: t.channel,
                source: t.source,
                target: &t.shown,
                format: t.format.map(|f| f.as_str()),
                status: match (&error, run_id) {
                    (Some(_), _) => FAILED,
                    (None, None) => db::notifications::SENDING,
                    (None, Some(_)) => PENDING,
                },
                last_error: error.as_deref(),
            },
            Utc::now(),
        )
        .await
    }

    /// Sends a test message to one channel now (`email`, `webhook`, `teams`),
    /// records it, and says how it went.
    pub async fn send_test(&self, channel: &str) -> Result<String, TestFailure> {
        let not_set = |message: String| TestFailure {
            message,
            kind: TestFailureKind::NotSetUp,
        };
        let settings = self.settings().await.map_err(|e| not_set(e.to_string()))?;
        let target = targets(&settings, None)
            .into_iter()
            .find(|t| t.kind == channel)
            .ok_or_else(|| {
                not_set(match channel {
                    "email" => settings
                        .email_unready()
                        .unwrap_or_else(|| "no recipients are set (EMAIL_RECIPIENTS)".into()),
                    "teams" => {
                        "Teams is off or has no webhook URL (TEAMS_ENABLED, TEAMS_WEBHOOK_URL)"
                            .into()
                    }
                    "webhook" => "no webhook URL is set (NOTIFY_WEBHOOK_URL)".into(),
                    other => format!(
                        "unknown channel `{}`",
                        crate::pipelines::fields::shown(other)
                    ),
                })
            })?;
        if let Some(why) = &target.unusable {
            return Err(not_set(why.clone()));
        }
        if self.test_sends.check().is_err() {
            return Err(TestFailure {
                message: format!(
                    "at most {TEST_SENDS_PER_MINUTE} test messages a minute; try again shortly"
                ),
                kind: TestFailureKind::TooMany,
            });
        }
        let id = self
            .queue(None, "(test)", "test", &target)
            .await
            .map_err(|e| not_set(e.to_string()))?;
        let delivery = db::notifications::get(&self.pool, id)
            .await
            .map_err(|e| not_set(e.to_string()))?
            .ok_or_else(|| not_set("the test message vanished".into()))?;
        // The test is sent at once, not by the dispatcher, and never retried;
        // it answers within the page's request time whatever the server does.
        let limit = TEST_TIMEOUT.min(
            self.config
                .http
                .request_timeout
                .saturating_sub(std::time::Duration::from_secs(1)),
        );
        let result = match tokio::time::timeout(limit, self.attempt(&delivery, &settings)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::retry(format!(
                "{} did not answer within {} s",
                target.shown,
                limit.as_secs()
            ))),
        };
        let (status, error) = match &result {
            Ok(()) => (db::notifications::SENT, None),
            Err(e) => (FAILED, Some(e.message.as_str())),
        };
        crate::prometheus::metrics().notification_attempt(&delivery.channel, status);
        db::notifications::record_attempt(&self.pool, id, status, error, None, Utc::now())
            .await
            .map_err(|e| not_set(e.to_string()))?;
        match result {
            Ok(()) => Ok(format!("sent to {}", target.shown)),
            Err(e) => Err(TestFailure {
                message: e.message,
                kind: TestFailureKind::Refused,
            }),
        }
    }
}

/// One place a message goes.
#[derive(Debug, Clone)]
struct Target {
    /// `email`, `webhook` or `teams` (for the test buttons).
    kind: &'static str,
    channel: &'static str,
    source: &'static str,
    shown: String,
    format: Option<WebhookFormat>,
    /// Why it cannot be sent at all (recorded as failed at once).
    unusable: Option<String>,
}

/// The targets of one message: e-mail to the server's and the pipeline's
/// recipients, the server's webhook, Teams, and the pipeline's webhook.
fn targets(settings: &settings::Effective, spec: Option<&NotifySpec>) -> Vec<Target> {
    let mut out = Vec::new();
    let mut recipients: Vec<String> = if settings.email_enabled {
        settings.email_recipients.clone()
    } else {
        Vec::new()
    };
    for a in spec.map(|s| s.email.as_slice()).unwrap_or_default() {
        if !recipients.contains(a) {
            recipients.push(a.clone());
        }
    }
    if !recipients.is_empty() {
        out.push(Target {
            kind: "email",
            channel: "email",
            source: SOURCE_EMAIL,
            shown: recipients.join(", "),
            format: None,
            unusable: settings.email_unready(),
        });
    }
    if let Some(url) = &settings.webhook_url {
        out.push(Target {
            kind: "webhook",
            channel: "webhook",
            source: SOURCE_SETTINGS_WEBHOOK,
            shown: shown_url(url.expose()),
            format: Some(
                settings
                    .webhook_format
                    .unwrap_or_else(|| WebhookFormat::for_url(url.expose())),
            ),
            unusable: None,
        });
    }
    if settings.teams_enabled
        && let Some(url) = &settings.teams_webhook_url
    {
        out.push(Target {
            kind: "teams",
            channel: "webhook",
            source: SOURCE_SETTINGS_TEAMS,
            shown: shown_url(url.expose()),
            format: Some(WebhookFormat::Teams),
            unusable: None,
        });
    }
    if let Some(spec) = spec
        && let Some(url) = &spec.webhook
    {
        out.push(Target {
            kind: "pipeline",
            channel: "webhook",
            source: SOURCE_PIPELINE_WEBHOOK,
            shown: shown_url(url),
            format: Some(spec.format()),
            unusable: None,
        });
    }
    out
}
