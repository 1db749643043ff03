//! The chunk server's HTTP API: an axum [`Router`] over an
//! `Arc<ChunkStore>`.
//!
//! | route | success | errors |
//! | --- | --- | --- |
//! | `PUT /chunks/{hash}` (optional `x-toastyfs-chain`) | 201 stored, 200 already present: `{"hash", "durable", "chain_errors"}` | 400 bad hash / body does not hash to the name, 413 too large, 507 no space |
//! | `GET /chunks/{hash}` (optional `Range`; `x-toastyfs-caller-verifies` skips the server's hash of a whole chunk) | 200, or 206 with `Content-Range` | 400 bad hash / malformed range, 404 absent, 410 corrupt, 416 unsatisfiable range |
//! | `POST /chunks/{hash}/verify` | 200 `{"size_bytes"}`: the copy hashes to its name | 400 bad hash, 404 absent, 410 corrupt (now quarantined) |
//! | `PATCH /chunks/{hash}?offset=N` | 200 `{"hash"}` of the new chunk | 400, 404, 410, 413, 507 |
//! | `POST /chunks/exists` `{"hashes": [...]}` | 200 `{"present": [bool]}` | 400 (bad JSON, bad hash, more than [`MAX_EXISTS_HASHES`]), 413 |
//! | `GET /health`, `/status`, `/metrics` | 200 | 404 `/metrics` when metrics are off |
//!
//! A corrupt chunk answers **410 Gone**: the chunk was here and is now
//! quarantined, so retrying this server cannot help but another replica
//! can; it is a definite answer about this copy, not a server fault (a 5xx
//! would invite retries here). Every error body is JSON `{"error": "..."}`
//! and [`ApiError::status`] is the one place statuses are chosen. A
//! malformed `Range` is refused (400) rather than ignored, so client bugs
//! are loud. An upload's body is streamed into a temporary file as it
//! arrives and hashed on the way (`store/upload.rs`), never held whole;
//! a patch's body is read whole (it changes a chunk in memory). Absent
//! here: who may call (`access.rs`, a layer the server adds) and the
//! leader sync.

use std::sync::Arc;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch as patch_route, post, put};
use axum::{Json, Router};
use futures::StreamExt;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use toastyfs_proto::hash::{ChunkHash, ChunkHashParseError, ChunkHasher};
use toastyfs_proto::routes;
use tokio::io::AsyncWriteExt;

use crate::chain::{self, ChainLink, Forward};
use crate::error::StoreError;
use crate::metrics;
use crate::store::{ChunkStore, PutOutcome, MAX_CHUNK_BYTES};

pub use toastyfs_proto::byte_range::ByteRange;
pub use toastyfs_proto::chunks::{ExistsReply, ExistsRequest, UploadReply};

pub use crate::limits::{BODY_SLACK_BYTES, MAX_EXISTS_HASHES};
use crate::limits::{
    MAX_CHAIN_HOPS_IN_FLIGHT, MAX_CHUNK_BODIES_IN_FLIGHT, MAX_EXISTS_BODY_BYTES,
    MAX_VERIFIES_IN_FLIGHT,
};
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed chunk hash {text:?}: {source}")]
    BadHash {
        text: String,
        source: ChunkHashParseError,
    },
    #[error("malformed Range header {0:?}: expected one `bytes=first-last`, `bytes=first-` or `bytes=-suffix`")]
    BadRange(String),
    #[error("the range selects no bytes of this {size_bytes}-byte chunk")]
    RangeNotSatisfiable { size_bytes: u64 },
    #[error("bad query string: {0}")]
    BadQuery(#[from] QueryRejection),
    #[error("bad JSON body: {0}")]
    BadJson(#[from] serde_json::Error),
    #[error("{count} hashes asked about; at most {max} per request")]
    TooManyHashes { count: usize, max: usize },
    #[error("request body: {0}")]
    Body(#[from] BytesRejection),
    #[error("the request body was cut off: {0}")]
    BodyCut(String),
    #[error("metrics are not enabled on this server")]
    MetricsDisabled,
    #[error("bad x-toastyfs-chain header: {0}")]
    BadChain(String),
    #[error("this chunk server is passing on as many chained uploads as it takes; send the copy directly")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    /// The HTTP status of each error: the one mapping for this API.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadHash { .. }
            | ApiError::BadRange(_)
            | ApiError::BadQuery(_)
            | ApiError::BadJson(_)
            | ApiError::TooManyHashes { .. }
            | ApiError::BadChain(_)
            | ApiError::BodyCut(_) => StatusCode::BAD_REQUEST,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Body(rejection) => rejection.status(),
            ApiError::MetricsDisabled => StatusCode::NOT_FOUND,
            ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(e) => match e {
                StoreError::HashMismatch { .. } => StatusCode::BAD_REQUEST,
                StoreError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                StoreError::CapacityExceeded { .. } | StoreError::DiskFull(_) => {
                    StatusCode::INSUFFICIENT_STORAGE
                }
                StoreError::NotFound(_) => StatusCode::NOT_FOUND,
                StoreError::Corrupt(_) => StatusCode::GONE,
                StoreError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
                StoreError::Locked(_)
                | StoreError::UnsupportedFormat { .. }
                | StoreError::Io { .. }
                | StoreError::TaskFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// A short label for the outcome metrics.
    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadHash { .. } => "bad_hash",
            ApiError::BadRange(_) | ApiError::RangeNotSatisfiable { .. } => "bad_range",
            ApiError::BadQuery(_)
            | ApiError::BadJson(_)
            | ApiError::TooManyHashes { .. }
            | ApiError::BadChain(_) => "bad_request",
            ApiError::Body(_) | ApiError::BodyCut(_) => "bad_body",
            ApiError::MetricsDisabled => "disabled",
            ApiError::Busy => "busy",
            ApiError::Store(e) => e.kind(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self.status(), StatusCode::INTERNAL_SERVER_ERROR) {
            tracing::error!(error = %self, "chunk API request failed");
        }
        let mut response = (
            self.status(),
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response();
        if let ApiError::RangeNotSatisfiable { size_bytes } = self {
            if let Ok(value) = HeaderValue::try_from(format!("bytes */{size_bytes}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
        }
        response
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct HashReply {
    pub hash: String,
}

/// An intact copy's answer to `POST /chunks/{hash}/verify`.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct VerifyReply {
    pub size_bytes: u64,
}

#[derive(Deserialize)]
struct PatchParams {
    offset: u64,
}

#[derive(Clone)]
struct AppState {
    store: Arc<ChunkStore>,
    metrics: Option<PrometheusHandle>,
    /// Passes uploads down their chain; `None`: uploads naming a chain
    /// are stored here only (and the answer names no copy: the caller
    /// counts the server it sent to).
    chain: Option<ChainLink>,
    /// Uploads and patches in flight ([`MAX_CHUNK_BODIES_IN_FLIGHT`]);
    /// a caller's upload waits for room.
    bodies: Arc<Semaphore>,
    /// Uploads passed on by another server's chain in flight; one finding
    /// no room is refused at once ([`MAX_CHAIN_HOPS_IN_FLIGHT`]).
    hops: Arc<Semaphore>,
}

/// The chunk server's routes. `metrics` is the handle from
/// [`crate::metrics::install`]; without it `/metrics` answers 404.
pub fn router(store: Arc<ChunkStore>, metrics: Option<PrometheusHandle>) -> Router {
    chained_router(store, metrics, None)
}

/// [`router`] that passes uploads down the chain they name (`chain.rs`).
pub fn chained_router(
    store: Arc<ChunkStore>,
    metrics: Option<PrometheusHandle>,
    chain: Option<ChainLink>,
) -> Router {
    let chunk_body_limit = MAX_CHUNK_BYTES as usize + BODY_SLACK_BYTES;
    let bodies = Arc::new(Semaphore::new(MAX_CHUNK_BODIES_IN_FLIGHT));
    Router::new()
        .route(
            routes::CHUNKS_EXISTS,
            post(exists).layer(DefaultBodyLimit::max(MAX_EXISTS_BODY_BYTES)),
        )
        .route(
            routes::CHUNK,
            put(upload).get(download).merge(patch_route(patch).layer(
                GlobalConcurrencyLimitLayer::with_semaphore(Arc::clone(&bodies)),
            )),
        )
        .route(
            routes::CHUNK_VERIFY,
            post(verify).layer(GlobalConcurrencyLimitLayer::new(MAX_VERIFIES_IN_FLIGHT)),
        )
        .route(routes::HEALTH, get(|| async { "ok" }))
        .route(routes::CHUNK_SERVER_STATUS, get(status))
        .route(routes::METRICS, get(render_metrics))
        .layer(DefaultBodyLimit::max(chunk_body_limit))
        .with_state(AppState {
            store,
            metrics,
            chain,
            bodies,
            hops: Arc::new(Semaphore::new(MAX_CHAIN_HOPS_IN_FLIGHT)),
        })
}

fn parse_hash(text: &str) -> Result<ChunkHash, ApiError> {
    text.parse().map_err(|source| ApiError::BadHash {
        text: text.to_owned(),
        source,
    })
}

fn hash_reply(status: StatusCode, hash: ChunkHash) -> Response {
    (
        status,
        Json(HashReply {
            hash: hash.to_string(),
        }),
    )
        .into_response()
}

async fn upload(
    State(app): State<AppState>,
    Path(hash): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let permit = if headers.contains_key(routes::CHAIN_HOP_HEADER) {
        Arc::clone(&app.hops).try_acquire_owned().ok()
    } else {
        Arc::clone(&app.bodies).acquire_owned().await.ok()
    };
    let result = match permit {
        Some(_permit) => store_chunk(&app, &hash, &headers, body).await,
        None => Err(ApiError::Busy),
    };
    let label = match &result {
        Ok((PutOutcome::Stored, _)) => "stored",
        Ok((PutOutcome::AlreadyPresent, _)) => "already_present",
        Err(e) => e.kind(),
    };
    metrics::record_upload(label);
    match result {
        Ok((PutOutcome::Stored, reply)) => (StatusCode::CREATED, Json(reply)).into_response(),
        Ok((PutOutcome::AlreadyPresent, reply)) => (StatusCode::OK, Json(reply)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Streams the body into a temporary file, hashing it on the way, then
/// has the store check and install it (`store/upload.rs`): a chunk body is
/// never held whole in memory.
async fn store_chunk(
    app: &AppState,
    hash: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(PutOutcome, UploadReply), ApiError> {
    let hash = parse_hash(hash)?;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let own = app.chain.as_ref().map(ChainLink::advertise);
    let (links, token) = chain::requested(headers, own).map_err(ApiError::BadChain)?;
    let (file, temp) = app
        .store
        .blocking(move |s| s.begin_upload(hash, announced))
        .await?;
    let mut forward = match (&app.chain, links.split_first()) {
        (Some(link), Some((next, rest))) => {
            Some(link.start(hash, next.clone(), rest.to_vec(), token, announced))
        }
        _ => None,
    };
    let stored = match receive(file, &temp, body, forward.as_mut()).await {
        Ok((size_bytes, actual)) => app
            .store
            .blocking(move |s| s.finish_upload(hash, &temp, size_bytes, actual))
            .await
            .map_err(ApiError::from),
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            Err(e)
        }
    };
    let outcome = match stored {
        Ok(outcome) => outcome,
        Err(e) => {
            if let Some(forward) = forward {
                forward.abandon();
            }
            return Err(e);
        }
    };
    let mut reply = UploadReply {
        hash: hash.to_string(),
        durable: app.chain.iter().map(|l| l.advertise().to_owned()).collect(),
        chain_errors: Vec::new(),
    };
    if let Some(forward) = forward {
        let (durable, errors) = forward.finish().await;
        reply.durable.extend(durable);
        reply.chain_errors.extend(errors);
    }
    Ok((outcome, reply))
}

/// Writes `body` into `file` as it arrives, at most [`MAX_CHUNK_BYTES`],
/// and fsyncs it; its length and hash.
async fn receive(
    file: std::fs::File,
    temp: &std::path::Path,
    body: Body,
    mut forward: Option<&mut Forward>,
) -> Result<(u64, ChunkHash), ApiError> {
    let io_error = |e| ApiError::Store(StoreError::io(temp.to_owned())(e));
    let mut file = tokio::fs::File::from_std(file);
    let mut hasher = ChunkHasher::default();
    let mut size_bytes = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| ApiError::BodyCut(e.to_string()))?;
        size_bytes += piece.len() as u64;
        if size_bytes > MAX_CHUNK_BYTES {
            return Err(ApiError::Store(StoreError::TooLarge {
                size_bytes,
                max_bytes: MAX_CHUNK_BYTES,
            }));
        }
        if let Some(forward) = forward.as_deref_mut() {
            forward.send(&piece).await;
        }
        hasher.update(&piece);
        file.write_all(&piece).await.map_err(io_error)?;
    }
    file.flush().await.map_err(io_error)?;
    file.sync_all().await.map_err(io_error)?;
    Ok((size_bytes, hasher.finish()))
}

async fn download(
    State(app): State<AppState>,
    Path(hash): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = read_chunk(&app, &hash, &headers).await;
    metrics::record_download(result.as_ref().map_or_else(ApiError::kind, |_| "ok"));
    result.into_response()
}

async fn read_chunk(app: &AppState, hash: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let hash = parse_hash(hash)?;
    let range = requested_range(headers)?;
    // A range is checked here: the caller never sees the whole to hash.
    let caller_verifies = range.is_none() && headers.contains_key(routes::CALLER_VERIFIES_HEADER);
    let bytes = Bytes::from(
        app.store
            .blocking(move |s| {
                if caller_verifies {
                    s.get_unverified(hash)
                } else {
                    s.get(hash)
                }
            })
            .await?,
    );
    match range {
        None => Ok(chunk_response(StatusCode::OK, bytes, None)),
        Some(range) => partial(bytes, range),
    }
}

/// `POST /chunks/{hash}/verify`: reads and hashes the copy now; a
/// corrupt one is quarantined and reported lost (410), as the scrubber
/// would have.
async fn verify(State(app): State<AppState>, Path(hash): Path<String>) -> Response {
    let result = verify_chunk(&app, &hash).await;
    metrics::record_verify_request(result.as_ref().map_or_else(ApiError::kind, |_| "intact"));
    match result {
        Ok(size_bytes) => Json(VerifyReply { size_bytes }).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn verify_chunk(app: &AppState, hash: &str) -> Result<u64, ApiError> {
    let hash = parse_hash(hash)?;
    Ok(app.store.blocking(move |s| s.verify(hash)).await?)
}

/// The `Range` header, if any; malformed ones are refused.
fn requested_range(headers: &HeaderMap) -> Result<Option<ByteRange>, ApiError> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::BadRange(format!("{value:?}")))?;
    ByteRange::parse(text)
        .map(Some)
        .ok_or_else(|| ApiError::BadRange(text.to_owned()))
}

fn partial(bytes: Bytes, range: ByteRange) -> Result<Response, ApiError> {
    let size_bytes = bytes.len() as u64;
    let (first, last) = range
        .resolve(size_bytes)
        .ok_or(ApiError::RangeNotSatisfiable { size_bytes })?;
    let content_range = format!("bytes {first}-{last}/{size_bytes}");
    let body = bytes.slice(first as usize..=last as usize);
    Ok(chunk_response(
        StatusCode::PARTIAL_CONTENT,
        body,
        Some(content_range),
    ))
}

fn chunk_response(status: StatusCode, body: Bytes, content_range: Option<String>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(value) = content_range.and_then(|v| HeaderValue::try_from(v).ok()) {
        headers.insert(header::CONTENT_RANGE, value);
    }
    (status, headers, body).into_response()
}

async fn patch(
    State(app): State<AppState>,
    Path(hash): Path<String>,
    params: Result<Query<PatchParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = patch_chunk(&app, &hash, params, body).await;
    metrics::record_patch(result.as_ref().map_or_else(ApiError::kind, |_| "ok"));
    match result {
        Ok(hash) => hash_reply(StatusCode::OK, hash),
        Err(e) => e.into_response(),
    }
}

async fn patch_chunk(
    app: &AppState,
    hash: &str,
    params: Result<Query<PatchParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<ChunkHash, ApiError> {
    let source = parse_hash(hash)?;
    let offset = params?.0.offset;
    let body = body?;
    Ok(app
        .store
        .blocking(move |s| s.patch(source, offset, &body))
        .await?)
}

async fn exists(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ExistsReply>, ApiError> {
    let request: ExistsRequest = serde_json::from_slice(&body?)?;
    if request.hashes.len() > MAX_EXISTS_HASHES {
        return Err(ApiError::TooManyHashes {
            count: request.hashes.len(),
            max: MAX_EXISTS_HASHES,
        });
    }
    let hashes = request
        .hashes
        .iter()
        .map(|h| parse_hash(h))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(ExistsReply {
        present: app.store.contains(&hashes),
    }))
}

async fn status(State(app): State<AppState>) -> Result<Json<crate::store::Usage>, ApiError> {
    Ok(Json(app.store.blocking(|s| s.usage()).await?))
}

async fn render_metrics(State(app): State<AppState>) -> Result<Response, ApiError> {
    let handle = app.metrics.as_ref().ok_or(ApiError::MetricsDisabled)?;
    let usage = app.store.blocking(|s| s.usage()).await?;
    metrics::record_usage(&usage);
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
    Ok((content_type, handle.render()).into_response())
}

#[cfg(test)]
mod tests;
