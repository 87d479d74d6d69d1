//! Where a pipeline's own webhook (`notify.webhook`, written by whoever can
//! push to the pipeline repository) may not post: the Docker engine or socket
//! proxy the server talks to (a `POST /containers/prune` there needs no body),
//! link-local addresses (cloud metadata services), unspecified and multicast
//! addresses, and — unless `NOTIFY_ALLOW_LOOPBACK_WEBHOOKS` — this host's
//! loopback. Names are checked after they are resolved, by the resolver the
//! HTTP client connects with, so a name cannot point elsewhere between check
//! and connection. Webhooks an admin configured are not restricted.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What a pipeline webhook may not reach.
#[derive(Debug, Clone)]
pub struct Forbidden {
    /// `DOCKER_HOST`'s host when it is `tcp://host:port` (resolved each time).
    pub docker_host: Option<String>,
    pub allow_loopback: bool,
}

impl Forbidden {
    pub fn from_config(config: &crate::config::Config) -> Self {
        let docker_host = config
            .docker_host
            .as_deref()
            .and_then(|h| {
                h.strip_prefix("tcp://")
                    .or_else(|| h.strip_prefix("http://"))
            })
            .and_then(|rest| rest.split(['/', '?']).next())
            .map(|authority| match authority.rsplit_once(':') {
                Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
                _ => authority,
            })
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string());
        Self {
            docker_host,
            allow_loopback: config.notify.allow_loopback_webhooks,
        }
    }

    /// Why `ip` may not be posted to, if it may not.
    pub async fn refuses(&self, ip: IpAddr) -> Option<String> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if ip.is_unspecified() || ip.is_multicast() {
            return Some(format!("{ip} is not a host"));
        }
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        if link_local {
            return Some(format!(
                "{ip} is link-local (where cloud metadata services answer)"
            ));
        }
        if ip.is_loopback() && !self.allow_loopback {
            return Some(format!(
                "{ip} is this host's loopback (NOTIFY_ALLOW_LOOPBACK_WEBHOOKS=true allows it)"
            ));
        }
        if let Some(host) = &self.docker_host {
            let engine: Vec<IpAddr> = match host.parse::<IpAddr>() {
                Ok(literal) => vec![literal],
                Err(_) => tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map(|addrs| addrs.map(|a| a.ip()).collect())
                    .unwrap_or_default(),
            };
            if engine.contains(&ip) {
                return Some(format!("{ip} is the Docker engine's address (DOCKER_HOST)"));
            }
        }
        None
    }
}

/// A resolver that leaves out the addresses [`Forbidden`] refuses.
struct GuardedResolver(Arc<Forbidden>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut allowed = Vec::new();
            let mut why = None;
            for addr in found {
                match guard.refuses(addr.ip()).await {
                    None => allowed.push(addr),
                    Some(reason) => why = Some(reason),
                }
            }
            if allowed.is_empty() {
                let reason = why.unwrap_or_else(|| "no address".into());
                return Err(
                    format!("a pipeline's webhook may not post to {host}: {reason}").into(),
                );
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The client for pipelines' own webhooks.
pub fn client(forbidden: Arc<Forbidden>) -> reqwest::Client {
    super::webhook::builder()
        .dns_resolver(Arc::new(GuardedResolver(forbidden)))
        .build()
        .unwrap_or_default()
}

/// The check for a URL whose host is an IP literal (no name to resolve).
pub async fn refuses_url(forbidden: &Forbidden, url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    forbidden.refuses(ip).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(docker: Option<&str>, allow_loopback: bool) -> Forbidden {
        Forbidden {
            docker_host: docker.map(str::to_string),
            allow_loopback,
        }
    }

    #[tokio::test]
    async fn refuses_the_engine_metadata_and_loopback() {
        let g = guard(Some("10.9.8.7"), false);
        for ip in [
            "10.9.8.7",
            "169.254.169.254",
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "fe80::1",
        ] {
            assert!(g.refuses(ip.parse().unwrap()).await.is_some(), "{ip}");
        }
        for ip in ["10.9.8.6", "192.168.1.20", "93.184.216.34"] {
            assert!(g.refuses(ip.parse().unwrap()).await.is_none(), "{ip}");
        }
        assert!(
            guard(None, true)
                .refuses("127.0.0.1".parse().unwrap())
                .await
                .is_none()
        );
        assert!(refuses_url(&g, "http://[::1]:9/x").await.is_some());
        assert!(refuses_url(&g, "http://example.com/x").await.is_none());
    }

    #[test]
    fn reads_docker_host() {
        let vars =
            |h: &str| std::collections::HashMap::from([("DOCKER_HOST".to_string(), h.to_string())]);
        let c = crate::config::Config::from_vars(&vars("tcp://docker-proxy:2375")).unwrap();
        assert_eq!(
            Forbidden::from_config(&c).docker_host.as_deref(),
            Some("docker-proxy")
        );
        let c = crate::config::Config::from_vars(&vars("tcp://[fd00::2]:2375")).unwrap();
        assert_eq!(
            Forbidden::from_config(&c).docker_host.as_deref(),
            Some("fd00::2")
        );
        let c = crate::config::Config::from_vars(&vars("unix:///var/run/docker.sock")).unwrap();
        assert_eq!(Forbidden::from_config(&c).docker_host, None);
    }
}
