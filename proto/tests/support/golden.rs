//! The file side of golden fixtures, shared by every crate's format tests
//! (included by path, so `proto` itself keeps no I/O): read the `*.hex`
//! fixtures of a directory, rewrite them from the samples when
//! `TOASTYFS_BLESS=1`, and assert that every sample matches its fixture.

use std::collections::BTreeMap;
use std::path::Path;

use toastyfs_proto::record::{check_golden, Sample};

/// The fixtures in `dir` whose names start with `prefix`, name → text.
pub fn read_fixtures(dir: &Path, prefix: &str) -> BTreeMap<String, String> {
    let mut fixtures = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("fixture directory") {
        let path = entry.expect("fixture directory entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(".hex").filter(|s| s.starts_with(prefix)) {
            let text = std::fs::read_to_string(&path).expect("fixture file");
            fixtures.insert(stem.to_string(), text);
        }
    }
    fixtures
}

/// With `TOASTYFS_BLESS=1`, rewrites the fixtures from the samples (and
/// removes those without one); then checks them.
pub fn check_or_bless(dir: &Path, prefix: &str, samples: &[Sample]) {
    if std::env::var("TOASTYFS_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(dir).expect("fixture directory");
        for name in read_fixtures(dir, prefix).keys() {
            std::fs::remove_file(dir.join(format!("{name}.hex"))).expect("remove fixture");
        }
        for sample in samples {
            let text = sample.golden_text().expect("sample encodes");
            std::fs::write(dir.join(format!("{}.hex", sample.name)), text).expect("write fixture");
        }
    }
    let problems = check_golden(samples, &read_fixtures(dir, prefix));
    assert!(
        problems.is_empty(),
        "golden fixtures in {} differ (after reviewing a deliberate change, \
         rerun with TOASTYFS_BLESS=1 to rewrite them):\n{}",
        dir.display(),
        problems.join("\n")
    );
}
