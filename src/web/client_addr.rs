//! The client's address as the rate limits and the audit log see it: the
//! connection's own, or — when that is one of `TRUSTED_PROXIES` — the last
//! address in `X-Forwarded-For` that is not a trusted proxy (the one the
//! nearest trusted proxy saw). Without trusted proxies the header is ignored,
//! so a client cannot pick its own address.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

pub fn client_addr(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> SocketAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer.ip()) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer.ip();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage from before the trusted part: the last good address stands.
            Err(_) => break,
        }
    }
    SocketAddr::new(client, peer.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_a_trusted_proxy_may_name_the_client() {
        let proxy: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
        let h = headers(&["6.6.6.6, 203.0.113.7"]);
        // Untrusted peer: the header means nothing.
        let direct: SocketAddr = "198.51.100.1:1".parse().unwrap();
        assert_eq!(client_addr(direct, &h, &trusted), direct);
        // Trusted proxy: the rightmost address it did not add itself.
        assert_eq!(
            client_addr(proxy, &h, &trusted).ip().to_string(),
            "203.0.113.7"
        );
        // Two trusted hops, split over headers.
        let h2 = headers(&["203.0.113.9", "10.0.0.7"]);
        assert_eq!(
            client_addr(proxy, &h2, &trusted).ip().to_string(),
            "203.0.113.9"
        );
        // No header: the proxy itself.
        assert_eq!(client_addr(proxy, &HeaderMap::new(), &trusted), proxy);
        // Garbage before the good part is not trusted.
        let h3 = headers(&["not-an-ip, 203.0.113.8"]);
        assert_eq!(
            client_addr(proxy, &h3, &trusted).ip().to_string(),
            "203.0.113.8"
        );
        // Nothing trusted: nothing changes.
        assert_eq!(client_addr(proxy, &h, &[]), proxy);
    }
}
