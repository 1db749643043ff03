//! Who may use a chunk server's API. With a cluster secret, every chunk
//! route (download, upload, patch, exists, status) needs either a request
//! signed with the secret (peers fetching copies, an operator) or a chunk
//! token a metadata node minted (`proto::chunk_token`): read access for
//! downloads and `exists`, write access for uploads and patches. Tokens
//! of keys the leader reported revoked ([`RevokedKeys`], fed by the sync
//! loop) are refused. `/health` and `/metrics` stay open; a server
//! without a secret checks nothing.
//!
//! A refusal is answered 401 (403 for a read token on an upload) and
//! counted in `toastyfs_chunk_auth_refused_total{reason}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use toastyfs_proto::auth::{self, Verifier};
use toastyfs_proto::chunk_token::{ChunkToken, TokenError, REVOCATION_NOTICE_MS, TOKEN_HEADER};
use toastyfs_proto::client_key::{Access, KeyId};
use toastyfs_proto::routes;

/// Keys the leader reported revoked, each kept for as long as a token
/// minted for it could still be valid.
#[derive(Debug, Default)]
pub struct RevokedKeys {
    noted: Mutex<BTreeMap<KeyId, Instant>>,
}

impl RevokedKeys {
    /// Records the leader's latest list.
    pub fn note(&self, keys: &[KeyId]) {
        let now = Instant::now();
        let keep = Duration::from_millis(REVOCATION_NOTICE_MS);
        let mut noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            noted.insert(*key, now);
        }
        noted.retain(|_, at| now.duration_since(*at) < keep);
    }

    pub fn contains(&self, key: KeyId) -> bool {
        self.noted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&key)
    }
}

/// What the server checks requests with.
#[derive(Debug)]
pub struct AccessGate {
    verifier: Verifier,
    pub revoked: Arc<RevokedKeys>,
}

impl AccessGate {
    pub fn new(accepted: Vec<toastyfs_proto::auth::Secret>) -> AccessGate {
        AccessGate {
            verifier: Verifier::new(accepted),
            revoked: Arc::default(),
        }
    }

    fn check_token(&self, text: &str, access: Access) -> Result<(), TokenError> {
        let token: ChunkToken = text.parse()?;
        let grant = token.verify(self.verifier.accepted(), now_ms(), access)?;
        match grant.key {
            Some(key) if self.revoked.contains(key) => Err(TokenError::Revoked(key)),
            _ => Ok(()),
        }
    }

    fn check_signature(&self, request: &Request) -> Result<(), auth::AuthError> {
        let headers = request.headers();
        let path = request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path(), |p| p.as_str());
        // A GET has no body; a chunk body authenticates itself by its
        // hash; `exists` asks only whether hashes are here.
        self.verifier.check(
            request.method().as_str(),
            path,
            auth::received(|name| headers.get(name).and_then(|v| v.to_str().ok())),
            None,
            now_ms(),
        )
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The access a request needs.
fn needed(method: &Method) -> Access {
    if method == Method::PUT || method == Method::PATCH {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    }
}

/// The middleware on chunk routes.
pub async fn require_credential(
    State(gate): State<Option<Arc<AccessGate>>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let open = [routes::HEALTH, routes::METRICS].contains(&request.uri().path());
    let Some(gate) = gate.filter(|_| !open) else {
        return next.run(request).await;
    };
    let token = request
        .headers()
        .get(TOKEN_HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    let refused = match token {
        Some(token) => gate
            .check_token(token, needed(request.method()))
            .err()
            .map(|e| {
                let status = match e {
                    TokenError::ReadOnly => StatusCode::FORBIDDEN,
                    _ => StatusCode::UNAUTHORIZED,
                };
                (status, e.reason(), e.to_string())
            }),
        None => gate
            .check_signature(&request)
            .err()
            .map(|e| (StatusCode::UNAUTHORIZED, e.reason(), missing_or(e))),
    };
    match refused {
        None => next.run(request).await,
        Some((status, reason, message)) => {
            metrics::counter!("toastyfs_chunk_auth_refused_total", "reason" => reason).increment(1);
            (status, Json(serde_json::json!({ "error": message }))).into_response()
        }
    }
}

/// A request with neither a token nor a signature gets a message that
/// says what it needs.
fn missing_or(error: auth::AuthError) -> String {
    match error {
        auth::AuthError::Missing(_) => "this chunk server needs a chunk token (from the metadata service's placement or locate answer) or a request signed with the cluster secret".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toastyfs_proto::auth::Secret;
    use toastyfs_proto::chunk_token::ChunkGrant;

    fn token(secret: &Secret, key: u64, access: Access) -> String {
        ChunkToken::mint(
            secret,
            ChunkGrant {
                key: Some(KeyId(key)),
                access,
                expires_ms: now_ms() + 60_000,
            },
        )
        .to_string()
    }

    #[test]
    fn tokens_are_checked_for_access_secret_and_revocation() {
        let secret = Secret::from_bytes([3; 32]);
        let gate = AccessGate::new(vec![secret.clone()]);
        let read = token(&secret, 5, Access::ReadOnly);
        assert_eq!(gate.check_token(&read, Access::ReadOnly), Ok(()));
        assert_eq!(
            gate.check_token(&read, Access::ReadWrite),
            Err(TokenError::ReadOnly)
        );
        let foreign = token(&Secret::from_bytes([4; 32]), 5, Access::ReadOnly);
        assert_eq!(
            gate.check_token(&foreign, Access::ReadOnly),
            Err(TokenError::BadMac)
        );
        gate.revoked.note(&[KeyId(5)]);
        assert_eq!(
            gate.check_token(&read, Access::ReadOnly),
            Err(TokenError::Revoked(KeyId(5)))
        );
        let other = token(&secret, 6, Access::ReadWrite);
        assert_eq!(gate.check_token(&other, Access::ReadWrite), Ok(()));
    }
}
