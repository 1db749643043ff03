//! Talking to the metadata service: any address works (followers forward
//! to the leader); failed attempts move on to the next address under the
//! one [`RetryPolicy`], and an attempt left unanswered for a hedge delay
//! is joined by one to the next address; mutating requests carry a
//! session tag and are retried and hedged unchanged, so a retry across a
//! leader change is applied at most once.
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
//! A session is opened by registering it in the log
//! ([`Command::RegisterClient`]), which assigns its client id. A write
//! refused because its session expired never ran in that attempt; if an
//! earlier attempt of the same write may have reached a node, that one
//! may have run before the session went, so the write is
//! [`ClientError::Unknown`]; otherwise it is sent again under a new
//! session.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use toastyfs_proto::chunks::{
    ChunkHealthReply, ChunkHealthRequest, LocateReply, LocateRequest, PlacementReply,
    PlacementRequest,
};
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

pub use crate::limits::{HEDGE_AFTER, HEDGE_WRITES_AFTER, MAX_HEDGED, MAX_SESSIONS};

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
    /// See `ClientConfig::unsafe_fresh_tag_per_attempt`.
    #[cfg(feature = "unsafe-modes")]
    pub(crate) unsafe_fresh_tag_per_attempt: bool,
}

/// One session of the pool: its id once registered, and the next seq.
#[derive(Default)]
struct Session {
    client: Option<ClientId>,
    next_seq: u64,
}

/// Fresh sessions a write opens, one after another expiring before it
/// ran, before it gives up (each expiry proves the write never ran).
const MAX_REGISTRATIONS_PER_WRITE: u32 = 3;

/// A definite refusal that retrying elsewhere cannot change: the request
/// is malformed (400), carries no valid credential (401: the node
/// refused it before any handler ran), asks what the caller's key may not
/// do (403: refused before it was proposed) or conflicts with the
/// cluster's state (409).
fn definite_refusal(e: &SendError) -> Option<ClientError> {
    match e {
        SendError::Status {
            status: 400,
            message,
            ..
        } => Some(ClientError::Protocol(message.clone())),
        SendError::Status {
            status: status @ (401 | 403 | 409),
            message,
            ..
        } => Some(ClientError::Rejected {
            status: *status,
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
            #[cfg(feature = "unsafe-modes")]
            unsafe_fresh_tag_per_attempt: false,
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
    /// definite refusal comes back, or the policy gives up. Not hedged:
    /// its callers (membership changes, chunk status) are untagged or
    /// long-running, and a copy of one would be a second request.
    pub(crate) async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<T>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = std::result::Result<T, SendError>>,
    {
        self.retrying_traced(attempt, None)
            .await
            .map(|(answer, _)| answer)
    }

    /// [`Meta::retrying`], also saying whether an attempt other than the
    /// one answered may have reached a server (failed, or still in flight).
    ///
    /// Attempts are hedged: while one has gone unanswered for `hedge_after`
    /// ([`HEDGE_AFTER`] for reads, [`HEDGE_WRITES_AFTER`] for writes, whose
    /// copies the leader would all propose), the next address is tried
    /// beside it (at most [`MAX_HEDGED`] at once), and the first answer
    /// wins. A paused or
    /// cut-off node costs a hedge delay, not a request timeout. Every
    /// attempt carries the same request (a write, the same session tag), so
    /// the cluster applies it at most once whichever attempts arrive.
    async fn retrying_traced<T, F, Fut>(
        &self,
        attempt: F,
        hedge_after: Option<Duration>,
    ) -> Result<(T, bool)>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = std::result::Result<T, SendError>>,
    {
        let started = Instant::now();
        let mut reached = false;
        let mut last = String::from("no metadata address configured");
        let mut attempts = 0u32;
        let first = self.first_choice();
        let mut in_flight = FuturesUnordered::new();
        let launch = |attempts: u32| {
            let index = (first + attempts as usize) % self.addrs.len();
            let sent = attempt(self.addrs[index].clone());
            async move { (index, sent.await) }
        };
        if !self.addrs.is_empty() {
            in_flight.push(launch(attempts));
            attempts += 1;
        }
        while !in_flight.is_empty() {
            let may_hedge = in_flight.len() < MAX_HEDGED && started.elapsed() < self.policy.budget;
            let next = match hedge_after.filter(|_| may_hedge) {
                Some(delay) => tokio::time::timeout(delay, in_flight.next()).await,
                None => Ok(in_flight.next().await),
            };
            let Ok(Some((index, outcome))) = next else {
                // Unanswered for a hedge delay: try the next address too.
                in_flight.push(launch(attempts));
                attempts += 1;
                continue;
            };
            match outcome {
                Ok(answer) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((answer, reached || !in_flight.is_empty()));
                }
                Err(e) => {
                    if let Some(refusal) = definite_refusal(&e) {
                        return Err(refusal);
                    }
                    reached |= !e.never_sent();
                    last = e.to_string();
                }
            }
            if !in_flight.is_empty() {
                continue;
            }
            match self
                .policy
                .next(attempts, self.addrs.len(), started.elapsed(), reached)
            {
                Step::Retry(wait) => {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    in_flight.push(launch(attempts));
                    attempts += 1;
                }
                Step::GiveUp => break,
            }
        }
        if reached {
            Err(ClientError::Unknown(last))
        } else {
            Err(self.unavailable(last))
        }
    }

    /// Where an operation goes first: the leader the latest answer named,
    /// if it is one of ours, else the address that answered last.
    fn first_choice(&self) -> usize {
        self.transport
            .leader_hint()
            .and_then(|leader| self.addrs.iter().position(|a| *a == leader))
            .unwrap_or_else(|| self.preferred.load(Ordering::Relaxed))
    }

    /// Sends a record to `path` on whichever node answers.
    async fn send<Req: Record, Resp: Record>(&self, path: &str, request: &Req) -> Result<Resp> {
        self.send_traced(path, request)
            .await
            .map(|(answer, _)| answer)
    }

    /// [`Meta::send`], also saying whether an attempt before the answer
    /// may have reached a node.
    async fn send_traced<Req: Record, Resp: Record>(
        &self,
        path: &str,
        request: &Req,
    ) -> Result<(Resp, bool)> {
        let hedge_after = if path == routes::WRITE {
            HEDGE_WRITES_AFTER
        } else {
            HEDGE_AFTER
        };
        self.send_hedged(path, request, Some(hedge_after)).await
    }

    /// [`Meta::send_traced`] hedged after `hedge_after` (`None`: never).
    async fn send_hedged<Req: Record, Resp: Record>(
        &self,
        path: &str,
        request: &Req,
        hedge_after: Option<Duration>,
    ) -> Result<(Resp, bool)> {
        self.retrying_traced(
            |addr| async move {
                self.transport
                    .post_record::<Req, Resp>(&addr, path, request)
                    .await
            },
            hedge_after,
        )
        .await
    }

    /// Proposes `proposal` exactly as given (its session tag included),
    /// retried unchanged until it is answered.
    pub async fn propose(&self, proposal: &Proposal) -> Result<CommandResult> {
        self.propose_traced(proposal)
            .await
            .map(|(answer, _)| answer)
    }

    /// [`Meta::propose`], also saying whether an attempt before the answer
    /// may have reached a node (and so may have been applied).
    /// A proposal without a session tag is never hedged: the cluster
    /// could apply two copies of it.
    async fn propose_traced(&self, proposal: &Proposal) -> Result<(CommandResult, bool)> {
        let hedge_after = proposal.session.map(|_| HEDGE_WRITES_AFTER);
        self.send_hedged(routes::WRITE, proposal, hedge_after).await
    }

    /// Sends a tagged write until it is answered: every attempt under
    /// the same tag, so the cluster applies it at most once. The
    /// `unsafe-modes` switch gives each attempt a fresh seq instead, and
    /// leaves the session's next seq past the last one used.
    async fn propose_attempts(
        &self,
        session: &mut Session,
        proposal: &Proposal,
    ) -> Result<(CommandResult, bool)> {
        #[cfg(feature = "unsafe-modes")]
        if self.unsafe_fresh_tag_per_attempt {
            return self.propose_fresh_tags(session, proposal).await;
        }
        let _ = session;
        self.propose_traced(proposal).await
    }

    #[cfg(feature = "unsafe-modes")]
    async fn propose_fresh_tags(
        &self,
        session: &mut Session,
        proposal: &Proposal,
    ) -> Result<(CommandResult, bool)> {
        let attempts = std::sync::atomic::AtomicU64::new(0);
        let answer = self
            .retrying_traced(
                |addr| {
                    let mut attempt = proposal.clone();
                    let extra = attempts.fetch_add(1, Ordering::Relaxed);
                    if let Some(tag) = attempt.session.as_mut() {
                        tag.seq = Seq(tag.seq.0 + extra);
                    }
                    async move {
                        self.transport
                            .post_record::<Proposal, CommandResult>(&addr, routes::WRITE, &attempt)
                            .await
                    }
                },
                Some(HEDGE_WRITES_AFTER),
            )
            .await;
        // Past every seq used; the caller adds the last one.
        session.next_seq += attempts.into_inner().saturating_sub(1);
        answer
    }

    /// Opens a session: the cluster assigns its client id. A registration
    /// whose answer was lost only leaves an idle session that expires, so
    /// it is retried freely, and failing it is a definite failure of the
    /// write that needed it.
    pub async fn register(&self) -> Result<ClientId> {
        let proposal = Proposal {
            session: None,
            time_ms: 0,
            command: Command::RegisterClient,
        };
        match self
            .propose(&proposal)
            .await
            .map_err(|e| self.read_only(e))?
        {
            Ok(Outcome::Registered { client }) => Ok(client),
            Ok(other) => Err(ClientError::Protocol(format!(
                "the cluster answered a registration with {other:?}"
            ))),
            Err(refusal) => Err(ClientError::Refused(refusal)),
        }
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
            .unwrap_or_default()
    }

    async fn write_in(&self, session: &mut Session, command: Command) -> Result<Outcome> {
        let mut registrations = 0;
        loop {
            let client = match session.client {
                Some(client) => client,
                None if registrations == MAX_REGISTRATIONS_PER_WRITE => {
                    return Err(self.unavailable(format!(
                        "{registrations} new sessions expired before the write could run"
                    )))
                }
                None => {
                    registrations += 1;
                    let client = self.register().await?;
                    *session = Session {
                        client: Some(client),
                        next_seq: 1,
                    };
                    client
                }
            };
            let tag = SessionTag {
                client,
                seq: Seq(session.next_seq),
            };
            // The node that proposes it stamps the time.
            let proposal = Proposal {
                session: Some(tag),
                time_ms: 0,
                command: command.clone(),
            };
            match self.propose_attempts(session, &proposal).await {
                Ok((Err(FsError::SessionExpired { .. }), earlier_reached)) => {
                    *session = Session::default();
                    if earlier_reached {
                        // This attempt did not run, but an earlier one may
                        // have, before the session was evicted.
                        return Err(ClientError::Unknown(format!(
                            "session {client} expired while the write was retried; \
                             an earlier attempt may have been applied"
                        )));
                    }
                    // No attempt reached a node before this one, which the
                    // cluster refused: the write never ran. Send it again
                    // under a new session.
                }
                Ok((result, _)) => {
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

    pub async fn chunk_health(&self, request: &ChunkHealthRequest) -> Result<ChunkHealthReply> {
        self.send(routes::CHUNK_HEALTH, request)
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
