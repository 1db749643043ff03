//! openraft's network over the one transport: each Raft RPC is a POST of a
//! record to the peer's Raft route (`proto::routes::RAFT_*`); the peer answers with a
//! record holding `Result<reply, RaftError>`. Peer addresses come from the
//! cluster membership, which the operator set from configuration.
//!
//! An AppendEntries carries at most [`APPEND_ENTRIES_BUDGET_BYTES`] of
//! entries (at least one): openraft hands over up to
//! `max_payload_entries` at once, so a larger request is answered
//! `PayloadTooLarge` with the number that fits before anything is sent,
//! and openraft sends that many. A peer that still refuses the size (413)
//! gets half as many next time, so a lagging follower never stalls on a
//! request it cannot take.

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use toastyfs_client::transport::{SendError, Transport};
use toastyfs_proto::record::Framed;
use toastyfs_proto::routes;

use crate::limits::APPEND_ENTRIES_BUDGET_BYTES;
use crate::types::{kinds, Entry, NodeId, TypeConfig};

pub type AppendRequest = Framed<{ kinds::RPC_APPEND }, AppendEntriesRequest<TypeConfig>>;
pub type AppendReply =
    Framed<{ kinds::RPC_APPEND_REPLY }, Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>;
pub type VoteRpc = Framed<{ kinds::RPC_VOTE }, VoteRequest<NodeId>>;
pub type VoteReply =
    Framed<{ kinds::RPC_VOTE_REPLY }, Result<VoteResponse<NodeId>, RaftError<NodeId>>>;
pub type SnapshotRpc = Framed<{ kinds::RPC_SNAPSHOT }, InstallSnapshotRequest<TypeConfig>>;
pub type SnapshotReply = Framed<
    { kinds::RPC_SNAPSHOT_REPLY },
    Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
>;

/// Creates a [`PeerNetwork`] per peer.
#[derive(Clone)]
pub struct NetworkFactory {
    pub transport: Transport,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerNetwork {
        PeerNetwork {
            target,
            addr: node.addr.clone(),
            transport: self.transport.clone(),
        }
    }
}

/// The connection to one peer (connects lazily, per request).
pub struct PeerNetwork {
    target: NodeId,
    addr: String,
    transport: Transport,
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let sent = rpc.entries.len();
        let fit = entries_within(&rpc.entries, APPEND_ENTRIES_BUDGET_BYTES);
        if fit < sent {
            return Err(PayloadTooLarge::new_entries_hint(fit as u64).into());
        }
        let reply: AppendReply = self
            .transport
            .with_timeout(option.hard_ttl())
            .post_record(
                &self.addr,
                routes::RAFT_APPEND,
                &AppendRequest::from_owned(rpc),
            )
            .await
            .map_err(|e| match e.status() {
                Some(413) if sent > 1 => PayloadTooLarge::new_entries_hint(sent as u64 / 2)
                    .with_source_error(&e)
                    .into(),
                _ => rpc_error(e),
            })?;
        reply
            .0
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let reply: SnapshotReply = self
            .transport
            .with_timeout(option.hard_ttl())
            .post_record(
                &self.addr,
                routes::RAFT_SNAPSHOT,
                &SnapshotRpc::from_owned(rpc),
            )
            .await
            .map_err(rpc_error)?;
        reply
            .0
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let reply: VoteReply = self
            .transport
            .with_timeout(option.hard_ttl())
            .post_record(&self.addr, routes::RAFT_VOTE, &VoteRpc::from_owned(rpc))
            .await
            .map_err(rpc_error)?;
        reply
            .0
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// How many of `entries`, from the first, encode within `budget` bytes;
/// at least one, so every entry can be sent.
fn entries_within(entries: &[Entry], budget: usize) -> usize {
    let mut bytes = 0usize;
    for (n, entry) in entries.iter().enumerate() {
        let len = postcard::experimental::serialized_size(entry).unwrap_or(usize::MAX);
        bytes = bytes.saturating_add(len);
        if bytes > budget {
            return n.max(1);
        }
    }
    entries.len()
}

/// A peer that could not be connected to is unreachable (openraft backs
/// off from it); any other failure is a network error of this one RPC.
fn rpc_error<E: std::error::Error>(
    e: SendError,
) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
    if e.never_sent() {
        RPCError::Unreachable(Unreachable::new(&e))
    } else {
        RPCError::Network(NetworkError::new(&e))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload, LogId};
    use toastyfs_proto::namespace::{Command, Proposal};
    use toastyfs_proto::ChunkHash;

    use super::*;
    use crate::types::ProposalBatch;

    /// An entry of about `hashes` × 33 bytes.
    fn entry(index: u64, hashes: u64) -> Entry {
        let command = Command::ForgetGarbage {
            hashes: (0..hashes)
                .map(|i| ChunkHash::of(&i.to_be_bytes()))
                .collect(),
        };
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(ProposalBatch {
                proposals: vec![Proposal {
                    session: None,
                    time_ms: 0,
                    command,
                }],
            }),
        }
    }

    #[test]
    fn an_append_carries_the_entries_that_fit_and_never_none() {
        let entries: Vec<Entry> = (1..=10).map(|i| entry(i, 100)).collect();
        let one = postcard::experimental::serialized_size(&entries[0]).expect("size");
        assert_eq!(entries_within(&entries, one * 10), 10);
        assert_eq!(entries_within(&entries, one * 3 + one / 2), 3);
        assert_eq!(entries_within(&entries, 1), 1, "one entry always goes");
        assert_eq!(entries_within(&[], 1), 0);
    }

    /// A peer that answers every request 413, like a node whose body
    /// limit the request passed.
    async fn refuses_as_too_large() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = vec![0u8; 1 << 16];
                let _ = stream.read(&mut buf).await;
                let body = "{\"error\":\"length limit exceeded\"}";
                let answer = format!(
                    "HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_peer_refusing_the_size_makes_openraft_send_half_as_many() {
        let mut peer = PeerNetwork {
            target: 2,
            addr: refuses_as_too_large().await,
            transport: Transport::new(std::time::Duration::from_secs(5)),
        };
        let rpc = AppendEntriesRequest {
            vote: openraft::Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries: (1..=6).map(|i| entry(i, 10)).collect(),
        };
        let option = RPCOption::new(std::time::Duration::from_secs(5));
        match peer.append_entries(rpc, option).await {
            Err(RPCError::PayloadTooLarge(too_large)) => assert_eq!(too_large.entries_hint(), 3),
            other => panic!("expected PayloadTooLarge, got {other:?}"),
        }
    }
}
