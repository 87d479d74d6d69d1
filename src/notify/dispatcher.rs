//! The background sender: takes the pending messages whose time has come,
//! claims each (a lease, so a message is never sent twice at once, nor again
//! and again when its result cannot be stored), sends a few per channel at
//! once, and records each attempt — sent, retried later with a growing
//! delay, or failed for good. Pending messages are in the database, so they
//! survive a restart and are sent by the next process.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Semaphore;
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
/// Due messages read per round and channel.
const BATCH: i64 = 16;
/// Messages sent at once, per channel: a stalled mail server never holds up
/// the webhooks, nor one dead webhook the others.
const EMAIL_PARALLEL: usize = 2;
const WEBHOOK_PARALLEL: usize = 4;
/// A message being sent is not due again for this long: if its result cannot
/// be recorded (a full disk), it is sent again after the lease, not at once.
pub const LEASE: Duration = Duration::from_secs(120);
/// Longest sleep between rounds when nothing is due.
const IDLE_WAIT: Duration = Duration::from_secs(60);

impl Notifier {
    /// Sends until `shutdown`; woken early when a message is queued or a
    /// sender is free again.
    pub async fn dispatch(self: Arc<Self>, shutdown: CancellationToken) {
        let email = Arc::new(Semaphore::new(EMAIL_PARALLEL));
        let webhook = Arc::new(Semaphore::new(WEBHOOK_PARALLEL));
        let in_flight: Arc<Mutex<HashSet<i64>>> = Default::default();
        loop {
            let now = Utc::now();
            // Each channel's own due messages: many stalled e-mails never keep
            // a webhook from being read, nor the other way round.
            let mut batch = Vec::new();
            for (channel, limit) in [("email", BATCH), ("webhook", BATCH)] {
                match db::notifications::due(&self.pool, channel, now, limit).await {
                    Ok(b) => batch.extend(b),
                    Err(e) => tracing::warn!(error = %e, "reading the notifications to send"),
                }
            }
            let mut busy = false;
            if !batch.is_empty() {
                match self.settings().await {
                    Ok(settings) => {
                        let settings = Arc::new(settings);
                        for d in batch {
                            let lane = if d.channel == "email" {
                                &email
                            } else {
                                &webhook
                            };
                            let Ok(permit) = lane.clone().try_acquire_owned() else {
                                busy = true;
                                continue;
                            };
                            let lease = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
                            match db::notifications::claim(&self.pool, d.id, now, lease).await {
                                Ok(true) => {}
                                Ok(false) => continue,
                                Err(e) => {
                                    tracing::warn!(notification = d.id, error = %e, "claiming a notification");
                                    busy = true;
                                    continue;
                                }
                            }
                            lock(&in_flight).insert(d.id);
                            let (this, settings, flight) =
                                (self.clone(), settings.clone(), in_flight.clone());
                            tokio::spawn(async move {
                                let id = d.id;
                                this.deliver(d, &settings).await;
                                lock(&flight).remove(&id);
                                drop(permit);
                                this.wake.notify_one();
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the notification settings");
                        busy = true;
                    }
                }
            }
            let wait = if busy {
                Duration::from_secs(1)
            } else {
                match db::notifications::next_due(&self.pool).await {
                    Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or(Duration::ZERO),
                    _ => IDLE_WAIT,
                }
                .clamp(Duration::from_millis(100), IDLE_WAIT)
            };
            tokio::select! {
                _ = shutdown.cancelled() => {
                    // Messages cut short by shutdown are not recorded: due again
                    // at once for the next process (after a crash, after the lease).
                    let ids: Vec<i64> = lock(&in_flight).drain().collect();
                    if let Err(e) = db::notifications::release(&self.pool, &ids, Utc::now()).await {
                        tracing::warn!(error = %e, "releasing the notifications being sent");
                    }
                    return;
                }
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
