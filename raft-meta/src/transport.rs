//! The one place a metadata node or its clients send a request: HTTP POSTs
//! whose bodies are records, and JSON for operator endpoints. Request
//! signing and TLS belong here when they come.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use toastyfs_proto::record::{self, Record, RecordError};

/// Largest response body accepted (a snapshot chunk or a list page fits).
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// Content type of record bodies.
pub const RECORD_CONTENT_TYPE: &str = "application/x-toastyfs-record";
/// Marks a request already forwarded once by a follower.
pub const FORWARDED_HEADER: &str = "x-toastyfs-forwarded";

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot reach {addr}: {detail}")]
    Unreachable { addr: String, detail: String },
    #[error("{addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("{addr} answered {status}: {body}")]
    Status {
        addr: String,
        status: u16,
        body: String,
    },
    #[error("{addr} sent a response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge { addr: String },
    #[error("{addr} sent a malformed response: {source}")]
    BadRecord { addr: String, source: RecordError },
    #[error("{addr} sent malformed JSON: {detail}")]
    BadJson { addr: String, detail: String },
    #[error("cannot encode the request: {0}")]
    Encode(RecordError),
}

impl TransportError {
    /// True when the request may not have reached the server's application
    /// (safe to try elsewhere without risking a second effect unless the
    /// request is idempotent by other means, like a session tag).
    pub fn is_connection_failure(&self) -> bool {
        matches!(self, TransportError::Unreachable { .. })
    }
}

/// A raw response: status and body bytes.
pub struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// An HTTP client shared by everything a node sends.
#[derive(Clone)]
pub struct Transport {
    client: reqwest::Client,
}

impl Default for Transport {
    fn default() -> Self {
        Transport::new()
    }
}

impl Transport {
    pub fn new() -> Transport {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        Transport { client }
    }

    /// POSTs `body` and returns the status and body, bounded in size.
    pub async fn post_raw(
        &self,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        forwarded: bool,
        timeout: Duration,
    ) -> Result<RawResponse, TransportError> {
        let url = format!("http://{addr}{path}");
        let mut request = self
            .client
            .post(url)
            .header("content-type", RECORD_CONTENT_TYPE)
            .body(body)
            .timeout(timeout);
        if forwarded {
            request = request.header(FORWARDED_HEADER, "1");
        }
        self.finish(addr, request, timeout).await
    }

    async fn finish(
        &self,
        addr: &str,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<RawResponse, TransportError> {
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                TransportError::Timeout {
                    addr: addr.to_owned(),
                    timeout,
                }
            } else {
                TransportError::Unreachable {
                    addr: addr.to_owned(),
                    detail: e.to_string(),
                }
            }
        };
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            if e.is_timeout() {
                TransportError::Timeout {
                    addr: addr.to_owned(),
                    timeout,
                }
            } else {
                TransportError::Status {
                    addr: addr.to_owned(),
                    status,
                    body: format!("body cut off: {e}"),
                }
            }
        })? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(TransportError::TooLarge {
                    addr: addr.to_owned(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(RawResponse { status, body })
    }

    /// POSTs a record and decodes the record the server answers with.
    pub async fn post_record<Req: Record, Resp: Record>(
        &self,
        addr: &str,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, TransportError> {
        let body = record::encode(request).map_err(TransportError::Encode)?;
        let raw = self.post_raw(addr, path, body, false, timeout).await?;
        decode_response(addr, raw)
    }

    /// POSTs JSON (operator endpoints) and decodes a JSON answer.
    pub async fn post_json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, TransportError> {
        let url = format!("http://{addr}{path}");
        let request = self.client.post(url).json(request).timeout(timeout);
        let raw = self.finish(addr, request, timeout).await?;
        decode_json(addr, raw)
    }

    /// GETs JSON.
    pub async fn get_json<Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<Resp, TransportError> {
        let url = format!("http://{addr}{path}");
        let raw = self
            .finish(addr, self.client.get(url).timeout(timeout), timeout)
            .await?;
        decode_json(addr, raw)
    }
}

/// Turns a raw answer into a record, or the server's error text.
pub fn decode_response<Resp: Record>(addr: &str, raw: RawResponse) -> Result<Resp, TransportError> {
    if raw.status != 200 {
        return Err(TransportError::Status {
            addr: addr.to_owned(),
            status: raw.status,
            body: String::from_utf8_lossy(&raw.body).into_owned(),
        });
    }
    record::decode(&raw.body).map_err(|source| TransportError::BadRecord {
        addr: addr.to_owned(),
        source,
    })
}

fn decode_json<Resp: DeserializeOwned>(
    addr: &str,
    raw: RawResponse,
) -> Result<Resp, TransportError> {
    if raw.status != 200 {
        return Err(TransportError::Status {
            addr: addr.to_owned(),
            status: raw.status,
            body: String::from_utf8_lossy(&raw.body).into_owned(),
        });
    }
    serde_json::from_slice(&raw.body).map_err(|e| TransportError::BadJson {
        addr: addr.to_owned(),
        detail: e.to_string(),
    })
}
