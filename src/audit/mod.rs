//! The audit trail: who changed what, from where. Sign-ins and failed
//! sign-ins are written by the login handlers; every other change made through
//! the app is written by the access layer from its route (`action_for`), so a
//! new route cannot be left out. Failures to write are logged, never shown to
//! the caller; a change is not undone because its audit row could not be kept.

pub mod csv_export;

use crate::db::{self, Pool, audit_log::NewEntry};

/// Records one entry.
pub async fn record(pool: &Pool, entry: NewEntry) {
    if let Err(e) = db::audit_log::insert(pool, &entry).await {
        tracing::error!(action = %entry.action, actor = %entry.actor, error = %e, "could not write the audit log");
    }
}

/// Longest `target` or `detail` kept (a request can put anything in a path).
const MAX_FIELD: usize = 500;

/// Keeps at most `MAX_FIELD` characters, without control characters.
pub fn clip(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_FIELD)
        .collect()
}

/// The action a change on `pattern` (the route, in the router's syntax) is
/// recorded as; routes not named here are recorded as `METHOD pattern`.
pub fn action_for(method: &str, pattern: &str) -> String {
    let p = pattern.strip_prefix("/api").unwrap_or(pattern);
    let named = match (method, p) {
        (_, "/pipelines/{name}/run") => "run.start",
        (_, "/webhooks/{pipeline_name}/{webhook_key}") => "run.start.webhook",
        (_, "/runs/{id}/cancel") => "run.cancel",
        (_, "/runs/{id}/retry") => "run.retry",
        (_, "/runs/cleanup" | "/system/cleanup") => "runs.cleanup",
        (_, "/pipelines/refresh") => "pipelines.refresh",
        (_, "/scheduler/{id}/enabled" | "/scheduler/jobs/{id}") => "schedule.change",
        ("POST", "/secrets") => "secret.create",
        ("PUT", "/secrets/{key}") | (_, "/secrets/{key}/change") => "secret.change",
        ("DELETE", "/secrets/{key}") | (_, "/secrets/{key}/delete") => "secret.delete",
        (_, "/secrets/encrypt-for-pipeline") => "secret.encrypt",
        (_, "/sync") => "sync.run",
        (_, "/sync/webhook") => "sync.run.webhook",
        (_, "/sync/test" | "/sync/repo/test" | "/sync/repo-config/test") => "sync.test",
        (_, "/sync/settings") => "sync.settings",
        (_, "/sync/host-key/reset") => "sync.host_key_reset",
        (_, "/sync/repo" | "/sync/repo-config" | "/sync/repo/remove") => "sync.repository",
        (_, "/sync/repo/deploy-key" | "/sync/repo-config/generate-deploy-key") => "sync.deploy_key",
        ("POST", "/users" | "/users/local") => "user.create",
        ("PUT", "/users/{id}") | (_, "/users/{id}/role") => "user.change",
        ("DELETE", "/users/{id}") | (_, "/users/{id}/delete") => "user.delete",
        (_, "/users/{id}/block") => "user.block",
        (_, "/users/{id}/unblock") => "user.unblock",
        (_, "/users/{id}/approve") => "user.approve",
        (_, "/users/{id}/reject") => "user.reject",
        (_, "/users/invite") => "invitation.create",
        ("DELETE", "/users/invites/{id}") | (_, "/users/invites/{id}/revoke") => {
            "invitation.revoke"
        }
        (_, "/settings/tokens" | "/auth/tokens") => "token.create",
        (_, "/settings/tokens/{id}/revoke") | ("DELETE", "/auth/tokens/{id}") => "token.revoke",
        (_, "/settings/password") => "password.change",
        ("DELETE", "/auth/link/{provider}") | (_, "/settings/linked/{provider}/unlink") => {
            "identity.unlink"
        }
        (_, "/logout" | "/auth/logout") => "logout",
        _ => return format!("{method} {pattern}"),
    };
    named.to_string()
}

/// The path as recorded: the route with its parameters filled in, except
/// those that are secrets themselves (a webhook's key).
pub fn target_for(pattern: &str, params: &[(String, String)]) -> String {
    let mut out = pattern.to_string();
    for (name, value) in params {
        let shown = if name == "webhook_key" { "***" } else { value };
        out = out.replace(&format!("{{{name}}}"), shown);
    }
    clip(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_their_action_and_keys_are_not_recorded() {
        assert_eq!(action_for("POST", "/api/pipelines/{name}/run"), "run.start");
        assert_eq!(action_for("DELETE", "/api/secrets/{key}"), "secret.delete");
        assert_eq!(action_for("POST", "/brand/new"), "POST /brand/new");
        let t = target_for(
            "/api/webhooks/{pipeline_name}/{webhook_key}",
            &[
                ("pipeline_name".into(), "etl".into()),
                ("webhook_key".into(), "s3cr3t-key".into()),
            ],
        );
        assert_eq!(t, "/api/webhooks/etl/***");
        assert_eq!(clip("a\nb\u{1b}[31m"), "a b [31m");
    }
}
