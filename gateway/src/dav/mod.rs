//! WebDAV (RFC 4918, classes 1 and 2) under `/dav/`, for file managers,
//! davfs2 and rclone. The protocol (XML, PROPFIND depths, COPY and MOVE
//! with `Overwrite` and `Destination`, locks and `If` headers) is the
//! `dav-server` crate's; `fs.rs` maps its file system calls onto the
//! client, `file.rs` its open files onto streamed reads and puts, and
//! `meta.rs` entries onto live properties. Locks live in this gateway's
//! memory (another gateway does not see them); dead properties are
//! refused (403 per property, as RFC 4918 allows).

pub mod file;
pub mod fs;
pub mod meta;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use dav_server::memls::MemLs;
use dav_server::DavHandler;

use crate::Gateway;

/// Where WebDAV is served.
pub const PREFIX: &str = "/dav";

/// The WebDAV handler of a gateway.
pub fn handler(gateway: Arc<Gateway>) -> DavHandler {
    DavHandler::builder()
        .filesystem(Box::new(fs::ClusterFs::new(gateway)))
        .locksystem(MemLs::new())
        .strip_prefix(PREFIX)
        .autoindex(true)
        .build_handler()
}

/// Any request under [`PREFIX`].
pub async fn serve(State(dav): State<DavHandler>, request: Request) -> Response {
    dav.handle(request).await.into_response()
}
