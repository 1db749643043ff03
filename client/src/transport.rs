//! The one place the client sends requests: record POSTs to metadata
//! nodes and chunk transfers to chunk servers, every response bounded.

use std::time::Duration;

use toastyfs_proto::record::{self, Record};
use toastyfs_proto::ChunkHash;

const RECORD_CONTENT_TYPE: &str = "application/x-toastyfs-record";
/// Largest metadata response accepted.
const MAX_META_RESPONSE: usize = 16 << 20;

/// A response that is not a success.
#[derive(Debug)]
pub enum SendError {
    /// Could not connect: the request did not reach the server.
    Connect(String),
    /// Sent, but no (complete) answer: it may have been processed.
    Lost(String),
    /// The server answered with an error status.
    Status(u16, String),
    /// The answer does not decode.
    Malformed(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "cannot connect: {e}"),
            SendError::Lost(e) => write!(f, "no answer: {e}"),
            SendError::Status(code, body) => write!(f, "HTTP {code}: {body}"),
            SendError::Malformed(e) => write!(f, "malformed answer: {e}"),
        }
    }
}

#[derive(Clone)]
pub struct Transport {
    http: reqwest::Client,
    pub timeout: Duration,
}

impl Transport {
    pub fn new(timeout: Duration) -> Transport {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        Transport { http, timeout }
    }

    fn classify(e: reqwest::Error) -> SendError {
        if e.is_connect() {
            SendError::Connect(e.to_string())
        } else {
            SendError::Lost(e.to_string())
        }
    }

    async fn body(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, SendError> {
        // Sized up front when the length is announced: no regrowth copies.
        let announced = response.content_length().unwrap_or(0).min(max as u64);
        let mut body = Vec::with_capacity(announced as usize);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| SendError::Lost(e.to_string()))?
        {
            if body.len() + chunk.len() > max {
                return Err(SendError::Malformed(format!(
                    "response larger than {max} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// POSTs a record to a metadata node and decodes the record answer.
    pub async fn post_record<Req: Record, Resp: Record>(
        &self,
        addr: &str,
        path: &str,
        request: &Req,
    ) -> Result<Resp, SendError> {
        let body = record::encode(request).map_err(|e| SendError::Malformed(e.to_string()))?;
        let response = self
            .http
            .post(format!("http://{addr}{path}"))
            .header("content-type", RECORD_CONTENT_TYPE)
            .body(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(Self::classify)?;
        let status = response.status().as_u16();
        let body = Self::body(response, MAX_META_RESPONSE).await?;
        if status != 200 {
            return Err(SendError::Status(
                status,
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        record::decode(&body).map_err(|e| SendError::Malformed(e.to_string()))
    }

    /// GETs JSON from a metadata node.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
    ) -> Result<T, SendError> {
        let response = self
            .http
            .get(format!("http://{addr}{path}"))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(Self::classify)?;
        let status = response.status().as_u16();
        let body = Self::body(response, MAX_META_RESPONSE).await?;
        if status != 200 {
            return Err(SendError::Status(
                status,
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        serde_json::from_slice(&body).map_err(|e| SendError::Malformed(e.to_string()))
    }

    /// Downloads a whole chunk (the caller verifies its hash).
    pub async fn get_chunk(
        &self,
        addr: &str,
        hash: &ChunkHash,
        max: usize,
    ) -> Result<Vec<u8>, SendError> {
        let response = self
            .http
            .get(format!("http://{addr}/chunks/{hash}"))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(Self::classify)?;
        let status = response.status().as_u16();
        let body = Self::body(response, max).await?;
        if status != 200 {
            return Err(SendError::Status(
                status,
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        Ok(body)
    }

    /// Uploads a chunk under its hash.
    pub async fn put_chunk(
        &self,
        addr: &str,
        hash: &ChunkHash,
        bytes: bytes::Bytes,
    ) -> Result<(), SendError> {
        let response = self
            .http
            .put(format!("http://{addr}/chunks/{hash}"))
            .body(bytes)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(Self::classify)?;
        let status = response.status().as_u16();
        if status == 200 || status == 201 {
            return Ok(());
        }
        let body = Self::body(response, 1 << 16).await.unwrap_or_default();
        Err(SendError::Status(
            status,
            String::from_utf8_lossy(&body).into_owned(),
        ))
    }
}
