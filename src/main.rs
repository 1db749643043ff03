//! The one `toastyfs` binary: every component is a subcommand.
//!
//! This file only parses flags and hands over to the library crates; the
//! logic lives in `proto/`, `raft-meta/` and the crates that follow.

use clap::Parser;

/// ToastyFS: a self-hosted distributed file system with a Raft-replicated
/// namespace and content-addressed, replicated chunks.
#[derive(Parser, Debug)]
#[command(name = "toastyfs", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
