//! Nodes that take requests and never answer them: one hangs up after
//! reading (a leader killed after it may have applied the request), one
//! holds the connection open forever (a paused process).

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Accepts connections on a fresh port and hands each to `serve`.
async fn listen<F, Fut>(serve: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    addr
}

/// A "metadata node" that reads each request and hangs up without an
/// answer, like a leader killed after it received the write.
pub async fn hangs_up_after_reading() -> String {
    listen(|mut stream| async move {
        let mut buf = vec![0u8; 64 << 10];
        // The whole request arrives in the first reads; then close.
        let _ = tokio::time::timeout(Duration::from_millis(100), async {
            while stream.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
        })
        .await;
        drop(stream);
    })
    .await
}

/// A node that reads every request and never answers, holding the
/// connection open (a paused process).
pub async fn stalled_node() -> String {
    listen(|mut stream| async move {
        let mut buf = vec![0u8; 64 << 10];
        while stream.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
    })
    .await
}
