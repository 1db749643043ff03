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
    /// The file was replaced or changed while a read that needed several
    /// read plans was under way: the bytes already delivered belong to
    /// version `from`, the rest would not. Definite (a read changes
    /// nothing); read again.
    #[error("{path} changed from version {from} to {to} during the read; read it again")]
    ChangedDuringRead {
        path: String,
        from: toastyfs_proto::Version,
        to: toastyfs_proto::Version,
    },
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

/// An error and its causes, each once: so "connection refused" is not
/// hidden behind "error sending request", and a message that already
/// quotes its source (`cannot listen on X: Address already in use`) does
/// not print it twice.
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if let Some(hint) = crate::tls::describe_handshake_failure(&text) {
        text.push_str(" (");
        text.push_str(hint);
        text.push(')');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Quoting(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Silent(#[source] std::io::Error);

    #[test]
    fn each_cause_is_named_once() {
        let io = || std::io::Error::other("in use");
        assert_eq!(describe(&Quoting(io())), "outer: in use");
        assert_eq!(describe(&Silent(io())), "outer: in use");
    }
}
