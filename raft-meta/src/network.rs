//! openraft's network over the one transport: each Raft RPC is a POST of a
//! record to the peer's Raft route (`proto::routes::RAFT_*`); the peer answers with a
//! record holding `Result<reply, RaftError>`. Peer addresses come from the
//! cluster membership, which the operator set from configuration.

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
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

use crate::types::{kinds, NodeId, TypeConfig};

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
        let reply: AppendReply = self
            .transport
            .with_timeout(option.hard_ttl())
            .post_record(
                &self.addr,
                routes::RAFT_APPEND,
                &AppendRequest::from_owned(rpc),
            )
            .await
            .map_err(rpc_error)?;
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
