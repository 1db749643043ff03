//! Reading one HTTP/1.1 request off a socket, for tests that play a
//! server by hand (`client/tests/`, and the transport's unit tests through
//! `#[path]`).

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Reads one request (headers and a `content-length` body) and returns
/// its body, or `None` if the peer closed before it was whole.
pub async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        request.extend_from_slice(&buf[..n]);
        let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if request.len() >= end + 4 + length {
            return Some(request[end + 4..end + 4 + length].to_vec());
        }
    }
}
