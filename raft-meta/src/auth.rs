//! The metadata node's gate for node-to-node requests: Raft RPCs, chunk
//! server reports and cluster management need a request signed with the
//! cluster secret (`proto::auth`). A refused request is answered 401 with
//! what was wrong, counted in `toastyfs_meta_auth_refused_total{reason}`
//! and logged once per source address.
//!
//! A node started without a secret checks nothing (and says so at start):
//! a cluster on one trusted host, or a test.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use toastyfs_client::secret::ClusterKeys;
use toastyfs_proto::auth::{self, AuthError, Secret, Verifier};

use crate::api::reply::ApiError;
use crate::limits::MAX_REQUEST_BYTES;

/// Sources whose refusals are logged at most once each; beyond this many,
/// refusals are only counted.
const MAX_LOGGED_SOURCES: usize = 1_024;

/// What a node checks node-to-node requests with.
#[derive(Debug)]
pub struct Gate {
    verifier: Verifier,
    /// The secret chunk tokens are minted with (the one this node signs
    /// with).
    mint_with: Secret,
    logged: Mutex<HashSet<IpAddr>>,
}

impl Gate {
    pub fn new(keys: &ClusterKeys) -> Gate {
        Gate {
            verifier: Verifier::new(keys.accepted()),
            mint_with: keys.sign_with.clone(),
            logged: Mutex::new(HashSet::new()),
        }
    }

    pub fn mint_with(&self) -> &Secret {
        &self.mint_with
    }

    /// Checks a request's headers and body; admits its nonce once.
    pub(crate) fn check(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), AuthError> {
        self.verifier.check(
            method,
            path_and_query,
            auth::received(|name| headers.get(name).and_then(|v| v.to_str().ok())),
            Some(body),
            now_ms(),
        )
    }

    /// Counts a refusal, and logs it if it is the first from `source`.
    pub(crate) fn refused(
        &self,
        source: Option<IpAddr>,
        path: &str,
        reason: &'static str,
        error: &dyn std::fmt::Display,
    ) {
        metrics::counter!("toastyfs_meta_auth_refused_total", "reason" => reason).increment(1);
        let first = match source {
            Some(ip) => {
                let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
                logged.len() < MAX_LOGGED_SOURCES && logged.insert(ip)
            }
            None => false,
        };
        if first {
            tracing::warn!(source = ?source, path, %error, "refused an unauthenticated request (further refusals from this address are only counted)");
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The middleware: passes a correctly signed request on (its body read
/// once, within the node's request bound), answers 401 otherwise.
pub async fn require_signature(
    State(gate): State<Option<Arc<Gate>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(gate) = gate else {
        return next.run(request).await;
    };
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| parts.uri.path().to_owned());
    let body = match to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return ApiError::TooLarge(format!(
                "the body is over {MAX_REQUEST_BYTES} bytes or was cut off"
            ))
            .into_response()
        }
    };
    match gate.check(
        parts.method.as_str(),
        &path_and_query,
        &parts.headers,
        &body,
    ) {
        Ok(()) => next.run(Request::from_parts(parts, Body::from(body))).await,
        Err(error) => {
            gate.refused(source, parts.uri.path(), error.reason(), &error);
            ApiError::Unauthenticated(error).into_response()
        }
    }
}
