//! Who sent a client request, and what they may do.
//!
//! On a node with a cluster secret, every client route (namespace reads
//! and writes, placement, locate, status) needs a credential:
//! - a client key (`Authorization: Bearer tfk1.…`, `proto::client_key`),
//!   checked against this node's applied state, so a revocation holds
//!   here as soon as this node applies it; or
//! - a request signed with the cluster secret ([`crate::auth::Gate`]): an
//!   operator's CLI, a gateway given the secret, another node forwarding.
//!
//! A key may read; a read-write key may also change the namespace;
//! cluster changes (settings, keys, membership) need the secret
//! ([`Caller::may_propose`]). A node without a secret admits everyone
//! ([`Caller::Anyone`]). Placement and locate answers carry a chunk token
//! for the caller ([`add_chunk_token`]), which chunk servers check.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use toastyfs_proto::auth::{AuthError, SIGNATURE_HEADER};
use toastyfs_proto::chunk_token::{ChunkGrant, ChunkToken, TOKEN_HEADER, TOKEN_LIFETIME_MS};
use toastyfs_proto::client_key::{self, Access, ClientKey, KeyId, Whoami};
use toastyfs_proto::namespace::{Command, Query};

use crate::api::reply::ApiError;
use crate::auth::{now_ms, Gate};
use crate::limits::MAX_REQUEST_BYTES;
use crate::node::Node;

/// The sender of a client request, as the node established it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// This node runs without a cluster secret and checks nothing.
    Anyone,
    /// A holder of the cluster secret.
    Cluster,
    /// A valid client key.
    Key { id: KeyId, access: Access },
}

/// Why a credential was refused (401) or a caller may not do something
/// (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallerError {
    #[error("this cluster needs a credential: a client key (--key or TOASTYFS_KEY) or the cluster secret (--secret-file)")]
    NoCredential,
    #[error("{0}")]
    BadKey(#[from] client_key::KeyFormatError),
    #[error("no client key {0} in this cluster")]
    UnknownKey(KeyId),
    #[error("client key {0} is revoked")]
    Revoked(KeyId),
    #[error("client key {0}: wrong secret")]
    WrongSecret(KeyId),
    #[error("{0}")]
    Signature(#[from] AuthError),
    #[error("key {key} is {access}: it cannot {what}")]
    Forbidden {
        key: KeyId,
        access: Access,
        what: &'static str,
    },
}

impl CallerError {
    pub fn status(&self) -> StatusCode {
        match self {
            CallerError::Forbidden { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// A short label for the refusal metric.
    pub fn reason(&self) -> &'static str {
        match self {
            CallerError::NoCredential => "missing",
            CallerError::BadKey(_) => "malformed_key",
            CallerError::UnknownKey(_) => "unknown_key",
            CallerError::Revoked(_) => "revoked_key",
            CallerError::WrongSecret(_) => "wrong_key_secret",
            CallerError::Signature(e) => e.reason(),
            CallerError::Forbidden { .. } => "forbidden",
        }
    }
}

impl Caller {
    fn refuse(self, what: &'static str) -> Result<(), CallerError> {
        match self {
            Caller::Key { id, access } => Err(CallerError::Forbidden {
                key: id,
                access,
                what,
            }),
            Caller::Anyone | Caller::Cluster => Ok(()),
        }
    }

    /// Whether this caller may propose `command`: namespace changes need
    /// a read-write key; cluster changes and the leader's own commands
    /// need the cluster secret.
    pub fn may_propose(self, command: &Command) -> Result<(), CallerError> {
        let what = match command {
            Command::CreateDir { .. }
            | Command::CreateFile { .. }
            | Command::Delete { .. }
            | Command::WriteCommit(_)
            | Command::WriteInline(_)
            | Command::Rename { .. }
            | Command::Truncate { .. }
            | Command::Guarded { .. }
            | Command::Placed { .. }
            | Command::RegisterClient => return self.may_write_or("change the namespace"),
            Command::SetReplicationFactor { .. }
            | Command::SetMinCopies { .. }
            | Command::SetInlineMax { .. } => {
                "change cluster settings (that needs the cluster secret)"
            }
            Command::CreateKey { .. } | Command::RevokeKey { .. } => {
                "manage keys (that needs the cluster secret)"
            }
            Command::Reclaim
            | Command::ForgetGarbage { .. }
            | Command::Condemn { .. }
            | Command::Pardon { .. } => "propose the leader's own commands",
        };
        self.refuse(what)
    }

    /// Whether this caller may ask `query`.
    pub fn may_query(self, query: &Query) -> Result<(), CallerError> {
        match query {
            Query::ListKeys => self.refuse("list keys (that needs the cluster secret)"),
            Query::Stat { .. } | Query::List { .. } | Query::ReadPlan { .. } | Query::Settings => {
                Ok(())
            }
        }
    }

    /// Whether this caller may place new chunks (upload).
    pub fn may_upload(self) -> Result<(), CallerError> {
        self.may_write_or("upload chunks")
    }

    /// Refuses `what` to a read-only key; everyone else may.
    fn may_write_or(self, what: &'static str) -> Result<(), CallerError> {
        match self {
            Caller::Key { access, .. } if !access.may_write() => self.refuse(what),
            _ => Ok(()),
        }
    }

    fn access(self) -> Access {
        match self {
            Caller::Key { access, .. } => access,
            Caller::Anyone | Caller::Cluster => Access::ReadWrite,
        }
    }

    fn key(self) -> Option<KeyId> {
        match self {
            Caller::Key { id, .. } => Some(id),
            Caller::Anyone | Caller::Cluster => None,
        }
    }
}

/// [`toastyfs_proto::routes::WHOAMI`]: who this node takes the caller
/// for.
pub async fn whoami(
    axum::extract::Extension(caller): axum::extract::Extension<Caller>,
) -> axum::Json<Whoami> {
    axum::Json(Whoami {
        key: caller.key(),
        access: caller.access(),
    })
}

/// Checks a presented key against this node's applied state.
fn check_key(node: &Node, key: &ClientKey) -> Result<Caller, CallerError> {
    let stored = node
        .client_key(key.id)
        .map_err(|_| CallerError::UnknownKey(key.id))?
        .ok_or(CallerError::UnknownKey(key.id))?;
    if stored.revoked_ms.is_some() {
        return Err(CallerError::Revoked(key.id));
    }
    if !key.matches(&stored.secret_hash) {
        return Err(CallerError::WrongSecret(key.id));
    }
    Ok(Caller::Key {
        id: key.id,
        access: stored.access,
    })
}

/// The state `identify` needs.
pub type Identify = (Arc<Node>, Option<Arc<Gate>>);

/// The middleware on client routes: establishes the [`Caller`] (a request
/// extension for the handlers) or answers 401.
pub async fn identify(
    State((node, gate)): State<Identify>,
    request: Request,
    next: Next,
) -> Response {
    let Some(gate) = gate else {
        let mut request = request;
        request.extensions_mut().insert(Caller::Anyone);
        return next.run(request).await;
    };
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(client_key::from_authorization);
    let (caller, request) = match authorization {
        Some(key) => (
            key.map_err(CallerError::from)
                .and_then(|key| check_key(&node, &key)),
            request,
        ),
        None if request.headers().contains_key(SIGNATURE_HEADER) => {
            match check_signature(&gate, request).await {
                Ok(request) => (Ok(Caller::Cluster), request),
                Err(response) => return response,
            }
        }
        None => (Err(CallerError::NoCredential), request),
    };
    match caller {
        Ok(caller) => {
            let mut request = request;
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => {
            gate.refused(source, &path, error.reason(), &error);
            refusal(&error)
        }
    }
}

/// Verifies a signed client request; on refusal, the 401 to send.
async fn check_signature(gate: &Gate, request: Request) -> Result<Request, Response> {
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_REQUEST_BYTES).await else {
        return Err(ApiError::TooLarge(format!(
            "the body is over {MAX_REQUEST_BYTES} bytes or was cut off"
        ))
        .into_response());
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| parts.uri.path().to_owned());
    match gate.check(
        parts.method.as_str(),
        &path_and_query,
        &parts.headers,
        &body,
    ) {
        Ok(()) => Ok(Request::from_parts(parts, Body::from(body))),
        Err(error) => {
            gate.refused(source, parts.uri.path(), error.reason(), &error);
            Err(refusal(&CallerError::Signature(error)))
        }
    }
}

/// The answer to a refused caller.
pub fn refusal(error: &CallerError) -> Response {
    (
        error.status(),
        axum::Json(serde_json::json!({ "error": error.to_string() })),
    )
        .into_response()
}

/// On placement and locate answers: a chunk token for the caller (read
/// access for locate, the caller's access for placement), valid for
/// [`TOKEN_LIFETIME_MS`]. Nothing on a node without a secret.
pub async fn add_chunk_token(
    State(gate): State<Option<Arc<Gate>>>,
    request: Request,
    next: Next,
) -> Response {
    let caller = request.extensions().get::<Caller>().copied();
    let placement = request.uri().path() == toastyfs_proto::routes::CHUNK_PLACEMENT;
    let mut response = next.run(request).await;
    let (Some(gate), Some(caller)) = (gate, caller) else {
        return response;
    };
    if response.status() != StatusCode::OK {
        return response;
    }
    let access = if placement {
        caller.access()
    } else {
        Access::ReadOnly
    };
    let grant = ChunkGrant {
        key: caller.key(),
        access,
        expires_ms: now_ms() + TOKEN_LIFETIME_MS,
    };
    let token = ChunkToken::mint(gate.mint_with(), grant).to_string();
    if let Ok(value) = HeaderValue::from_str(&token) {
        response.headers_mut().insert(TOKEN_HEADER, value);
    }
    response
}
