//! Where the fuzz targets' corpora live, for the tests that replay them on stable Rust (the
//! replay tests of `pubsub` and `tools` include this file by path too).

#![allow(dead_code, reason = "each replay test uses some of these helpers")]

use std::{
    fs,
    path::{Path, PathBuf},
};

/// The workspace's `fuzz/` directory.
pub(crate) fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files directly inside `dir`, sorted; empty if `dir` does not exist.
pub(crate) fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Runs `check` on every seed of `fuzz/corpus/TARGET/`, which must hold 1 to 99 files of at
/// most 64 KiB (a small checked-in corpus); returns how many there were.
pub(crate) fn replay_seeds(target: &str, check: impl Fn(&[u8])) -> usize {
    let dir = fuzz_dir().join("corpus").join(target);
    let seeds = files(&dir);
    assert!(!seeds.is_empty(), "no seed corpus in {}", dir.display());
    assert!(seeds.len() < 100, "keep the checked-in seed corpus small");
    for path in &seeds {
        let data = fs::read(path).unwrap();
        assert!(
            data.len() <= 64 << 10,
            "{}: keep seeds small",
            path.display()
        );
        eprintln!("replaying {}", path.display());
        check(&data);
    }
    seeds.len()
}

/// Runs `check` on every crash regression saved in `fuzz/regressions/TARGET/` (if any).
pub(crate) fn replay_regressions(target: &str, check: impl Fn(&[u8])) {
    for path in files(&fuzz_dir().join("regressions").join(target)) {
        let data = fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        check(&data);
    }
}
