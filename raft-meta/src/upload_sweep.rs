//! The leader's sweep of abandoned upload temporaries. A put writes its
//! file under `.NAME.toastyfs-upload-…` and renames it over the target at
//! the end; an interrupted put deletes it, but a client that is killed,
//! loses its machine or its network leaves it behind. The leader walks the
//! namespace a page at a time and deletes every temporary nobody has
//! written for the upload TTL, with the version it saw as `expect`: a
//! client still writing has changed the version, so its temporary is
//! never deleted under it.
//!
//! The age is the leader's wall clock against the entry's modified time
//! (stamped by whichever leader applied the last write), so clocks that
//! disagree by more than the TTL could delete a temporary early; the TTL
//! (an hour by default) is far above any sane skew. The walk is soft
//! state: a new leader starts again from the root. A pass lists a page
//! every 200 ms and then rests a quarter of the TTL (at most 5 min), so an
//! idle cluster is not kept busy listing itself.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use toastyfs_proto::namespace::{Command, EntryKind, Listing, Proposal, Query, QueryReply};
use toastyfs_proto::path::is_upload_temp;
use toastyfs_proto::{FsPath, Version};

use crate::limits::{UPLOAD_SWEEP_INTERVAL, UPLOAD_SWEEP_MAX_REST, UPLOAD_SWEEP_PAGE};
use crate::node::Node;

/// Where the walk is: directories still to list, each with the last name
/// listed so far.
#[derive(Debug, Default)]
pub struct Walk {
    pending: Vec<(FsPath, Option<String>)>,
}

/// A temporary the walk found past the TTL: delete it if still `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub path: FsPath,
    pub version: Version,
}

impl Walk {
    /// The next page to list (a finished walk starts over at the root).
    pub fn next_query(&mut self, limit: u32) -> Query {
        if self.pending.is_empty() {
            self.pending.push((FsPath::root(), None));
        }
        let (path, after) = self
            .pending
            .last()
            .cloned()
            .unwrap_or((FsPath::root(), None));
        Query::List { path, after, limit }
    }

    /// Takes the page [`Walk::next_query`] asked for: queues its
    /// directories, returns its temporaries older than `ttl_ms` at
    /// `now_ms`.
    pub fn take(&mut self, listing: &Listing, now_ms: u64, ttl_ms: u64) -> Vec<Stale> {
        let Some((dir, _)) = self.pending.pop() else {
            return Vec::new();
        };
        if let Some(next) = &listing.next {
            self.pending.push((dir.clone(), Some(next.clone())));
        }
        let mut stale = Vec::new();
        for entry in &listing.entries {
            let Ok(path) = dir.join(&entry.name) else {
                continue;
            };
            match entry.kind {
                EntryKind::Dir => self.pending.push((path, None)),
                EntryKind::File
                    if is_upload_temp(&entry.name)
                        && now_ms.saturating_sub(entry.mtime_ms) >= ttl_ms =>
                {
                    stale.push(Stale {
                        path,
                        version: entry.version,
                    });
                }
                EntryKind::File => {}
            }
        }
        stale
    }

    /// A directory that vanished or changed kind under the walk: skip it.
    pub fn skip(&mut self) {
        self.pending.pop();
    }

    /// Whether the last page taken ended a pass over the whole namespace.
    pub fn pass_done(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The rest between two passes: a quarter of the TTL (so a temporary is
/// deleted within about 1.25 TTL of its last write), within bounds, so a
/// large namespace is not listed over and over for an hour-long TTL.
pub fn rest_between_passes(ttl: Duration) -> Duration {
    (ttl / 4).clamp(UPLOAD_SWEEP_INTERVAL, UPLOAD_SWEEP_MAX_REST)
}

fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Sweeps while this node leads; returns never (the task ends with the
/// process).
pub async fn run(node: Arc<Node>, ttl: Duration) {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let mut walk = Walk::default();
    loop {
        tokio::time::sleep(UPLOAD_SWEEP_INTERVAL).await;
        if !node.is_leader() {
            walk = Walk::default();
            continue;
        }
        let query = walk.next_query(UPLOAD_SWEEP_PAGE);
        let listing = match node.query(&query) {
            Ok(Ok(QueryReply::List(listing))) => listing,
            Ok(_) => {
                walk.skip();
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "upload sweep cannot read the namespace");
                continue;
            }
        };
        for stale in walk.take(&listing, wall_clock_ms(), ttl_ms) {
            delete(&node, stale).await;
        }
        if walk.pass_done() {
            tokio::time::sleep(rest_between_passes(ttl)).await;
        }
    }
}

async fn delete(node: &Node, stale: Stale) {
    let proposal = Proposal {
        session: None,
        time_ms: 0,
        command: Command::Delete {
            path: stale.path.clone(),
            recursive: false,
            expect: Some(stale.version),
        },
    };
    match node.proposer.propose(proposal).await {
        Ok(Ok(_)) => tracing::info!(path = %stale.path, "deleted an abandoned upload temporary"),
        // Written to, renamed or deleted meanwhile: not abandoned after all.
        Ok(Err(refusal)) => tracing::debug!(path = %stale.path, %refusal, "upload temporary kept"),
        Err(e) => tracing::debug!(path = %stale.path, error = ?e, "upload sweep proposal failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toastyfs_proto::namespace::EntryInfo;

    fn entry(name: &str, kind: EntryKind, mtime_ms: u64) -> EntryInfo {
        EntryInfo {
            name: name.into(),
            kind,
            version: Version(7),
            mtime_ms,
            length: 0,
            chunk_size: 0,
        }
    }

    fn page(entries: Vec<EntryInfo>, next: Option<&str>) -> Listing {
        Listing {
            dir_version: Version(1),
            entries,
            next: next.map(str::to_owned),
        }
    }

    fn listed(query: &Query) -> (String, Option<String>) {
        match query {
            Query::List { path, after, .. } => (path.to_string(), after.clone()),
            other => panic!("not a listing: {other:?}"),
        }
    }

    #[test]
    fn the_walk_finds_old_temporaries_in_every_directory_and_starts_over() {
        let mut walk = Walk::default();
        assert_eq!(listed(&walk.next_query(2)), ("/".into(), None));
        let temp = ".f.toastyfs-upload-00000000000000ab";
        let stale = walk.take(
            &page(
                vec![
                    entry(temp, EntryKind::File, 1_000),
                    entry("d", EntryKind::Dir, 0),
                ],
                Some("d"),
            ),
            10_000,
            5_000,
        );
        assert_eq!(
            stale,
            vec![Stale {
                path: FsPath::new(&format!("/{temp}")).expect("path"),
                version: Version(7)
            }]
        );
        // Into the subdirectory first, then the rest of the root.
        assert_eq!(listed(&walk.next_query(2)), ("/d".into(), None));
        let young = walk.take(
            &page(
                vec![
                    entry(
                        ".g.toastyfs-upload-0000000000000001",
                        EntryKind::File,
                        8_000,
                    ),
                    entry(".hidden", EntryKind::File, 0),
                    entry("plain", EntryKind::File, 0),
                ],
                None,
            ),
            10_000,
            5_000,
        );
        assert!(young.is_empty(), "{young:?}");
        assert_eq!(listed(&walk.next_query(2)), ("/".into(), Some("d".into())));
        assert!(walk.take(&page(vec![], None), 10_000, 5_000).is_empty());
        assert_eq!(listed(&walk.next_query(2)), ("/".into(), None));
    }

    #[test]
    fn passes_rest_a_quarter_of_the_ttl_within_bounds() {
        assert_eq!(
            rest_between_passes(Duration::from_secs(3600)),
            UPLOAD_SWEEP_MAX_REST
        );
        assert_eq!(
            rest_between_passes(Duration::from_secs(4)),
            Duration::from_secs(1)
        );
        assert_eq!(
            rest_between_passes(Duration::from_millis(1)),
            UPLOAD_SWEEP_INTERVAL
        );
        let mut walk = Walk::default();
        walk.next_query(10);
        walk.take(&page(vec![], None), 0, 1);
        assert!(walk.pass_done());
    }

    #[test]
    fn a_vanished_directory_is_skipped() {
        let mut walk = Walk::default();
        walk.next_query(10);
        walk.take(&page(vec![entry("gone", EntryKind::Dir, 0)], None), 0, 1);
        assert_eq!(listed(&walk.next_query(10)), ("/gone".into(), None));
        walk.skip();
        assert_eq!(listed(&walk.next_query(10)), ("/".into(), None));
    }
}
