//! Chain replication of uploads (as GFS and HDFS pipeline writes): an
//! upload whose request names further servers ([`routes::CHAIN_HEADER`])
//! is streamed on to the first of them while it arrives here, with the rest
//! of the list, so the client sends each chunk once whatever the
//! replication factor.
//!
//! Each server of the chain hashes and stores what it receives as any
//! upload (`api.rs`), and answers only once its own copy is durable and the
//! next link has answered: the answer names every server down the chain
//! whose copy is durable, and what went wrong further down. A link that
//! fails (refused, cut, too slow) ends the chain there without failing
//! this server's own copy; the client uploads the missing copies directly.
//! The next link is sent the caller's chunk token when there was one (so a
//! chain grants nothing the caller could not do itself), else a request
//! signed with the cluster secret. A chain names each server once, and a
//! passed-on upload takes a slot of its own at the next server or is
//! refused at once (`limits::MAX_CHAIN_HOPS_IN_FLIGHT`): servers passing
//! uploads to each other never wait on each other's slots.

use axum::body::Bytes;
use axum::http::HeaderMap;
use toastyfs_client::transport::{streamed_body, ChainedUpload, SendError, Transport};
use toastyfs_proto::chunk_token::TOKEN_HEADER;
use toastyfs_proto::chunks::{UploadReply, MAX_CHAIN_LINKS};
use toastyfs_proto::hash::ChunkHash;
use toastyfs_proto::routes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Pieces of the body in flight to the next link: a slow link slows the
/// upload (back-pressure) rather than filling this server's memory.
const PIECES_IN_FLIGHT: usize = 8;

/// What this server forwards with, and the address it calls itself in
/// answers.
#[derive(Clone)]
pub struct ChainLink {
    /// Signs with the cluster secret (when the server has one): for an
    /// upload whose caller presented no chunk token.
    signed: Transport,
    /// Signs nothing: an upload is passed on with its caller's token.
    plain: Transport,
    advertise: String,
}

impl ChainLink {
    /// `signed` passes on uploads without a caller's token; a copy of it
    /// that signs nothing passes on the others.
    pub fn new(signed: Transport, advertise: String) -> ChainLink {
        ChainLink {
            plain: signed.clone().signed_with(None),
            signed,
            advertise,
        }
    }

    /// This server's address, as the chain's answers name it.
    pub fn advertise(&self) -> &str {
        &self.advertise
    }

    /// Starts the upload of `hash` to `next` (carrying `rest` as its
    /// chain); the body follows through [`Forward::send`].
    pub fn start(
        &self,
        hash: ChunkHash,
        next: String,
        rest: Vec<String>,
        token: Option<String>,
        announced: Option<u64>,
    ) -> Forward {
        let (pieces, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(PIECES_IN_FLIGHT);
        let body = streamed_body(receiver);
        let transport = match token {
            Some(_) => self.plain.clone(),
            None => self.signed.clone(),
        };
        let to = next.clone();
        let task = tokio::spawn(async move {
            let upload = ChainedUpload {
                chain: &rest,
                token: token.as_deref(),
                length: announced,
                hop: true,
            };
            transport.put_chunk_chained(&to, &hash, body, upload).await
        });
        Forward {
            pieces: Some(pieces),
            task,
            next,
        }
    }
}

/// An upload on its way to the next link.
pub struct Forward {
    pieces: Option<mpsc::Sender<Result<Bytes, std::io::Error>>>,
    task: JoinHandle<Result<UploadReply, SendError>>,
    next: String,
}

impl Forward {
    /// Passes one piece of the body on; once the next link has failed,
    /// nothing more is sent.
    pub async fn send(&mut self, piece: &Bytes) {
        if let Some(pieces) = &self.pieces {
            if pieces.send(Ok(piece.clone())).await.is_err() {
                self.pieces = None;
            }
        }
    }

    /// Ends the body and waits for the next link's answer: the servers
    /// down the chain with a durable copy, and what failed.
    pub async fn finish(mut self) -> (Vec<String>, Vec<String>) {
        drop(self.pieces.take());
        match (&mut self.task).await {
            Ok(Ok(reply)) => (reply.durable, reply.chain_errors),
            Ok(Err(e)) => (Vec::new(), vec![format!("{}: {e}", self.next)]),
            Err(e) => (Vec::new(), vec![format!("{}: {e}", self.next)]),
        }
    }

    /// Gives up (this server's own copy failed): the next link sees its
    /// body cut and stores nothing.
    pub fn abandon(self) {
        self.task.abort();
    }
}

/// The chain an upload's request names (empty when none), and the
/// caller's chunk token to pass on. A malformed list is refused, and so is
/// one naming a server twice or naming this server (`own`): a chain visits
/// each server once.
pub fn requested(
    headers: &HeaderMap,
    own: Option<&str>,
) -> Result<(Vec<String>, Option<String>), String> {
    let token = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(value) = headers.get(routes::CHAIN_HEADER) else {
        return Ok((Vec::new(), token));
    };
    let text = value
        .to_str()
        .map_err(|_| "the chain header is not text".to_owned())?;
    let links: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if links.len() > MAX_CHAIN_LINKS {
        return Err(format!(
            "the chain names {} servers; at most {MAX_CHAIN_LINKS}",
            links.len()
        ));
    }
    if let Some(bad) = links.iter().find(|l| !is_host_port(l)) {
        return Err(format!("chain link {bad:?} is not HOST:PORT"));
    }
    if let Some(own) = own.filter(|own| links.iter().any(|l| l == own)) {
        return Err(format!("the chain names this server ({own}) again"));
    }
    let distinct: std::collections::BTreeSet<&String> = links.iter().collect();
    if distinct.len() != links.len() {
        return Err("the chain names a server twice".to_owned());
    }
    Ok((links, token))
}

/// `HOST:PORT` with a numeric port, printable and bounded.
fn is_host_port(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    text.len() <= 255
        && !host.is_empty()
        && port.parse::<u16>().is_ok()
        && text.chars().all(|c| c.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_chain(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(routes::CHAIN_HEADER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn chains_are_parsed_and_bounded() {
        let own = Some("me:9");
        assert!(requested(&HeaderMap::new(), own).unwrap().0.is_empty());
        let (links, _) = requested(&with_chain("a:1, b:2"), own).unwrap();
        assert_eq!(links, vec!["a:1".to_owned(), "b:2".to_owned()]);
        assert!(requested(&with_chain("a:1,b"), own).is_err());
        assert!(requested(&with_chain("a:99999"), own).is_err());
        assert!(requested(&with_chain("a:1,me:9"), own).is_err());
        assert!(requested(&with_chain("a:1,b:2,a:1"), own).is_err());
        let long: Vec<String> = (0..=MAX_CHAIN_LINKS)
            .map(|i| format!("h:{}", i + 1))
            .collect();
        assert!(requested(&with_chain(&long.join(",")), own).is_err());
    }
}
