//! The one way every ToastyFS server accepts connections (feature
//! `serve`; the metadata node, the chunk server and the gateway): the
//! counterpart of [`crate::transport`], so the limits that keep a server
//! up against slow or greedy clients are set in one place, [`ServeLimits`].
//!
//! - At most `max_connections` connections at once; beyond them, new
//!   ones wait in the kernel's accept queue.
//! - A client must send a request's headers within `header_read_timeout`
//!   or its connection is closed (a slow-loris holds nothing for long);
//!   hyper also applies it to an idle keep-alive connection, so the
//!   transport drops idle connections sooner
//!   ([`crate::limits::POOL_IDLE_TIMEOUT`]).
//! - A request body that sends nothing for `body_idle_timeout` fails, so
//!   a stalled upload releases what it holds.
//!
//! Per-route concurrency limits (the chunk bodies a chunk server buffers,
//! the client requests a metadata node takes) are tower layers on the
//! routes themselves. Every request carries `ConnectInfo<SocketAddr>`.
//!
//! Given a certificate, a server speaks only TLS (the handshake, too,
//! within `header_read_timeout`); a plain HTTP request on it is answered
//! with a plain 400 that says to use https, not left hanging.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use crate::tls::ServerTls;

/// How much one server lets its clients take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_idle_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 4_096,
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Pause after a failed accept (out of file descriptors, say) before the
/// next, so the loop does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` within `limits` until the task is dropped;
/// over TLS when given `tls` ([`crate::tls::ServerTls`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    tls: Option<ServerTls>,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let acceptor = tls.map(|tls| TlsAcceptor::from(tls.config));
    loop {
        let Ok(permit) = connections.clone().acquire_owned().await else {
            return;
        };
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a connection; retrying");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(move |request: Request<Incoming>| {
            let mut request =
                request.map(|body| Body::new(TimeoutBody::new(limits.body_idle_timeout, body)));
            request.extensions_mut().insert(ConnectInfo(remote));
            request
        });
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => serve_connection(stream, service, limits, remote).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        limits.header_read_timeout,
                        accept_tls(acceptor, stream),
                    );
                    match handshake.await {
                        Ok(Some(tls)) => serve_connection(tls, service, limits, remote).await,
                        Ok(None) => {}
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
}

/// The first byte of every TLS connection (a handshake record).
const TLS_HANDSHAKE: u8 = 0x16;

/// Completes a TLS handshake; a client speaking plain HTTP is told, in
/// plain HTTP, to use https, and `None` is returned.
async fn accept_tls(
    acceptor: TlsAcceptor,
    mut stream: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    let remote = stream.peer_addr().ok();
    if stream.peek(&mut first).await.ok()? == 0 {
        return None;
    }
    if first[0] != TLS_HANDSHAKE {
        let body = "this port speaks TLS: connect with https:// and the cluster's CA (--tls-ca)\n";
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        return None;
    }
    match acceptor.accept(stream).await {
        Ok(tls) => Some(tls),
        Err(e) => {
            tracing::debug!(?remote, error = %e, "TLS handshake failed");
            None
        }
    }
}

/// Serves one accepted connection (plain or TLS) with HTTP/1.1 or h2.
async fn serve_connection<I, S>(io: I, service: S, limits: ServeLimits, remote: SocketAddr)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let connection =
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    if let Err(e) = connection.await {
        tracing::debug!(%remote, error = %e, "connection ended with an error");
    }
}
