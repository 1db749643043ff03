//! Talking to the metadata service: any address works (followers forward
//! to the leader); failed attempts move on to the next address under the
//! one [`RetryPolicy`]; mutating requests carry a session tag and are
//! retried unchanged, so a retry across a leader change is applied at most
//! once.
//!
//! The outcome of a request that got no answer follows the transport's
//! rule: if no attempt ever reached a server it failed
//! ([`ClientError::Unavailable`]); if any may have, a write is
//! [`ClientError::Unknown`].
//!
//! A session (client id, seq) has at most one request in flight (the
//! cluster remembers only each session's last result), so concurrent
//! writes each borrow a session from a small pool: up to
//! [`MAX_SESSIONS`] writes run at once, and sessions are reused in turn.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use toastyfs_proto::chunks::{LocateReply, LocateRequest, PlacementReply, PlacementRequest};
use toastyfs_proto::namespace::{
    Command, CommandResult, FsError, Outcome, Proposal, Query, QueryReply, QueryResult,
};
use toastyfs_proto::record::Record;
use toastyfs_proto::routes;
use toastyfs_proto::{ClientId, Seq, SessionTag};
use tokio::sync::Semaphore;

use crate::error::{ClientError, Result};
use crate::retry::{RetryPolicy, Step};
use crate::transport::{SendError, Transport};

pub use crate::limits::MAX_SESSIONS;

/// Leader-finding, retrying access to the metadata service.
pub struct Meta {
    addrs: Vec<String>,
    transport: Transport,
    policy: RetryPolicy,
    /// Idle sessions, and permits bounding those in use.
    sessions: std::sync::Mutex<Vec<Session>>,
    in_flight: Semaphore,
    /// The address that answered last: tried first next time.
    preferred: AtomicUsize,
}

struct Session {
    client: ClientId,
    next_seq: u64,
}

fn random_client_id() -> ClientId {
    // Session ids only need to be unique among live sessions: 64 random bits.
    ClientId(rand::random())
}

/// A definite refusal that retrying elsewhere cannot change: the request
/// is malformed (400) or conflicts with the cluster's state (409).
fn definite_refusal(e: &SendError) -> Option<ClientError> {
    match e {
        SendError::Status {
            status: 400,
            message,
            ..
        } => Some(ClientError::Protocol(message.clone())),
        SendError::Status {
            status: 409,
            message,
            ..
        } => Some(ClientError::Rejected {
            status: 409,
            message: message.clone(),
        }),
        _ => None,
    }
}

impl Meta {
    pub fn new(addrs: Vec<String>, transport: Transport, policy: RetryPolicy) -> Meta {
        Meta {
            addrs,
            transport,
            policy,
            sessions: std::sync::Mutex::new(Vec::new()),
            in_flight: Semaphore::new(MAX_SESSIONS),
            preferred: AtomicUsize::new(0),
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    fn unavailable(&self, detail: String) -> ClientError {
        ClientError::Unavailable {
            addrs: self.addrs.join(","),
            detail,
        }
    }

    /// Runs `attempt` against the addresses in turn until one answers, a
    /// definite refusal comes back, or the policy gives up.
    pub(crate) async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<T>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = std::result::Result<T, SendError>>,
    {
        let started = Instant::now();
        let mut reached = false;
        let mut last = String::from("no metadata address configured");
        let mut attempts = 0u32;
        let first = self.preferred.load(Ordering::Relaxed);
        while !self.addrs.is_empty() {
            let index = (first + attempts as usize) % self.addrs.len();
            match attempt(self.addrs[index].clone()).await {
                Ok(answer) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(e) => {
                    if let Some(refusal) = definite_refusal(&e) {
                        return Err(refusal);
                    }
                    reached |= !e.never_sent();
                    last = e.to_string();
                }
            }
            attempts += 1;
            match self
                .policy
                .next(attempts, self.addrs.len(), started.elapsed(), reached)
            {
                Step::Retry(wait) if wait.is_zero() => {}
                Step::Retry(wait) => tokio::time::sleep(wait).await,
                Step::GiveUp => break,
            }
        }
        if reached {
            Err(ClientError::Unknown(last))
        } else {
            Err(self.unavailable(last))
        }
    }

    /// Sends a record to `path` on whichever node answers.
    async fn send<Req: Record, Resp: Record>(&self, path: &str, request: &Req) -> Result<Resp> {
        self.retrying(|addr| async move {
            self.transport
                .post_record::<Req, Resp>(&addr, path, request)
                .await
        })
        .await
    }

    /// Proposes `proposal` exactly as given (its session tag included),
    /// retried unchanged until it is answered.
    pub async fn propose(&self, proposal: &Proposal) -> Result<CommandResult> {
        self.send(routes::WRITE, proposal).await
    }

    /// Applies a command under one of this client's sessions, at most once.
    pub async fn write(&self, command: Command) -> Result<Outcome> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| ClientError::Protocol("the client is shutting down".into()))?;
        let mut session = self.take_session();
        let result = self.write_in(&mut session, command).await;
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(session);
        result
    }

    fn take_session(&self) -> Session {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_else(|| Session {
                client: random_client_id(),
                next_seq: 1,
            })
    }

    async fn write_in(&self, session: &mut Session, command: Command) -> Result<Outcome> {
        loop {
            let tag = SessionTag {
                client: session.client,
                seq: Seq(session.next_seq),
            };
            // The node that proposes it stamps the time.
            let proposal = Proposal {
                session: Some(tag),
                time_ms: 0,
                command: command.clone(),
            };
            match self.propose(&proposal).await {
                Ok(Err(FsError::SessionExpired { .. })) if tag.seq == Seq(1) => {
                    return Err(ClientError::Protocol(
                        "the cluster refused a new session".into(),
                    ))
                }
                Ok(Err(FsError::SessionExpired { .. })) => {
                    // Our previous request was answered, so this one never
                    // ran: start a new session and send it again.
                    *session = Session {
                        client: random_client_id(),
                        next_seq: 1,
                    };
                }
                Ok(result) => {
                    session.next_seq += 1;
                    return result.map_err(ClientError::Refused);
                }
                Err(e @ ClientError::Unavailable { .. }) => return Err(e),
                Err(e) => {
                    // The request may have been applied; never reuse its seq
                    // for something else.
                    session.next_seq += 1;
                    return Err(e);
                }
            }
        }
    }

    /// A read (linearizable, or from any node's own state when `stale`).
    pub async fn query(&self, query: &Query, stale: bool) -> Result<QueryResult> {
        let path = if stale {
            routes::READ_STALE
        } else {
            routes::READ
        };
        self.send(path, query).await.map_err(|e| self.read_only(e))
    }

    /// A read whose refusal is an error.
    pub async fn read(&self, query: Query, stale: bool) -> Result<QueryReply> {
        self.query(&query, stale)
            .await?
            .map_err(ClientError::Refused)
    }

    pub async fn placement(&self, request: &PlacementRequest) -> Result<PlacementReply> {
        self.send(routes::CHUNK_PLACEMENT, request)
            .await
            .map_err(|e| self.read_only(e))
    }

    pub async fn locate(&self, request: &LocateRequest) -> Result<LocateReply> {
        self.send(routes::CHUNK_LOCATE, request)
            .await
            .map_err(|e| self.read_only(e))
    }

    /// A request that changes nothing: unanswered, it simply failed.
    pub(crate) fn read_only(&self, e: ClientError) -> ClientError {
        match e {
            ClientError::Unknown(detail) => self.unavailable(detail),
            other => other,
        }
    }
}
