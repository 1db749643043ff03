//! The chunk server's link to the metadata service: the list of metadata
//! nodes, which one answered last (tried first next time), and the log of
//! connecting and losing the service, once per change. Reports go through
//! the client crate's one transport.

use toastyfs_client::transport::Transport;
use toastyfs_proto::chunks::{ChunkOrders, ChunkReport};
use toastyfs_proto::routes;

use super::SyncError;

/// The metadata nodes and which one answered last; logs changes of state.
pub(super) struct Link {
    transport: Transport,
    addrs: Vec<String>,
    current: usize,
    /// The node that answered the latest report; `None` when it failed.
    connected: Option<String>,
    /// Whether the current failure streak was already logged.
    failure_logged: bool,
}

impl Link {
    pub(super) fn new(transport: Transport, addrs: Vec<String>) -> Link {
        Link {
            transport,
            addrs,
            current: 0,
            connected: None,
            failure_logged: false,
        }
    }

    /// Sends `report` to the node that answered last, else to each of the
    /// others in turn.
    pub(super) async fn send(&mut self, report: &ChunkReport) -> Result<ChunkOrders, SyncError> {
        let mut last_error = SyncError::NoAddresses;
        for step in 0..self.addrs.len() {
            let index = (self.current + step) % self.addrs.len();
            let sent = self
                .transport
                .post_record(&self.addrs[index], routes::CHUNK_REPORT, report)
                .await;
            match sent {
                Ok(orders) => {
                    self.on_answer(index);
                    return Ok(orders);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "metadata node did not take the report");
                    last_error = SyncError::Send(e);
                }
            }
        }
        self.on_failure(&last_error);
        Err(last_error)
    }

    fn on_answer(&mut self, index: usize) {
        self.current = index;
        let addr = &self.addrs[index];
        if self.connected.as_ref() != Some(addr) {
            tracing::info!(meta = %addr, "reporting to the metadata service");
            self.connected = Some(addr.clone());
        }
        self.failure_logged = false;
    }

    fn on_failure(&mut self, error: &SyncError) {
        if let Some(addr) = self.connected.take() {
            tracing::warn!(meta = %addr, %error, "lost the metadata service; retrying every node with backoff");
        } else if !self.failure_logged {
            tracing::warn!(%error, "cannot reach the metadata service; retrying every node with backoff");
        }
        self.failure_logged = true;
    }
}
