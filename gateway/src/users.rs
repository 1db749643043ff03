//! The gateway's users: with `--require-keys`, every request (files,
//! WebDAV, the web page) must present a client key, as the password of
//! HTTP Basic authentication (any user name; browsers ask for it) or as a
//! bearer token. The gateway asks the cluster who a key belongs to
//! (`GET /v1/whoami` with that key) and remembers the answer for at most
//! [`RECHECK_AFTER`], so a revoked key is refused here within a second;
//! a read-only key may only read (GET, HEAD, OPTIONS, PROPFIND).
//!
//! The gateway itself acts with its own credential (the cluster secret or
//! its own key): a user's key decides whether a request is let through,
//! not what the cluster sees.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use toastyfs_client::{Admin, ClientError};
use toastyfs_proto::client_key::{self, Access, ClientKey, Whoami};

/// How long an answer about a key is trusted.
pub const RECHECK_AFTER: Duration = Duration::from_secs(1);
/// Keys remembered at once; beyond this the memory starts over.
const MAX_REMEMBERED: usize = 4_096;
/// How long a check may keep retrying the cluster.
const CHECK_BUDGET: Duration = Duration::from_secs(3);

/// The users' keys a gateway checks, and what it learned of them.
pub struct UserKeys {
    meta: Vec<String>,
    known: Mutex<HashMap<String, (Whoami, Instant)>>,
}

impl UserKeys {
    /// Checks keys against the cluster at `meta`.
    pub fn new(meta: Vec<String>) -> UserKeys {
        UserKeys {
            meta,
            known: Mutex::new(HashMap::new()),
        }
    }

    fn remembered(&self, text: &str) -> Option<Whoami> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known
            .get(text)
            .filter(|(_, at)| at.elapsed() < RECHECK_AFTER)
            .map(|(who, _)| *who)
    }

    fn remember(&self, text: &str, who: Whoami) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= MAX_REMEMBERED {
            known.clear();
        }
        known.insert(text.to_owned(), (who, Instant::now()));
    }

    /// Who `key` belongs to, as the cluster says.
    async fn check(&self, key: ClientKey) -> Result<Whoami, Response> {
        let text = key.to_string();
        if let Some(who) = self.remembered(&text) {
            return Ok(who);
        }
        let admin = Admin::connect_with_key(self.meta.clone(), key, CHECK_BUDGET);
        match admin.whoami().await {
            Ok(who) => {
                self.remember(&text, who);
                Ok(who)
            }
            Err(ClientError::Rejected {
                status: 401,
                message,
            }) => Err(challenge(&format!("the key was refused: {message}"))),
            Err(e) => Err((
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot check the key with the cluster: {e}\n"),
            )
                .into_response()),
        }
    }
}

/// Whether `method` only reads.
fn reads_only(method: &Method) -> bool {
    [Method::GET, Method::HEAD, Method::OPTIONS].contains(method) || method.as_str() == "PROPFIND"
}

/// A 401 that makes a browser ask for the key.
fn challenge(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"ToastyFS (a client key is the password)\", charset=\"UTF-8\"",
        )],
        format!("{message}\n"),
    )
        .into_response()
}

/// The middleware: lets a request through only with a key that may do
/// what it asks. `None` lets everything through.
pub async fn require_key(
    State(users): State<Option<Arc<UserKeys>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(users) = users else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(client_key::from_authorization);
    let key = match presented {
        None => return challenge(
            "this gateway needs a client key: as the password (any user name) or a bearer token",
        ),
        Some(Err(e)) => return challenge(&e.to_string()),
        Some(Ok(key)) => key,
    };
    let who = match users.check(key).await {
        Ok(who) => who,
        Err(response) => return response,
    };
    if who.access == Access::ReadOnly && !reads_only(request.method()) {
        let message = format!(
            "key {} is read-only: it cannot {}\n",
            who.key.map_or("?".to_owned(), |k| k.to_string()),
            request.method()
        );
        return (StatusCode::FORBIDDEN, message).into_response();
    }
    next.run(request).await
}
