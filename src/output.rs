//! How the CLI prints: human tables (sizes in KiB/MiB/GiB, local ISO
//! times, transfer rates) or stable JSON for scripts (`-o json`). The
//! JSON shapes are documented in docs/operations.md, "CLI output".

use std::time::Duration;

/// `println!` for command output: see [`write_line`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

use clap::ValueEnum;

/// `-o table|json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON document on stdout, for scripts.
    Json,
}

/// Options every listing command shares.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print sizes as exact byte counts instead of KiB/MiB/GiB.
    #[arg(long)]
    pub bytes: bool,
}

impl OutputArgs {
    pub fn size(&self, bytes: u64) -> String {
        size(bytes, self.bytes)
    }
}

/// `bytes` as "1.5 MiB", or the plain number when `raw`.
pub fn size(bytes: u64, raw: bool) -> String {
    if raw {
        bytes.to_string()
    } else {
        humansize::format_size(bytes, humansize::BINARY)
    }
}

/// A time in milliseconds since the epoch as a local ISO time to the
/// second, e.g. "2026-12-03 17:04:08 +01:00".
pub fn local_time(ms_since_epoch: u64) -> String {
    let Ok(ms) = i64::try_from(ms_since_epoch) else {
        return format!("{ms_since_epoch} ms since the epoch");
    };
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(at) => at
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        Err(_) => format!("{ms_since_epoch} ms since the epoch"),
    }
}

/// "3.2 s ago" / "120 ms ago": how long since something was last seen.
pub fn ago(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(1) {
        format!("{} ms ago", elapsed.as_millis())
    } else if elapsed < Duration::from_secs(120) {
        format!("{:.1} s ago", elapsed.as_secs_f64())
    } else {
        format!("{} min ago", elapsed.as_secs() / 60)
    }
}

/// The last line of a transfer: "12.0 MiB in 1.20 s (10.0 MiB/s)".
pub fn transfer(bytes: u64, took: Duration, raw: bool) -> String {
    let secs = took.as_secs_f64();
    let rate = if secs > 0.0 {
        size((bytes as f64 / secs) as u64, raw) + "/s"
    } else {
        "-".into()
    };
    format!("{} in {secs:.2} s ({rate})", size(bytes, raw))
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), crate::exit::Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| crate::exit::Failure {
        message: format!("cannot encode the output as JSON: {e}"),
        code: crate::exit::code::FAILED,
    })?;
    outln!("{text}");
    Ok(())
}

/// One line on stdout. A reader that went away (`| head`) ends the
/// command quietly with exit 0, as other Unix tools do; any other write
/// error is reported once.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("toastyfs: cannot write to standard output: {e}");
        std::process::exit(i32::from(crate::exit::code::FAILED));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary_units_or_exact_bytes() {
        assert_eq!(size(0, false), "0 B");
        assert_eq!(size(1536, false), "1.50 KiB");
        assert_eq!(size(3 << 30, false), "3 GiB");
        assert_eq!(size(1536, true), "1536");
    }

    #[test]
    fn times_are_local_iso_to_the_second() {
        let text = local_time(1_764_781_448_000);
        // "YYYY-MM-DD HH:MM:SS +HH:MM", whatever the zone.
        assert_eq!(text.len(), 26, "{text}");
        assert!(text.starts_with("2025-12-0"), "{text}");
    }

    #[test]
    fn a_transfer_line_states_bytes_time_and_rate() {
        let line = transfer(10 << 20, Duration::from_secs(2), false);
        assert_eq!(line, "10 MiB in 2.00 s (5 MiB/s)");
    }
}
