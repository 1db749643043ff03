//! `config check` and `config example`: every problem named, every example and shipped file passing.

use super::*;

fn config(text: &str) -> ConfigFile {
    ConfigFile {
        path: "test.toml".into(),
        tables: text.parse().expect("toml"),
    }
}

/// Every role's example passes the check but for the secret file, which
/// names a path on a production host.
#[test]
fn every_example_passes_the_check_but_for_its_secret() {
    for role in ROLES {
        let text = example(role);
        let findings = check_file(&config(&text));
        assert!(
            findings
                .problems
                .iter()
                .all(|p| p.contains("`secret_file`") && p.contains("/etc/toastyfs/cluster.secret")),
            "{role}: {:?}\n{text}",
            findings.problems
        );
        assert_eq!(
            findings.problems.len(),
            1,
            "{role}: {:?}",
            findings.problems
        );
    }
}

/// The example lists every option the role takes, with its help.
#[test]
fn an_example_names_every_option() {
    let root = crate::command();
    for role in ROLES {
        let text = example(role);
        let command = root.find_subcommand(role).expect("role");
        for (key, _) in config_file::settable(command) {
            assert!(
                text.lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))),
                "{role} example lacks {key}:\n{text}"
            );
        }
    }
    assert!(example("meta").contains("# heartbeat_ms = 100"));
}

#[test]
fn a_node_others_cannot_dial_is_refused() {
    let any: SocketAddr = "0.0.0.0:7001".parse().expect("addr");
    let problem = dialable(any, None).expect_err("0.0.0.0 without advertise");
    assert!(problem.contains("set `advertise`"), "{problem}");
    assert!(dialable(any, Some("10.0.0.1:7001")).is_ok());
    assert!(dialable(any, Some("0.0.0.0:7001")).is_err());
    assert!(dialable("127.0.0.1:1".parse().expect("addr"), None).is_ok());
    assert!(host_port("meta1.internal:7001").is_ok());
    assert!(host_port("[::1]:7001").is_ok());
    assert!(host_port("meta1.internal").is_err());
    assert!(host_port(":7001").is_err());
    assert!(host_port("h:0").is_err());
    assert!(host_port("h:70000").is_err());
}

#[test]
fn a_meta_table_with_several_problems_names_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").expect("a file");
    let text = format!(
        "[meta]\nid = 0\ndata_dir = {:?}\nlisten = \"0.0.0.0:7001\"\nelection_min_ms = 700\n",
        not_a_dir.display().to_string()
    );
    let findings = check_file(&config(&text));
    let all = findings.problems.join("\n");
    assert!(all.contains("`id` must be a positive integer"), "{all}");
    assert!(all.contains("is not a directory"), "{all}");
    assert!(all.contains("set `advertise`"), "{all}");
    assert!(all.contains("must be below `election_max_ms`"), "{all}");
    assert!(findings
        .warnings
        .iter()
        .any(|w| w.contains("no `secret_file`")));
}

#[test]
fn a_missing_required_option_is_named() {
    let findings = check_file(&config("[chunk]\nlisten = \"127.0.0.1:7011\"\n"));
    let all = findings.problems.join("\n");
    assert!(
        all.contains("[chunk]") && all.contains("--data-dir"),
        "{all}"
    );
}

#[test]
fn a_world_readable_secret_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("cluster.secret");
    toastyfs_client::secret::create(&secret).expect("a secret");
    let text = format!(
        "[chunk]\ndata_dir = {:?}\nlisten = \"127.0.0.1:7011\"\nmeta = [\"127.0.0.1:7001\"]\nsecret_file = {:?}\n",
        dir.path().join("chunks").display().to_string(),
        secret.display().to_string()
    );
    assert!(check_file(&config(&text)).problems.is_empty());
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let findings = check_file(&config(&text));
    assert_eq!(findings.problems.len(), 1, "{:?}", findings.problems);
    assert!(findings.problems[0].contains("`secret_file`"));
}

/// The files `deploy/` ships pass the check but for the secret file,
/// which names a path on a production host.
#[test]
fn the_shipped_files_pass_the_check_but_for_their_secret() {
    for name in ["toastyfs.toml", "gateway.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(name);
        let file = ConfigFile::load(&path).expect("a shipped file parses");
        let findings = check_file(&file);
        assert!(
            findings
                .problems
                .iter()
                .all(|p| p.contains("`secret_file`")),
            "{name}: {:?}",
            findings.problems
        );
    }
}
