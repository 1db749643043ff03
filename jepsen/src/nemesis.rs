//! Nemeses: the faults a run injects into a [`NetCluster`] on a schedule,
//! each healed before the next and all healed at the end. A fault is
//! chosen against the cluster as it is when it strikes (which node leads
//! now), and every interval is recorded on the history's clock so the
//! report can shade it and measure what clients saw during it.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::dice::Dice;
use crate::netcluster::NetCluster;
use crate::paused_client::{ClientProcesses, PausedPut};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// The leader cut from the other metadata nodes, both ways; clients
    /// and chunk servers still reach it.
    IsolateLeader,
    /// A follower cut from the other metadata nodes; clients still reach it.
    IsolateFollower,
    /// The metadata nodes split into a random minority and majority.
    RandomHalves,
    /// A majority ring: with five nodes every node sees a majority, no two
    /// the same one; with three, two cannot talk and the third bridges.
    Bridge,
    /// The leader's answers to the client hosts dropped (one direction):
    /// requests arrive and are applied, their replies are lost.
    LeaderRepliesLost,
    /// Every metadata node's answers to the client hosts dropped: writes
    /// in flight are applied and their replies lost, so clients retry.
    RepliesToClientsLost,
    /// The client hosts cut from every metadata node, both ways (chunk
    /// servers still reachable): writes in flight stall between their
    /// upload and their commit for the whole fault.
    ClientsCutFromMetas,
    /// kill -9 of the leader, restarted at the heal.
    KillLeader,
    /// kill -9 of a majority of the metadata nodes, the leader among
    /// them, all restarted at the heal: nothing can commit meanwhile, and
    /// nothing acknowledged before may be lost after.
    KillMajority,
    /// SIGSTOP of the leader, SIGCONT at the heal.
    PauseLeader,
    /// kill -9 of a chunk server, restarted at the heal.
    KillChunkServer,
    /// SIGSTOP of a chunk server, SIGCONT at the heal.
    PauseChunkServer,
    /// A chunk server cut from every metadata node, both ways; clients
    /// still reach it. Clients should notice nothing.
    ChunkServerCutFromMetas,
    /// A spare metadata node added to the cluster; at the heal a member
    /// removed (the leader every other time), its data wiped, and it
    /// becomes the next spare. Needs `Layout::spare_metas` ≥ 1.
    MembershipChange,
    /// On one chunk server's disk, a few chunk files deleted and a few
    /// with a flipped byte (nothing to heal: the cluster must notice and
    /// repair from the other copies).
    DamageChunkFiles,
    /// A `toastyfs put` client process SIGSTOPped between its placement
    /// and its commit, SIGCONT at the heal ([`crate::paused_client`]).
    /// Needs the namespace workload.
    PauseClientMidWrite,
    /// A planned rolling restart: every metadata node (the leader last),
    /// then every chunk server, stopped with SIGTERM as a service manager
    /// does and started again, one at a time, each after `toastyfs cluster
    /// wait-healthy` says the cluster caught up. Not in the profile: it
    /// is the rolling restart test's own schedule.
    RollingRestart,
    /// Combinations: their parts strike together and heal in reverse.
    /// Random halves with a chunk server killed.
    HalvesAndChunkServerKilled,
    /// The leader isolated from its peers while a client process is
    /// stopped mid-write.
    LeaderIsolatedAndClientPaused,
    /// The leader paused while chunk files are damaged on a disk.
    LeaderPausedAndChunkFilesDamaged,
}

impl Fault {
    /// Every fault of the short profile and the soak, in the order they
    /// strike (membership changes need a spare metadata host; a client
    /// paused mid-write needs the namespace workload).
    pub const PROFILE: [Fault; 19] = [
        Fault::IsolateLeader,
        Fault::RepliesToClientsLost,
        Fault::RandomHalves,
        Fault::PauseLeader,
        Fault::Bridge,
        Fault::KillLeader,
        Fault::IsolateFollower,
        Fault::PauseChunkServer,
        Fault::LeaderRepliesLost,
        Fault::KillChunkServer,
        Fault::ChunkServerCutFromMetas,
        Fault::ClientsCutFromMetas,
        Fault::DamageChunkFiles,
        Fault::MembershipChange,
        Fault::PauseClientMidWrite,
        Fault::KillMajority,
        Fault::HalvesAndChunkServerKilled,
        Fault::LeaderIsolatedAndClientPaused,
        Fault::LeaderPausedAndChunkFilesDamaged,
    ];

    /// The single faults a fault is made of, in the order they strike.
    pub fn parts(self) -> Vec<Fault> {
        match self {
            Fault::HalvesAndChunkServerKilled => vec![Fault::RandomHalves, Fault::KillChunkServer],
            Fault::LeaderIsolatedAndClientPaused => {
                vec![Fault::PauseClientMidWrite, Fault::IsolateLeader]
            }
            Fault::LeaderPausedAndChunkFilesDamaged => {
                vec![Fault::PauseLeader, Fault::DamageChunkFiles]
            }
            single => vec![single],
        }
    }
}

/// A fault as it was applied: to which hosts, and when (nanoseconds on
/// the history's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub fault: Fault,
    pub hosts: Vec<usize>,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// When faults strike and how long they hold.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Tried in turn, round robin.
    pub faults: Vec<Fault>,
    /// Healthy time before each fault.
    pub quiet: Duration,
    /// How long each fault holds.
    pub hold: Duration,
    /// No fault starts after this much time from the start.
    pub duration: Duration,
}

/// The fault in force, to undo at the heal.
enum Undo {
    Network,
    Restart(Vec<usize>),
    Resume(usize),
    /// Remove a member other than the one added (the leader if `leader`),
    /// and wipe it.
    RemoveMember {
        added: usize,
        leader: bool,
    },
    /// Let a stopped client process go on.
    ResumeClient(PausedPut),
    Nothing,
}

/// What a schedule did: the faults applied, and what went wrong applying
/// or undoing one (the schedule stops at the first such failure, undoes
/// what it can, and the run fails).
#[derive(Debug, Default)]
pub struct ScheduleOutcome {
    pub intervals: Vec<Interval>,
    pub failures: Vec<String>,
}

impl Schedule {
    /// Runs the schedule against `cluster`, timing intervals from
    /// `clock_start` (the history's zero); returns what was done once
    /// every client process it stopped has finished. `clients` runs the
    /// client processes (faults that need it are skipped without).
    pub fn run(
        &self,
        cluster: &mut NetCluster,
        clock_start: Instant,
        seed: u64,
        clients: Option<&ClientProcesses>,
    ) -> ScheduleOutcome {
        let mut dice = Dice::new(seed);
        let mut outcome = ScheduleOutcome::default();
        let mut finishing = Vec::new();
        let began = Instant::now();
        let needs_clients = |f: &Fault| f.parts().contains(&Fault::PauseClientMidWrite);
        let faults = self
            .faults
            .iter()
            .filter(|f| clients.is_some() || !needs_clients(f));
        for fault in faults.cycle() {
            std::thread::sleep(self.quiet);
            if began.elapsed() + self.hold > self.duration || !outcome.failures.is_empty() {
                break;
            }
            let start_ns = clock_start.elapsed().as_nanos() as u64;
            let mut hosts = Vec::new();
            let mut undos = Vec::new();
            for part in fault.parts() {
                let number = outcome.intervals.len() as u64;
                match strike(cluster, part, &mut dice, clients, number) {
                    Ok((hit, undo)) => {
                        hosts.extend(hit);
                        undos.push(undo);
                    }
                    Err(e) => {
                        outcome.failures.push(format!("{part:?}: {e}"));
                        break;
                    }
                }
            }
            if outcome.failures.is_empty() {
                std::thread::sleep(self.hold);
            }
            for undo in undos.into_iter().rev() {
                match heal(cluster, undo) {
                    Ok(resumed) => finishing.extend(resumed),
                    Err(e) => outcome.failures.push(format!("healing {fault:?}: {e}")),
                }
            }
            outcome.intervals.push(Interval {
                fault: *fault,
                hosts,
                start_ns,
                end_ns: clock_start.elapsed().as_nanos() as u64,
            });
        }
        for client in finishing {
            let _ = client.join();
        }
        outcome
    }
}

/// Applies the single fault `fault` (`number`: the how-manieth strike);
/// returns the hosts it hit and how to undo it, or why the fault could
/// not be applied (the run then fails: a membership change that does not
/// finish is a finding, not a harness crash).
fn strike(
    cluster: &mut NetCluster,
    fault: Fault,
    dice: &mut Dice,
    clients: Option<&ClientProcesses>,
    number: u64,
) -> Result<(Vec<usize>, Undo), String> {
    let metas: Vec<usize> = cluster.metas();
    let leader = || cluster.wait_leader(Duration::from_secs(30));
    let net = &cluster.net;
    let expect = |r: Result<(), crate::net::NetError>| r.expect("change the network");
    Ok(match fault {
        Fault::IsolateLeader => {
            let leader = leader();
            let peers: Vec<usize> = metas.iter().copied().filter(|h| *h != leader).collect();
            expect(net.isolate_from(leader, &peers));
            (vec![leader], Undo::Network)
        }
        Fault::IsolateFollower => {
            let leader = leader();
            let followers: Vec<usize> = metas.iter().copied().filter(|h| *h != leader).collect();
            let victim = followers[dice.pick(followers.len())];
            let peers: Vec<usize> = metas.iter().copied().filter(|h| *h != victim).collect();
            expect(net.isolate_from(victim, &peers));
            (vec![victim], Undo::Network)
        }
        Fault::RandomHalves => {
            let mut shuffled = metas.clone();
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, dice.pick(i + 1));
            }
            let minority = shuffled[..metas.len() / 2].to_vec();
            for &a in &minority {
                let others: Vec<usize> = metas
                    .iter()
                    .copied()
                    .filter(|h| !minority.contains(h))
                    .collect();
                expect(net.isolate_from(a, &others));
            }
            (minority, Undo::Network)
        }
        Fault::Bridge => {
            let n = metas.len();
            let mut cut = Vec::new();
            // With five nodes each keeps its two ring neighbours (itself
            // and them: a majority); with three, one pair is cut and the
            // third bridges it.
            for i in 0..n {
                for j in i + 1..n {
                    let distance = (j - i).min(n - (j - i));
                    let cut_pair = if n <= 3 {
                        (i, j) == (0, 1)
                    } else {
                        distance > 1
                    };
                    if cut_pair {
                        expect(net.cut_both(metas[i], metas[j]));
                        cut.extend([metas[i], metas[j]]);
                    }
                }
            }
            (cut, Undo::Network)
        }
        Fault::LeaderRepliesLost => {
            let leader = leader();
            for client in cluster.client_hosts() {
                expect(cluster.net.cut(leader, client));
            }
            (vec![leader], Undo::Network)
        }
        Fault::RepliesToClientsLost => {
            for node in &metas {
                for client in cluster.client_hosts() {
                    expect(cluster.net.cut(*node, client));
                }
            }
            (metas, Undo::Network)
        }
        Fault::ClientsCutFromMetas => {
            for node in &metas {
                for client in cluster.client_hosts() {
                    expect(cluster.net.cut_both(*node, client));
                }
            }
            (metas, Undo::Network)
        }
        Fault::KillLeader => {
            let leader = leader();
            cluster.kill(leader);
            (vec![leader], Undo::Restart(vec![leader]))
        }
        Fault::KillMajority => {
            let leader = leader();
            let mut victims = vec![leader];
            let mut others: Vec<usize> = metas.iter().copied().filter(|h| *h != leader).collect();
            while victims.len() < metas.len() / 2 + 1 {
                victims.push(others.remove(dice.pick(others.len())));
            }
            for victim in &victims {
                cluster.kill(*victim);
            }
            (victims.clone(), Undo::Restart(victims))
        }
        Fault::PauseLeader => {
            let leader = leader();
            cluster.pause(leader);
            (vec![leader], Undo::Resume(leader))
        }
        Fault::KillChunkServer => {
            let servers: Vec<usize> = cluster.chunk_servers().collect();
            let victim = servers[dice.pick(servers.len())];
            cluster.kill(victim);
            (vec![victim], Undo::Restart(vec![victim]))
        }
        Fault::MembershipChange => {
            let spare = cluster
                .meta_hosts()
                .find(|h| !metas.contains(h))
                .expect("a spare metadata host (Layout::spare_metas)");
            cluster
                .add_member(spare, Duration::from_secs(60))
                .map_err(|e| format!("adding metadata host {spare}: {e}"))?;
            let undo = Undo::RemoveMember {
                added: spare,
                leader: dice.roll(2) == 0,
            };
            (vec![spare], undo)
        }
        Fault::DamageChunkFiles => {
            let servers: Vec<usize> = cluster.chunk_servers().collect();
            let victim = servers[dice.pick(servers.len())];
            damage(&cluster.chunk_files(victim), dice);
            (vec![victim], Undo::Nothing)
        }
        Fault::RollingRestart => {
            let restarted = rolling_restart(cluster)?;
            (restarted, Undo::Nothing)
        }
        Fault::ChunkServerCutFromMetas => {
            let servers: Vec<usize> = cluster.chunk_servers().collect();
            let victim = servers[dice.pick(servers.len())];
            for node in &metas {
                expect(net.cut_both(victim, *node));
            }
            (vec![victim], Undo::Network)
        }
        Fault::PauseChunkServer => {
            let servers: Vec<usize> = cluster.chunk_servers().collect();
            let victim = servers[dice.pick(servers.len())];
            cluster.pause(victim);
            (vec![victim], Undo::Resume(victim))
        }
        Fault::PauseClientMidWrite => {
            let clients = clients.expect("client processes (the namespace workload)");
            let host = cluster.client_host(0);
            let paused = clients
                .pause_mid_put(cluster, host, number, dice)
                .map_err(|e| format!("pausing a client process mid-write: {e}"))?;
            (vec![host], Undo::ResumeClient(paused))
        }
        combined => unreachable!("{combined:?} strikes as its parts"),
    })
}

/// How long a stopped process may take to exit before it is killed (a
/// leading metadata node hands over for at most 3 s).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long the cluster may take to be healthy after one restart.
const HEALTHY_WITHIN: Duration = Duration::from_secs(120);

/// Restarts every metadata node (the leader last) and then every chunk
/// server, one at a time, waiting until the cluster is healthy before
/// the next and after the last; the hosts in the order restarted.
fn rolling_restart(cluster: &mut NetCluster) -> Result<Vec<usize>, String> {
    cluster.wait_healthy(HEALTHY_WITHIN)?;
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let mut order: Vec<usize> = cluster
        .metas()
        .into_iter()
        .filter(|h| *h != leader)
        .collect();
    order.push(leader);
    order.extend(cluster.chunk_servers());
    for host in &order {
        cluster
            .restart_gracefully(*host, STOP_GRACE)
            .map_err(|e| format!("restarting host {host}: {e}"))?;
        cluster
            .wait_healthy(HEALTHY_WITHIN)
            .map_err(|e| format!("after restarting host {host}: {e}"))?;
    }
    Ok(order)
}

/// Undoes a fault; a resumed client process finishes on the thread
/// returned. Says why, if the fault could not be undone.
fn heal(
    cluster: &mut NetCluster,
    undo: Undo,
) -> Result<Option<std::thread::JoinHandle<()>>, String> {
    match undo {
        Undo::Network => cluster.net.heal().expect("heal the network"),
        Undo::Restart(hosts) => {
            for host in hosts {
                cluster.restart(host).expect("restart the process");
            }
        }
        Undo::Resume(host) => cluster.resume(host),
        Undo::RemoveMember { added, leader } => {
            let current = cluster.wait_leader(Duration::from_secs(30));
            let victim = if leader {
                current
            } else {
                let others: Vec<usize> = cluster
                    .metas()
                    .into_iter()
                    .filter(|h| *h != added && *h != current)
                    .collect();
                others.first().copied().unwrap_or(current)
            };
            cluster
                .remove_member(victim, Duration::from_secs(60))
                .map_err(|e| format!("removing metadata host {victim}: {e}"))?;
            cluster
                .wipe(victim)
                .map_err(|e| format!("wiping removed host {victim}: {e}"))?;
        }
        Undo::ResumeClient(paused) => return Ok(Some(paused.resume())),
        Undo::Nothing => {}
    }
    Ok(None)
}

/// Chunk files damaged per strike: half deleted, half with a byte flipped.
const DAMAGED_FILES: usize = 6;

/// Deletes some of `files` and flips a byte in the middle of others.
fn damage(files: &[std::path::PathBuf], dice: &mut Dice) {
    for i in 0..DAMAGED_FILES.min(files.len()) {
        let file = &files[dice.pick(files.len())];
        if i % 2 == 0 {
            let _ = std::fs::remove_file(file);
        } else if let Ok(mut bytes) = std::fs::read(file) {
            if let Some(middle) = bytes.len().checked_sub(1).map(|last| last / 2) {
                bytes[middle] ^= 0x5a;
                let _ = std::fs::write(file, bytes);
            }
        }
    }
}
