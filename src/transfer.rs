//! What `put` and `get` share: where a copy goes (the `cp` rule), the
//! options that bound it, one progress bar over every file, the signals
//! that interrupt it, and running many files at once while remembering
//! which temporaries are in flight so an interrupted copy removes them.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use toastyfs_client::Progress;

use crate::exit::{code, Failure};
use crate::output;

/// Options of a copy with more than one file in it.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct TransferArgs {
    /// Copy directories and everything in them.
    #[arg(short, long)]
    pub recursive: bool,
    /// Files transferred at once (and chunks at once within a file).
    #[arg(long, env = "TOASTYFS_PARALLELISM", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Print sizes in the final line as exact byte counts.
    #[arg(long)]
    pub bytes: bool,
}

/// The `cp` rule: the target "names a directory" when it is an existing
/// directory, ends with `/`, or several sources are copied; then each
/// source goes inside it under its own name. Otherwise the target is the
/// copy itself.
pub fn target_is_directory(exists_as_dir: bool, trailing_slash: bool, sources: usize) -> bool {
    exists_as_dir || trailing_slash || sources > 1
}

/// One overall bar (bytes of every file, rate, time left) on a terminal,
/// or a spinner with bytes and rate when the total is unknown.
pub struct Bar {
    bar: Option<indicatif::ProgressBar>,
    done: Arc<AtomicU64>,
    started: Instant,
}

/// A bar with the total, rate and time left for a known length; for an
/// unknown one (a put from a pipe), a spinner with the bytes so far and the
/// rate, never a bar whose "total" is just the bytes read.
pub fn progress_template(total: Option<u64>) -> &'static str {
    match total {
        Some(_) => "{bytes}/{total_bytes} {bytes_per_sec} [{wide_bar}] {eta}",
        None => "{spinner} {bytes} {bytes_per_sec} {elapsed}",
    }
}

impl Bar {
    pub fn new(total: Option<u64>) -> Bar {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(total) => indicatif::ProgressBar::new(total),
                None => {
                    let spinner = indicatif::ProgressBar::new_spinner();
                    spinner.enable_steady_tick(Duration::from_millis(120));
                    spinner
                }
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(progress_template(total))
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Bar {
            bar,
            done: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
        }
    }

    /// A callback for one file: it reports that file's bytes so far, and
    /// the bar shows the sum over every file.
    pub fn for_file(&self) -> Option<Progress> {
        let bar = self.bar.clone()?;
        let done = Arc::clone(&self.done);
        let mine = AtomicU64::new(0);
        Some(Arc::new(move |so_far: u64| {
            let before = mine.swap(so_far, Ordering::Relaxed);
            let total = if so_far >= before {
                done.fetch_add(so_far - before, Ordering::Relaxed) + (so_far - before)
            } else {
                done.fetch_sub(before - so_far, Ordering::Relaxed) - (before - so_far)
            };
            bar.set_position(total);
        }))
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Completes at SIGINT (Ctrl-C), SIGTERM or SIGHUP. Armed when this
/// returns, so no signal can land between creating a temporary and
/// watching for it.
pub fn interrupt_watch() -> Result<impl std::future::Future<Output = ()>, Failure> {
    use tokio::signal::unix::{signal, SignalKind};
    let watch = |kind: SignalKind| {
        signal(kind).map_err(|e| Failure::failed(format!("cannot watch for signals: {e}")))
    };
    let (mut int, mut term, mut hup) = (
        watch(SignalKind::interrupt())?,
        watch(SignalKind::terminate())?,
        watch(SignalKind::hangup())?,
    );
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
    })
}

/// Ctrl-C: exit 130, as shells report an interrupted command.
pub fn interrupted(what: &str) -> Failure {
    Failure::new(code::INTERRUPTED, format!("interrupted; {what}"))
}

/// The temporaries of copies in flight: what an interrupt removes.
pub struct InFlight<T: Ord + Clone> {
    temps: Mutex<BTreeSet<T>>,
}

impl<T: Ord + Clone> Default for InFlight<T> {
    fn default() -> Self {
        InFlight {
            temps: Mutex::new(BTreeSet::new()),
        }
    }
}

impl<T: Ord + Clone> InFlight<T> {
    pub fn start(&self, temp: &T) {
        self.lock().insert(temp.clone());
    }

    pub fn finish(&self, temp: &T) {
        self.lock().remove(temp);
    }

    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.lock()).into_iter().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<T>> {
        self.temps.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One copy of one or many files: its progress bar, the temporaries in
/// flight, and how it runs to the end or to an interrupt.
pub struct Transfer<T: Ord + Clone> {
    pub bar: Bar,
    pub in_flight: InFlight<T>,
    options: TransferArgs,
    /// For several files: a client whose files share the chunks in flight.
    fewer_chunks: Option<toastyfs_client::Client>,
}

impl<T: Ord + Clone> Transfer<T> {
    /// A copy of `files` files of `total` bytes (unknown from a pipe).
    pub fn new(
        client: &toastyfs_client::Client,
        files: usize,
        total: Option<u64>,
        options: TransferArgs,
    ) -> Transfer<T> {
        Transfer {
            bar: Bar::new(total),
            in_flight: InFlight::default(),
            options,
            fewer_chunks: per_file_client(client, files, options),
        }
    }

    /// The client each file is copied with: `given`, or for several files
    /// one that shares the chunks in flight among them.
    pub fn client<'a>(&'a self, given: &'a toastyfs_client::Client) -> &'a toastyfs_client::Client {
        self.fewer_chunks.as_ref().unwrap_or(given)
    }

    /// Runs `copy` over `jobs` ([`run_all`]) until done, or until a
    /// signal, when `remove` deletes every temporary still in flight and
    /// the copy ends with exit 130 saying `removed`. Prints the last line:
    /// `single`'s name with bytes, time and rate, or a summary.
    pub async fn run<J, F, Fut, R, RFut>(
        &self,
        jobs: Vec<J>,
        single: Option<String>,
        copy: F,
        remove: R,
        removed: &str,
    ) -> Result<(), Failure>
    where
        J: std::fmt::Display,
        F: Fn(J) -> Fut,
        Fut: std::future::Future<Output = Result<u64, Failure>>,
        R: Fn(T) -> RFut,
        RFut: std::future::Future<Output = ()>,
    {
        // Armed before any temporary exists.
        let interrupt = interrupt_watch()?;
        let files = jobs.len();
        let outcome = tokio::select! {
            outcome = run_all(jobs, self.options.parallelism, copy) => outcome,
            _ = interrupt => {
                // All at once and bounded: a second Ctrl-C is not heard
                // any more, so this must not hang.
                let temps = self.in_flight.take();
                let removals = futures::future::join_all(temps.into_iter().map(remove));
                let done = tokio::time::timeout(crate::limits::CLI_CLEANUP_TIMEOUT, removals).await;
                self.bar.finish();
                return Err(interrupted(if done.is_ok() {
                    removed
                } else {
                    "some partial copies could not be removed in time (the cluster deletes abandoned uploads later)"
                }));
            }
        };
        self.bar.finish();
        let bytes = outcome?;
        let took = self.bar.elapsed();
        match single {
            Some(name) => eprintln!(
                "{name}: {}",
                output::transfer(bytes, took, self.options.bytes)
            ),
            None => eprintln!("{}", summary(files, bytes, took, self.options.bytes)),
        }
        Ok(())
    }
}

/// Runs `copy` over `jobs`, `parallelism` at a time. Every job runs (one
/// failing does not stop the others); each failure is printed as it
/// happens. Returns the bytes copied, or, when any job failed, the most
/// serious failure's code ([`severity`]) with a count: the files named
/// were not copied, the others were.
pub async fn run_all<J, F, Fut>(jobs: Vec<J>, parallelism: u16, copy: F) -> Result<u64, Failure>
where
    J: std::fmt::Display,
    F: Fn(J) -> Fut,
    Fut: std::future::Future<Output = Result<u64, Failure>>,
{
    let total = jobs.len();
    let mut results = stream::iter(jobs)
        .map(|job| {
            let name = job.to_string();
            let done = copy(job);
            async move { (name, done.await) }
        })
        .buffer_unordered(usize::from(parallelism.max(1)));
    let (mut bytes, mut failures) = (0u64, Vec::new());
    while let Some((name, result)) = results.next().await {
        match result {
            Ok(n) => bytes += n,
            Err(failure) if total == 1 => return Err(failure),
            Err(failure) => {
                eprintln!("toastyfs: {name}: {}", failure.message);
                failures.push(failure.code);
            }
        }
    }
    match failures.iter().copied().max_by_key(|c| severity(*c)) {
        None => Ok(bytes),
        Some(worst) => Err(Failure::new(
            worst,
            format!(
                "{} of {total} files were not copied (see above); the others were",
                failures.len()
            ),
        )),
    }
}

/// Which exit code wins when files failed differently: an unknown outcome
/// above all (a script must not think nothing happened), then data
/// unavailable, an unreachable cluster, a refusal, a usage error.
pub fn severity(code: u8) -> u8 {
    match code {
        code::UNKNOWN => 5,
        code::DATA_UNAVAILABLE => 4,
        code::UNREACHABLE => 3,
        code::FAILED => 2,
        _ => 1,
    }
}

/// Two sources that would land on one target (`put a/f b/f DIR`) are a
/// usage error, before anything is copied.
pub fn refuse_duplicates(targets: impl Iterator<Item = String>) -> Result<(), Failure> {
    let mut seen = std::collections::BTreeSet::new();
    for target in targets {
        if !seen.insert(target.clone()) {
            return Err(Failure::usage(format!(
                "two sources would both be copied to {target}"
            )));
        }
    }
    Ok(())
}

/// For a copy of several files, a client whose files share
/// [`crate::limits::CLI_CHUNKS_IN_FLIGHT`] chunks in flight (each file's
/// window is its share), so memory stays bounded however many files move
/// at once; `None` for one file (it keeps `--parallelism` chunks).
fn per_file_client(
    client: &toastyfs_client::Client,
    files: usize,
    options: TransferArgs,
) -> Option<toastyfs_client::Client> {
    if files <= 1 {
        return None;
    }
    let at_once = files.min(usize::from(options.parallelism.max(1)));
    let mut config = client.config().clone();
    config.parallelism = (crate::limits::CLI_CHUNKS_IN_FLIGHT / at_once).max(1);
    Some(toastyfs_client::Client::new(config))
}

/// The last line of a copy of several files.
pub fn summary(files: usize, bytes: u64, took: Duration, raw: bool) -> String {
    format!("{files} files, {}", output::transfer(bytes, took, raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unknown length shows a spinner with bytes and rate, no total.
    #[test]
    fn an_unknown_length_shows_a_spinner_without_a_total() {
        let unknown = progress_template(None);
        assert!(unknown.contains("{spinner}") && unknown.contains("{bytes_per_sec}"));
        assert!(!unknown.contains("total") && !unknown.contains("bar"));
        assert!(progress_template(Some(10)).contains("{total_bytes}"));
        for total in [None, Some(10)] {
            assert!(indicatif::ProgressStyle::with_template(progress_template(total)).is_ok());
        }
    }

    #[test]
    fn two_sources_onto_one_target_are_refused() {
        let targets = ["/d/a", "/d/b", "/d/a"].map(str::to_owned);
        let failure = refuse_duplicates(targets.into_iter()).expect_err("a duplicate");
        assert_eq!(failure.code, code::USAGE);
        assert!(refuse_duplicates(["/x".to_owned()].into_iter()).is_ok());
    }

    #[test]
    fn a_target_names_a_directory_like_cp() {
        assert!(target_is_directory(true, false, 1));
        assert!(target_is_directory(false, true, 1));
        assert!(target_is_directory(false, false, 2));
        assert!(!target_is_directory(false, false, 1));
    }

    #[tokio::test]
    async fn every_job_runs_and_the_first_failure_decides_the_code() {
        let jobs = vec![1u64, 2, 3, 4];
        let result = run_all(jobs, 2, |n| async move {
            if n % 2 == 0 {
                Err(Failure::new(code::DATA_UNAVAILABLE, format!("job {n}")))
            } else {
                Ok(n * 10)
            }
        })
        .await;
        let failure = result.expect_err("two jobs failed");
        assert_eq!(failure.code, code::DATA_UNAVAILABLE);
        let codes = [code::FAILED, code::UNKNOWN, code::USAGE];
        let mixed = run_all(vec![0usize, 1, 2], 1, |n| async move {
            Err::<u64, _>(Failure::new(codes[n], "x"))
        })
        .await;
        assert_eq!(
            mixed.expect_err("all failed").code,
            code::UNKNOWN,
            "an unknown outcome is never hidden"
        );
        assert!(
            failure.message.starts_with("2 of 4 files"),
            "{}",
            failure.message
        );
        let ok = run_all(vec![1u64, 3], 4, |n| async move { Ok(n) }).await;
        assert_eq!(ok.ok(), Some(4));
    }
}
