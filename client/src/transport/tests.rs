//! The outcome rule against real sockets: a refused connection is
//! `NotSent`; a request that reached a server whose answer never came is
//! `Lost` or `Timeout`, never `NotSent`.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::*;
use toastyfs_proto::namespace::{Command, Proposal, Query};
use toastyfs_proto::FsPath;

#[path = "../../tests/support/http.rs"]
mod http;
use http::read_request;

/// A server that takes each request whole, then does `then` with the
/// connection; returns its address.
async fn server<F>(then: F) -> String
where
    F: Fn(TcpStream) -> futures::future::BoxFuture<'static, ()> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            read_request(&mut stream).await;
            tokio::spawn(then(stream));
        }
    });
    addr
}

fn proposal() -> Proposal {
    Proposal {
        session: None,
        time_ms: 0,
        command: Command::CreateDir {
            path: FsPath::new("/a").expect("path"),
            parents: false,
            expect: None,
        },
    }
}

/// The error of a write sent to `addr` with a `timeout`.
async fn write_error(addr: &str, timeout: Duration) -> SendError {
    Transport::new(timeout)
        .post_record::<_, toastyfs_proto::namespace::CommandResult>(
            addr,
            routes::WRITE,
            &proposal(),
        )
        .await
        .expect_err("no answer expected")
}

/// The error of a read sent to `addr` with a `timeout`.
async fn read_error(addr: &str, timeout: Duration) -> SendError {
    Transport::new(timeout)
        .post_record::<_, toastyfs_proto::namespace::QueryResult>(
            addr,
            routes::READ,
            &Query::Settings,
        )
        .await
        .expect_err("no answer expected")
}

async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    addr
}

#[tokio::test]
async fn a_refused_connection_was_never_sent() {
    let addr = closed_port().await;
    let err = write_error(&addr, Duration::from_secs(5)).await;
    assert!(err.never_sent(), "{err:?}");
}

#[tokio::test]
async fn a_connection_cut_after_sending_is_lost_not_unsent() {
    let addr = server(|stream| Box::pin(async move { drop(stream) })).await;
    let err = write_error(&addr, Duration::from_secs(5)).await;
    assert!(matches!(err, SendError::Lost { .. }), "{err:?}");
    assert!(!err.never_sent());
}

#[tokio::test]
async fn a_reset_after_sending_is_lost_not_unsent() {
    let addr = server(|stream| {
        Box::pin(async move {
            // SO_LINGER 0: the close sends a RST instead of a FIN, as a
            // killed leader's kernel does for a connection with unread data.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
        })
    })
    .await;
    let err = write_error(&addr, Duration::from_secs(5)).await;
    assert!(matches!(err, SendError::Lost { .. }), "{err:?}");
    assert!(!err.never_sent());
}

#[tokio::test]
async fn a_stalled_server_times_out_and_may_have_processed() {
    let addr = server(|stream| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(stream);
        })
    })
    .await;
    let err = read_error(&addr, Duration::from_millis(200)).await;
    assert!(matches!(err, SendError::Timeout { .. }), "{err:?}");
    assert!(!err.never_sent());
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let addr = server(|mut stream| {
        Box::pin(async move {
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&[0u8; 100]).await;
        })
    })
    .await;
    let transport = Transport::new(Duration::from_secs(5));
    let options = SendOptions {
        max_response: 10,
        ..SendOptions::new(Duration::from_secs(5))
    };
    let err = transport
        .get_raw(&addr, routes::STATUS, options)
        .await
        .expect_err("too large");
    assert!(
        matches!(err, SendError::TooLarge { max: 10, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_error_status_carries_the_servers_message() {
    let addr = server(|mut stream| {
        Box::pin(async move {
            let body = r#"{"error":"no leader is known right now"}"#;
            let head = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        })
    })
    .await;
    let err = read_error(&addr, Duration::from_secs(5)).await;
    match err {
        SendError::Status {
            status, message, ..
        } => {
            assert_eq!(status, 503);
            assert_eq!(message, "no leader is known right now");
        }
        other => panic!("expected a status error, got {other:?}"),
    }
}

#[test]
fn error_message_falls_back_to_the_body_text() {
    assert_eq!(error_message(b"plain text"), "plain text");
    assert_eq!(error_message(br#"{"error":"x"}"#), "x");
}
