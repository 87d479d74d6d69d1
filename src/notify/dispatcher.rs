//! The background sender: takes the pending messages whose time has come, sends
//! a few at once, and records each attempt — sent, retried later with a growing
//! delay, or failed for good. Pending messages are in the database, so they
//! survive a restart and are sent by the next process.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::message::Message;
use super::settings::Effective;
use super::{
    Notifier, SOURCE_PIPELINE_WEBHOOK, SOURCE_SETTINGS_TEAMS, SOURCE_SETTINGS_WEBHOOK, SendError,
};
use crate::db::notifications::{Delivery, FAILED, PENDING, SENT};
use crate::db::{self};
use crate::pipelines::notify_spec::WebhookFormat;

/// Delays before the 2nd, 3rd, 4th and 5th attempt; after the 5th it has failed.
pub const RETRY_DELAYS: [Duration; 4] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];
/// Messages taken per round, and sent at the same time.
const BATCH: i64 = 16;
const PARALLEL: usize = 4;
/// Longest sleep between rounds when nothing is due.
const IDLE_WAIT: Duration = Duration::from_secs(60);

impl Notifier {
    /// Sends until `shutdown`; woken early when a message is queued.
    pub async fn dispatch(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let batch = match db::notifications::due(&self.pool, Utc::now(), BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the notifications to send");
                    Vec::new()
                }
            };
            let full = batch.len() as i64 == BATCH;
            if !batch.is_empty() {
                match self.settings().await {
                    Ok(settings) => {
                        let sending =
                            futures_util::stream::iter(batch).for_each_concurrent(PARALLEL, |d| {
                                let this = self.clone();
                                let settings = &settings;
                                async move { this.deliver(d, settings).await }
                            });
                        // An attempt cut short by shutdown is not recorded: the
                        // message stays pending for the next process.
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = sending => {}
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reading the notification settings"),
                }
            }
            if full {
                continue;
            }
            let wait = match db::notifications::next_due(&self.pool).await {
                Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or(Duration::ZERO),
                _ => IDLE_WAIT,
            }
            .clamp(Duration::from_millis(100), IDLE_WAIT);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn deliver(&self, d: Delivery, settings: &Effective) {
        let result = self.attempt(&d, settings).await;
        let attempts = usize::try_from(d.attempts)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let now = Utc::now();
        let (status, error, retry_at) = match &result {
            Ok(()) => (SENT, None, None),
            Err(e) if e.retry && attempts <= RETRY_DELAYS.len() => {
                let delay = RETRY_DELAYS[attempts - 1];
                let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                (PENDING, Some(e.message.as_str()), Some(at))
            }
            Err(e) => (FAILED, Some(e.message.as_str()), None),
        };
        let shown = if status == PENDING { "retry" } else { status };
        crate::prometheus::metrics().notification_attempt(&d.channel, shown);
        match &result {
            Ok(()) => {
                tracing::info!(notification = d.id, run_id = d.run_id.as_deref().unwrap_or(""), target = %d.target, "notification sent")
            }
            Err(e) => {
                tracing::warn!(notification = d.id, run_id = d.run_id.as_deref().unwrap_or(""), attempt = attempts, result = shown, error = %e.message, "notification not delivered")
            }
        }
        if let Err(e) =
            db::notifications::record_attempt(&self.pool, d.id, status, error, retry_at, now).await
        {
            tracing::error!(notification = d.id, error = %e, "recording a notification attempt");
        }
    }

    /// One attempt at sending `d`, its target and text read now.
    pub(super) async fn attempt(
        &self,
        d: &Delivery,
        settings: &Effective,
    ) -> Result<(), SendError> {
        let message = self.message_for(d, settings).await;
        if d.channel == "email" {
            let recipients: Vec<String> = d
                .target
                .split(", ")
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .collect();
            return super::email::send(settings, &recipients, &message.subject(), message.text())
                .await;
        }
        let url = match d.source.as_str() {
            SOURCE_SETTINGS_WEBHOOK => settings
                .webhook_url
                .as_ref()
                .map(|u| u.expose().to_string()),
            SOURCE_SETTINGS_TEAMS if settings.teams_enabled => settings
                .teams_webhook_url
                .as_ref()
                .map(|u| u.expose().to_string()),
            SOURCE_PIPELINE_WEBHOOK => self
                .registry
                .get(&d.pipeline_name)
                .and_then(|p| p.metadata.notify.as_ref().and_then(|n| n.webhook.clone())),
            _ => None,
        };
        let Some(url) = url else {
            return Err(SendError::permanent(format!(
                "the webhook {} is no longer configured",
                d.target
            )));
        };
        let format = d
            .format
            .as_deref()
            .and_then(WebhookFormat::parse)
            .unwrap_or_default();
        let body = message.webhook_body_for(format, &url);
        if d.source == SOURCE_PIPELINE_WEBHOOK {
            if let Some(why) = super::webhook_guard::refuses_url(&self.forbidden, &url).await {
                return Err(SendError::permanent(format!(
                    "a pipeline's webhook may not post to {}: {why}",
                    d.target
                )));
            }
            return super::webhook::post(&self.pipeline_http, &url, &d.target, &body).await;
        }
        super::webhook::post(&self.http, &url, &d.target, &body).await
    }

    async fn message_for(&self, d: &Delivery, settings: &Effective) -> Message {
        let run = match &d.run_id {
            Some(id) => db::runs::get(&self.pool, id).await.ok().flatten(),
            None => None,
        };
        let base = &settings.link_base;
        Message {
            event: d.event.clone(),
            pipeline: d.pipeline_name.clone(),
            link: d.run_id.as_ref().map(|id| format!("{base}/runs/{id}")),
            run_id: d.run_id.clone(),
            run,
        }
    }
}
