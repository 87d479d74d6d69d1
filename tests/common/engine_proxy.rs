//! Pieces of the socket-proxy stand-ins that sit between the app and the real
//! engine (`tests/proxy_denied.rs`, `tests/proxy_idle.rs`): reading a request's
//! head, and passing it on to /var/run/docker.sock one request per connection
//! (an upgrade, like attach, keeps its own), as HAProxy checks each request.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// The request line and headers, up to the blank line (at most 64 KiB).
pub async fn read_head(tcp: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&head).to_string())
}

/// Opens the engine's socket and sends `head` on; whether it is an upgrade.
pub async fn forward_head(head: &str) -> Option<(UnixStream, bool)> {
    let mut unix = UnixStream::connect("/var/run/docker.sock").await.ok()?;
    let upgrade = head.to_ascii_lowercase().contains("\r\nupgrade:");
    let forwarded = if upgrade {
        head.to_string()
    } else {
        format!(
            "{}\r\nConnection: close\r\n\r\n",
            head.trim_end_matches("\r\n")
        )
    };
    unix.write_all(forwarded.as_bytes()).await.ok()?;
    Some((unix, upgrade))
}
