//! The fuzz targets' inputs as plain tests: every committed seed
//! (`fuzz/corpus/<target>/`) and every input the fuzzer once crashed on
//! (`fuzz/regressions/<target>/`) goes through the target's check, so the
//! checks compile and run in `cargo test` and a fixed crash stays fixed.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

/// The files in `fuzz/<kind>/<target>/`, sorted; none if it is absent.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn run(target: &Target, files: &[PathBuf]) {
    for file in files {
        let data = fs::read(file).unwrap_or_else(|e| panic!("reading {file:?}: {e}"));
        eprintln!("{}: {}", target.name, file.display());
        (target.check)(&data);
    }
}

/// Every target has seeds, and each seed passes its check.
#[test]
fn seed_corpora_pass_their_checks() {
    for target in TARGETS {
        let files = inputs("corpus", target.name);
        assert!(!files.is_empty(), "no seeds in fuzz/corpus/{}", target.name);
        run(target, &files);
    }
}

/// Every input a fuzzer crashed on passes its check now.
#[test]
fn fuzzer_regressions_stay_fixed() {
    for target in TARGETS {
        run(target, &inputs("regressions", target.name));
    }
}

/// The sealing helper makes envelopes the decoder accepts: a real
/// record's body sealed with its kind and version decodes to the record.
#[test]
fn a_sealed_body_decodes() {
    let query = Query::Settings;
    let bytes = record::encode(&query).unwrap_or_default();
    let body = &bytes[HEADER_BYTES..];
    let sealed = seal(Query::KIND, Query::VERSION, body);
    assert_eq!(sealed, bytes);
    assert_eq!(record::decode::<Query>(&sealed), Ok(query));
    for selector in 0..RECORD_TYPES {
        decode_as(selector, &sealed);
    }
}
