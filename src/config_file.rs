//! Server configuration files: `toastyfs meta|chunk|gateway --config FILE`
//! reads the role's table (`[meta]`, `[chunk]`, `[gateway]`) of a TOML file.
//!
//! A key is an option's long name with `_` for `-` (`data_dir`,
//! `secret_file`). The file only fills in what the command line and the
//! environment leave unset: a flag beats a `TOASTYFS_*` variable, which
//! beats the file, which beats the built-in default. Values are parsed by
//! the same clap parsers as flags, so the file and the command line cannot
//! disagree on what a value means; an unknown table or key is refused with
//! the closest valid name, so a typo never silently falls back to a default.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The roles a file may configure, each a table of the same name.
pub const ROLES: [&str; 3] = ["meta", "chunk", "gateway"];

/// Options a file cannot set: clap's own, and `--config` itself.
const NOT_IN_FILES: [&str; 3] = ["help", "version", "config"];

/// A parsed configuration file.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub tables: toml::Table,
}

impl ConfigFile {
    /// Reads and parses `path`; the error says where the TOML is wrong.
    pub fn load(path: &Path) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let tables = text
            .parse::<toml::Table>()
            .map_err(|e| format!("{} is not valid TOML: {e}", path.display()))?;
        Ok(ConfigFile {
            path: path.to_owned(),
            tables,
        })
    }

    /// The tables that are not roles, each with what it may have meant.
    pub fn unknown_tables(&self) -> Vec<String> {
        self.tables
            .keys()
            .filter(|name| !ROLES.contains(&name.as_str()))
            .map(|name| {
                format!(
                    "{}: unknown table [{name}]{}; a file configures {}",
                    self.path.display(),
                    did_you_mean(name, ROLES.iter().copied()),
                    ROLES.map(|r| format!("[{r}]")).join(", ")
                )
            })
            .collect()
    }

    /// The role's table, or why there is none.
    pub fn role(&self, role: &str) -> Result<&toml::Table, String> {
        match self.tables.get(role) {
            Some(toml::Value::Table(table)) => Ok(table),
            Some(_) => Err(format!(
                "{}: `{role}` must be a table ([{role}])",
                self.path.display()
            )),
            None => Err(format!(
                "{} has no [{role}] table (it has: {})",
                self.path.display(),
                self.tables.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

/// ` (did you mean `x`?)` for the candidate closest to `name`, if one is
/// close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(String::new(), |(_, c)| format!(" (did you mean `{c}`?)"))
}

/// The file key of an option: its long name with `_` for `-`.
pub fn key_of(arg: &clap::Arg) -> Option<String> {
    let long = arg.get_long()?;
    (!NOT_IN_FILES.contains(&long)).then(|| long.replace('-', "_"))
}

/// The options of `command` a file may set, by key.
pub fn settable(command: &clap::Command) -> Vec<(String, &clap::Arg)> {
    command
        .get_arguments()
        .filter_map(|arg| key_of(arg).map(|key| (key, arg)))
        .collect()
}

/// Whether an option is an on/off switch (`--require-keys`).
fn is_switch(arg: &clap::Arg) -> bool {
    matches!(arg.get_action(), clap::ArgAction::SetTrue)
}

/// The command-line words one file entry stands for (none for a switch
/// set to false), each value checked by the option's own parser.
pub fn words_for(arg: &clap::Arg, key: &str, value: &toml::Value) -> Result<Vec<OsString>, String> {
    let Some(long) = arg.get_long() else {
        return Ok(vec![]);
    };
    if is_switch(arg) {
        return match value {
            toml::Value::Boolean(true) => Ok(vec![format!("--{long}").into()]),
            toml::Value::Boolean(false) => Ok(vec![]),
            other => Err(format!(
                "`{key}` is a switch: true or false, not {}",
                other.type_str()
            )),
        };
    }
    let values = match value {
        toml::Value::Array(items) if arg.get_value_delimiter().is_some() => items
            .iter()
            .map(|item| scalar(key, item))
            .collect::<Result<Vec<_>, _>>()?,
        toml::Value::Array(_) => return Err(format!("`{key}` takes one value, not a list")),
        other => vec![scalar(key, other)?],
    };
    for value in &values {
        check_value(arg, key, value)?;
    }
    let joined = values.join(",");
    Ok(vec![format!("--{long}={joined}").into()])
}

/// A string, integer or boolean as the text a flag would carry.
fn scalar(key: &str, value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!(
            "`{key}` must be a string or a number, not {}",
            other.type_str()
        )),
    }
}

/// Runs the option's own parser on `value` (in a command holding only
/// that parser), for a message naming the key.
fn check_value(arg: &clap::Arg, key: &str, value: &str) -> Result<(), String> {
    let Some(long) = arg.get_long() else {
        return Ok(());
    };
    // The option alone: no other option it requires, no environment.
    let alone = arg
        .clone()
        .required(false)
        .requires(clap::builder::Resettable::<clap::Id>::Reset)
        .conflicts_with(clap::builder::Resettable::<clap::Id>::Reset)
        .env(None::<&'static str>)
        .global(false);
    let probe = clap::Command::new("config").no_binary_name(true).arg(alone);
    probe
        .try_get_matches_from([format!("--{long}={value}")])
        .map(drop)
        .map_err(|e| format!("`{key} = {value:?}`: {}", clap_message(&e)))
}

/// A clap error on one line, without its usage and help hints.
pub fn clap_message(error: &clap::Error) -> String {
    let text = error.render().to_string();
    text.lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_owned()
}

/// The words every entry of `table` stands for, and every problem found
/// (unknown keys with the closest valid one, values their option refuses).
/// `given` says whether the command line or environment already set an
/// option (its entry is then skipped: they win over the file).
pub fn words_of_table(
    command: &clap::Command,
    table: &toml::Table,
    given: impl Fn(&clap::Arg) -> bool,
) -> (Vec<OsString>, Vec<String>) {
    let options = settable(command);
    let mut words = Vec::new();
    let mut problems = Vec::new();
    for (key, value) in table {
        let Some((_, arg)) = options.iter().find(|(k, _)| k == key) else {
            problems.push(format!(
                "unknown key `{key}` in [{}]{}",
                command.get_name(),
                did_you_mean(key, options.iter().map(|(k, _)| k.as_str()))
            ));
            continue;
        };
        if given(arg) {
            continue;
        }
        match words_for(arg, key, value) {
            Ok(more) => words.extend(more),
            Err(problem) => problems.push(format!("[{}] {problem}", command.get_name())),
        }
    }
    (words, problems)
}

/// Where the role subcommand stands in `args` (after `toastyfs` and any
/// `--meta A` before the command), if the command is a server role.
fn role_position(args: &[OsString]) -> Option<(usize, &'static str)> {
    let mut i = 1;
    while let Some(word) = args.get(i).and_then(|w| w.to_str()) {
        if word == "--meta" {
            i += 2;
        } else if word.starts_with("--meta=") {
            i += 1;
        } else {
            return ROLES.iter().find(|r| **r == word).map(|r| (i, *r));
        }
    }
    None
}

/// The `--config` value among the role's words, if any.
fn config_path(words: &[OsString]) -> Option<PathBuf> {
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        let text = word.to_string_lossy();
        if text == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// Whether the role's words on the command line set `arg`.
fn on_command_line(words: &[OsString], arg: &clap::Arg) -> bool {
    let Some(long) = arg.get_long() else {
        return false;
    };
    let flag = format!("--{long}");
    let with_value = format!("--{long}=");
    words.iter().any(|w| {
        let w = w.to_string_lossy();
        w == flag || w.starts_with(&with_value)
    })
}

/// Whether the environment sets `arg` (its `TOASTYFS_*` variable).
fn in_environment(arg: &clap::Arg) -> bool {
    arg.get_env()
        .is_some_and(|name| std::env::var_os(name).is_some())
}

/// The command line with a server's `--config FILE` entries added as
/// flags, for what the command line and environment leave unset. Any
/// problem in the file refuses the start, each one named.
pub fn expand(args: Vec<OsString>, root: &clap::Command) -> Result<Vec<OsString>, String> {
    let Some((at, role)) = role_position(&args) else {
        return Ok(args);
    };
    let Some(path) = config_path(&args[at + 1..]) else {
        return Ok(args);
    };
    let Some(command) = root.find_subcommand(role) else {
        return Ok(args);
    };
    let file = ConfigFile::load(&path)?;
    let table = file.role(role)?;
    let (words, mut problems) = words_of_table(command, table, |arg| {
        on_command_line(&args[at + 1..], arg) || in_environment(arg)
    });
    problems.extend(file.unknown_tables());
    if !problems.is_empty() {
        return Err(format!(
            "{} is refused:\n  {}",
            path.display(),
            problems.join("\n  ")
        ));
    }
    let mut expanded = args;
    expanded.extend(words);
    Ok(expanded)
}

#[cfg(test)]
mod tests;
