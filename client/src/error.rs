//! What can go wrong in a client operation, split so the caller knows
//! whether it failed for sure, might have happened, or can be retried.

use toastyfs_proto::namespace::FsError;
use toastyfs_proto::ChunkHash;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The cluster refused the operation (not found, exists, version
    /// mismatch...). Definite: nothing changed.
    #[error(transparent)]
    Refused(#[from] FsError),
    /// The operation was sent but no answer came back before the retry
    /// budget ran out: it may or may not have been applied.
    #[error("outcome unknown (the request may or may not have been applied): {0}")]
    Unknown(String),
    /// No metadata node could be reached: nothing was applied.
    #[error("cannot reach the ToastyFS cluster at {addrs}: {detail}")]
    Unavailable { addrs: String, detail: String },
    /// The cluster refused an administrative request (409: conflicts with
    /// its state, such as forming a formed cluster). Definite.
    #[error("the cluster refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// No replica of a chunk could be read intact.
    #[error("chunk {hash} is unavailable: {detail}")]
    ChunkUnavailable { hash: ChunkHash, detail: String },
    /// A chunk could not be stored on any chunk server.
    #[error("could not upload chunk {hash}: {detail}")]
    UploadFailed { hash: ChunkHash, detail: String },
    /// The cluster answered something this client cannot use.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Local I/O (the source or destination stream).
    #[error("local I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// True if the failure is definite (nothing was applied).
    pub fn is_definite(&self) -> bool {
        !matches!(self, ClientError::Unknown(_))
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;
