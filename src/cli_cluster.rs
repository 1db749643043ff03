//! `toastyfs cluster ...`: form the metadata cluster, show its status,
//! add and remove nodes.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use toastyfs_client::{Admin, ClientError};

use crate::cli_fs::{Connection, Failure};

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Form a new cluster from its initial voters, e.g. `1=127.0.0.1:7001 2=... 3=...`.
    /// Refuses to re-initialise a formed cluster.
    Init {
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Show every metadata node: role, term, leader, log, commit and applied index, digest.
    Status,
    /// Add a node (as a learner, promoted to voter once caught up): `ID=ADDR`.
    AddNode { member: String },
    /// Remove a node from the cluster.
    RemoveNode { id: u64 },
    /// Set how many copies of every chunk the cluster keeps (1..=16).
    SetReplicationFactor { factor: u32 },
    /// Set how many chunk servers must hold a durable copy of new data
    /// before a write is acknowledged (1..=16, default 2; writes wait for
    /// no more copies than the replication factor).
    SetMinCopies { copies: u32 },
}

fn parse_member(s: &str) -> anyhow::Result<(u64, String)> {
    let (id, addr) = s
        .split_once('=')
        .with_context(|| format!("{s:?} is not ID=ADDR (e.g. 1=127.0.0.1:7001)"))?;
    let id: u64 = id
        .parse()
        .with_context(|| format!("{id:?} is not a node id (a positive integer)"))?;
    if id == 0 || addr.is_empty() {
        bail!("{s:?} is not ID=ADDR with a positive id");
    }
    Ok((id, addr.to_owned()))
}

pub async fn run(args: ClusterArgs, connection: &Connection) -> Result<(), Failure> {
    let meta = crate::config::resolve(&connection.meta).unwrap_or_default();
    let needs_address = !matches!(args.command, ClusterCommand::Init { .. });
    if needs_address && meta.is_empty() {
        return Err(crate::cli_fs::no_address());
    }
    let result = match args.command {
        ClusterCommand::Init { members } => init(members).await,
        ClusterCommand::Status => status(&meta, connection).await,
        ClusterCommand::AddNode { member } => add_node(&meta, &member).await,
        ClusterCommand::RemoveNode { id } => remove_node(&meta, id).await,
        ClusterCommand::SetReplicationFactor { factor } => {
            return set_replication_factor(connection, factor).await
        }
        ClusterCommand::SetMinCopies { copies } => return set_min_copies(connection, copies).await,
    };
    // The cluster's own failures get the file commands' exit codes (3: the
    // cluster cannot be reached, 4: outcome unknown, ...).
    result.map_err(|e| match e.downcast::<ClientError>() {
        Ok(client_error) => Failure::from(client_error),
        Err(e) => Failure {
            message: toastyfs_client::error::describe(e.as_ref()),
            code: 1,
        },
    })
}

async fn set_replication_factor(connection: &Connection, factor: u32) -> Result<(), Failure> {
    let client = crate::cli_fs::client(connection)?;
    let version = client.admin().set_replication_factor(factor, None).await?;
    println!(
        "replication factor set to {factor} (settings version {version}); the leader now copies or drops chunks to match"
    );
    Ok(())
}

async fn set_min_copies(connection: &Connection, copies: u32) -> Result<(), Failure> {
    let client = crate::cli_fs::client(connection)?;
    let version = client.admin().set_min_copies(copies, None).await?;
    println!(
        "min copies set to {copies} (settings version {version}); writes are acknowledged once that many chunk servers hold the data"
    );
    Ok(())
}

async fn add_node(meta: &[String], member: &str) -> anyhow::Result<()> {
    let (id, addr) = parse_member(member)?;
    println!("{}", client(meta)?.add_node(id, &addr).await?);
    Ok(())
}

async fn remove_node(meta: &[String], id: u64) -> anyhow::Result<()> {
    println!("{}", client(meta)?.remove_node(id).await?);
    Ok(())
}

fn client(meta: &[String]) -> anyhow::Result<Admin> {
    if meta.is_empty() {
        bail!("no metadata address given: pass --meta ADDR[,ADDR...] or set TOASTYFS_META");
    }
    Ok(Admin::connect(meta.to_vec()))
}

async fn init(members: Vec<String>) -> anyhow::Result<()> {
    let members: BTreeMap<u64, String> = members
        .iter()
        .map(|m| parse_member(m))
        .collect::<anyhow::Result<_>>()?;
    let (first_id, first_addr) = members
        .iter()
        .next()
        .map(|(i, a)| (*i, a.clone()))
        .context("no members")?;
    let client = Admin::connect(vec![first_addr.clone()]);
    match client.init(&first_addr, members.clone()).await {
        Ok(_) => {
            println!(
                "cluster initialised with {} voters; node {first_id} starts the first election",
                members.len()
            );
            Ok(())
        }
        Err(ClientError::Rejected { status: 409, .. }) => {
            // Idempotent: the same cluster formed earlier is success.
            let status = client.status(&first_addr).await?;
            let wanted: Vec<u64> = members.keys().copied().collect();
            if status.voters == wanted {
                println!("cluster already initialised with these voters");
                Ok(())
            } else {
                bail!("node {first_id} already belongs to a cluster with voters {:?}; refusing to re-initialise", status.voters)
            }
        }
        Err(e) => Err(e).context("cluster init failed (is the node running and reachable?)"),
    }
}

async fn status(meta: &[String], connection: &Connection) -> anyhow::Result<()> {
    let client = client(meta)?;
    // Ask the given nodes for the membership, then every member for its state.
    let mut nodes = BTreeMap::new();
    for addr in meta {
        if let Ok(status) = client.status(addr).await {
            nodes.extend(status.nodes.clone());
            break;
        }
    }
    if nodes.is_empty() {
        return Err(ClientError::Unavailable {
            addrs: meta.join(","),
            detail: "no metadata node answered a status request".into(),
        }
        .into());
    }
    println!(
        "{:>4}  {:<22} {:<10} {:>5} {:>6} {:>10} {:>10} {:>10}  digest",
        "id", "address", "role", "term", "leader", "last_log", "commit", "applied"
    );
    for (id, addr) in nodes {
        match client.status(&addr).await {
            Ok(s) => println!(
                "{:>4}  {:<22} {:<10} {:>5} {:>6} {:>10} {:>10} {:>10}  {}@{}",
                id,
                addr,
                s.role,
                s.term,
                s.leader.map_or("-".to_owned(), |l| l.to_string()),
                s.last_log_index,
                s.commit_index,
                s.applied_index,
                &s.digest[..16],
                s.digest_index
            ),
            Err(e) => println!("{id:>4}  {addr:<22} unreachable: {e}"),
        }
    }
    chunk_status(connection).await
}

/// The chunk servers as the leader sees them.
async fn chunk_status(connection: &Connection) -> anyhow::Result<()> {
    let client = crate::cli_fs::client(connection).map_err(|f| anyhow::anyhow!(f.message))?;
    let status = match client.admin().chunk_status().await {
        Ok(status) => status,
        Err(e) => {
            println!("\nchunk servers: unknown ({e})");
            return Ok(());
        }
    };
    println!(
        "\n{:<22} {:<5} {:>8} {:>14} {:>14}",
        "chunk server", "state", "chunks", "used bytes", "free bytes"
    );
    let mut servers = status.servers.clone();
    servers.sort_by(|a, b| a.addr.cmp(&b.addr));
    for s in &servers {
        let state = if s.up { "up" } else { "DOWN" };
        println!(
            "{:<22} {:<5} {:>8} {:>14} {:>14}",
            s.addr, state, s.chunks, s.used_bytes, s.free_bytes
        );
    }
    let min_copies = match client.admin().settings().await {
        Ok(settings) => settings.min_copies.to_string(),
        Err(_) => "unknown".into(),
    };
    println!(
        "replication factor {}; writes wait for {} copies (min copies); {} chunks under-replicated; {} lost",
        status.replication_factor, min_copies, status.under_replicated, status.lost
    );
    Ok(())
}
