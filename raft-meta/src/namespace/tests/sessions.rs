//! Client sessions and log order: a repeated request is applied once,
//! an unknown session is expired whatever its sequence number, only a
//! registration opens one, an old index is a storage error.

use toastyfs_proto::namespace::*;
use toastyfs_proto::{ClientId, Seq, SessionTag, Version};

use super::{mkdir, Fixture};
use crate::namespace::header;
use crate::namespace::NamespaceConfig;

fn tagged(client: ClientId, seq: u64, command: Command) -> Proposal {
    Proposal {
        session: Some(SessionTag {
            client,
            seq: Seq(seq),
        }),
        time_ms: 0,
        command,
    }
}

impl Fixture {
    fn send(&mut self, proposal: &Proposal) -> CommandResult {
        self.index += 1;
        self.ns
            .apply(&mut self.store, self.index, proposal)
            .unwrap()
    }

    fn register(&mut self) -> ClientId {
        match self.ok(Command::RegisterClient) {
            Outcome::Registered { client } => client,
            other => panic!("registration answered {other:?}"),
        }
    }
}

/// A repeated (client, seq) returns the first result and changes nothing.
#[test]
fn sessions_apply_at_most_once() {
    let mut f = Fixture::new();
    let client = f.register();
    let first = f.send(&tagged(client, 1, mkdir("/s")));
    assert_eq!(f.send(&tagged(client, 1, mkdir("/s"))), first);
    assert_eq!(header(&f.store).unwrap().version, Version(1));
    assert!(f.send(&tagged(client, 2, mkdir("/s"))).is_err());
    assert!(matches!(
        f.send(&tagged(client, 1, mkdir("/s"))),
        Err(FsError::StaleSequence { .. })
    ));
}

/// Registrations get distinct ids, the same on every replica (the
/// namespace index of the registration).
#[test]
fn registration_assigns_the_index_as_client_id() {
    let mut f = Fixture::new();
    let a = f.register();
    f.ok(mkdir("/x"));
    let b = f.register();
    assert_eq!((a, b), (ClientId(1), ClientId(3)));
    assert_eq!(header(&f.store).unwrap().session_count, 2);
}

/// Issue 11, defect 5: a session id the state does not hold is refused
/// whatever its sequence number, so a request never opens a session by
/// itself. Before registration existed, seq 1 under an unknown id started
/// a session: a write applied at seq 1 whose session was then evicted was
/// applied a second time when the client retried it.
#[test]
fn a_retry_after_its_session_was_evicted_is_never_applied_again() {
    let mut f = Fixture::with_config(NamespaceConfig {
        max_sessions: 1,
        ..NamespaceConfig::default()
    });
    let write = tagged(ClientId(7), 1, mkdir("/once"));
    let first = f.send(&write);
    // Another client's session evicts the first one (the only slot).
    let _ = f.send(&tagged(ClientId(8), 1, mkdir("/other")));
    let version_before_retry = header(&f.store).unwrap().version;
    let retried = f.send(&write);
    assert_eq!(
        header(&f.store).unwrap().version,
        version_before_retry,
        "the retry was applied again: first {first:?}, retry {retried:?}"
    );
    assert_eq!(
        retried,
        Err(FsError::SessionExpired {
            client: ClientId(7)
        })
    );
}

/// With registration, eviction makes the retry expire: the client knows
/// its first attempt may have run and reports the outcome as unknown.
#[test]
fn an_evicted_registered_session_refuses_its_retry() {
    let mut f = Fixture::with_config(NamespaceConfig {
        max_sessions: 1,
        ..NamespaceConfig::default()
    });
    let first = f.register();
    let write = tagged(first, 1, mkdir("/once"));
    assert!(f.send(&write).is_ok());
    let second = f.register();
    assert!(f.send(&tagged(second, 1, mkdir("/other"))).is_ok());
    let version = header(&f.store).unwrap().version;
    assert_eq!(
        f.send(&write),
        Err(FsError::SessionExpired { client: first })
    );
    assert_eq!(header(&f.store).unwrap().version, version);
    assert_eq!(header(&f.store).unwrap().session_count, 1);
}

/// Applying an index at or below the applied one is a storage-level error.
#[test]
fn out_of_order_index_is_refused() {
    let mut f = Fixture::new();
    f.ok(mkdir("/a"));
    let again = f.ns.apply(
        &mut f.store,
        1,
        &Proposal {
            session: None,
            time_ms: 0,
            command: mkdir("/b"),
        },
    );
    assert!(again.is_err());
}
