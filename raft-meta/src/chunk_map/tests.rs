//! Replication rules of the chunk map, with explicit time and a set of
//! referenced chunks standing in for the namespace (an unreferenced chunk
//! counts as condemned unless a test says otherwise).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use toastyfs_proto::chunks::ChunkReport;

use super::*;

fn h(n: u8) -> ChunkHash {
    ChunkHash::of(&[n])
}

fn one_copy() -> ChunkMapConfig {
    ChunkMapConfig {
        copies_to_acknowledge: 1,
        ..config()
    }
}

fn config() -> ChunkMapConfig {
    ChunkMapConfig {
        replication_factor: 3,
        copies_to_acknowledge: 2,
        server_timeout: Duration::from_secs(10),
        fetch_timeout: Duration::from_secs(30),
        placement_ttl: Duration::from_secs(60),
    }
}

fn report(id: u64, full: bool, added: &[ChunkHash], lost: &[ChunkHash]) -> ChunkReport {
    ChunkReport {
        server: ChunkServerId(id),
        addr: format!("cs{id}:1"),
        full,
        added: added.to_vec(),
        lost: lost.to_vec(),
        chunks: added.len() as u64,
        used_bytes: 0,
        free_bytes: 100 << 30,
        dropping: vec![],
        boot: 0,
        seq: 0,
    }
}

/// The servers among `ids` whose next answer lists a drop.
fn dropping(map: &mut ChunkMap, ids: std::ops::RangeInclusive<u64>, now: Instant) -> Vec<u64> {
    ids.filter(|id| {
        !map.report(report(*id, false, &[], &[]), now)
            .0
            .drop
            .is_empty()
    })
    .collect()
}

fn scan(map: &mut ChunkMap, now: Instant, live: &BTreeSet<ChunkHash>) -> ScanSummary {
    scan_with(map, now, live, Collection::Condemned).summary
}

/// A scan where unreferenced chunks are `otherwise`.
fn scan_with(
    map: &mut ChunkMap,
    now: Instant,
    live: &BTreeSet<ChunkHash>,
    otherwise: Collection,
) -> ScanOutcome {
    map.scan(now, |hash| {
        Ok::<_, Infallible>(if live.contains(hash) {
            Collection::Referenced
        } else {
            otherwise
        })
    })
    .unwrap_or_default()
}

fn place(
    map: &mut ChunkMap,
    hashes: &[ChunkHash],
    now: Instant,
    referenced: &BTreeSet<ChunkHash>,
) -> Result<toastyfs_proto::chunks::PlacementReply, NotReady> {
    map.place(hashes, now, 7, |hash| {
        Ok::<_, Infallible>(referenced.contains(hash))
    })
    .map_err(|e| match e {
        PlaceError::NotReady(e) => e,
        PlaceError::Read(never) => match never {},
    })
}

#[test]
fn an_unknown_server_is_asked_for_a_full_report() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    let (orders, event) = map.report(report(1, false, &[h(1)], &[]), t0);
    assert!(orders.full_report_wanted);
    assert!(event.is_none());
    assert_eq!(map.holder_count(&h(1)), 0);
    let (orders, event) = map.report(report(1, true, &[h(1)], &[]), t0);
    assert!(!orders.full_report_wanted);
    assert!(matches!(event, Some(ServerEvent::Registered { .. })));
    assert_eq!(map.holder_count(&h(1)), 1);
}

/// `report` numbered `seq` in run `boot`.
fn numbered(mut report: ChunkReport, boot: u64, seq: u64) -> ChunkReport {
    report.boot = boot;
    report.seq = seq;
    report
}

/// A report message that arrives after a newer one from the same run (a
/// hedged copy delayed in a paused node) is answered but not applied:
/// neither a late full report wiping what later messages added, nor a
/// late delta re-adding a chunk a later one reported lost.
#[test]
fn a_late_copy_of_an_older_report_is_not_applied() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    let full = numbered(report(1, true, &[h(1)], &[]), 9, 1);
    map.report(full.clone(), t0);
    let added = numbered(report(1, false, &[h(2)], &[]), 9, 2);
    map.report(added.clone(), t0);
    map.report(full, t0);
    assert_eq!(
        map.holder_count(&h(2)),
        1,
        "the late full report wiped a newer delta"
    );
    map.report(numbered(report(1, false, &[], &[h(2)]), 9, 3), t0);
    map.report(added, t0);
    assert_eq!(
        map.holder_count(&h(2)),
        0,
        "the late delta re-added a lost chunk"
    );
    assert_eq!(map.holder_count(&h(1)), 1);
    // A new run of the server starts its numbers again.
    map.report(numbered(report(1, true, &[h(3)], &[]), 10, 1), t0);
    assert_eq!(map.holder_count(&h(3)), 1);
    assert_eq!(map.holder_count(&h(1)), 0);
}

#[test]
fn a_full_report_replaces_the_inventory() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    map.report(report(1, true, &[h(1), h(2)], &[]), t0);
    map.report(report(1, true, &[h(2), h(3)], &[]), t0);
    assert_eq!(map.holder_count(&h(1)), 0);
    assert_eq!(map.holder_count(&h(2)), 1);
    assert_eq!(map.holder_count(&h(3)), 1);
    map.report(report(1, false, &[], &[h(3)]), t0);
    assert_eq!(map.holder_count(&h(3)), 0);
}

#[test]
fn under_replicated_chunks_are_copied_to_other_servers() {
    // A leader past its warm-up (it has led for one server timeout).
    let led = Instant::now();
    let t0 = led + Duration::from_secs(10);
    let mut map = ChunkMap::new(config(), 1, led);
    for id in 1..=4 {
        let added = if id == 1 { vec![h(1)] } else { vec![] };
        map.report(report(id, true, &added, &[]), t0);
    }
    let live = BTreeSet::from([h(1)]);
    let summary = scan(&mut map, t0, &live);
    assert_eq!(summary.under_replicated, 1);
    assert_eq!(summary.copies_ordered, 2);
    // A second scan does not order the same copies again.
    assert_eq!(scan(&mut map, t0, &live).copies_ordered, 0);
    let mut ordered = Vec::new();
    for id in 2..=4 {
        let (orders, _) = map.report(report(id, false, &[], &[]), t0);
        for order in orders.fetch {
            assert_eq!(order.hash, h(1));
            assert_eq!(order.from, vec!["cs1:1".to_string()]);
            ordered.push(id);
        }
    }
    assert_eq!(ordered.len(), 2);
    for id in &ordered {
        map.report(report(*id, false, &[h(1)], &[]), t0);
    }
    assert_eq!(map.holder_count(&h(1)), 3);
    assert_eq!(scan(&mut map, t0, &live).under_replicated, 0);
}

#[test]
fn a_silent_server_goes_down_and_its_chunks_are_copied_elsewhere() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    for id in 1..=3 {
        map.report(report(id, true, &[h(1)], &[]), t0);
    }
    map.report(report(4, true, &[], &[]), t0);
    let live = BTreeSet::from([h(1)]);
    let t1 = t0 + Duration::from_secs(11);
    for id in [1, 2, 4] {
        map.report(report(id, false, &[], &[]), t1);
    }
    let ScanOutcome {
        summary, events, ..
    } = scan_with(&mut map, t1, &live, Collection::Condemned);
    assert_eq!(events.len(), 1);
    assert!(matches!(
        events[0],
        ServerEvent::Down {
            server: ChunkServerId(3),
            ..
        }
    ));
    assert_eq!(summary.copies_ordered, 1);
    let (orders, _) = map.report(report(4, false, &[], &[]), t1);
    assert_eq!(orders.fetch.len(), 1);
    // The down server's next non-full report is refused.
    let (orders, _) = map.report(report(3, false, &[], &[]), t1);
    assert!(orders.full_report_wanted);
}

/// A host whose disk was replaced reports under a new id at its old
/// address: the old id is forgotten, down or not yet noticed down.
#[test]
fn a_new_server_at_a_down_servers_address_replaces_it() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    for id in 1..=3 {
        map.report(report(id, true, &[h(1)], &[]), t0);
    }
    let t1 = t0 + Duration::from_secs(11);
    for id in [1, 2] {
        map.report(report(id, false, &[], &[]), t1);
    }
    scan(&mut map, t1, &BTreeSet::from([h(1)]));
    let addrs = |map: &ChunkMap| -> Vec<(u64, bool)> {
        map.status(t1, HealthCounts::default())
            .servers
            .iter()
            .map(|s| (s.server.0, s.up))
            .collect()
    };
    assert_eq!(addrs(&map), vec![(1, true), (2, true), (3, false)]);
    let mut replacement = report(9, true, &[], &[]);
    replacement.addr = "cs3:1".into();
    map.report(replacement, t1);
    assert_eq!(addrs(&map), vec![(1, true), (2, true), (9, true)]);
    // Replaced before the leader noticed it was gone.
    let mut twin = report(10, true, &[], &[]);
    twin.addr = "cs1:1".into();
    map.report(twin, t1);
    assert_eq!(addrs(&map), vec![(2, true), (9, true), (10, true)]);
    assert_eq!(
        map.holder_count(&h(1)),
        1,
        "only server 2's copy is counted"
    );
}

#[test]
fn garbage_is_dropped_only_after_the_leader_heard_from_everyone() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    map.report(report(1, true, &[h(1), h(2)], &[]), t0);
    let live = BTreeSet::from([h(1)]);
    assert_eq!(scan(&mut map, t0, &live).garbage, 0);
    let (orders, _) = map.report(report(1, false, &[], &[]), t0);
    assert!(orders.drop.is_empty());
    let t1 = t0 + Duration::from_secs(10);
    map.report(report(1, false, &[], &[]), t1);
    assert_eq!(scan(&mut map, t1, &live).garbage, 1);
    let (orders, _) = map.report(report(1, false, &[], &[]), t1);
    assert_eq!(orders.drop, vec![h(2)]);
    // Referenced again (a write committed it): no longer in the drop list.
    let live = BTreeSet::from([h(1), h(2)]);
    scan(&mut map, t1, &live);
    let (orders, _) = map.report(report(1, false, &[], &[]), t1);
    assert!(orders.drop.is_empty());
}

#[test]
fn extra_copies_are_dropped_from_the_same_servers_every_time() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    let t1 = t0 + Duration::from_secs(10);
    for id in 1..=5 {
        map.report(report(id, true, &[h(1)], &[]), t1);
    }
    let live = BTreeSet::from([h(1)]);
    for _ in 0..3 {
        assert_eq!(scan(&mut map, t1, &live).over_replicated, 1);
        assert_eq!(dropping(&mut map, 1..=5, t1), vec![4, 5]);
    }
}

#[test]
fn placement_spreads_over_distinct_servers_and_dedups() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    for id in 1..=4 {
        map.report(report(id, true, &[], &[]), t0);
    }
    map.report(report(1, false, &[h(0)], &[]), t0);
    let hashes: Vec<ChunkHash> = (0..=200).map(h).collect();
    let reply = place(&mut map, &hashes, t0, &BTreeSet::from([h(0)])).expect("placed");
    assert!(reply.placements[0].present);
    assert_eq!(reply.placed_at, 7);
    let mut load = std::collections::BTreeMap::new();
    for p in &reply.placements[1..] {
        assert!(!p.present);
        let distinct: BTreeSet<&String> = p.targets.iter().collect();
        assert_eq!(distinct.len(), 3, "{:?}", p.targets);
        for t in &p.targets {
            *load.entry(t.clone()).or_insert(0) += 1;
        }
    }
    // Every server takes a share.
    assert_eq!(load.len(), 4);
    assert!(load.values().all(|n| *n > 100), "{load:?}");
    // Placed chunks are locatable before their holders report them.
    let located = map.locate(&[h(5)], t0).expect("located");
    assert_eq!(located.holders[0].len(), 3);
}

#[test]
fn placement_prefers_free_space() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(
        ChunkMapConfig {
            replication_factor: 1,
            copies_to_acknowledge: 1,
            ..config()
        },
        1,
        t0,
    );
    let mut big = report(1, true, &[], &[]);
    big.free_bytes = 900 << 30;
    let mut small = report(2, true, &[], &[]);
    small.free_bytes = 100 << 30;
    map.report(big, t0);
    map.report(small, t0);
    let hashes: Vec<ChunkHash> = (0..=250).map(h).collect();
    let on_big = place(&mut map, &hashes, t0, &BTreeSet::new())
        .expect("placed")
        .placements
        .iter()
        .filter(|p| p.targets == vec!["cs1:1".to_string()])
        .count();
    assert!(on_big > 190, "{on_big} of 251 on the emptier server");
}

#[test]
fn an_unclaimed_chunk_is_condemned_only_after_its_placement_expires() {
    let t0 = Instant::now();
    // One server: writes wait for one copy.
    let mut map = ChunkMap::new(one_copy(), 1, t0);
    let t1 = t0 + Duration::from_secs(60);
    map.report(report(1, true, &[], &[]), t1);
    place(&mut map, &[h(1)], t1, &BTreeSet::new()).expect("placed");
    map.report(report(1, false, &[h(1)], &[]), t1);
    let none = BTreeSet::new();
    // Uploaded, not committed yet: the write may still commit it.
    let early = scan_with(&mut map, t1, &none, Collection::Unclaimed);
    assert_eq!((early.condemn, early.summary.garbage), (vec![], 0));
    // Long after, it is an upload whose write never committed: it is
    // proposed for condemnation, and nothing is dropped before the log
    // condemns it.
    let t2 = t1 + Duration::from_secs(61);
    map.report(report(1, false, &[], &[]), t2);
    let late = scan_with(&mut map, t2, &none, Collection::Unclaimed);
    assert_eq!((late.condemn, late.summary.garbage), (vec![h(1)], 0));
    assert_eq!(dropping(&mut map, 1..=1, t2), Vec::<u64>::new());
    assert_eq!(scan(&mut map, t2, &none).garbage, 1);
    assert_eq!(dropping(&mut map, 1..=1, t2), vec![1]);
}

#[test]
fn a_new_leader_condemns_nothing_before_old_placements_expire() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(one_copy(), 1, t0);
    let t1 = t0 + Duration::from_secs(30);
    map.report(report(1, true, &[h(1)], &[]), t1);
    let none = BTreeSet::new();
    assert!(scan_with(&mut map, t1, &none, Collection::Unclaimed)
        .condemn
        .is_empty());
    let t2 = t0 + Duration::from_secs(60);
    map.report(report(1, false, &[], &[]), t2);
    assert_eq!(
        scan_with(&mut map, t2, &none, Collection::Unclaimed).condemn,
        vec![h(1)]
    );
}

#[test]
fn an_unreferenced_chunk_is_uploaded_again_and_its_drops_withdrawn() {
    let t0 = Instant::now();
    // One server: writes wait for one copy.
    let mut map = ChunkMap::new(one_copy(), 1, t0);
    let t1 = t0 + Duration::from_secs(10);
    map.report(report(1, true, &[h(1)], &[]), t1);
    scan(&mut map, t1, &BTreeSet::new());
    // Held but unreferenced: never "present", whatever its drop state.
    let reply = place(&mut map, &[h(1)], t1, &BTreeSet::new()).expect("placed");
    assert!(!reply.placements[0].present);
    assert_eq!(reply.placements[0].targets[0], "cs1:1");
    // Its drop is withdrawn at once, not at the next scan: the answer to
    // a report sent after the upload must not carry it.
    assert_eq!(dropping(&mut map, 1..=1, t1), Vec::<u64>::new());
}

#[test]
fn a_new_leader_asks_clients_to_wait_until_servers_report() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    let none = BTreeSet::new();
    assert_eq!(place(&mut map, &[h(1)], t0, &none), Err(NotReady::Warming));
    assert_eq!(map.locate(&[h(1)], t0), Err(NotReady::Warming));
    for id in 1..=3 {
        map.report(report(id, true, &[], &[]), t0);
    }
    assert!(place(&mut map, &[h(1)], t0, &none).is_ok());
    // Three servers reported, but a chunk none of them holds may be on a
    // server that has not: still "retry", not "nobody has it".
    assert_eq!(map.locate(&[h(2)], t0), Err(NotReady::Warming));
    // Past the warm-up, an empty answer is the truth.
    let mut lonely = ChunkMap::new(config(), 1, t0);
    let t1 = t0 + Duration::from_secs(10);
    assert_eq!(
        place(&mut lonely, &[h(1)], t1, &none),
        Err(NotReady::NoServers)
    );
    assert_eq!(
        lonely.locate(&[h(1)], t1).map(|r| r.holders),
        Ok(vec![vec![]])
    );
}

#[test]
fn a_leader_that_cannot_confirm_its_lead_withdraws_its_drops() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    let t1 = t0 + Duration::from_secs(10);
    map.report(report(1, true, &[h(1)], &[]), t1);
    scan(&mut map, t1, &BTreeSet::new());
    assert_eq!(
        map.report(report(1, false, &[], &[]), t1).0.drop,
        vec![h(1)]
    );
    map.withdraw_drops();
    assert!(map.report(report(1, false, &[], &[]), t1).0.drop.is_empty());
}

/// With fewer live servers than the copies a write needs, placement says
/// so clearly instead of handing out too few targets; the reply carries
/// the copies to wait for.
#[test]
fn placement_needs_as_many_live_servers_as_copies_to_acknowledge() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    map.report(report(1, true, &[], &[]), t0);
    let later = t0 + Duration::from_secs(11);
    map.report(report(1, true, &[], &[]), later);
    assert_eq!(
        place(&mut map, &[h(1)], later, &BTreeSet::new()),
        Err(NotReady::TooFewServers { up: 1, needed: 2 })
    );
    map.report(report(2, true, &[], &[]), later);
    let reply = place(&mut map, &[h(1)], later, &BTreeSet::new()).expect("placed on two servers");
    assert_eq!(reply.min_copies, 2);
    assert_eq!(reply.placements[0].targets.len(), 2);
}

/// A new leader orders no repair copies during its warm-up: a chunk whose
/// other holders have not reported yet only looks under-replicated. Before,
/// the first scan ordered copies of everything (a replication storm, then
/// extra-copy drops once the silent holders reported).
#[test]
fn a_new_leader_orders_no_repair_during_its_warm_up() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    for id in 1..=3 {
        let held: &[ChunkHash] = if id == 1 { &[h(1)] } else { &[] };
        map.report(report(id, true, held, &[]), t0);
    }
    let referenced: BTreeSet<ChunkHash> = [h(1)].into();
    let early = scan(&mut map, t0, &referenced);
    assert_eq!((early.under_replicated, early.copies_ordered), (1, 0));
    let warmed = t0 + Duration::from_secs(10);
    for id in 1..=3 {
        let held: &[ChunkHash] = if id == 1 { &[h(1)] } else { &[] };
        map.report(report(id, true, held, &[]), warmed);
    }
    let later = scan(&mut map, warmed, &referenced);
    assert_eq!(later.copies_ordered, 2);
}

/// Extra copies are dropped from a suspect server (one that reported a
/// chunk lost recently) before healthy ones, whatever the ids. Before, the
/// highest ids always lost their copy and a suspect disk kept its own.
#[test]
fn extra_copies_leave_a_suspect_server_first() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    let t1 = t0 + Duration::from_secs(10);
    for id in 1..=4 {
        map.report(report(id, true, &[h(1)], &[]), t1);
    }
    map.report(report(1, false, &[], &[h(9)]), t1);
    let live = BTreeSet::from([h(1)]);
    assert_eq!(scan(&mut map, t1, &live).over_replicated, 1);
    assert_eq!(dropping(&mut map, 1..=4, t1), vec![1]);
}

/// A full report (sent after any failed one) keeps the server's pending
/// drops in its answer, so the grace period on the chunk server does not
/// start over. Before, the answer to a full report listed no drop at all.
#[test]
fn a_full_report_keeps_the_pending_drops() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    let t1 = t0 + Duration::from_secs(10);
    map.report(report(1, true, &[h(1)], &[]), t1);
    scan(&mut map, t1, &BTreeSet::new());
    let (orders, _) = map.report(report(1, false, &[], &[]), t1);
    assert_eq!(orders.drop, vec![h(1)]);
    let (orders, _) = map.report(report(1, true, &[h(1)], &[]), t1);
    assert_eq!(orders.drop, vec![h(1)], "a full report cancelled the drop");
}

/// One definition of health for `cluster status` and `fsck`: fewer live
/// copies than the factor is under-replicated; none is "pending" while a
/// copy may exist unreported (the warm-up, or a placement to an up server
/// not yet confirmed), and "lost" only after that.
#[test]
fn health_says_pending_until_every_server_had_time_to_report() {
    use toastyfs_proto::chunks::ChunkHealth;
    let t0 = Instant::now();
    let mut map = ChunkMap::new(config(), 1, t0);
    map.report(report(1, true, &[h(1)], &[]), t0);
    map.report(report(2, true, &[h(1), h(2)], &[]), t0);
    map.report(report(3, true, &[h(1)], &[]), t0);
    assert_eq!(map.health(&h(1), t0), ChunkHealth::Healthy);
    assert_eq!(
        map.health(&h(2), t0),
        ChunkHealth::UnderReplicated { copies: 1 }
    );
    // Warming up: an unheard chunk may be on a server yet to report.
    assert_eq!(map.health(&h(3), t0), ChunkHealth::Pending);
    let later = t0 + Duration::from_secs(10);
    map.report(report(1, true, &[h(1)], &[]), later);
    map.report(report(2, true, &[h(1), h(2)], &[]), later);
    map.report(report(3, true, &[h(1)], &[]), later);
    assert_eq!(map.health(&h(3), later), ChunkHealth::Lost);
    // Placed on up servers that have not reported it yet: pending.
    let placed = place(&mut map, &[h(4)], later, &BTreeSet::new()).expect("placed");
    assert!(!placed.placements[0].present);
    assert_eq!(map.health(&h(4), later), ChunkHealth::Pending);
    let mut counts = HealthCounts::default();
    for n in 1..=4 {
        counts.add(map.health(&h(n), later));
    }
    assert_eq!(
        counts,
        HealthCounts {
            under_replicated: 1,
            pending: 1,
            lost: 1
        }
    );
}

/// One whole pass in pages of `limit`; returns the outcome and the
/// number of pages.
fn scan_in_pages(
    map: &mut ChunkMap,
    now: Instant,
    collection: &dyn Fn(&ChunkHash) -> Collection,
    limit: usize,
) -> (ScanOutcome, usize) {
    finish_pass(map, &mut ScanPass::new(), now, collection, limit)
}

/// The rest of `pass` in pages of `limit`; the outcome and the number of
/// pages it took.
fn finish_pass(
    map: &mut ChunkMap,
    pass: &mut ScanPass,
    now: Instant,
    collection: &dyn Fn(&ChunkHash) -> Collection,
    limit: usize,
) -> (ScanOutcome, usize) {
    for pages in 1.. {
        let read = |hash: &ChunkHash| Ok::<_, Infallible>(collection(hash));
        if let Some(outcome) = map.scan_page(pass, now, limit, read).unwrap_or_default() {
            return (outcome, pages);
        }
    }
    unreachable!("a pass ends")
}

/// A map in which server 1 (the only one) holds `n` chunks, reported at
/// `now`; and their hashes in order.
fn one_server_holding(n: u8, t0: Instant, now: Instant) -> (ChunkMap, Vec<ChunkHash>) {
    let mut map = ChunkMap::new(one_copy(), 1, t0);
    let mut held: Vec<ChunkHash> = (0..n).map(h).collect();
    held.sort();
    map.report(report(1, true, &held, &[]), now);
    (map, held)
}

/// The drop list of every server, by id.
fn drop_lists(
    map: &mut ChunkMap,
    ids: std::ops::RangeInclusive<u64>,
    now: Instant,
) -> Vec<Vec<ChunkHash>> {
    ids.map(|id| map.report(report(id, false, &[], &[]), now).0.drop)
        .collect()
}

/// Twenty chunks on four servers, past the new leader's waits: some
/// referenced with extra copies, some under-replicated, some condemned,
/// some unclaimed, and every server already holding drops from an earlier
/// scan that condemned everything. A pass in pages of three decides
/// exactly what one whole pass decides, in seven pages, and replaces
/// every earlier drop the way a whole scan does.
#[test]
fn a_scan_in_pages_decides_what_a_whole_scan_decides() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(61);
    let build = || {
        let mut map = ChunkMap::new(config(), 1, t0);
        for id in 1..=4u64 {
            let held: Vec<ChunkHash> = (0..20u8)
                .filter(|n| (u64::from(*n) + id) % 3 != 0 || *n < 5)
                .map(h)
                .collect();
            map.report(report(id, true, &held, &[]), t1);
        }
        map.scan(t1, |_| Ok::<_, Infallible>(Collection::Condemned))
            .unwrap_or_default();
        map
    };
    let collection = |hash: &ChunkHash| {
        let n = (0..20u8).find(|n| h(*n) == *hash).unwrap_or(0);
        match n % 4 {
            0 if n % 8 == 0 => Collection::Unclaimed,
            0 => Collection::Condemned,
            _ => Collection::Referenced,
        }
    };
    let mut whole = build();
    assert!(drop_lists(&mut whole, 1..=4, t1)
        .iter()
        .all(|d| !d.is_empty()));
    let expected = whole
        .scan(t1, |hash| Ok::<_, Infallible>(collection(hash)))
        .unwrap_or_default();
    let mut paged = build();
    let (outcome, pages) = scan_in_pages(&mut paged, t1, &collection, 3);
    assert_eq!(pages, 7, "20 chunks in pages of 3");
    assert_eq!(outcome, expected);
    let s = expected.summary;
    assert!(s.garbage > 0 && s.over_replicated > 0 && s.under_replicated > 0);
    assert!(!expected.condemn.is_empty());
    assert_eq!(paged.last_scan(), whole.last_scan());
    assert_eq!(
        drop_lists(&mut paged, 1..=4, t1),
        drop_lists(&mut whole, 1..=4, t1)
    );
}

/// A chunk a page named for condemnation that is placed before the pass
/// ends (a client uploads it again) is not proposed.
#[test]
fn a_chunk_placed_during_a_pass_is_not_condemned() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(61);
    let (mut map, held) = one_server_holding(4, t0, t1);
    let unclaimed = |_: &ChunkHash| Collection::Unclaimed;
    let mut pass = ScanPass::new();
    let first = map.scan_page(&mut pass, t1, 2, |h| Ok::<_, Infallible>(unclaimed(h)));
    assert_eq!(first, Ok(None));
    place(&mut map, &[held[0]], t1, &BTreeSet::new()).expect("placed");
    let (outcome, _) = finish_pass(&mut map, &mut pass, t1, &unclaimed, 2);
    assert_eq!(outcome.condemn, held[1..].to_vec());
}

/// A page replaces the drops in its own range only: drops of chunks it
/// did not reach stand, drops in its range of chunks referenced again are
/// cleared, and the last page's range runs to the end.
#[test]
fn a_page_replaces_the_drops_of_its_own_range_only() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(10);
    let (mut map, held) = one_server_holding(6, t0, t1);
    // Nothing referenced: everything is condemned and dropped.
    scan(&mut map, t1, &BTreeSet::new());
    assert_eq!(drop_lists(&mut map, 1..=1, t1), vec![held.clone()]);
    // Now all referenced; one page of two clears the first two drops only.
    let mut pass = ScanPass::new();
    let referenced = |_: &ChunkHash| Collection::Referenced;
    let first = map.scan_page(&mut pass, t1, 2, |h| Ok::<_, Infallible>(referenced(h)));
    assert_eq!(first, Ok(None));
    assert_eq!(drop_lists(&mut map, 1..=1, t1), vec![held[2..].to_vec()]);
    // The rest of the pass clears the others.
    let (outcome, pages) = finish_pass(&mut map, &mut pass, t1, &referenced, 2);
    assert_eq!(
        pages, 3,
        "four chunks left in pages of two, then an empty one"
    );
    assert_eq!(outcome.summary.chunks, 6);
    assert_eq!(
        drop_lists(&mut map, 1..=1, t1),
        vec![Vec::<ChunkHash>::new()]
    );
}

/// A page looks at no more chunks than its limit, however many are held.
#[test]
fn a_page_looks_at_no_more_than_its_limit() {
    let t0 = Instant::now();
    let mut map = ChunkMap::new(one_copy(), 1, t0);
    let held: Vec<ChunkHash> = (0..=255u8).map(h).collect();
    map.report(report(1, true, &held, &[]), t0);
    let mut pass = ScanPass::new();
    let mut looked = 0;
    let counted = map.scan_page(&mut pass, t0, 10, |_: &ChunkHash| {
        looked += 1;
        Ok::<_, Infallible>(Collection::Referenced)
    });
    assert_eq!(counted, Ok(None));
    assert_eq!(looked, 10);
}

/// A drop of an extra copy is withdrawn at once when another copy of the
/// chunk is lost or its holder goes down, not when the scan next reaches
/// the chunk: the copies it was counted against may be gone.
#[test]
fn an_extra_copys_drop_is_withdrawn_when_another_copy_goes() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(10);
    let live = BTreeSet::from([h(1)]);
    for goes_down in [false, true] {
        let mut map = ChunkMap::new(config(), 1, t0);
        for id in 1..=4 {
            map.report(report(id, true, &[h(1)], &[]), t1);
        }
        assert_eq!(scan(&mut map, t1, &live).over_replicated, 1);
        assert_eq!(dropping(&mut map, 1..=4, t1), vec![4]);
        if goes_down {
            // Servers 2 to 4 keep reporting; server 1 falls silent.
            let t2 = t1 + Duration::from_secs(11);
            for id in 2..=4 {
                map.report(report(id, false, &[], &[]), t2);
            }
            assert_eq!(map.mark_down(t2).len(), 1);
            assert_eq!(map.holder_count(&h(1)), 3);
            assert_eq!(dropping(&mut map, 2..=4, t2), Vec::<u64>::new());
        } else {
            map.report(report(1, false, &[], &[h(1)]), t1);
            assert_eq!(dropping(&mut map, 1..=4, t1), Vec::<u64>::new());
        }
    }
}

/// Deleting garbage is reported as a loss; the other holders' drops of
/// it stand (their grace period does not restart with every deletion).
#[test]
fn a_deleted_garbage_copy_leaves_the_other_drops_standing() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(10);
    let mut map = ChunkMap::new(config(), 1, t0);
    for id in 1..=3 {
        map.report(report(id, true, &[h(1)], &[]), t1);
    }
    assert_eq!(scan(&mut map, t1, &BTreeSet::new()).garbage, 1);
    assert_eq!(dropping(&mut map, 1..=3, t1), vec![1, 2, 3]);
    map.report(report(1, false, &[], &[h(1)]), t1);
    assert_eq!(dropping(&mut map, 2..=3, t1), vec![2, 3]);
}
