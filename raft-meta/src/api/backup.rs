//! [`routes::CLUSTER_BACKUP`]: a backup of the namespace streamed while the
//! node serves. Taken on the leader after a read index, so it holds every
//! change committed before the request; written by a blocking task into a
//! bounded channel, so a slow reader slows the writer and nothing is held
//! whole. The format and the restore are [`crate::store::backup`]'s.

use std::io::{BufWriter, Write};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use openraft::error::{CheckIsLeaderError, RaftError};
use tokio::sync::mpsc::Sender;

use super::reply::ApiError;
use super::AppState;
use crate::store::backup;

/// Pieces of the backup in flight between the writer and the connection.
const PIECES_IN_FLIGHT: usize = 8;

/// Bytes per piece.
const PIECE_BYTES: usize = 256 * 1024;

/// Writes into the response body; fails once the client has gone.
struct BodyWriter(Sender<Result<Bytes, std::io::Error>>);

impl Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
            })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub async fn backup(State(node): State<AppState>) -> Result<Response, ApiError> {
    match node.read_index.ensure_linearizable().await {
        Ok(_) => {}
        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(to))) => {
            return Err(ApiError::Unavailable(format!(
                "backups are taken on the leader (node {}); this node follows",
                to.leader_id.map_or("unknown".into(), |id| id.to_string())
            )));
        }
        Err(e) => return Err(ApiError::Unavailable(e.to_string())),
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(PIECES_IN_FLIGHT);
    let db = node.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = BufWriter::with_capacity(PIECE_BYTES, BodyWriter(tx.clone()));
        let written = backup::write(&db, &mut out)
            .map_err(|e| e.to_string())
            .and_then(|pairs| out.flush().map(|()| pairs).map_err(|e| e.to_string()));
        match written {
            Ok(pairs) => tracing::info!(pairs, "backup sent"),
            Err(e) => {
                tracing::warn!(error = %e, "backup failed");
                // The body ends in an error: the client sees a cut-off
                // backup, which its check refuses.
                let _ = tx.blocking_send(Err(std::io::Error::other(e)));
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::Internal(e.to_string()))
}
