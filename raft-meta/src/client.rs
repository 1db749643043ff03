//! A small client of the metadata service, for the CLI and tests: sends to
//! any of the given addresses (followers forward to the leader), and
//! retries a request, unchanged and so with the same session tag, across
//! unreachable nodes and elections until a deadline. A write whose fate is
//! unknown when the deadline passes is reported as [`ClientError::Unknown`],
//! not as a failure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use toastyfs_proto::chunks::ChunkClusterStatus;
use toastyfs_proto::namespace::{CommandResult, Proposal, Query, QueryResult};
use toastyfs_proto::record;

use crate::api::{AddNodeRequest, InitRequest, NodeStatus, RemoveNodeRequest};
use crate::transport::{decode_response, Transport, TransportError};
use crate::types::NodeId;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no metadata node answered within {0:?}: {1}")]
    Unreachable(Duration, String),
    #[error("the outcome of the write is unknown (it may or may not have been applied): {0}")]
    Unknown(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
}

#[derive(Clone)]
pub struct MetaClient {
    addrs: Vec<String>,
    transport: Transport,
    pub deadline: Duration,
}

impl MetaClient {
    pub fn new(addrs: Vec<String>) -> MetaClient {
        MetaClient {
            addrs,
            transport: Transport::new(),
            deadline: Duration::from_secs(20),
        }
    }

    /// Proposes a write; retried unchanged until it is answered.
    pub async fn write(&self, proposal: &Proposal) -> Result<CommandResult, ClientError> {
        let body = record::encode(proposal).map_err(TransportError::Encode)?;
        let mut sent = false;
        self.retrying("/v1/write", body, &mut sent)
            .await
            .map_err(|e| match e {
                ClientError::Unreachable(_, detail) if sent => ClientError::Unknown(detail),
                other => other,
            })
    }

    /// A read; `stale` lets a follower answer from its own state.
    pub async fn read(&self, query: &Query, stale: bool) -> Result<QueryResult, ClientError> {
        let body = record::encode(query).map_err(TransportError::Encode)?;
        let path = if stale {
            "/v1/read?stale=true"
        } else {
            "/v1/read"
        };
        self.retrying(path, body, &mut false).await
    }

    /// A read sent to one node only (to check what that node says).
    pub async fn read_from(
        &self,
        addr: &str,
        query: &Query,
        stale: bool,
    ) -> Result<QueryResult, TransportError> {
        let path = if stale {
            "/v1/read?stale=true"
        } else {
            "/v1/read"
        };
        self.transport
            .post_record(addr, path, query, Duration::from_secs(10))
            .await
    }

    async fn retrying<T: record::Record>(
        &self,
        path: &str,
        body: Vec<u8>,
        sent: &mut bool,
    ) -> Result<T, ClientError> {
        let started = Instant::now();
        let mut last = String::from("no address given");
        let mut round = 0u32;
        while started.elapsed() < self.deadline {
            for addr in &self.addrs {
                match self
                    .transport
                    .post_raw(addr, path, body.clone(), false, Duration::from_secs(10))
                    .await
                {
                    Ok(raw) if raw.status == 200 => return Ok(decode_response(addr, raw)?),
                    Ok(raw) if raw.status == 400 => return Ok(decode_response(addr, raw)?),
                    Ok(raw) => {
                        *sent = true;
                        last = format!(
                            "{addr}: {} {}",
                            raw.status,
                            String::from_utf8_lossy(&raw.body)
                        );
                    }
                    Err(e) => {
                        if !e.is_connection_failure() {
                            *sent = true;
                        }
                        last = e.to_string();
                    }
                }
            }
            round += 1;
            tokio::time::sleep(Duration::from_millis(50 * u64::from(round.min(10)))).await;
        }
        Err(ClientError::Unreachable(self.deadline, last))
    }

    /// The leader's view of the chunk servers (any node answers: a
    /// follower asks the leader).
    pub async fn chunk_status(&self) -> Result<ChunkClusterStatus, TransportError> {
        let mut last = None;
        for addr in &self.addrs {
            match self
                .transport
                .get_json(addr, "/v1/chunks/status", Duration::from_secs(10))
                .await
            {
                Ok(status) => return Ok(status),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| TransportError::Unreachable {
            addr: String::new(),
            detail: "no metadata address given".into(),
        }))
    }

    pub async fn status(&self, addr: &str) -> Result<NodeStatus, TransportError> {
        self.transport
            .get_json(addr, "/v1/status", Duration::from_secs(5))
            .await
    }

    pub async fn init(
        &self,
        addr: &str,
        members: BTreeMap<NodeId, String>,
    ) -> Result<String, TransportError> {
        self.transport
            .post_json(
                addr,
                "/v1/cluster/init",
                &InitRequest { members },
                Duration::from_secs(10),
            )
            .await
    }

    pub async fn add_node(&self, id: NodeId, node_addr: &str) -> Result<String, ClientError> {
        let request = AddNodeRequest {
            id,
            addr: node_addr.to_owned(),
        };
        self.first_ok(|addr| {
            let t = self.transport.clone();
            let r = &request;
            async move {
                t.post_json(&addr, "/v1/cluster/add-node", r, Duration::from_secs(300))
                    .await
            }
        })
        .await
    }

    pub async fn remove_node(&self, id: NodeId) -> Result<String, ClientError> {
        let request = RemoveNodeRequest { id };
        self.first_ok(|addr| {
            let t = self.transport.clone();
            let r = &request;
            async move {
                t.post_json(&addr, "/v1/cluster/remove-node", r, Duration::from_secs(60))
                    .await
            }
        })
        .await
    }

    async fn first_ok<F, Fut>(&self, call: F) -> Result<String, ClientError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<String, TransportError>>,
    {
        let started = Instant::now();
        let mut last = String::from("no address given");
        while started.elapsed() < self.deadline {
            for addr in &self.addrs {
                match call(addr.clone()).await {
                    Ok(answer) => return Ok(answer),
                    Err(TransportError::Status { status, body, .. })
                        if status == 409 || status == 400 =>
                    {
                        return Err(ClientError::Transport(TransportError::Status {
                            addr: addr.clone(),
                            status,
                            body,
                        }))
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(ClientError::Unreachable(self.deadline, last))
    }
}
