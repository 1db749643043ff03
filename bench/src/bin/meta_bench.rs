//! meta-bench: the metadata service under load, beside etcd in the same run.
//!
//! Starts a 3-node `toastyfs meta` cluster on loopback (synced log writes,
//! default timers) and measures: create-file commits/s with p50/p99 latency
//! for 1, 16 and 64 closed-loop clients; linearizable stat reads/s (64
//! clients); failover (kill -9 of the leader → first successful commit).
//! With `--etcd` (build with `--features etcd`) the same shapes run against
//! a 3-member etcd cluster (puts, linearizable gets, leader kill) and our
//! figures are printed as ratios of etcd's. `--scale N` creates N files in
//! one directory and lists it page by page, with every node's peak RSS.
//! Run it through `scripts/bench-meta.sh`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use toastyfs_bench::{closed_loop, peak_rss_mib, RunStats};
use toastyfs_client::Admin;
use toastyfs_jepsen::cluster::Cluster;
use toastyfs_proto::namespace::{Command, Proposal, Query, QueryReply, MIN_CHUNK_SIZE};
use toastyfs_proto::{ClientId, FsPath, Seq, SessionTag};

#[derive(Parser, Debug)]
struct Args {
    /// The toastyfs binary (a release build).
    #[arg(long)]
    toastyfs: PathBuf,
    /// Seconds per measured run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Also run against etcd (path of the etcd binary).
    #[arg(long)]
    etcd: Option<PathBuf>,
    /// Create this many files in one directory, then list it.
    #[arg(long)]
    scale: Option<u64>,
}

fn path(s: &str) -> FsPath {
    FsPath::new(s).expect("valid path")
}

fn create(name: &str) -> Command {
    Command::CreateFile {
        path: path(name),
        chunk_size: MIN_CHUNK_SIZE,
        expect: None,
    }
}

/// A client that talks to the leader first (no forwarding hop).
async fn leader_first(cluster: &Cluster) -> Admin {
    let leader = cluster.wait_leader().await;
    let first = cluster.nodes[&leader].addr.clone();
    let mut addrs = vec![first.clone()];
    addrs.extend(cluster.addrs().into_iter().filter(|a| *a != first));
    Admin::connect(addrs)
}

async fn toastyfs_writes(client: &Admin, clients: usize, seconds: u64, tag: &str) -> RunStats {
    let mut ids: Vec<ClientId> = Vec::with_capacity(clients);
    for _ in 0..clients {
        ids.push(client.register().await.expect("register a bench session"));
    }
    let ids = Arc::new(ids);
    let client = Arc::new(client.clone());
    let tag = tag.to_owned();
    closed_loop(clients, Duration::from_secs(seconds), move |c, i| {
        let client = client.clone();
        let name = format!("/bench/{tag}-{c}-{i}");
        let session = Some(SessionTag {
            client: ids[c],
            seq: Seq(i as u64 + 1),
        });
        async move {
            let proposal = Proposal {
                session,
                time_ms: 1,
                command: create(&name),
            };
            matches!(client.propose(&proposal).await, Ok(Ok(_)))
        }
    })
    .await
}

async fn toastyfs_reads(client: &Admin, clients: usize, seconds: u64, names: usize) -> RunStats {
    let client = Arc::new(client.clone());
    closed_loop(clients, Duration::from_secs(seconds), move |c, i| {
        let client = client.clone();
        let name = format!("/bench/w1-0-{}", (c * 7919 + i) % names.max(1));
        async move {
            matches!(
                client
                    .query(&Query::Stat { path: path(&name) }, false)
                    .await,
                Ok(Ok(_))
            )
        }
    })
    .await
}

async fn toastyfs_failover(cluster: &mut Cluster) -> Duration {
    let leader = cluster.wait_leader().await;
    let others: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|(id, _)| **id != leader)
        .map(|(_, n)| n.addr.clone())
        .collect();
    let client = Admin::with_budget(others, Duration::from_millis(100));
    cluster.kill(leader);
    let killed = Instant::now();
    let mut i = 0;
    loop {
        let proposal = Proposal {
            session: None,
            time_ms: 1,
            command: create(&format!("/bench/failover-{i}")),
        };
        if matches!(client.propose(&proposal).await, Ok(Ok(_))) {
            return killed.elapsed();
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn report(system: &str, what: &str, stats: &RunStats) {
    println!(
        "{system:<9} {what:<24} clients {:>3}  {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
        stats.clients,
        stats.per_second(),
        stats.quantile_ms(0.5),
        stats.quantile_ms(0.99),
        stats.errors
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cluster = Cluster::start(args.toastyfs.clone(), 3, &[]).await;
    let client = leader_first(&cluster).await;
    client
        .propose(&Proposal {
            session: None,
            time_ms: 1,
            command: Command::CreateDir {
                path: path("/bench"),
                parents: true,
                expect: None,
            },
        })
        .await?
        .ok();
    let mut ours = Vec::new();
    for clients in [1usize, 16, 64] {
        let stats = toastyfs_writes(&client, clients, args.seconds, &format!("w{clients}")).await;
        report("toastyfs", "create-file commits", &stats);
        ours.push(stats);
    }
    let names = ours[0].ops;
    let reads = toastyfs_reads(&client, 64, args.seconds, names).await;
    report("toastyfs", "linearizable stat reads", &reads);
    if let Some(n) = args.scale {
        scale(&cluster, &client, n).await;
    }
    let failover = toastyfs_failover(&mut cluster).await;
    println!(
        "toastyfs  failover (kill -9 leader -> first commit): {:.0} ms (target <= 1500 ms)",
        failover.as_secs_f64() * 1e3
    );
    drop(cluster);

    #[cfg(feature = "etcd")]
    if let Some(etcd) = &args.etcd {
        etcd_compare(etcd, args.seconds, &ours, &reads, failover).await?;
    }
    #[cfg(not(feature = "etcd"))]
    if args.etcd.is_some() {
        anyhow::bail!("built without the etcd feature: use scripts/bench-meta.sh");
    }
    Ok(())
}

/// Creates `n` files in one directory with 64 clients, then lists it.
async fn scale(cluster: &Cluster, client: &Admin, n: u64) {
    client
        .propose(&Proposal {
            session: None,
            time_ms: 1,
            command: Command::CreateDir {
                path: path("/scale"),
                parents: true,
                expect: None,
            },
        })
        .await
        .ok();
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let client = client.clone();
        let next = next.clone();
        let failed = failed.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let proposal = Proposal {
                    session: None,
                    time_ms: 1,
                    command: create(&format!("/scale/f{i:08}")),
                };
                if !matches!(client.propose(&proposal).await, Ok(Ok(_))) {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let created = started.elapsed();
    println!(
        "toastyfs  scale: created {n} files in one directory in {:.1} s ({:.0}/s; {} answered with an error or unknown)",
        created.as_secs_f64(),
        n as f64 / created.as_secs_f64(),
        failed.load(std::sync::atomic::Ordering::Relaxed)
    );
    let started = Instant::now();
    let mut after = None;
    let mut listed = 0u64;
    loop {
        let query = Query::List {
            path: path("/scale"),
            after: after.clone(),
            limit: 1000,
        };
        let Ok(Ok(QueryReply::List(page))) = client.query(&query, false).await else {
            break;
        };
        listed += page.entries.len() as u64;
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    let took = started.elapsed();
    println!(
        "toastyfs  scale: listed {listed} entries in {:.2} s ({:.0} entries/s, target >= 300000)",
        took.as_secs_f64(),
        listed as f64 / took.as_secs_f64()
    );
    for id in cluster.nodes.keys() {
        if let Some(rss) = cluster.pid(*id).and_then(peak_rss_mib) {
            println!("toastyfs  scale: node {id} peak RSS {rss:.0} MiB (target < 512)");
        }
    }
}

#[cfg(feature = "etcd")]
async fn etcd_compare(
    binary: &std::path::Path,
    seconds: u64,
    ours: &[RunStats],
    our_reads: &RunStats,
    our_failover: Duration,
) -> anyhow::Result<()> {
    use toastyfs_bench::etcd::EtcdCluster;
    let mut etcd = EtcdCluster::start(binary)?;
    let client = etcd.connect().await?;
    for (k, clients) in [1usize, 16, 64].into_iter().enumerate() {
        let c = client.clone();
        let stats = closed_loop(clients, Duration::from_secs(seconds), move |t, i| {
            let mut c = c.clone();
            async move {
                c.put(format!("/bench/w{clients}-{t}-{i}"), "x", None)
                    .await
                    .is_ok()
            }
        })
        .await;
        report("etcd", "puts", &stats);
        println!(
            "ratio     toastyfs/etcd commits/s at {clients:>2} clients: {:.2}  (p99 {:.2} vs {:.2} ms)",
            ours[k].per_second() / stats.per_second(),
            ours[k].quantile_ms(0.99),
            stats.quantile_ms(0.99)
        );
    }
    let c = client.clone();
    let reads = closed_loop(64, Duration::from_secs(seconds), move |t, i| {
        let mut c = c.clone();
        async move {
            c.get(format!("/bench/w1-0-{}", (t * 7919 + i) % 100), None)
                .await
                .is_ok()
        }
    })
    .await;
    report("etcd", "linearizable gets", &reads);
    println!(
        "ratio     toastyfs/etcd linearizable reads/s: {:.2}",
        our_reads.per_second() / reads.per_second()
    );
    let mut any = client.clone();
    let leader = etcd.leader(&mut any).await?;
    let others: Vec<String> = etcd
        .endpoints()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, e)| e)
        .collect();
    etcd.kill(leader);
    let killed = Instant::now();
    let mut survivor = etcd_client::Client::connect(others, None).await?;
    let options = etcd_client::PutOptions::new();
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_millis(200),
            survivor.put("/bench/failover", "x", Some(options.clone())),
        );
        if matches!(attempt.await, Ok(Ok(_))) {
            break;
        }
    }
    let failover = killed.elapsed();
    println!(
        "etcd      failover (kill -9 leader -> first put): {:.0} ms",
        failover.as_secs_f64() * 1e3
    );
    println!(
        "ratio     toastyfs/etcd failover time: {:.2}",
        our_failover.as_secs_f64() / failover.as_secs_f64()
    );
    Ok(())
}
