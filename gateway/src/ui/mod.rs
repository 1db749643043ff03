//! The web page: the directory listings (`listing.rs`) become a file
//! browser with this script and style (upload by picker or drag-and-drop
//! with a progress bar, download, delete, new directory, rename through
//! WebDAV MOVE), and `/ui/cluster` shows the cluster's health, refreshing
//! itself from `/ui/cluster.json`. Every asset is compiled into the
//! binary; nothing is fetched from elsewhere.

pub mod cluster;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::Gateway;

/// Where the page's own resources live.
pub const PREFIX: &str = "/ui";

const APP_JS: &str = include_str!("assets/app.js");
const CLUSTER_JS: &str = include_str!("assets/cluster.js");
const CLUSTER_HTML: &str = include_str!("assets/cluster.html");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The page's routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route(
            "/ui/cluster",
            get(|| async { asset(CLUSTER_HTML, "text/html; charset=utf-8") }),
        )
        .route("/ui/cluster.json", get(cluster_json))
        .route(
            "/ui/app.js",
            get(|| async { asset(APP_JS, "text/javascript") }),
        )
        .route(
            "/ui/cluster.js",
            get(|| async { asset(CLUSTER_JS, "text/javascript") }),
        )
        .route(
            "/ui/style.css",
            get(|| async { asset(STYLE_CSS, "text/css") }),
        )
        .with_state(gateway)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn cluster_json(State(gateway): State<Arc<Gateway>>) -> Json<cluster::ClusterView> {
    Json(cluster::gather(&gateway.client).await)
}
