//! Operating the cluster: form it, see each node's status and the chunk
//! servers, add and remove metadata nodes, change the cluster settings,
//! and send raw proposals and queries (for tests and benchmarks that need
//! an exact session tag or one node's answer).
//!
//! It shares [`Meta`]'s leader finding, retry policy and outcome rule with
//! the file API: a membership change or proposal that may have reached a
//! server is never reported as a failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use toastyfs_proto::auth::Secret;
use toastyfs_proto::client_key::{self, Access, ClientKey, KeyId, KeyInfo, Whoami, KEY_SECRET_LEN};
use toastyfs_proto::cluster::{
    AddNodeRequest, ChunkClusterStatus, InitRequest, NodeId, NodeStatus, RemoveNodeRequest,
};
use toastyfs_proto::namespace::{
    ClusterSettings, Command, CommandResult, Outcome, Proposal, Query, QueryReply, QueryResult,
};
use toastyfs_proto::routes;
use toastyfs_proto::{ClientId, Version};

use crate::error::{ClientError, Result};
use crate::limits::{
    ADD_NODE_TIMEOUT, ADMIN_RETRY_BUDGET, BACKUP_TIMEOUT, INIT_TIMEOUT, REMOVE_NODE_TIMEOUT,
    STATUS_TIMEOUT,
};
use crate::meta::Meta;
use crate::retry::{RetryPolicy, DEFAULT_POLICY};
use crate::tls::ClientTls;
use crate::transport::{SendError, SendOptions, Transport};

/// Administrative access to a cluster through any of its metadata nodes.
#[derive(Clone)]
pub struct Admin {
    meta: Arc<Meta>,
}

impl Admin {
    /// An admin client for the nodes at `addrs`, retrying each operation
    /// for [`ADMIN_RETRY_BUDGET`].
    pub fn connect(addrs: Vec<String>) -> Admin {
        Admin::with_budget(addrs, ADMIN_RETRY_BUDGET)
    }

    /// An admin client that retries each operation for `budget`.
    pub fn with_budget(addrs: Vec<String>, budget: Duration) -> Admin {
        Admin::with_policy(addrs, DEFAULT_POLICY.with_budget(budget))
    }

    pub fn with_policy(addrs: Vec<String>, policy: RetryPolicy) -> Admin {
        Admin::signed(addrs, policy, None)
    }

    /// An admin client signing every request with the cluster secret
    /// (cluster management needs it when the cluster has one).
    pub fn connect_signed(addrs: Vec<String>, secret: Option<Secret>) -> Admin {
        Admin::signed(
            addrs,
            DEFAULT_POLICY.with_budget(ADMIN_RETRY_BUDGET),
            secret,
        )
    }

    /// A client presenting `key`, to ask who the cluster takes it for
    /// ([`Admin::whoami`]).
    pub fn connect_with_key(addrs: Vec<String>, key: ClientKey, budget: Duration) -> Admin {
        let transport = Transport::new(STATUS_TIMEOUT).with_key(Some(key));
        Admin {
            meta: Arc::new(Meta::new(
                addrs,
                transport,
                DEFAULT_POLICY.with_budget(budget),
            )),
        }
    }

    /// An admin client signing with `secret` and speaking TLS trusting
    /// `tls` (each optional).
    pub fn connect_with(
        addrs: Vec<String>,
        secret: Option<Secret>,
        tls: Option<ClientTls>,
    ) -> Admin {
        let transport = Transport::new(STATUS_TIMEOUT)
            .signed_with(secret)
            .with_tls(tls);
        Admin {
            meta: Arc::new(Meta::new(
                addrs,
                transport,
                DEFAULT_POLICY.with_budget(ADMIN_RETRY_BUDGET),
            )),
        }
    }

    fn signed(addrs: Vec<String>, policy: RetryPolicy, secret: Option<Secret>) -> Admin {
        let transport = Transport::new(STATUS_TIMEOUT).signed_with(secret);
        Admin {
            meta: Arc::new(Meta::new(addrs, transport, policy)),
        }
    }

    pub(crate) fn from_meta(meta: Arc<Meta>) -> Admin {
        Admin { meta }
    }

    /// The metadata leader's address as the latest answer named it (a
    /// hint, possibly stale); this client sends there first.
    pub fn leader_hint(&self) -> Option<String> {
        self.meta.transport().leader_hint()
    }

    fn transport(&self) -> &Transport {
        self.meta.transport()
    }

    /// Proposes `proposal` exactly as given, retried unchanged (so with
    /// the same session tag) across nodes and elections.
    pub async fn propose(&self, proposal: &Proposal) -> Result<CommandResult> {
        self.meta.propose(proposal).await
    }

    /// Opens a session in the cluster and returns the client id it
    /// assigned: the tag of hand-built proposals (seq from 1).
    pub async fn register(&self) -> Result<ClientId> {
        self.meta.register().await
    }

    /// Applies `command` under a fresh session of this client, at most once.
    pub async fn write(&self, command: Command) -> Result<CommandResult> {
        match self.meta.write(command).await {
            Ok(outcome) => Ok(Ok(outcome)),
            Err(ClientError::Refused(refusal)) => Ok(Err(refusal)),
            Err(e) => Err(e),
        }
    }

    /// A read through any node (linearizable unless `stale`).
    pub async fn query(&self, query: &Query, stale: bool) -> Result<QueryResult> {
        self.meta.query(query, stale).await
    }

    /// A read sent to the node at `addr` only, to see what that node says.
    pub async fn query_node(&self, addr: &str, query: &Query, stale: bool) -> Result<QueryResult> {
        let path = if stale {
            routes::READ_STALE
        } else {
            routes::READ
        };
        self.transport()
            .post_record(addr, path, query)
            .await
            .map_err(|e| one_node(addr, e))
    }

    /// One node's status.
    pub async fn status(&self, addr: &str) -> Result<NodeStatus> {
        self.transport()
            .get_json(addr, routes::STATUS, SendOptions::new(STATUS_TIMEOUT))
            .await
            .map_err(|e| one_node(addr, e))
    }

    /// The leader's view of the chunk servers (any node answers: a
    /// follower asks the leader).
    pub async fn chunk_status(&self) -> Result<ChunkClusterStatus> {
        let options = SendOptions::new(STATUS_TIMEOUT);
        let transport = self.transport();
        self.meta
            .retrying(|addr| async move {
                transport
                    .get_json(&addr, routes::CHUNK_STATUS, options)
                    .await
            })
            .await
            .map_err(|e| self.meta.read_only(e))
    }

    /// Forms a new cluster whose voters are `members`, asking the node at
    /// `addr` (one of them). A formed cluster answers
    /// [`ClientError::Rejected`] with status 409.
    pub async fn init(&self, addr: &str, members: BTreeMap<NodeId, String>) -> Result<String> {
        self.transport()
            .post_json(
                addr,
                routes::CLUSTER_INIT,
                &InitRequest { members },
                SendOptions::new(INIT_TIMEOUT),
            )
            .await
            .map_err(|e| match e {
                SendError::Status {
                    status: 409,
                    message,
                    ..
                } => ClientError::Rejected {
                    status: 409,
                    message,
                },
                other => one_node_change(addr, other),
            })
    }

    /// Adds node `id` at `node_addr`: a learner first, a voter once it has
    /// caught up. Returns the leader's confirmation.
    pub async fn add_node(&self, id: NodeId, node_addr: &str) -> Result<String> {
        let request = AddNodeRequest {
            id,
            addr: node_addr.to_owned(),
        };
        self.membership(routes::CLUSTER_ADD_NODE, &request, ADD_NODE_TIMEOUT)
            .await
    }

    /// Removes node `id` from the voters.
    pub async fn remove_node(&self, id: NodeId) -> Result<String> {
        let request = RemoveNodeRequest { id };
        self.membership(routes::CLUSTER_REMOVE_NODE, &request, REMOVE_NODE_TIMEOUT)
            .await
    }

    async fn membership<Req: Serialize>(
        &self,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<String> {
        let transport = self.transport();
        self.meta
            .retrying(|addr| async move {
                transport
                    .post_json::<Req, String>(&addr, path, request, SendOptions::new(timeout))
                    .await
            })
            .await
    }

    /// Sets the cluster's replication factor (1..=16); the leader then
    /// copies or drops chunks to match. Returns the settings' new version.
    pub async fn set_replication_factor(
        &self,
        factor: u32,
        expect: Option<Version>,
    ) -> Result<Version> {
        let command = Command::SetReplicationFactor { factor, expect };
        self.meta
            .write(command)
            .await
            .map(|o| crate::version_of(&o))
    }

    /// Sets how many chunk servers must hold a durable copy of a new chunk
    /// before its write is acknowledged (1..=16; writes wait for no more
    /// than the replication factor). Returns the settings' new version.
    pub async fn set_min_copies(&self, copies: u32, expect: Option<Version>) -> Result<Version> {
        let command = Command::SetMinCopies { copies, expect };
        self.meta
            .write(command)
            .await
            .map(|o| crate::version_of(&o))
    }

    /// Sets the largest file content kept inline in the namespace
    /// (0..=`MAX_INLINE_BYTES`; 0 turns inline files off). Returns the
    /// settings' new version.
    pub async fn set_inline_max(&self, bytes: u32, expect: Option<Version>) -> Result<Version> {
        let command = Command::SetInlineMax { bytes, expect };
        self.meta
            .write(command)
            .await
            .map(|o| crate::version_of(&o))
    }

    /// Creates a client key with `access` under `name` and returns it:
    /// the only time its secret is known, since the cluster keeps only
    /// its hash. Needs the cluster secret.
    pub async fn create_key(&self, name: &str, access: Access) -> Result<ClientKey> {
        let mut secret = [0u8; KEY_SECRET_LEN];
        rand::fill(&mut secret);
        let command = Command::CreateKey {
            name: name.to_owned(),
            access,
            secret_hash: client_key::secret_hash(&secret),
        };
        match self.meta.write(command).await? {
            Outcome::KeyCreated { id } => Ok(ClientKey { id, secret }),
            other => Err(ClientError::Protocol(format!(
                "expected a created key, got {other:?}"
            ))),
        }
    }

    /// Revokes client key `id`: refused everywhere from now on.
    pub async fn revoke_key(&self, id: KeyId) -> Result<()> {
        self.meta.write(Command::RevokeKey { id }).await.map(|_| ())
    }

    /// Who the cluster takes this client for: its key and access. A key
    /// the cluster does not accept is [`ClientError::Rejected`] (401).
    pub async fn whoami(&self) -> Result<Whoami> {
        let options = SendOptions::new(STATUS_TIMEOUT);
        let transport = self.transport();
        self.meta
            .retrying(
                |addr| async move { transport.get_json(&addr, routes::WHOAMI, options).await },
            )
            .await
            .map_err(|e| self.meta.read_only(e))
    }

    /// Every client key, valid and recently revoked.
    pub async fn keys(&self) -> Result<Vec<KeyInfo>> {
        match self.meta.read(Query::ListKeys, false).await? {
            QueryReply::Keys(keys) => Ok(keys),
            _ => Err(ClientError::Protocol("expected the list of keys".into())),
        }
    }

    /// Streams a backup of the namespace from the node at `addr` (the
    /// leader: a follower refuses) into `out`, returning the bytes
    /// written. The caller checks it
    /// (`toastyfs_raft_meta::store::backup::verify_file`) before trusting it.
    pub async fn backup(
        &self,
        addr: &str,
        out: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let options = SendOptions::new(BACKUP_TIMEOUT);
        let mut response = self
            .transport()
            .get_streamed(addr, routes::CLUSTER_BACKUP, options)
            .await
            .map_err(|e| one_node(addr, e))?;
        let mut written = 0u64;
        while let Some(piece) = response.chunk().await.map_err(|e| {
            ClientError::Protocol(format!("the backup from {addr} was cut off: {e}"))
        })? {
            out.write_all(&piece)
                .await
                .map_err(|e| ClientError::Protocol(format!("cannot write the backup: {e}")))?;
            written += piece.len() as u64;
        }
        Ok(written)
    }

    /// The cluster settings (replication factor, min copies, version).
    pub async fn settings(&self) -> Result<ClusterSettings> {
        match self.meta.read(Query::Settings, false).await? {
            QueryReply::Settings(settings) => Ok(settings),
            _ => Err(ClientError::Protocol(
                "expected the cluster settings".into(),
            )),
        }
    }
}

/// A request to one node only: a read or status query, so an unanswered
/// one failed; a refusal keeps its status.
/// A change sent to one node: only a request that provably never reached
/// it is "unavailable"; one that may have been applied is unknown.
fn one_node_change(addr: &str, e: SendError) -> ClientError {
    if e.never_sent() {
        one_node(addr, e)
    } else {
        match e {
            SendError::Status { .. } => one_node(addr, e),
            other => ClientError::Unknown(other.to_string()),
        }
    }
}

fn one_node(addr: &str, e: SendError) -> ClientError {
    match e {
        SendError::Status {
            status, message, ..
        } => ClientError::Rejected { status, message },
        other => ClientError::Unavailable {
            addrs: addr.to_owned(),
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cluster init` that timed out may have formed the cluster: unknown
    /// (exit 4), never "unavailable" (exit 3, nothing changed).
    #[test]
    fn a_change_that_may_have_reached_the_node_is_unknown() {
        let timeout = SendError::Timeout {
            addr: "a:1".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(matches!(
            one_node_change("a:1", timeout),
            ClientError::Unknown(_)
        ));
        let refused = SendError::NotSent {
            addr: "a:1".into(),
            detail: "refused".into(),
        };
        assert!(matches!(
            one_node_change("a:1", refused),
            ClientError::Unavailable { .. }
        ));
        let answered = SendError::Status {
            addr: "a:1".into(),
            status: 409,
            message: "formed".into(),
        };
        assert!(matches!(
            one_node_change("a:1", answered),
            ClientError::Rejected { status: 409, .. }
        ));
    }
}
