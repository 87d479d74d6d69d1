//! What a notification says: an e-mail's subject and text, and a webhook's
//! body in Fast-Flow's JSON, Slack's or Teams' format. Built from the stored
//! run (its error message is already masked of secrets) when it is sent.

use serde_json::{Value, json};

use crate::db::Run;
use crate::pipelines::notify_spec::WebhookFormat;

/// The longest error message quoted (the run page has all of it).
const MAX_ERROR_CHARS: usize = 1000;

/// One notification's facts.
#[derive(Debug, Clone)]
pub struct Message {
    /// `failure`, `timeout`, `oom`, `recovery`, `success` or `test`.
    pub event: String,
    pub pipeline: String,
    /// `None` for a test, or when the run was deleted meanwhile.
    pub run: Option<Run>,
    pub run_id: Option<String>,
    /// Where the run page is, when there is a run.
    pub link: Option<String>,
}

impl Message {
    fn headline(&self) -> String {
        let p = &self.pipeline;
        match self.event.as_str() {
            "failure" => format!("Pipeline {p} failed"),
            "timeout" => format!("Pipeline {p} failed: timed out"),
            "oom" => format!("Pipeline {p} failed: out of memory"),
            "recovery" => format!("Pipeline {p} recovered"),
            "success" => format!("Pipeline {p} succeeded"),
            "test" => "Test notification from Fast-Flow".to_string(),
            other => format!("Pipeline {p}: {other}"),
        }
    }

    fn is_good_news(&self) -> bool {
        matches!(self.event.as_str(), "recovery" | "success" | "test")
    }

    pub fn subject(&self) -> String {
        format!("[Fast-Flow] {}", self.headline())
    }

    /// `(label, value)` lines shared by every format.
    fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = vec![("Pipeline", self.pipeline.clone())];
        if let Some(id) = &self.run_id {
            facts.push(("Run", id.clone()));
        }
        let Some(run) = &self.run else {
            if self.event == "test" {
                facts.push((
                    "Note",
                    "sent from the Settings page to check the delivery".into(),
                ));
            }
            return facts;
        };
        facts.push(("Status", run.status.to_string()));
        if let Some(t) = run.error_type {
            facts.push(("Error type", t.to_string()));
        }
        if let Some(code) = run.exit_code {
            facts.push(("Exit code", code.to_string()));
        }
        facts.push((
            "Started",
            run.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        ));
        if let Some(end) = run.finished_at {
            facts.push(("Finished", end.format("%Y-%m-%d %H:%M:%S UTC").to_string()));
        }
        if let Some(d) = run.duration_seconds() {
            let d = d.max(0.0);
            let words = if d < 60.0 {
                format!("{d:.1} s")
            } else {
                crate::pipelines::timing_words::duration_words(d as u64)
            };
            facts.push(("Duration", words));
        }
        if run.attempt > 1 {
            facts.push(("Attempt", run.attempt.to_string()));
        }
        facts.push(("Triggered by", run.triggered_by.clone()));
        if let Some(sha) = &run.git_sha {
            facts.push(("Commit", sha.chars().take(12).collect()));
        }
        if let Some(e) = &run.error_message
            && !e.is_empty()
        {
            facts.push(("Error", clipped(e)));
        }
        facts
    }

    /// The plain-text body of the e-mail.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.headline());
        for (label, value) in self.facts() {
            out.push_str(&format!("{label}: {value}\n"));
        }
        if let Some(link) = &self.link {
            out.push_str(&format!("\nOpen the run: {link}\n"));
        }
        out.push_str(&format!(
            "\n-- \nFast-Flow notifications{}. Settings → Notifications says who gets them.\n",
            self.link
                .as_deref()
                .and_then(|l| l.split("/runs/").next())
                .map(|base| format!(" from {base}"))
                .unwrap_or_default()
        ));
        out
    }

    /// The body posted to `url`: Teams Workflows (Power Automate) URLs take an
    /// Adaptive Card, the older Office 365 connectors a MessageCard.
    pub fn webhook_body_for(&self, format: WebhookFormat, url: &str) -> Value {
        if format == WebhookFormat::Teams && is_teams_workflow(url) {
            return self.adaptive_card();
        }
        self.webhook_body(format)
    }

    fn adaptive_card(&self) -> Value {
        let facts: Vec<Value> = self
            .facts()
            .into_iter()
            .map(|(label, value)| json!({"title": label, "value": value}))
            .collect();
        let mut card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
                 "color": if self.is_good_news() { "Good" } else { "Attention" },
                 "text": self.headline()},
                {"type": "FactSet", "facts": facts},
            ],
        });
        if let Some(link) = &self.link {
            card["actions"] =
                json!([{"type": "Action.OpenUrl", "title": "Open the run", "url": link}]);
        }
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": card,
            }],
        })
    }

    /// The body posted to a webhook.
    pub fn webhook_body(&self, format: WebhookFormat) -> Value {
        match format {
            WebhookFormat::Json => self.json(),
            WebhookFormat::Slack => {
                // Slack reads `<…>` as links and mentions (`<!channel>`): values are escaped.
                let esc = |v: &str| {
                    v.replace('&', "&amp;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;")
                };
                let mut text = format!("*{}*", esc(&self.headline()));
                for (label, value) in self.facts().into_iter().skip(1) {
                    text.push_str(&format!("\n{label}: {}", esc(&value)));
                }
                if let Some(link) = &self.link {
                    text.push_str(&format!("\n<{link}|Open the run>"));
                }
                json!({ "text": text })
            }
            WebhookFormat::Teams => {
                let facts: Vec<Value> = self
                    .facts()
                    .into_iter()
                    .map(|(label, value)| json!({"name": label, "value": value}))
                    .collect();
                let mut card = json!({
                    "@type": "MessageCard",
                    "@context": "https://schema.org/extensions",
                    "summary": self.headline(),
                    "themeColor": if self.is_good_news() { "2E7D32" } else { "F44336" },
                    "title": self.headline(),
                    "sections": [{ "facts": facts, "markdown": false }],
                });
                if let Some(link) = &self.link {
                    card["potentialAction"] = json!([{
                        "@type": "OpenUri",
                        "name": "Open the run",
                        "targets": [{ "os": "default", "uri": link }],
                    }]);
                }
                card
            }
        }
    }

    fn json(&self) -> Value {
        let run = self.run.as_ref();
        json!({
            "event": self.event,
            "title": self.headline(),
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "status": run.map(|r| r.status.as_str()),
            "error_type": run.and_then(|r| r.error_type.map(|t| t.as_str())),
            "error_message": run.and_then(|r| r.error_message.as_deref().map(clipped)),
            "exit_code": run.and_then(|r| r.exit_code),
            "started_at": run.map(|r| r.started_at),
            "finished_at": run.and_then(|r| r.finished_at),
            "duration_seconds": run.and_then(|r| r.duration_seconds()),
            "attempt": run.map(|r| r.attempt),
            "triggered_by": run.map(|r| r.triggered_by.as_str()),
            "git_sha": run.and_then(|r| r.git_sha.as_deref()),
            "url": self.link,
            "fastflow_version": crate::release_check::current_version(),
        })
    }
}

/// A Teams Workflows (Power Automate) webhook, which takes Adaptive Cards.
fn is_teams_workflow(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|h| h.ends_with(".logic.azure.com") || h.ends_with(".powerplatform.com"))
}

fn clipped(text: &str) -> String {
    if text.chars().count() <= MAX_ERROR_CHARS {
        return text.to_string();
    }
    let mut out: String = text.chars().take(MAX_ERROR_CHARS).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            event: "failure".into(),
            pipeline: "etl".into(),
            run: None,
            run_id: Some("r1".into()),
            link: Some("https://flow.example.com/runs/r1".into()),
        }
    }

    #[test]
    fn teams_gets_the_card_its_url_takes() {
        let m = message();
        let old = m.webhook_body_for(
            WebhookFormat::Teams,
            "https://x.webhook.office.com/webhookb2/k",
        );
        assert_eq!(old["@type"], "MessageCard");
        let flow = m.webhook_body_for(
            WebhookFormat::Teams,
            "https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=s",
        );
        assert_eq!(flow["type"], "message");
        let card = &flow["attachments"][0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["body"][0]["text"], "Pipeline etl failed");
        assert_eq!(
            card["actions"][0]["url"],
            "https://flow.example.com/runs/r1"
        );
        assert_eq!(
            m.webhook_body_for(WebhookFormat::Json, "https://x.logic.azure.com/")["event"],
            "failure"
        );
    }

    #[test]
    fn slack_values_cannot_mention_or_link() {
        let mut m = message();
        m.run_id = Some("<!channel> <https://evil.example|reset> & co".into());
        let body = m.webhook_body(WebhookFormat::Slack);
        let text = body["text"].as_str().unwrap();
        assert!(
            !text.contains("<!channel>") && !text.contains("<https://evil"),
            "{text}"
        );
        assert!(
            text.contains("&lt;!channel&gt;") && text.contains("&amp; co"),
            "{text}"
        );
        assert!(
            text.ends_with("|Open the run>"),
            "our own link stays a link: {text}"
        );
    }

    #[test]
    fn the_text_names_the_server() {
        let text = message().text();
        assert!(
            text.contains("Open the run: https://flow.example.com/runs/r1"),
            "{text}"
        );
        assert!(
            text.contains("Fast-Flow notifications from https://flow.example.com."),
            "{text}"
        );
    }
}
