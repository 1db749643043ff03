//! The chunk server's link to the metadata service: the list of metadata
//! nodes, which one to try first (the leader the latest answer named, else
//! the one that answered last), and the log of
//! connecting and losing the service, once per change. Reports go through
//! the client crate's one transport.
//!
//! A report is hedged: while the node it went to has not answered for
//! [`REPORT_HEDGE_AFTER`], the same report also goes to the next node,
//! and the first answer wins. So a paused or cut-off node (often the
//! leader that was, which the server reported to last) costs half a
//! second, not the report timeout, and the new leader hears from every
//! chunk server within about one report interval of its election (a
//! follower forwards the report to the leader it knows, and follows a
//! change of leader). A node that refuses while another is still silent
//! (a candidate knows no leader yet) is asked again every
//! [`RETRY_REFUSED_AFTER`] for as long as the silent one is waited for. A report applied twice changes nothing: `added` and
//! `lost` are sets, and a full report replaces the inventory.

use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use toastyfs_client::transport::Transport;
use toastyfs_proto::chunks::{ChunkOrders, ChunkReport};
use toastyfs_proto::routes;

use super::SyncError;

use crate::limits::{REPORT_HEDGE_AFTER, RETRY_REFUSED_AFTER};

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

    /// Sends `report` to the node that answered last, and to each of the
    /// others in turn when the ones before fail or stay silent for
    /// [`REPORT_HEDGE_AFTER`]; the first answer wins.
    pub(super) async fn send(&mut self, report: &ChunkReport) -> Result<ChunkOrders, SyncError> {
        let mut last_error = SyncError::NoAddresses;
        let hinted = self
            .transport
            .leader_hint()
            .and_then(|leader| self.addrs.iter().position(|a| *a == leader));
        let (transport, addrs, current) = (
            self.transport.clone(),
            self.addrs.clone(),
            hinted.unwrap_or(self.current),
        );
        let send_to = |index: usize, after: Duration| {
            let sent = transport.post_record::<ChunkReport, ChunkOrders>(
                &addrs[index],
                routes::CHUNK_REPORT,
                report,
            );
            async move {
                tokio::time::sleep(after).await;
                (index, sent.await)
            }
        };
        let launch = |step: usize| send_to((current + step) % addrs.len(), Duration::ZERO);
        let mut in_flight = FuturesUnordered::new();
        let mut tried = 0;
        if !addrs.is_empty() {
            in_flight.push(launch(0));
            tried = 1;
        }
        while !in_flight.is_empty() {
            let next = if tried < addrs.len() {
                match tokio::time::timeout(REPORT_HEDGE_AFTER, in_flight.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        // Silent for the hedge delay: the next node too.
                        in_flight.push(launch(tried));
                        tried += 1;
                        continue;
                    }
                }
            } else {
                in_flight.next().await
            };
            match next {
                Some((index, Ok(orders))) => {
                    drop(in_flight);
                    self.on_answer(index);
                    return Ok(orders);
                }
                Some((index, Err(e))) => {
                    tracing::debug!(error = %e, "metadata node did not take the report");
                    last_error = SyncError::Send(e);
                    if tried < addrs.len() {
                        in_flight.push(launch(tried));
                        tried += 1;
                    } else if !in_flight.is_empty() {
                        // Refused while another node stays silent (the
                        // others electing while the old leader is
                        // paused): ask it again shortly rather than wait
                        // out the silent node's timeout.
                        in_flight.push(send_to(index, RETRY_REFUSED_AFTER));
                    }
                }
                None => break,
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
