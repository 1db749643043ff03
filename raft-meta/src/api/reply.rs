//! What a metadata node answers: a record body on success, or an
//! [`ApiError`] as JSON `{"error": ...}` with the status that says what
//! the caller can do (400 fix the request, 409 conflicts with the
//! cluster, 502/503 retry elsewhere or later).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use toastyfs_proto::record::{self, Record, RecordError};
use toastyfs_proto::routes::RECORD_CONTENT_TYPE;

use crate::cluster::ClusterError;

/// An error answer; `status` maps each case once.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    BadRecord(#[from] RecordError),
    #[error("no leader is known right now (election in progress?); retry shortly")]
    NoLeader,
    #[error("the leader could not be reached to forward the request: {0}")]
    ForwardFailed(String),
    #[error("this node is not ready: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A node-to-node request not signed with the cluster secret.
    #[error("{0}")]
    Unauthenticated(#[from] toastyfs_proto::auth::AuthError),
    #[error("{0}")]
    TooLarge(String),
    /// A client request without a valid credential (401) or beyond what
    /// its key may do (403).
    #[error("{0}")]
    Caller(#[from] crate::callers::CallerError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRecord(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NoLeader | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::ForwardFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Caller(e) => e.status(),
        }
    }
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> ApiError {
        match e {
            ClusterError::NotAMember(_) | ClusterError::BadMembership(_) => {
                ApiError::BadRequest(e.to_string())
            }
            ClusterError::AlreadyInitialised | ClusterError::Refused(_) => {
                ApiError::Conflict(e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

/// A record answer.
pub fn record_response<T: Record>(value: &T) -> Response {
    match record::encode(value) {
        Ok(bytes) => ([("content-type", RECORD_CONTENT_TYPE)], bytes).into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}
