//! How a CLI command ends: one line saying what went wrong and what to do,
//! and one exit-code table for every command (printed by `--help` and in
//! docs/operations.md). "Failed" (1) means the request provably did not
//! take effect; anything the CLI cannot know is "unknown" (4).

use toastyfs_client::ClientError;
use toastyfs_proto::namespace::FsError;

/// The exit codes (0: done).
pub mod code {
    /// Refused or failed; nothing was changed (or `fsck` found damage).
    pub const FAILED: u8 = 1;
    /// A bad argument or option; nothing was sent.
    pub const USAGE: u8 = 2;
    /// No metadata node could be reached; nothing was changed.
    pub const UNREACHABLE: u8 = 3;
    /// The outcome is unknown: the change may or may not have been made.
    pub const UNKNOWN: u8 = 4;
    /// Chunk data could not be read or stored (chunk servers down).
    pub const DATA_UNAVAILABLE: u8 = 5;
    /// Interrupted (Ctrl-C, SIGTERM, SIGHUP); what was partly done was removed.
    pub const INTERRUPTED: u8 = 130;
}

/// The table `--help` ends with.
pub const TABLE: &str = "\
Exit codes:
  0    done
  1    refused or failed: nothing was changed (fsck: damage found; several
       files: those named were not copied, the others were)
  2    bad argument or option: nothing was sent
  3    the cluster cannot be reached (no address, or no node answered): nothing was changed
  4    outcome unknown: the change may or may not have been made; check with `toastyfs stat`
  5    chunk data unavailable: chunk servers holding or taking the data are down
  130  interrupted: the copies' temporaries were removed";

/// A failure, printed once with advice and mapped to an exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code,
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(code::USAGE, message)
    }

    pub fn failed(message: impl Into<String>) -> Failure {
        Failure::new(code::FAILED, message)
    }
}

/// The hint an unreachable cluster's message ends with.
pub const START_HINT: &str =
    "Is the cluster running? Start one with `toastyfs dev`, or pass --meta ADDR / set TOASTYFS_META.";

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        let (message, code) = match &e {
            ClientError::Refused(FsError::VersionMismatch { .. }) => (
                format!("{e} (someone else changed it; re-read and retry)"),
                code::FAILED,
            ),
            ClientError::Rejected { status: 401, .. } => (
                format!("{e}\nThis cluster needs a credential: a client key (--key KEY, TOASTYFS_KEY or `key` in the config file) or the cluster secret (--secret-file FILE or TOASTYFS_SECRET_FILE)."),
                code::FAILED,
            ),
            ClientError::Refused(_) | ClientError::Rejected { .. } => (e.to_string(), code::FAILED),
            ClientError::Unavailable { .. } => (format!("{e}\n{START_HINT}"), code::UNREACHABLE),
            ClientError::Unknown(_) => (
                format!("{e}\nThe change may or may not have been made; check with `toastyfs stat` before retrying."),
                code::UNKNOWN,
            ),
            ClientError::ChunkUnavailable { .. } | ClientError::UploadFailed { .. } => (
                format!("{e}\nSee `toastyfs cluster status` for chunk servers that are down."),
                code::DATA_UNAVAILABLE,
            ),
            // A malformed request the cluster refused (400), an answer that
            // did not match what was asked: refused, never applied.
            ClientError::Protocol(_) | ClientError::ChangedDuringRead { .. } | ClientError::Io(_) => {
                (e.to_string(), code::FAILED)
            }
        };
        Failure { message, code }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::usage(message)
    }
}

/// No metadata address anywhere: exit 3, like an unreachable cluster.
pub fn no_address() -> Failure {
    Failure::new(
        code::UNREACHABLE,
        "no cluster address: pass --meta ADDR[,ADDR...], set TOASTYFS_META, or start a local cluster with `toastyfs dev`",
    )
}

/// A failure of a server command or of `dev` (anyhow in the binary).
pub fn from_anyhow(e: anyhow::Error) -> Failure {
    match e.downcast::<ClientError>() {
        Ok(client_error) => Failure::from(client_error),
        Err(e) => Failure::failed(toastyfs_client::error::describe(e.as_ref())),
    }
}
