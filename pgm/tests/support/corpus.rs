//! Where the fuzz targets' corpora live, for the tests that replay them on stable Rust.

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
