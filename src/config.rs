//! Where the CLI finds the cluster: `--meta`, else `TOASTYFS_META`, else
//! the config file `toastyfs dev` writes (`$XDG_CONFIG_HOME/toastyfs/config`
//! or `~/.config/toastyfs/config`), a `name = value` text file: `meta`,
//! `secret_file`, `key` (a client key) and `tls_ca`.

use std::path::PathBuf;

/// The config file's path.
pub fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("toastyfs").join("config"))
}

/// The value of `key` in the config file, if the file names it.
fn value_in_file(key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path()?).ok()?;
    text.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == key).then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Metadata addresses from the config file, if it names any.
pub fn meta_from_file() -> Option<Vec<String>> {
    value_in_file("meta").map(|list| split(&list))
}

/// The cluster secret file the config file names, if any.
fn secret_file_from_file() -> Option<PathBuf> {
    value_in_file("secret_file")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Writes the config file naming `meta`, the cluster's secret file and,
/// for a cluster serving TLS, its CA.
pub fn write_meta(
    meta: &[String],
    secret_file: &std::path::Path,
    tls_ca: Option<&std::path::Path>,
) -> std::io::Result<PathBuf> {
    let path =
        path().ok_or_else(|| std::io::Error::other("neither XDG_CONFIG_HOME nor HOME is set"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &path,
        format!(
            "# written by `toastyfs dev`\nmeta = \"{}\"\nsecret_file = \"{}\"\n{}",
            meta.join(","),
            secret_file.display(),
            tls_ca.map_or(String::new(), |ca| format!(
                "tls_ca = \"{}\"\n",
                ca.display()
            ))
        ),
    )?;
    Ok(path)
}

/// `--meta` given before the command (`toastyfs --meta A ls`), and
/// whether the command's own value came only from `TOASTYFS_META`.
static GIVEN_BEFORE_COMMAND: std::sync::OnceLock<(Vec<String>, bool)> = std::sync::OnceLock::new();

pub fn set_given_before_command(meta: Vec<String>, command_value_from_env: bool) {
    let _ = GIVEN_BEFORE_COMMAND.set((meta, command_value_from_env));
}

/// The addresses to use, the first that names any (an empty
/// `TOASTYFS_META=` names none): a `--meta` flag (before or after the
/// command; after wins), `TOASTYFS_META`, the config file.
pub fn resolve(given: &[String]) -> Option<Vec<String>> {
    named_explicitly(given).or_else(|| meta_from_file().filter(|file| !file.is_empty()))
}

/// The addresses a `--meta` flag or `TOASTYFS_META` names, if any.
fn named_explicitly(given: &[String]) -> Option<Vec<String>> {
    let (before, given_from_env) = GIVEN_BEFORE_COMMAND
        .get()
        .map(|(b, env)| (b.as_slice(), *env))
        .unwrap_or((&[], false));
    let order = if given_from_env {
        [before, given]
    } else {
        [given, before]
    };
    order.into_iter().map(named).find(|addrs| !addrs.is_empty())
}

/// The secret file the config file names, when the addresses come from
/// it too: the two describe one cluster (the one `toastyfs dev` ran), so
/// a cluster named with `--meta` never gets a stale dev cluster's secret.
pub fn secret_file_for(given: &[String]) -> Option<PathBuf> {
    if named_explicitly(given).is_some() {
        None
    } else {
        secret_file_from_file()
    }
}

/// The config file's `name` (a client key, a CA file), under the same
/// rule as [`secret_file_for`].
pub fn value_for(name: &str, given: &[String]) -> Option<String> {
    if named_explicitly(given).is_some() {
        None
    } else {
        value_in_file(name).filter(|v| !v.is_empty())
    }
}

fn named(given: &[String]) -> Vec<String> {
    given
        .iter()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_addresses_name_no_cluster() {
        let given = vec!["".to_owned(), " a:1 ".to_owned()];
        assert_eq!(resolve(&given), Some(vec!["a:1".to_owned()]));
        assert_eq!(split(" , b:2,"), vec!["b:2".to_owned()]);
    }
}
