//! Talking to the metadata service: any address works (followers forward
//! to the leader); failed attempts move on to the next address; mutating
//! requests carry a session tag and are retried unchanged, so a retry
//! across a leader change is applied at most once.
//!
//! A session (client id, seq) has at most one request in flight (the
//! cluster remembers only each session's last result), so concurrent
//! writes each borrow a session from a small pool: up to
//! [`MAX_SESSIONS`] writes run at once, and sessions are reused in turn.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use toastyfs_proto::chunks::{
    ChunkClusterStatus, LocateReply, LocateRequest, PlacementReply, PlacementRequest,
};
use toastyfs_proto::namespace::{
    Command, CommandResult, FsError, Outcome, Proposal, Query, QueryReply, QueryResult,
};
use toastyfs_proto::record::Record;
use toastyfs_proto::{ClientId, Seq, SessionTag};
use tokio::sync::Semaphore;

use crate::error::{ClientError, Result};
use crate::transport::{SendError, Transport};

/// Most writes one client has in flight (each on its own session).
pub const MAX_SESSIONS: usize = 64;

/// Leader-finding, retrying access to the metadata service.
pub struct Meta {
    addrs: Vec<String>,
    transport: Transport,
    /// How long one operation keeps retrying.
    pub retry_for: Duration,
    /// Idle sessions, and permits bounding those in use.
    sessions: std::sync::Mutex<Vec<Session>>,
    in_flight: Semaphore,
    preferred: AtomicU64,
}

struct Session {
    client: ClientId,
    next_seq: u64,
}

fn random_client_id() -> ClientId {
    // Session ids only need to be unique among live sessions: 64 random bits.
    ClientId(rand::random())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Meta {
    pub fn new(addrs: Vec<String>, transport: Transport) -> Meta {
        Meta {
            addrs,
            transport,
            retry_for: Duration::from_secs(30),
            sessions: std::sync::Mutex::new(Vec::new()),
            in_flight: Semaphore::new(MAX_SESSIONS),
            preferred: AtomicU64::new(0),
        }
    }

    /// Sends `request` to `path`, moving through the addresses until one
    /// answers; `Ok(Err(..))` carries a definite refusal from the server.
    async fn send<Req: Record, Resp: Record>(&self, path: &str, request: &Req) -> Result<Resp> {
        let started = Instant::now();
        let mut sent = false;
        let mut last = String::from("no metadata address configured");
        let mut attempt = 0usize;
        // Nodes that refuse connections for this long are not coming back
        // soon: say so instead of retrying for the whole budget.
        let unreachable_after = Duration::from_secs(5).min(self.retry_for);
        while started.elapsed() < self.retry_for && !self.addrs.is_empty() {
            if !sent && started.elapsed() > unreachable_after {
                break;
            }
            let first = self.preferred.load(Ordering::Relaxed) as usize;
            let addr = &self.addrs[(first + attempt) % self.addrs.len()];
            match self
                .transport
                .post_record::<Req, Resp>(addr, path, request)
                .await
            {
                Ok(answer) => {
                    self.preferred.store(
                        ((first + attempt) % self.addrs.len()) as u64,
                        Ordering::Relaxed,
                    );
                    return Ok(answer);
                }
                Err(SendError::Connect(e)) => last = format!("{addr}: {e}"),
                Err(SendError::Status(400, body)) => return Err(ClientError::Protocol(body)),
                Err(e) => {
                    sent = true;
                    last = format!("{addr}: {e}");
                }
            }
            attempt += 1;
            if attempt.is_multiple_of(self.addrs.len()) {
                let round = (attempt / self.addrs.len()).min(10) as u64;
                tokio::time::sleep(Duration::from_millis(50 * round)).await;
            }
        }
        if sent {
            Err(ClientError::Unknown(last))
        } else {
            Err(ClientError::Unavailable {
                addrs: self.addrs.join(","),
                detail: last,
            })
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
            let proposal = Proposal {
                session: Some(tag),
                time_ms: now_ms(),
                command: command.clone(),
            };
            let result: std::result::Result<CommandResult, ClientError> =
                self.send("/v1/write", &proposal).await;
            match result {
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
                Err(ClientError::Unavailable { addrs, detail }) => {
                    return Err(ClientError::Unavailable { addrs, detail })
                }
                Err(e) => {
                    // The request may have been applied; never reuse its seq
                    // for something else.
                    session.next_seq += 1;
                    return Err(e);
                }
            }
        }
    }

    /// A linearizable read (or a stale one from any node, when allowed).
    pub async fn read(&self, query: Query, stale: bool) -> Result<QueryReply> {
        let path = if stale {
            "/v1/read?stale=true"
        } else {
            "/v1/read"
        };
        let result: QueryResult = self.send(path, &query).await.map_err(|e| match e {
            // A read changes nothing: an unanswered one simply failed.
            ClientError::Unknown(detail) => ClientError::Unavailable {
                addrs: self.addrs.join(","),
                detail,
            },
            other => other,
        })?;
        result.map_err(ClientError::Refused)
    }

    pub async fn placement(&self, request: &PlacementRequest) -> Result<PlacementReply> {
        self.send("/v1/chunks/placement", request)
            .await
            .map_err(read_only)
    }

    pub async fn locate(&self, request: &LocateRequest) -> Result<LocateReply> {
        self.send("/v1/chunks/locate", request)
            .await
            .map_err(read_only)
    }

    /// The leader's view of the chunk servers (JSON).
    pub async fn chunk_status(&self) -> Result<ChunkClusterStatus> {
        let mut last = String::new();
        for addr in &self.addrs {
            match self.transport.get_json(addr, "/v1/chunks/status").await {
                Ok(status) => return Ok(status),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(ClientError::Unavailable {
            addrs: self.addrs.join(","),
            detail: last,
        })
    }

    /// One node's status (JSON, as served by `/v1/status`).
    pub async fn node_status(&self, addr: &str) -> Result<serde_json::Value> {
        self.transport
            .get_json(addr, "/v1/status")
            .await
            .map_err(|e| ClientError::Unavailable {
                addrs: addr.to_owned(),
                detail: e.to_string(),
            })
    }
}

fn read_only(e: ClientError) -> ClientError {
    match e {
        ClientError::Unknown(detail) => ClientError::Unavailable {
            addrs: String::new(),
            detail,
        },
        other => other,
    }
}
