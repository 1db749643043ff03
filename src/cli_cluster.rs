//! `toastyfs cluster ...`: form the metadata cluster, show its status,
//! add and remove nodes, change its settings; and `toastyfs version`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;
use toastyfs_client::{Admin, ClientError};
use toastyfs_proto::client_key::{Access, KeyId};
use toastyfs_proto::cluster::{ChunkClusterStatus, NodeStatus};

use crate::cli_fs::{addresses, Connection};
use crate::exit::Failure;
use crate::output::{self, outln, Format, OutputArgs};

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Write a new random cluster secret to FILE (mode 0600; never over an
    /// existing file). Give every node and chunk server `--secret-file`
    /// with a copy of it before `cluster init`.
    #[command(after_help = "Example:\n  toastyfs cluster secret /etc/toastyfs/cluster.secret")]
    Secret {
        /// Where to write it.
        file: std::path::PathBuf,
    },
    /// Form a new cluster from its initial voters. Refuses to
    /// re-initialise a formed cluster.
    #[command(
        after_help = "Example:\n  toastyfs cluster init 1=10.0.0.1:7001 2=10.0.0.2:7001 3=10.0.0.3:7001"
    )]
    Init {
        /// The voters, each `ID=ADDR` (a positive id and the address the
        /// node was started with).
        #[arg(required = true, value_name = "ID=ADDR")]
        members: Vec<String>,
    },
    /// Show every metadata node (role, term, leader, log, commit and
    /// applied index, digest) and every chunk server.
    Status {
        #[command(flatten)]
        output: OutputArgs,
        /// Show it again every SECS seconds (default 2) until interrupted;
        /// with `-o json`, one JSON document each time.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2", value_parser = clap::value_parser!(u64).range(1..))]
        watch: Option<u64>,
    },
    /// Wait until the cluster is healthy: every member answers and has
    /// applied what was committed when the wait began, one leader, no
    /// learner, equal digests, every chunk server up and every chunk fully
    /// replicated. Run it between two nodes of a rolling restart. Exits 1
    /// naming what is still wrong after --timeout.
    #[command(
        after_help = "Example:\n  systemctl restart toastyfs-meta && toastyfs cluster wait-healthy --timeout 120"
    )]
    WaitHealthy {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Also wait until at least this many chunk servers are up (the
        /// leader knows only those that have reported: a server still
        /// starting is otherwise not waited for).
        #[arg(long, default_value_t = 0)]
        chunk_servers: usize,
    },
    /// Save a backup of the namespace (directories, files, chunk lists,
    /// keys, settings) from the leader while the cluster serves: every
    /// change committed before the command is in it. It is checked whole
    /// before it is kept; its applied index and digest are printed. Chunk
    /// data is not in it.
    #[command(
        after_help = "Example:\n  toastyfs cluster backup /backups/toastyfs-$(date +%F).backup"
    )]
    Backup {
        /// Where to write it (never over an existing file).
        file: PathBuf,
    },
    /// Build the first node of a new cluster from a backup: DATA_DIR must
    /// be new. Start the node, then add the others with `add-node`.
    #[command(
        after_help = "Example:\n  toastyfs cluster restore nightly.backup --data-dir /var/lib/toastyfs/meta --id 1 --advertise 10.0.0.1:7001"
    )]
    Restore {
        /// The backup.
        file: PathBuf,
        /// The new node's data directory (must not hold a node's data).
        #[arg(long)]
        data_dir: PathBuf,
        /// The new node's id.
        #[arg(long)]
        id: u64,
        /// The address the new node will be reached at.
        #[arg(long)]
        advertise: String,
    },
    /// Add a node (as a learner, promoted to voter once caught up).
    AddNode {
        /// The new node, `ID=ADDR`.
        #[arg(value_name = "ID=ADDR")]
        member: String,
    },
    /// Remove a node from the cluster.
    RemoveNode {
        /// The node's id.
        id: u64,
    },
    /// Set how many copies of every chunk the cluster keeps (1..=16).
    SetReplicationFactor {
        /// Copies of every chunk.
        #[arg(value_parser = clap::value_parser!(u32).range(1..=16))]
        factor: u32,
        /// Set it even when fewer chunk servers are up than the factor
        /// (every chunk then stays under-replicated until more join).
        #[arg(long)]
        force: bool,
    },
    /// Set how many chunk servers must hold a durable copy of new data
    /// before a write is acknowledged (1..=16, default 2; writes wait for
    /// no more copies than the replication factor).
    SetMinCopies {
        /// Copies a write waits for.
        #[arg(value_parser = clap::value_parser!(u32).range(1..=16))]
        copies: u32,
    },
    /// Set the largest file kept inline in the namespace (0..=4096 bytes,
    /// default 4096; 0 turns it off): a put of a file this small is one
    /// commit with no chunk upload. Files already inline stay so.
    SetInlineMax {
        /// Bytes.
        #[arg(value_parser = clap::value_parser!(u32).range(0..=4096))]
        bytes: u32,
    },
    /// Create, list and revoke client keys (needs the cluster secret).
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Create a key and print it (the only time it is shown: the cluster
    /// keeps only a hash of it).
    #[command(
        after_help = "Examples:\n  toastyfs cluster key create --access read-only --name backups\n  TOASTYFS_KEY=$(toastyfs cluster key create --access rw --name app) toastyfs ls /"
    )]
    Create {
        /// read-only (ro): stat, list and read; read-write (rw): also
        /// change files and directories. Cluster changes always need the
        /// cluster secret.
        #[arg(long)]
        access: Access,
        /// What the key is for (shown by `list`).
        #[arg(long, default_value = "unnamed")]
        name: String,
    },
    /// List every key: id, access, name, created, revoked.
    List {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Revoke a key: refused on every port within a second.
    Revoke {
        /// The key's id (the number after `tfk1.`).
        id: u64,
    },
}

fn parse_member(s: &str) -> Result<(u64, String), Failure> {
    let bad = || {
        Failure::usage(format!(
            "{s:?} is not ID=ADDR with a positive id (e.g. 1=127.0.0.1:7001)"
        ))
    };
    let (id, addr) = s.split_once('=').ok_or_else(bad)?;
    let id: u64 = id.parse().map_err(|_| bad())?;
    if id == 0 || addr.is_empty() {
        return Err(bad());
    }
    Ok((id, addr.to_owned()))
}

/// The CLI's admin client: it reports an unreachable cluster within
/// about two seconds, like the file commands.
fn admin(connection: &Connection) -> Result<Admin, Failure> {
    Ok(crate::cli_fs::client(connection, None)?.admin())
}

pub async fn run(args: ClusterArgs) -> Result<(), Failure> {
    let connection = &args.connection;
    match args.command {
        ClusterCommand::Secret { file } => {
            toastyfs_client::secret::create(&file).map_err(|e| Failure::failed(e.to_string()))?;
            outln!(
                "wrote a new cluster secret to {} (mode 0600); copy it to every host and pass --secret-file",
                file.display()
            );
            Ok(())
        }
        ClusterCommand::Init { members } => init(connection, members).await,
        ClusterCommand::Status { output, watch } => match watch {
            Some(every) => watch_status(connection, output, every).await,
            None => status(connection, output).await,
        },
        ClusterCommand::Backup { file } => crate::cli_backup::backup(connection, &file).await,
        ClusterCommand::Restore {
            file,
            data_dir,
            id,
            advertise,
        } => crate::cli_backup::restore(&file, &data_dir, id, &advertise).await,
        ClusterCommand::WaitHealthy {
            timeout,
            chunk_servers,
        } => {
            crate::cli_health::wait_healthy(connection, Duration::from_secs(timeout), chunk_servers)
                .await
        }
        ClusterCommand::AddNode { member } => {
            let (id, addr) = parse_member(&member)?;
            outln!("{}", admin(connection)?.add_node(id, &addr).await?);
            Ok(())
        }
        ClusterCommand::RemoveNode { id } => {
            outln!("{}", admin(connection)?.remove_node(id).await?);
            Ok(())
        }
        ClusterCommand::SetReplicationFactor { factor, force } => {
            set_replication_factor(connection, factor, force).await
        }
        ClusterCommand::Key(command) => key(connection, command).await,
        ClusterCommand::SetMinCopies { copies } => {
            let version = admin(connection)?.set_min_copies(copies, None).await?;
            outln!(
                "min copies set to {copies} (settings version {version}); writes are acknowledged once that many chunk servers hold the data"
            );
            Ok(())
        }
        ClusterCommand::SetInlineMax { bytes } => {
            let version = admin(connection)?.set_inline_max(bytes, None).await?;
            outln!(
                "inline limit set to {bytes} bytes (settings version {version}); files put whole at or below it keep their content in the namespace"
            );
            Ok(())
        }
    }
}

async fn key(connection: &Connection, command: KeyCommand) -> Result<(), Failure> {
    let admin = admin(connection)?;
    match command {
        KeyCommand::Create { access, name } => {
            let key = admin.create_key(&name, access).await?;
            outln!("{key}");
            eprintln!(
                "created {access} key {} ({name}); it is shown only now: give it as --key, TOASTYFS_KEY or `key = ...` in the config file",
                key.id
            );
        }
        KeyCommand::List { output } => {
            let keys = admin.keys().await?;
            if output.format == Format::Json {
                return output::print_json(&keys);
            }
            outln!("ID\tACCESS\tCREATED\tREVOKED\tNAME");
            for k in keys {
                outln!(
                    "{}\t{}\t{}\t{}\t{}",
                    k.id,
                    k.access,
                    output::local_time(k.created_ms),
                    k.revoked_ms.map_or("-".to_owned(), output::local_time),
                    k.name
                );
            }
        }
        KeyCommand::Revoke { id } => {
            admin.revoke_key(KeyId(id)).await?;
            outln!("revoked key {id}");
        }
    }
    Ok(())
}

/// A factor above the chunk servers that are up can never be met: every
/// chunk would stay under-replicated. Refused unless `force`.
async fn set_replication_factor(
    connection: &Connection,
    factor: u32,
    force: bool,
) -> Result<(), Failure> {
    let admin = admin(connection)?;
    let up = admin
        .chunk_status()
        .await?
        .servers
        .iter()
        .filter(|s| s.up)
        .count();
    let short = usize::try_from(factor).unwrap_or(usize::MAX) > up;
    if short && !force {
        return Err(Failure::failed(format!(
            "only {up} chunk servers are up, so a replication factor of {factor} cannot be met: every chunk would stay under-replicated. Add chunk servers first, or pass --force to set it anyway."
        )));
    }
    let version = admin.set_replication_factor(factor, None).await?;
    outln!(
        "replication factor set to {factor} (settings version {version}); the leader now copies or drops chunks to match"
    );
    if short {
        eprintln!(
            "warning: only {up} chunk servers are up: every chunk stays under-replicated until {} more join",
            usize::try_from(factor).unwrap_or(usize::MAX) - up
        );
    }
    Ok(())
}

async fn init(connection: &Connection, members: Vec<String>) -> Result<(), Failure> {
    let members: BTreeMap<u64, String> = members
        .iter()
        .map(|m| parse_member(m))
        .collect::<Result<_, _>>()?;
    let Some((first_id, first_addr)) = members.iter().next().map(|(i, a)| (*i, a.clone())) else {
        return Err(Failure::usage("no members given"));
    };
    let secret = crate::cli_fs::secret(connection)?;
    let tls = crate::cli_fs::tls(connection)?;
    let client = Admin::connect_with(vec![first_addr.clone()], secret, tls);
    match client.init(&first_addr, members.clone()).await {
        Ok(_) => {
            outln!(
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
                outln!("cluster already initialised with these voters");
                Ok(())
            } else {
                Err(Failure::failed(format!(
                    "node {first_id} already belongs to a cluster with voters {:?}; refusing to re-initialise",
                    status.voters
                )))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// One metadata node in `cluster status -o json`: its status, or why it
/// did not answer.
#[derive(Serialize)]
pub(crate) struct NodeJson {
    pub(crate) id: u64,
    pub(crate) addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<NodeStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

#[derive(Serialize)]
struct StatusJson {
    nodes: Vec<NodeJson>,
    /// The leader's view of the chunk servers; absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    chunks: Option<ChunkClusterStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_copies: Option<u32>,
}

/// Every member's own status: the membership from the first given node
/// that answers, then every member asked at once (a paused node costs its
/// timeout once, not once per node before it).
pub(crate) async fn members(admin: &Admin, meta: &[String]) -> Result<Vec<NodeJson>, Failure> {
    let mut last_error = None;
    let mut nodes = BTreeMap::new();
    for addr in meta {
        match admin.status(addr).await {
            Ok(status) if status.nodes.is_empty() => {
                return Err(Failure::failed(format!(
                    "the node at {addr} belongs to no cluster yet: form one with `toastyfs cluster init ID=ADDR ...`"
                )));
            }
            Ok(status) => {
                nodes = status.nodes.clone();
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    if nodes.is_empty() {
        let detail = match last_error {
            Some(e) => format!("no metadata node answered a status request (the last: {e})"),
            None => "no metadata node answered a status request".into(),
        };
        return Err(Failure::from(ClientError::Unavailable {
            addrs: meta.join(","),
            detail,
        }));
    }
    let asks = nodes.into_iter().map(|(id, addr)| async move {
        let answer = admin.status(&addr).await;
        let (status, error) = match answer {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        NodeJson {
            id,
            addr,
            status,
            error,
        }
    });
    Ok(futures::future::join_all(asks).await)
}

async fn status(connection: &Connection, output: OutputArgs) -> Result<(), Failure> {
    let meta = addresses(connection)?;
    let admin = admin(connection)?;
    let nodes = members(&admin, &meta).await?;
    let chunks = admin.chunk_status().await;
    let min_copies = admin.settings().await.ok().map(|s| s.min_copies);
    if output.format == Format::Json {
        return output::print_json(&StatusJson {
            nodes,
            chunks: chunks.ok(),
            min_copies,
        });
    }
    print_nodes(&nodes);
    match chunks {
        Ok(chunks) => print_chunks(&chunks, min_copies, output),
        Err(e) => outln!("\nchunk servers: unknown ({e})"),
    }
    Ok(())
}

/// `cluster status --watch`: the status, redrawn every `every` seconds;
/// an unreachable cluster is shown as such and looked at again.
async fn watch_status(
    connection: &Connection,
    output: OutputArgs,
    every: u64,
) -> Result<(), Failure> {
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        if terminal && output.format != Format::Json {
            // Clear the screen and go home, as `watch` does.
            print!("\x1b[2J\x1b[H");
            outln!("every {every} s; Ctrl-C to stop\n");
        }
        if let Err(e) = status(connection, output).await {
            outln!("{}", e.message);
        }
        tokio::time::sleep(Duration::from_secs(every)).await;
    }
}

fn print_nodes(nodes: &[NodeJson]) {
    outln!(
        "{:>4}  {:<22} {:<10} {:>5} {:>6} {:>10} {:>10} {:>10}  {:<8} DIGEST",
        "ID",
        "ADDRESS",
        "ROLE",
        "TERM",
        "LEADER",
        "LAST LOG",
        "COMMIT",
        "APPLIED",
        "VERSION"
    );
    // Digests of the same applied index must match; a mismatch is flagged.
    let mut by_index: BTreeMap<u64, &str> = BTreeMap::new();
    for node in nodes {
        let (id, addr) = (node.id, &node.addr);
        let Some(s) = &node.status else {
            outln!(
                "{id:>4}  {addr:<22} unreachable: {}",
                node.error.as_deref().unwrap_or("")
            );
            continue;
        };
        let first = *by_index.entry(s.digest_index).or_insert(&s.digest);
        let flag = if first == s.digest {
            ""
        } else {
            "  DIGEST MISMATCH"
        };
        outln!(
            "{id:>4}  {addr:<22} {:<10} {:>5} {:>6} {:>10} {:>10} {:>10}  {:<8} {}@{}{flag}",
            s.role,
            s.term,
            s.leader.map_or("-".to_owned(), |l| l.to_string()),
            s.last_log_index,
            s.commit_index,
            s.applied_index,
            if s.version.is_empty() {
                "?"
            } else {
                &s.version
            },
            s.digest.get(..16).unwrap_or(&s.digest),
            s.digest_index
        );
    }
}

fn print_chunks(status: &ChunkClusterStatus, min_copies: Option<u32>, output: OutputArgs) {
    outln!(
        "\n{:<22} {:<5} {:>8} {:>10} {:>10}  LAST SEEN",
        "CHUNK SERVER",
        "STATE",
        "CHUNKS",
        "USED",
        "FREE"
    );
    let mut servers = status.servers.clone();
    servers.sort_by(|a, b| a.addr.cmp(&b.addr));
    for s in &servers {
        let seen = output::ago(Duration::from_millis(s.last_report_ms));
        if s.up {
            outln!(
                "{:<22} {:<5} {:>8} {:>10} {:>10}  {seen}",
                s.addr,
                "up",
                s.chunks,
                output.size(s.used_bytes),
                output.size(s.free_bytes)
            );
        } else {
            // What a down server held is not known now: no stale figures.
            outln!(
                "{:<22} {:<5} {:>8} {:>10} {:>10}  {seen}",
                s.addr,
                "DOWN",
                "-",
                "-",
                "-"
            );
        }
    }
    let rf = status.replication_factor;
    let min_copies = min_copies.map_or("unknown".into(), |m| m.to_string());
    outln!(
        "\nreplication factor {rf}; writes wait for {min_copies} copies (min copies)\nchunks: {} under-replicated, {} lost, {} pending reports",
        status.under_replicated, status.lost, status.pending
    );
    let up = servers.iter().filter(|s| s.up).count();
    if usize::try_from(rf).unwrap_or(usize::MAX) > up {
        outln!(
            "warning: only {up} chunk servers are up, fewer than the replication factor {rf}: every chunk stays under-replicated"
        );
    }
    if status.pending > 0 {
        outln!("(pending: not yet reported to this leader; they are counted as lost only once every server has had time to report)");
    }
}

/// `toastyfs version`: this binary's version, and each reachable metadata
/// node's. Without a reachable cluster it prints the client's and exits 3.
pub async fn version(connection: &Connection) -> Result<(), Failure> {
    outln!("client   {}", env!("CARGO_PKG_VERSION"));
    let meta = addresses(connection)?;
    let admin = admin(connection)?;
    let nodes = members(&admin, &meta).await?;
    for node in nodes {
        match node.status {
            Some(s) if !s.version.is_empty() => {
                outln!("node {:<3} {} ({})", node.id, s.version, node.addr)
            }
            Some(_) => outln!(
                "node {:<3} unknown: too old to say ({})",
                node.id,
                node.addr
            ),
            None => outln!("node {:<3} unreachable ({})", node.id, node.addr),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::code;

    #[test]
    fn a_member_is_a_positive_id_and_an_address() {
        assert_eq!(parse_member("2=h:7").ok(), Some((2, "h:7".to_owned())));
        for bad in ["0=h:7", "x=h:7", "2=", "h:7"] {
            let failure = parse_member(bad).expect_err(bad);
            assert_eq!(failure.code, code::USAGE, "{bad}");
        }
    }
}
