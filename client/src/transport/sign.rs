//! Signing every request a process sends with its cluster secret
//! (`proto::auth` defines the scheme): a fresh nonce, the clock, and the
//! body's hash when the body is in memory; a streamed chunk upload is sent
//! with an unsigned payload, since the chunk server checks it against its
//! hash anyway.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderName, HeaderValue};
use toastyfs_proto::auth::{self, Secret, SignedParts};

/// Signs requests with one secret.
#[derive(Debug)]
pub struct Signer {
    secret: Secret,
}

impl Signer {
    pub fn new(secret: Secret) -> Signer {
        Signer { secret }
    }

    /// Adds the signature headers to `request`; its body is covered when
    /// `sign_body` and the body is in memory.
    pub fn sign(&self, request: &mut reqwest::Request, sign_body: bool) {
        let content_sha256 = match request.body() {
            Some(body) if sign_body => body.as_bytes().map(auth::body_digest),
            Some(_) => None,
            None if sign_body => Some(auth::body_digest(b"")),
            None => None,
        }
        .unwrap_or_else(|| auth::UNSIGNED_PAYLOAD.to_owned());
        let mut nonce = [0u8; 16];
        rand::fill(&mut nonce);
        let nonce = hex::encode(nonce);
        let date_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let url = request.url();
        let path_and_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let signature = auth::sign(
            &self.secret,
            &SignedParts {
                method: request.method().as_str(),
                path_and_query: &path_and_query,
                content_sha256: &content_sha256,
                date_ms,
                nonce: &nonce,
            },
        );
        let headers = request.headers_mut();
        for (name, value) in [
            (auth::DATE_HEADER, date_ms.to_string()),
            (auth::NONCE_HEADER, nonce),
            (auth::CONTENT_SHA256_HEADER, content_sha256),
            (auth::SIGNATURE_HEADER, signature),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
}
