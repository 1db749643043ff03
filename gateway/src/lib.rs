//! The ToastyFS gateway: plain HTTP access to the namespace for curl and
//! scripts, over the client library. GET streams a file (one range,
//! entity tags from versions, conditional requests) or lists a directory
//! (HTML, or JSON for `Accept: application/json`); HEAD; PUT streams a
//! file in (or, with a trailing slash, makes a directory); DELETE.
//!
//! WebDAV is served under `/dav/` (`dav/`); the web page's scripts, style
//! and cluster view under `/ui/` (`ui/`).
//!
//! `files.rs` owns the file methods, `listing.rs` directories, `pipe.rs`
//! reads handed on as streams, `range.rs` and `conditional.rs` the pure
//! header rules, `url.rs` paths in URLs and HTML, `error.rs` the status of
//! every failure, `limits.rs` the limits, `users.rs` the users' keys.

pub mod conditional;
pub mod dav;
pub mod error;
pub mod files;
pub mod limits;
pub mod listing;
pub mod pipe;
pub mod ui;
pub mod url;
pub mod users;

/// The `Range` header parser lives in `proto` (pure, fuzzed there).
pub use toastyfs_proto::range;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use toastyfs_client::serve::{self as listener, ServeLimits};
use toastyfs_client::Client;

use crate::error::GatewayError;
use crate::files::Params;

/// What a gateway serves with.
pub struct Gateway {
    pub client: Client,
}

/// Why a gateway stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayStartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Every path, by method; every request passes `users` first
/// ([`users::require_key`]).
pub fn router(gateway: Arc<Gateway>, users: Option<Arc<users::UserKeys>>) -> Router {
    let dav = Router::new()
        .route(dav::PREFIX, any(dav::serve))
        .route(&format!("{}/", dav::PREFIX), any(dav::serve))
        .route(&format!("{}/{{*path}}", dav::PREFIX), any(dav::serve))
        .with_state(dav::handler(Arc::clone(&gateway)));
    let ui = ui::router(Arc::clone(&gateway));
    Router::new()
        .fallback(serve)
        .with_state(gateway)
        .merge(dav)
        .merge(ui)
        .layer(axum::middleware::from_fn_with_state(
            users,
            users::require_key,
        ))
}

async fn serve(
    State(gateway): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<Params>,
    body: Body,
) -> Response {
    let url_path = match url::decode_path(uri.path()) {
        Ok(path) => path,
        Err(e) => return GatewayError::BadRequest(e).into_response(),
    };
    let answer = match method {
        Method::GET | Method::HEAD => {
            files::read(gateway, method, &url_path, &headers, &params).await
        }
        Method::PUT => files::write(gateway, &url_path, &headers, body).await,
        Method::DELETE => files::delete(gateway, &url_path, &headers, &params).await,
        other => Err(GatewayError::MethodNotAllowed(other.to_string())),
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// Serves on `listen` until `stop` completes.
pub async fn run(
    listen: SocketAddr,
    client: Client,
    users: Option<users::UserKeys>,
    tls: Option<toastyfs_client::tls::ServerTls>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayStartError> {
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| GatewayStartError::Listen {
            addr: listen,
            source,
        })?;
    tracing::info!(addr = %listen, "gateway listening");
    let app = router(Arc::new(Gateway { client }), users.map(Arc::new));
    // At `stop`, accepting ends and the process exits: a transfer still
    // running is cut off, and a put cut off leaves no file behind.
    tokio::select! {
        () = listener::serve(tcp, app, ServeLimits::default(), tls) => {}
        () = stop => {}
    }
    Ok(())
}
