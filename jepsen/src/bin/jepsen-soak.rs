//! `jepsen-soak`: the long profile. One cluster in network namespaces runs
//! every workload (registers with puts and compare-and-sets and pinned
//! readers, partial writes of one large file, a namespace, appends to
//! logs) in rounds of a few minutes, with a collector that acts within
//! seconds, every nemesis of the short profile striking in
//! turn, for as long as asked; each round is judged on its own (its
//! history, nemesis intervals, timeline plot and verdict kept under
//! `--results`), and a summary of every round ends the run. Exit 0 when
//! every round passed, 1 otherwise. Needs root, iproute2, iptables, curl.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use toastyfs_jepsen::append::AppendWorkload;
use toastyfs_jepsen::blocks::BlocksWorkload;
use toastyfs_jepsen::namespace::NamespaceWorkload;
use toastyfs_jepsen::nemesis::{Fault, Schedule};
use toastyfs_jepsen::netcluster::{Layout, NetCluster};
use toastyfs_jepsen::register::RegisterWorkload;
use toastyfs_jepsen::run::{fault_config, run_register, Run};
use toastyfs_jepsen::verdict::RESULTS_ENV;

#[derive(Parser, Debug)]
#[command(about = "Soak a ToastyFS cluster under every nemesis and check each round")]
struct Args {
    /// The toastyfs binary to run (a release build).
    #[arg(long)]
    binary: PathBuf,
    /// Total time to soak.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Length of one judged round.
    #[arg(long, default_value_t = 180)]
    round_secs: u64,
    /// Where every round's results are kept.
    #[arg(long, default_value = "jepsen-results")]
    results: PathBuf,
    /// Metadata nodes (3 or 5).
    #[arg(long, default_value_t = 3)]
    metas: usize,
    /// Seed of the nemesis's choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Set before any thread starts: every round keeps its results there.
    std::env::set_var(RESULTS_ENV, &args.results);
    let mut layout = Layout {
        metas: args.metas,
        spare_metas: 1,
        ..Layout::small()
    };
    layout.fast_collection();
    let mut cluster = match NetCluster::start(args.binary.clone(), layout) {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("jepsen-soak: cannot start the cluster: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let total = Duration::from_secs(args.minutes * 60);
    let mut summaries = Vec::new();
    let mut all_passed = true;
    let mut round = 0u64;
    while started.elapsed() < total {
        let round_time = Duration::from_secs(args.round_secs).min(total - started.elapsed());
        let run = Run {
            workload: RegisterWorkload {
                dir: format!("/soak/r{round}"),
                duration: round_time,
                cas_percent: 50,
                ..RegisterWorkload::short_profile()
            },
            schedule: Schedule {
                faults: Fault::PROFILE.to_vec(),
                quiet: Duration::from_secs(2),
                hold: Duration::from_secs(5),
                duration: round_time.saturating_sub(Duration::from_secs(3)),
            },
            config: fault_config,
            pinned_readers: true,
            blocks: Some(BlocksWorkload {
                duration: round_time,
                ..BlocksWorkload::short_profile()
            }),
            namespace: Some(NamespaceWorkload {
                dir: format!("/soak/r{round}/ns"),
                duration: round_time,
                ..NamespaceWorkload::short_profile()
            }),
            append: Some(AppendWorkload {
                dir: format!("/soak/r{round}/log"),
                duration: round_time,
                ..AppendWorkload::short_profile()
            }),
            seed: args.seed.wrapping_add(round),
        };
        let name = format!("soak-round{round}");
        match run_register(&mut cluster, &name, run) {
            Ok(verdict) => {
                all_passed &= verdict.passed();
                let line = verdict.summary(&name);
                println!("{line}");
                summaries.push(line);
            }
            Err(e) => {
                all_passed = false;
                println!("{name}: could not be judged: {e}");
                summaries.push(format!("{name}: could not be judged: {e}"));
            }
        }
        round += 1;
    }
    let summary = format!(
        "soak: {round} rounds in {:?}; {}",
        started.elapsed(),
        if all_passed {
            "every round passed"
        } else {
            "FAILED"
        }
    );
    println!("{summary}");
    summaries.push(summary);
    let _ = std::fs::write(
        args.results.join("summary.txt"),
        summaries.join("\n") + "\n",
    );
    if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
