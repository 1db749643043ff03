//! The one HTTP transport of ToastyFS: every request any ToastyFS process
//! sends (client to metadata node, node to node, chunk server to leader,
//! client or chunk server to chunk server) goes through [`Transport`]. One
//! reqwest client builder, one bounded-body reader, one error type.
//!
//! The outcome rule lives here, once: a [`SendError`] is
//! [`SendError::NotSent`] only when the request provably never reached a
//! server (the connection could not be made: refused, unresolvable,
//! connect timeout). Anything that fails after the request may have been
//! written — a timeout, a reset connection, a body cut off — is
//! [`SendError::Lost`] or [`SendError::Timeout`], and a caller must treat a
//! mutating request that ended so as possibly applied.
//!
//! A transport given the cluster secret ([`Transport::signed_with`]) signs
//! every request it sends ([`sign`]); one given a client key
//! ([`Transport::with_key`]) presents it; either way it sends the latest
//! chunk token a metadata node handed it on to chunk servers; one given a
//! CA ([`Transport::with_tls`]) speaks only https and trusts only it.

mod sign;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use toastyfs_proto::auth::Secret;
use toastyfs_proto::chunk_token;
use toastyfs_proto::client_key::ClientKey;

use crate::tls::ClientTls;
use toastyfs_proto::chunks::UploadReply;
use toastyfs_proto::record::{self, Record, RecordError};
use toastyfs_proto::routes::{self, FORWARDED_HEADER, RECORD_CONTENT_TYPE};
use toastyfs_proto::ChunkHash;

pub use crate::limits::MAX_RESPONSE_BYTES;
use crate::limits::{CONNECT_TIMEOUT, MAX_IDLE_PER_HOST, MAX_QUOTED_ERROR, POOL_IDLE_TIMEOUT};

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made: the request never reached a server.
    #[error("cannot connect to {addr}: {detail}")]
    NotSent { addr: String, detail: String },
    /// Sent (or possibly sent), and no answer within the timeout: the
    /// server may have processed it.
    #[error("{addr} did not answer within {timeout:?} (the request may have been processed)")]
    Timeout { addr: String, timeout: Duration },
    /// The connection failed after the request may have been written: the
    /// server may have processed it.
    #[error("lost the connection to {addr} (the request may have been processed): {detail}")]
    Lost { addr: String, detail: String },
    /// The server answered with an error status; `message` is its error
    /// text (the `error` field of a JSON body, or the body itself).
    #[error("{addr} answered {status}: {message}")]
    Status {
        addr: String,
        status: u16,
        message: String,
    },
    #[error("{addr} sent a response larger than {max} bytes")]
    TooLarge { addr: String, max: usize },
    #[error("{addr} sent a malformed response: {detail}")]
    Malformed { addr: String, detail: String },
    #[error("cannot encode the request: {0}")]
    Encode(#[source] RecordError),
}

impl SendError {
    /// True only when the request provably never reached a server: safe
    /// to call a failure, and to send elsewhere without a second effect.
    pub fn never_sent(&self) -> bool {
        matches!(self, SendError::NotSent { .. } | SendError::Encode(_))
    }

    /// The HTTP status, when the server answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            SendError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An answer of any status, its body bounded in size.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// How to send one request: its timeout, whether it is a forward, and the
/// largest answer accepted.
#[derive(Debug, Clone, Copy)]
pub struct SendOptions {
    pub timeout: Duration,
    /// Marks the request with [`FORWARDED_HEADER`].
    pub forwarded: bool,
    pub max_response: usize,
    /// Whether a signature covers the body (off only for chunk uploads,
    /// which the chunk server checks against their hash).
    pub sign_body: bool,
}

impl SendOptions {
    pub fn new(timeout: Duration) -> SendOptions {
        SendOptions {
            timeout,
            forwarded: false,
            max_response: MAX_RESPONSE_BYTES,
            sign_body: true,
        }
    }

    pub fn forwarded(self) -> SendOptions {
        SendOptions {
            forwarded: true,
            ..self
        }
    }
}

/// The HTTP client every ToastyFS process sends with. Cheap to clone:
/// clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Transport {
    http: reqwest::Client,
    /// Default per-request timeout of the typed helpers.
    timeout: Duration,
    /// The metadata leader the latest answer named
    /// ([`routes::LEADER_HEADER`]); shared by every copy of the transport.
    leader_hint: Arc<Mutex<Option<String>>>,
    /// Signs every request with the cluster secret, when the process has
    /// one.
    signer: Option<Arc<sign::Signer>>,
    /// The client key sent with every request (`Authorization: Bearer`).
    key: Option<Arc<ClientKey>>,
    /// The latest chunk token a metadata node handed out
    /// ([`chunk_token::TOKEN_HEADER`]), sent with every request; shared
    /// by every copy of the transport.
    chunk_token: Arc<Mutex<Option<String>>>,
    /// The CA servers' certificates must chain to; `None`: plain HTTP.
    tls: Option<ClientTls>,
    connect_timeout: Duration,
}

/// The one reqwest client builder.
fn build_http(connect: Duration, tls: Option<&ClientTls>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect)
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        builder = builder
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .https_only(true);
        for root in tls.reqwest_roots() {
            builder = builder.add_root_certificate(root);
        }
    }
    builder.build().unwrap_or_default()
}

impl Transport {
    /// A transport whose typed helpers time out after `timeout`.
    pub fn new(timeout: Duration) -> Transport {
        Transport::with_connect_timeout(timeout, CONNECT_TIMEOUT)
    }

    /// A transport whose connections must be made within `connect`.
    pub fn with_connect_timeout(timeout: Duration, connect: Duration) -> Transport {
        let http = build_http(connect, None);
        Transport {
            http,
            timeout,
            leader_hint: Arc::default(),
            signer: None,
            key: None,
            chunk_token: Arc::default(),
            tls: None,
            connect_timeout: connect,
        }
    }

    /// The same connection pool with another default timeout.
    pub fn with_timeout(&self, timeout: Duration) -> Transport {
        Transport {
            http: self.http.clone(),
            timeout,
            leader_hint: self.leader_hint.clone(),
            signer: self.signer.clone(),
            key: self.key.clone(),
            chunk_token: self.chunk_token.clone(),
            tls: self.tls.clone(),
            connect_timeout: self.connect_timeout,
        }
    }

    /// The same transport, signing every request with `secret` (none:
    /// unsigned, for a cluster that runs without a secret).
    pub fn signed_with(mut self, secret: Option<Secret>) -> Transport {
        self.signer = secret.map(|s| Arc::new(sign::Signer::new(s)));
        self
    }

    /// The same transport over TLS, trusting `tls` (none: plain HTTP). A
    /// new connection pool.
    pub fn with_tls(mut self, tls: Option<ClientTls>) -> Transport {
        self.http = build_http(self.connect_timeout, tls.as_ref());
        self.tls = tls;
        self
    }

    /// `scheme://{addr}{path}`: https when this transport speaks TLS.
    pub fn url(&self, addr: &str, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{addr}{path}")
    }

    /// The same transport, presenting `key` with every request (none: no
    /// key).
    pub fn with_key(mut self, key: Option<ClientKey>) -> Transport {
        self.key = key.map(Arc::new);
        self
    }

    /// The metadata leader's address as the latest answer that named one
    /// said (possibly stale: a hint, not a fact).
    pub fn leader_hint(&self) -> Option<String> {
        self.leader_hint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// POSTs a record body and returns the answer whatever its status.
    pub async fn post_raw(
        &self,
        addr: &str,
        path: &str,
        body: impl Into<reqwest::Body>,
        options: SendOptions,
    ) -> Result<RawResponse, SendError> {
        self.post_body(addr, path, RECORD_CONTENT_TYPE, body, options)
            .await
    }

    /// POSTs a body of `content_type` and returns the answer whatever its
    /// status.
    pub async fn post_body(
        &self,
        addr: &str,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
        options: SendOptions,
    ) -> Result<RawResponse, SendError> {
        let mut request = self
            .http
            .post(self.url(addr, path))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if options.forwarded {
            request = request.header(FORWARDED_HEADER, "1");
        }
        self.exchange(addr, request, options).await
    }

    /// GETs `path` and returns the answer whatever its status.
    pub async fn get_raw(
        &self,
        addr: &str,
        path: &str,
        options: SendOptions,
    ) -> Result<RawResponse, SendError> {
        let mut request = self.http.get(self.url(addr, path));
        if options.forwarded {
            request = request.header(FORWARDED_HEADER, "1");
        }
        self.exchange(addr, request, options).await
    }

    /// GETs `path` and hands over the response to read as it arrives (a
    /// backup: too large to hold); an error status is read and returned
    /// as [`SendError::Status`].
    pub async fn get_streamed(
        &self,
        addr: &str,
        path: &str,
        options: SendOptions,
    ) -> Result<reqwest::Response, SendError> {
        let request = self.http.get(self.url(addr, path));
        let response = self.send(addr, request, options).await?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(response);
        }
        let body = read_body(addr, response, options).await?;
        Err(SendError::Status {
            addr: addr.to_owned(),
            status,
            message: error_message(&body),
        })
    }

    /// Sends `request` and reads its answer, classifying every failure.
    async fn exchange(
        &self,
        addr: &str,
        request: reqwest::RequestBuilder,
        options: SendOptions,
    ) -> Result<RawResponse, SendError> {
        let response = self.send(addr, request, options).await?;
        let status = response.status().as_u16();
        let body = read_body(addr, response, options).await?;
        Ok(RawResponse { status, body })
    }

    /// Sends `request` with this transport's credentials and signature,
    /// notes the leader hint and chunk token the answer carries, and
    /// hands over the answer with its body unread.
    async fn send(
        &self,
        addr: &str,
        request: reqwest::RequestBuilder,
        options: SendOptions,
    ) -> Result<reqwest::Response, SendError> {
        let mut request = request
            .timeout(options.timeout)
            .build()
            .map_err(|e| classify(addr, options.timeout, e))?;
        self.add_credentials(&mut request);
        if let Some(signer) = &self.signer {
            signer.sign(&mut request, options.sign_body);
        }
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| classify(addr, options.timeout, e))?;
        if let Some(leader) = response
            .headers()
            .get(routes::LEADER_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            *self.leader_hint.lock().unwrap_or_else(|p| p.into_inner()) = Some(leader.to_owned());
        }
        if let Some(token) = response
            .headers()
            .get(chunk_token::TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            *self.chunk_token.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.to_owned());
        }
        Ok(response)
    }

    /// Adds the client key and the latest chunk token to `request`.
    fn add_credentials(&self, request: &mut reqwest::Request) {
        let headers = request.headers_mut();
        if let Some(key) = &self.key {
            if let Ok(value) = HeaderValue::from_str(&key.bearer()) {
                headers.insert(reqwest::header::AUTHORIZATION, value);
            }
        }
        let token = self
            .chunk_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(value) = token.and_then(|t| HeaderValue::from_str(&t).ok()) {
            headers.insert(chunk_token::TOKEN_HEADER, value);
        }
    }

    /// POSTs a record and decodes the record the server answers with.
    pub async fn post_record<Req: Record, Resp: Record>(
        &self,
        addr: &str,
        path: &str,
        request: &Req,
    ) -> Result<Resp, SendError> {
        let body = record::encode(request).map_err(SendError::Encode)?;
        let raw = self
            .post_raw(addr, path, body, SendOptions::new(self.timeout))
            .await?;
        decode_record(addr, raw)
    }

    /// POSTs JSON (operator endpoints) and decodes a JSON answer.
    pub async fn post_json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        request: &Req,
        options: SendOptions,
    ) -> Result<Resp, SendError> {
        let mut builder = self.http.post(self.url(addr, path)).json(request);
        if options.forwarded {
            builder = builder.header(FORWARDED_HEADER, "1");
        }
        let raw = self.exchange(addr, builder, options).await?;
        decode_json(addr, raw)
    }

    /// GETs JSON.
    pub async fn get_json<Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        options: SendOptions,
    ) -> Result<Resp, SendError> {
        let raw = self.get_raw(addr, path, options).await?;
        decode_json(addr, raw)
    }

    /// Downloads a whole chunk of at most `max` bytes, hashed by the chunk
    /// server before it sends it (the caller verifies its hash too).
    pub async fn get_chunk(
        &self,
        addr: &str,
        hash: &ChunkHash,
        max: usize,
    ) -> Result<Vec<u8>, SendError> {
        self.download_chunk(addr, hash, max, false).await
    }

    /// Downloads a whole chunk the caller will hash itself: the chunk
    /// server sends it without hashing it first
    /// ([`routes::CALLER_VERIFIES_HEADER`]). A mismatch must be reported
    /// with [`Transport::report_bad_copy`].
    pub async fn get_chunk_to_verify(
        &self,
        addr: &str,
        hash: &ChunkHash,
        max: usize,
    ) -> Result<Vec<u8>, SendError> {
        self.download_chunk(addr, hash, max, true).await
    }

    async fn download_chunk(
        &self,
        addr: &str,
        hash: &ChunkHash,
        max: usize,
        caller_verifies: bool,
    ) -> Result<Vec<u8>, SendError> {
        let options = SendOptions {
            max_response: max,
            ..SendOptions::new(self.timeout)
        };
        let mut request = self.http.get(self.url(addr, &routes::chunk(hash)));
        if caller_verifies {
            request = request.header(routes::CALLER_VERIFIES_HEADER, "1");
        }
        let raw = self.exchange(addr, request, options).await?;
        success(addr, raw).map(|raw| raw.body)
    }

    /// Tells the chunk server at `addr` that its copy of `hash` came back
    /// not matching the hash: it re-reads and hashes the copy, and
    /// quarantines it if corrupt (the bytes may also have been damaged on
    /// the way). `Ok(true)` if the server found its copy corrupt.
    pub async fn report_bad_copy(&self, addr: &str, hash: &ChunkHash) -> Result<bool, SendError> {
        let options = SendOptions {
            max_response: MAX_QUOTED_ERROR,
            ..SendOptions::new(self.timeout)
        };
        let raw = self
            .post_body(
                addr,
                &routes::chunk_verify(hash),
                "application/octet-stream",
                Vec::new(),
                options,
            )
            .await?;
        match raw.status {
            410 => Ok(true),
            _ => success(addr, raw).map(|_| false),
        }
    }

    /// Uploads a chunk to `addr`, which passes it down `upload.chain`
    /// while it arrives ([`routes::CHAIN_HEADER`]); the answer names the
    /// servers whose copy is durable.
    pub async fn put_chunk_chained(
        &self,
        addr: &str,
        hash: &ChunkHash,
        body: impl Into<reqwest::Body>,
        upload: ChainedUpload<'_>,
    ) -> Result<UploadReply, SendError> {
        let mut request = self
            .http
            .put(self.url(addr, &routes::chunk(hash)))
            .header(routes::CHAIN_HEADER, upload.chain.join(","))
            .body(body);
        if let Some(length) = upload.length {
            request = request.header(reqwest::header::CONTENT_LENGTH, length);
        }
        if let Some(token) = upload.token {
            request = request.header(chunk_token::TOKEN_HEADER, token);
        }
        if upload.hop {
            request = request.header(routes::CHAIN_HOP_HEADER, "1");
        }
        let options = SendOptions {
            max_response: MAX_QUOTED_ERROR,
            sign_body: false,
            ..SendOptions::new(self.timeout)
        };
        let raw = self.exchange(addr, request, options).await?;
        let raw = if raw.status == 201 {
            raw
        } else {
            success(addr, raw)?
        };
        serde_json::from_slice(&raw.body).map_err(|e| SendError::Malformed {
            addr: addr.to_owned(),
            detail: format!("a chunk upload's answer: {e}"),
        })
    }

    /// Uploads a chunk under its hash (201 stored, 200 already there).
    pub async fn put_chunk(
        &self,
        addr: &str,
        hash: &ChunkHash,
        bytes: bytes::Bytes,
    ) -> Result<(), SendError> {
        let request = self
            .http
            .put(self.url(addr, &routes::chunk(hash)))
            .body(bytes);
        let options = SendOptions {
            max_response: MAX_QUOTED_ERROR,
            sign_body: false,
            ..SendOptions::new(self.timeout)
        };
        let raw = self.exchange(addr, request, options).await?;
        if raw.status == 201 {
            return Ok(());
        }
        success(addr, raw).map(|_| ())
    }
}

/// How a chained upload goes on ([`Transport::put_chunk_chained`]).
#[derive(Debug, Clone, Copy)]
pub struct ChainedUpload<'a> {
    /// The servers after the first, in order.
    pub chain: &'a [String],
    /// The chunk token to present (a chunk server passing on its
    /// caller's); `None`: the transport's own credentials.
    pub token: Option<&'a str>,
    /// The body's length, when known.
    pub length: Option<u64>,
    /// Sent by a chunk server passing an upload on (`CHAIN_HOP_HEADER`).
    pub hop: bool,
}

/// A request body fed piece by piece through `pieces` (a chunk server
/// passing an upload down its chain as it arrives).
pub fn streamed_body(
    pieces: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> reqwest::Body {
    let stream = futures::stream::unfold(pieces, |mut pieces| async move {
        pieces.recv().await.map(|piece| (piece, pieces))
    });
    reqwest::Body::wrap_stream(stream)
}

/// Which side of the line a reqwest failure falls on (see the module doc).
fn classify(addr: &str, timeout: Duration, e: reqwest::Error) -> SendError {
    if e.is_connect() || e.is_builder() {
        SendError::NotSent {
            addr: addr.to_owned(),
            detail: crate::error::describe(&e),
        }
    } else if e.is_timeout() {
        SendError::Timeout {
            addr: addr.to_owned(),
            timeout,
        }
    } else {
        SendError::Lost {
            addr: addr.to_owned(),
            detail: crate::error::describe(&e),
        }
    }
}

/// The one bounded-body reader: at most `options.max_response` bytes,
/// sized up front when the length is announced.
async fn read_body(
    addr: &str,
    mut response: reqwest::Response,
    options: SendOptions,
) -> Result<Vec<u8>, SendError> {
    let max = options.max_response;
    let too_large = || SendError::TooLarge {
        addr: addr.to_owned(),
        max,
    };
    let announced = response.content_length().unwrap_or(0);
    if announced > max as u64 {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(announced as usize);
    while let Some(piece) = response
        .chunk()
        .await
        .map_err(|e| classify(addr, options.timeout, e))?
    {
        if body.len() + piece.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&piece);
    }
    Ok(body)
}

/// `raw` if its status is 200, else the server's error.
fn success(addr: &str, raw: RawResponse) -> Result<RawResponse, SendError> {
    if raw.status == 200 {
        return Ok(raw);
    }
    Err(SendError::Status {
        addr: addr.to_owned(),
        status: raw.status,
        message: error_message(&raw.body),
    })
}

/// The error text of an error answer: the `error` field of a JSON body,
/// or the start of the body as text.
pub fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => parsed.error,
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(MAX_QUOTED_ERROR)]).into_owned(),
    }
}

/// Turns an answer into a record, or the server's error.
pub fn decode_record<Resp: Record>(addr: &str, raw: RawResponse) -> Result<Resp, SendError> {
    let raw = success(addr, raw)?;
    record::decode(&raw.body).map_err(|e| SendError::Malformed {
        addr: addr.to_owned(),
        detail: e.to_string(),
    })
}

fn decode_json<Resp: DeserializeOwned>(addr: &str, raw: RawResponse) -> Result<Resp, SendError> {
    let raw = success(addr, raw)?;
    serde_json::from_slice(&raw.body).map_err(|e| SendError::Malformed {
        addr: addr.to_owned(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
