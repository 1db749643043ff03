//! `toastyfs config check FILE` and `toastyfs config example ROLE`: what an
//! operator runs before starting a server from a configuration file.
//!
//! The check reads the file as the server would (the same keys, the same
//! value parsers, see [`crate::config_file`]), then what only a start
//! would find: secret files present and private, TLS files loadable,
//! addresses a peer can dial. Every problem is printed, not only the first.

use std::net::SocketAddr;
use std::path::Path;

use clap::{FromArgMatches, Subcommand};

use crate::config_file::{self, ConfigFile, ROLES};
use crate::exit::Failure;
use crate::{ChunkArgs, Cli, Commands, GatewayArgs, MetaArgs, ServerArgs};

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check a configuration file: unknown tables or keys (with the
    /// closest valid name), values their option refuses, missing required
    /// options, secret and TLS files, addresses peers cannot dial. Exits 2
    /// and names every problem when there is one.
    Check {
        /// The file, with a [meta], [chunk] and/or [gateway] table.
        file: std::path::PathBuf,
    },
    /// Print a commented configuration file for ROLE with every option
    /// and its default.
    Example {
        /// meta, chunk or gateway.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(ROLES))]
        role: String,
    },
}

pub fn run(command: ConfigCommand) -> Result<(), Failure> {
    match command {
        ConfigCommand::Check { file } => check(&file),
        ConfigCommand::Example { role } => {
            print!("{}", example(&role));
            Ok(())
        }
    }
}

/// What a check found in one table: problems refuse the file, warnings
/// are printed and let it pass.
#[derive(Debug, Default)]
pub struct Findings {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

fn check(path: &Path) -> Result<(), Failure> {
    let file = ConfigFile::load(path).map_err(Failure::usage)?;
    let findings = check_file(&file);
    for warning in &findings.warnings {
        eprintln!("warning: {warning}");
    }
    if findings.problems.is_empty() {
        let roles: Vec<_> = ROLES
            .iter()
            .filter(|r| file.tables.contains_key(**r))
            .map(|r| format!("[{r}]"))
            .collect();
        println!("{}: ok ({})", path.display(), roles.join(", "));
        return Ok(());
    }
    Err(Failure::usage(format!(
        "{} has {} problem(s):\n  {}",
        path.display(),
        findings.problems.len(),
        findings.problems.join("\n  ")
    )))
}

/// Every finding of every table of `file`.
pub fn check_file(file: &ConfigFile) -> Findings {
    let mut findings = Findings {
        problems: file.unknown_tables(),
        warnings: vec![],
    };
    if !ROLES.iter().any(|r| file.tables.contains_key(*r)) {
        findings.problems.push(format!(
            "{} configures no role: give it a [meta], [chunk] or [gateway] table",
            file.path.display()
        ));
    }
    for role in ROLES {
        if file.tables.contains_key(role) {
            check_role(file, role, &mut findings);
        }
    }
    findings
}

/// Parses the role's table alone (no flags, no environment) into the
/// server's arguments, then checks what a start would.
fn check_role(file: &ConfigFile, role: &str, findings: &mut Findings) {
    let table = match file.role(role) {
        Ok(table) => table,
        Err(problem) => return findings.problems.push(problem),
    };
    // The check reads the file alone: the checking shell's TOASTYFS_*
    // variables are not the service's.
    let root = crate::command().mut_subcommand(role, |sub| {
        sub.mut_args(|arg| arg.env(None::<&'static str>))
    });
    let Some(command) = root.find_subcommand(role) else {
        return;
    };
    // The entries that are fine go on to the checks a start would make,
    // so one bad value does not hide the others' problems.
    let (words, problems) = config_file::words_of_table(command, table, |_| false);
    let had_problems = !problems.is_empty();
    findings.problems.extend(problems);
    let argv = ["toastyfs".into(), role.into()].into_iter().chain(words);
    let parsed = root
        .clone()
        .try_get_matches_from(argv)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        // A required option whose value was refused is already named.
        Err(_) if had_problems => return,
        Err(e) => {
            let message = config_file::clap_message(&e);
            return findings.problems.push(format!("[{role}] {message}"));
        }
    };
    let mut found = Findings::default();
    match cli.command {
        Commands::Meta(args) => check_meta(&args, &mut found),
        Commands::Chunk(args) => check_chunk(&args, &mut found),
        Commands::Gateway(args) => check_gateway(&args, &mut found),
        _ => {}
    }
    let tag = |s: String| format!("[{role}] {s}");
    findings
        .problems
        .extend(found.problems.into_iter().map(tag));
    findings
        .warnings
        .extend(found.warnings.into_iter().map(tag));
}

fn check_meta(args: &MetaArgs, found: &mut Findings) {
    if args.id == 0 {
        found
            .problems
            .push("`id` must be a positive integer".into());
    }
    check_server(found, &args.server);
    if args.election_min_ms >= args.election_max_ms {
        found.problems.push(format!(
            "`election_min_ms` ({}) must be below `election_max_ms` ({})",
            args.election_min_ms, args.election_max_ms
        ));
    }
    if args.heartbeat_ms.saturating_mul(2) > args.election_min_ms {
        found.warnings.push(format!(
            "`heartbeat_ms` ({}) is over half of `election_min_ms` ({}): followers may start elections under a healthy leader",
            args.heartbeat_ms, args.election_min_ms
        ));
    }
}

fn check_chunk(args: &ChunkArgs, found: &mut Findings) {
    check_server(found, &args.server);
    meta_addresses(found, &args.meta);
}

/// What a metadata node and a chunk server share.
fn check_server(found: &mut Findings, server: &ServerArgs) {
    note(found, dialable(server.listen, server.advertise.as_deref()));
    note(found, data_dir(&server.data_dir));
    secrets(
        found,
        server.secret_file.as_deref(),
        server.also_accept_secret_file.as_deref(),
    );
    if let Err(e) = server.tls.load() {
        found.problems.push(format!("TLS: {e:#}"));
    }
}

fn meta_addresses(found: &mut Findings, meta: &[String]) {
    for addr in meta {
        if let Err(e) = host_port(addr) {
            found.problems.push(format!("`meta` entry {addr:?}: {e}"));
        }
    }
}

fn check_gateway(args: &GatewayArgs, found: &mut Findings) {
    let connection = &args.connection;
    if connection.meta.is_empty() {
        found.problems.push(
            "no `meta`: a server must name the metadata nodes (it would otherwise read the invoking user's CLI config)".into(),
        );
    }
    meta_addresses(found, &connection.meta);
    if let Some(file) = &connection.secret_file {
        if let Err(e) = toastyfs_client::secret::load(file) {
            found.problems.push(format!("`secret_file`: {e}"));
        }
    } else if connection.key.is_none() {
        found.warnings.push(
            "neither `secret_file` nor `key`: the gateway can only reach a cluster that checks nothing".into(),
        );
    }
    if let Some(ca) = &connection.tls_ca {
        if let Err(e) = toastyfs_client::tls::ClientTls::from_ca_file(ca) {
            found.problems.push(format!("`tls_ca`: {e}"));
        }
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        if let Err(e) = toastyfs_client::tls::ServerTls::from_files(cert, key) {
            found.problems.push(format!("TLS: {e}"));
        }
    }
    if !args.require_keys {
        found.warnings.push(format!(
            "`require_keys` is off: anyone who reaches {} acts with the gateway's own rights",
            args.listen
        ));
    }
}

/// A problem, if there is one.
fn note(found: &mut Findings, result: Result<(), String>) {
    if let Err(problem) = result {
        found.problems.push(problem);
    }
}

/// The cluster secret (and a rotation's second one): present, private,
/// well-formed; a server without one answers anyone.
fn secrets(found: &mut Findings, secret: Option<&Path>, also_accept: Option<&Path>) {
    match secret {
        Some(file) => {
            if let Err(e) = toastyfs_client::secret::ClusterKeys::load(file, also_accept) {
                found.problems.push(format!("`secret_file`: {e}"));
            }
        }
        None => found.warnings.push(
            "no `secret_file`: every port answers anyone (see docs/operations.md, \"Security\")"
                .into(),
        ),
    }
}

/// Whether peers can dial the address this server gives them.
pub fn dialable(listen: SocketAddr, advertise: Option<&str>) -> Result<(), String> {
    match advertise {
        None if listen.ip().is_unspecified() => Err(format!(
            "`listen = \"{listen}\"` is every interface, which no peer can dial: set `advertise` to this host's address, e.g. \"10.0.0.1:{}\"",
            listen.port()
        )),
        None => Ok(()),
        Some(advertise) => {
            host_port(advertise).map_err(|e| format!("`advertise = {advertise:?}`: {e}"))
        }
    }
}

/// A `HOST:PORT` a peer can dial: a host (not the unspecified address)
/// and a port from 1 to 65535.
pub fn host_port(addr: &str) -> Result<(), String> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("not HOST:PORT".into());
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("no host before the port".into());
    }
    if host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
    {
        return Err(format!("{host} is every interface, which no peer can dial"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{port:?} is not a port (1 to 65535)")),
        Ok(_) => Ok(()),
    }
}

/// A data directory that is a directory, or does not exist yet (the
/// server creates it, parents and all).
fn data_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() && !dir.is_dir() {
        return Err(format!(
            "`data_dir = {:?}` exists and is not a directory",
            dir.display().to_string()
        ));
    }
    Ok(())
}

/// Values the example sets (uncommented): what a production server needs.
const EXAMPLE_VALUES: [(&str, &str, &str); 13] = [
    ("meta", "id", "1"),
    ("meta", "data_dir", "\"/var/lib/toastyfs/meta\""),
    ("meta", "listen", "\"0.0.0.0:7001\""),
    ("meta", "advertise", "\"10.0.0.1:7001\""),
    ("meta", "secret_file", "\"/etc/toastyfs/cluster.secret\""),
    ("chunk", "data_dir", "\"/var/lib/toastyfs/chunks\""),
    ("chunk", "listen", "\"0.0.0.0:7011\""),
    ("chunk", "advertise", "\"10.0.0.1:7011\""),
    ("chunk", "meta", EXAMPLE_META),
    ("chunk", "secret_file", "\"/etc/toastyfs/cluster.secret\""),
    ("gateway", "listen", "\"127.0.0.1:8080\""),
    ("gateway", "meta", EXAMPLE_META),
    ("gateway", "secret_file", "\"/etc/toastyfs/cluster.secret\""),
];

const EXAMPLE_META: &str = "[\"10.0.0.1:7001\", \"10.0.0.2:7001\", \"10.0.0.3:7001\"]";

/// Shown commented out, for options without a default worth printing.
const EXAMPLE_HINTS: [(&str, &str); 6] = [
    (
        "also_accept_secret_file",
        "\"/etc/toastyfs/cluster.secret.old\"",
    ),
    ("tls_cert", "\"/etc/toastyfs/tls/node.pem\""),
    ("tls_key", "\"/etc/toastyfs/tls/node.key\""),
    ("tls_ca", "\"/etc/toastyfs/tls/ca.pem\""),
    ("key", "\"tfk1.…\""),
    ("capacity_bytes", "1_000_000_000_000"),
];

/// A commented file for `role` with every option, generated from the
/// options themselves so it never falls behind them.
pub fn example(role: &str) -> String {
    let root = crate::command();
    let Some(command) = root.find_subcommand(role) else {
        return String::new();
    };
    let mut out = format!(
        "# toastyfs {role}: `toastyfs {role} --config FILE` (check it with `toastyfs config check FILE`).\n\
         # A flag or TOASTYFS_* variable overrides what is set here; a commented line\n\
         # shows the default.\n[{role}]\n"
    );
    for (key, arg) in config_file::settable(command) {
        out.push('\n');
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        for line in wrap(&help, 76) {
            out.push_str(&format!("# {line}\n"));
        }
        if let Some(env) = arg.get_env() {
            out.push_str(&format!("# Environment: {}.\n", env.to_string_lossy()));
        }
        out.push_str(&example_line(role, &key, arg));
        out.push('\n');
    }
    out
}

fn example_line(role: &str, key: &str, arg: &clap::Arg) -> String {
    if let Some((_, _, value)) = EXAMPLE_VALUES
        .iter()
        .find(|(r, k, _)| *r == role && *k == key)
    {
        return format!("{key} = {value}");
    }
    if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
        return format!("# {key} = false");
    }
    if let Some(default) = arg.get_default_values().first() {
        return format!("# {key} = {}", toml_literal(&default.to_string_lossy()));
    }
    let hint = EXAMPLE_HINTS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or_else(|| "\"…\"".to_owned(), |(_, v)| (*v).to_owned());
    format!("# {key} = {hint}")
}

/// A default as TOML: numbers bare, anything else quoted.
fn toml_literal(value: &str) -> String {
    if value.parse::<i64>().is_ok() || value == "true" || value == "false" {
        value.to_owned()
    } else {
        toml::Value::String(value.to_owned()).to_string()
    }
}

/// `text` in lines of at most `width` characters, paragraphs kept.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split("\n\n") {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

#[cfg(test)]
mod tests;
