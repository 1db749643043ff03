//! Configuration files: what the file fills in, what beats it, and what it refuses.

use std::ffi::OsString;

use clap::FromArgMatches;

use super::*;
use crate::{Cli, Commands};

fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("toastyfs.toml");
    std::fs::write(&path, text).expect("write the file");
    (dir, path)
}

fn argv(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

fn parsed(args: Vec<OsString>) -> Cli {
    let matches = crate::command()
        .try_get_matches_from(args)
        .expect("the expanded command line parses");
    Cli::from_arg_matches(&matches).expect("into arguments")
}

const META: &str = r#"
[meta]
id = 2
data_dir = "/srv/meta"
listen = "127.0.0.1:7001"
heartbeat_ms = 50
"#;

#[test]
fn the_file_fills_what_the_command_line_leaves_unset() {
    let (_dir, path) = file(META);
    let path = path.display().to_string();
    let args = argv(&["toastyfs", "meta", "--config", &path, "--heartbeat-ms=70"]);
    let expanded = expand(args, &crate::command()).expect("the file is fine");
    let Commands::Meta(meta) = parsed(expanded).command else {
        panic!("not the meta command");
    };
    assert_eq!(meta.id, 2);
    assert_eq!(meta.server.data_dir, PathBuf::from("/srv/meta"));
    assert_eq!(meta.server.listen.to_string(), "127.0.0.1:7001");
    // The flag beats the file; the default stands where neither says.
    assert_eq!(meta.heartbeat_ms, 70);
    assert_eq!(meta.election_min_ms, 300);
}

#[test]
fn the_meta_flag_before_the_command_does_not_hide_it() {
    let (_dir, path) = file(META);
    let config = format!("--config={}", path.display());
    let args = argv(&["toastyfs", "--meta", "x:1", "meta", &config]);
    let expanded = expand(args, &crate::command()).expect("the file is fine");
    assert!(expanded.iter().any(|w| w == "--id=2"), "{expanded:?}");
}

#[test]
fn what_the_environment_sets_is_not_taken_from_the_file() {
    let root = crate::command();
    let command = root.find_subcommand("meta").expect("meta");
    let table = ConfigFile {
        path: "f".into(),
        tables: META.parse().expect("toml"),
    };
    let table = table.role("meta").expect("[meta]");
    let (words, problems) =
        words_of_table(command, table, |arg| arg.get_long() == Some("data-dir"));
    assert!(problems.is_empty(), "{problems:?}");
    assert!(!words
        .iter()
        .any(|w| w.to_string_lossy().starts_with("--data-dir")));
    assert!(words.iter().any(|w| w == "--id=2"));
    // `in_environment` looks at the option's own variable.
    let arg = clap::Arg::new("probe")
        .long("probe")
        .env("TOASTYFS_CONFIG_FILE_TEST_PROBE");
    assert!(!in_environment(&arg));
}

fn problems_of(role: &str, text: &str) -> Vec<String> {
    let root = crate::command();
    let command = root.find_subcommand(role).expect("role");
    let tables: toml::Table = text.parse().expect("toml");
    let table = tables[role].as_table().expect("table").clone();
    words_of_table(command, &table, |_| false).1
}

#[test]
fn an_unknown_key_is_refused_with_the_closest_valid_one() {
    let problems = problems_of("meta", "[meta]\ndata_dri = \"/x\"\n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("unknown key `data_dri`"),
        "{problems:?}"
    );
    assert!(
        problems[0].contains("did you mean `data_dir`?"),
        "{problems:?}"
    );
}

#[test]
fn an_unknown_table_is_refused_with_the_closest_role() {
    let (_dir, path) = file("[metta]\nid = 1\n");
    let config = ConfigFile::load(&path).expect("valid TOML");
    let unknown = config.unknown_tables();
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0].contains("did you mean `meta`?"), "{unknown:?}");
    let missing = config.role("meta").expect_err("no [meta]");
    assert!(missing.contains("has no [meta] table"), "{missing}");
}

#[test]
fn a_value_its_option_refuses_names_the_key_and_why() {
    let problems = problems_of("meta", "[meta]\nlisten = \"localhost\"\nid = \"one\"\n");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems
        .iter()
        .any(|p| p.contains("`listen = \"localhost\"`") && p.contains("invalid socket address")));
    assert!(problems.iter().any(|p| p.contains("`id = \"one\"`")));
}

#[test]
fn switches_take_booleans_and_lists_take_arrays() {
    let problems = problems_of("gateway", "[gateway]\nrequire_keys = \"yes\"\n");
    assert!(
        problems[0].contains("is a switch: true or false"),
        "{problems:?}"
    );
    let problems = problems_of("meta", "[meta]\nlisten = [\"a:1\"]\n");
    assert!(
        problems[0].contains("takes one value, not a list"),
        "{problems:?}"
    );

    let root = crate::command();
    let chunk = root.find_subcommand("chunk").expect("chunk");
    let (_, arg) = settable(chunk)
        .into_iter()
        .find(|(k, _)| k == "meta")
        .expect("chunk has meta");
    let list: toml::Value = toml::Value::Array(vec!["a:1".into(), "b:2".into()]);
    let words = words_for(arg, "meta", &list).expect("a list");
    assert_eq!(words, argv(&["--meta=a:1,b:2"]));
    let gateway = root.find_subcommand("gateway").expect("gateway");
    let (_, switch) = settable(gateway)
        .into_iter()
        .find(|(k, _)| k == "require_keys")
        .expect("gateway has require_keys");
    let on = words_for(switch, "require_keys", &true.into()).expect("on");
    assert_eq!(on, argv(&["--require-keys"]));
    let off = words_for(switch, "require_keys", &false.into()).expect("off");
    assert!(off.is_empty());
}

#[test]
fn a_file_with_a_problem_refuses_the_start() {
    let (_dir, path) = file(
        "[chunk]\ndata_dir = \"/x\"\nlisten = \"127.0.0.1:1\"\nmeta = \"a:1\"\nreport_every = 5\n",
    );
    let path = path.display().to_string();
    let refused = expand(
        argv(&["toastyfs", "chunk", "--config", &path]),
        &crate::command(),
    )
    .expect_err("an unknown key");
    assert!(refused.contains("unknown key `report_every`"), "{refused}");
}

#[test]
fn commands_without_a_config_pass_unchanged() {
    let args = argv(&["toastyfs", "ls", "--config", "x"]);
    assert_eq!(
        expand(args.clone(), &crate::command()).expect("unchanged"),
        args
    );
    let args = argv(&["toastyfs", "meta", "--id", "1"]);
    assert_eq!(
        expand(args.clone(), &crate::command()).expect("unchanged"),
        args
    );
}
