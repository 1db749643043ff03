//! How the gateway answers a failure: a status code a client can act on
//! and a plain-text body that says what is wrong.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use toastyfs_client::ClientError;
use toastyfs_proto::namespace::FsError;

/// A request the gateway could not serve.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0} is not served here (GET, HEAD, PUT and DELETE are)")]
    MethodNotAllowed(String),
    #[error("{0}")]
    RangeNotSatisfiable(String),
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            GatewayError::Conflict(_) => StatusCode::CONFLICT,
            GatewayError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            GatewayError::Client(e) => client_status(e),
        }
    }
}

/// The status of a client failure: refusals by what they mean, an
/// unreachable cluster 503, an unknown outcome 504 (the change may or
/// may not have been made).
fn client_status(e: &ClientError) -> StatusCode {
    match e {
        ClientError::Refused(refusal) => match refusal {
            FsError::NotFound { .. } => StatusCode::NOT_FOUND,
            FsError::VersionMismatch { .. } => StatusCode::PRECONDITION_FAILED,
            FsError::AlreadyExists { .. }
            | FsError::NotADirectory { .. }
            | FsError::IsADirectory { .. }
            | FsError::NotEmpty { .. }
            | FsError::RenameTargetExists { .. }
            | FsError::RenameKindMismatch { .. }
            | FsError::RenameIntoOwnSubtree { .. }
            | FsError::RootNotAllowed { .. } => StatusCode::CONFLICT,
            FsError::FileTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        },
        ClientError::Rejected { status, .. } => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        ClientError::Unavailable { .. } | ClientError::ChunkUnavailable { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ClientError::UploadFailed { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ClientError::Unknown(_) => StatusCode::GATEWAY_TIMEOUT,
        ClientError::ChangedDuringRead { .. } => StatusCode::CONFLICT,
        ClientError::Protocol(_) => StatusCode::BAD_REQUEST,
        ClientError::Io(_) => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = self.to_string();
        if let GatewayError::Client(ClientError::Unknown(_)) = self {
            body.push_str("\nThe change may or may not have been made; check before retrying.");
        }
        body.push('\n');
        (status, body).into_response()
    }
}
