//! Every committed fuzz input, replayed through its target in the normal suite: the seed
//! corpora (`fuzz/corpus/<target>/`) and the inputs of crashes the fuzzer found
//! (`fuzz/regressions/<target>/`, where such an input is committed once the crash is fixed).
//! The targets' bodies are `fuzz/targets.rs`, shared with the cargo-fuzz binaries, so this
//! needs neither nightly nor the fuzzer, and a debug build checks arithmetic overflow as the
//! fuzz build does.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_committed_fuzz_input_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut ran = 0;
    let mut failed = vec![];
    for (name, target) in targets::ALL {
        let mut inputs = vec![];
        for dir in ["corpus", "regressions"] {
            if let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) {
                inputs.extend(entries.flatten().map(|e| e.path()));
            }
        }
        assert!(!inputs.is_empty(), "fuzz/corpus/{name} has no seed");
        for path in inputs {
            let data = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failed.push(path.display().to_string());
            }
            ran += 1;
        }
    }
    assert!(
        failed.is_empty(),
        "fuzz inputs that fail their target:\n{}",
        failed.join("\n")
    );
    assert!(ran >= 9, "{ran}");
}
