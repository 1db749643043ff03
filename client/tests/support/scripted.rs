//! A metadata node played by hand: it answers registrations with fresh
//! ids and follows a script for every other write.

use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use toastyfs_proto::namespace::{Command, CommandResult, Outcome, Proposal};
use toastyfs_proto::record;
use toastyfs_proto::routes::RECORD_CONTENT_TYPE;
use toastyfs_proto::ClientId;

use super::http::read_request;

/// What the scripted node does with one write request.
#[derive(Clone, Debug)]
pub enum Act {
    /// Answer with this result.
    Answer(CommandResult),
    /// Read the request, then hang up without an answer (a node killed
    /// after it may have applied it).
    HangUp,
}

async fn answer(stream: &mut TcpStream, result: &CommandResult) {
    let body = record::encode(result).expect("encode");
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {RECORD_CONTENT_TYPE}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
}

/// A node that answers registrations with a fresh id each and plays
/// `script` for the tagged writes, in order; every proposal it saw is
/// kept in the returned log.
pub async fn scripted_node(script: Vec<Act>) -> (String, Arc<Mutex<Vec<Proposal>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut script = script.into_iter();
        let mut next_id = 100;
        while let Ok((mut stream, _)) = listener.accept().await {
            // One request per connection: the client reconnects after a
            // hang-up, and keep-alive reuse is answered the same way.
            while let Some(body) = read_request(&mut stream).await {
                let proposal: Proposal = record::decode(&body).expect("a proposal");
                log.lock().unwrap().push(proposal.clone());
                if proposal.command == Command::RegisterClient {
                    next_id += 1;
                    let registered = Ok(Outcome::Registered {
                        client: ClientId(next_id),
                    });
                    answer(&mut stream, &registered).await;
                    continue;
                }
                match script.next().unwrap_or(Act::HangUp) {
                    Act::Answer(result) => answer(&mut stream, &result).await,
                    Act::HangUp => break,
                }
            }
        }
    });
    (addr, seen)
}
