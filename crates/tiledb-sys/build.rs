//! Finds libtiledb and links it.
//!
//! Where: `$TILEDB_LIB_DIR` if set, else `<workspace>/.tools/tiledb/`, where `cargo xtask setup`
//! puts the library of the tiledb-py wheel. That file is called `libtiledb-<hash>.so.2.30` (its
//! soname), which `-ltiledb` cannot find, so a `libtiledb.so` symlink to it is made in OUT_DIR
//! and linked from there; the binary then records the soname and finds the real file through an
//! rpath to its folder.
//!
//! `cargo::rustc-link-arg` only reaches this package's own binaries and tests. Dependents get
//! the folder as `DEP_TILEDB_LIB_DIR` (this package `links = "tiledb"`) and print their own
//! rpath from it, e.g. `cargo::rustc-link-arg=-Wl,-rpath,{DEP_TILEDB_LIB_DIR}`.

use std::env;
use std::path::{Path, PathBuf};

/// The library in `dir`: `libtiledb.so` itself, or else a versioned `libtiledb*.so*` file.
fn find_library(dir: &Path) -> Option<PathBuf> {
    let exact = dir.join("libtiledb.so");
    if exact.is_file() {
        return Some(exact);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("libtiledb")
                && (name.ends_with(".so") || name.contains(".so."))
                && !name.ends_with(".partial")
                && p.is_file()
        })
        .collect();
    found.sort();
    found.pop()
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=TILEDB_LIB_DIR");
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let (dir, origin) = match env::var_os("TILEDB_LIB_DIR") {
        Some(d) if !d.is_empty() => (PathBuf::from(d), "TILEDB_LIB_DIR"),
        _ => (
            manifest.join("../../.tools/tiledb"),
            "the project's setup folder",
        ),
    };
    // A folder that does not exist yet makes cargo rerun this script on every build, so the
    // library is picked up as soon as the setup has fetched it.
    println!("cargo::rerun-if-changed={}", dir.display());
    let dir = dir.canonicalize().unwrap_or(dir);
    let Some(library) = find_library(&dir) else {
        println!(
            "cargo::error=libtiledb (TileDB 2.30) is missing: {origin} {} holds no libtiledb*.so; run `cargo xtask setup` to fetch it, or set TILEDB_LIB_DIR to a folder that holds libtiledb",
            dir.display()
        );
        return;
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let link = out.join("libtiledb.so");
    let _ = std::fs::remove_file(&link);
    if let Err(e) = std::os::unix::fs::symlink(&library, &link) {
        println!(
            "cargo::error=cannot make the link {} -> {}: {e}",
            link.display(),
            library.display()
        );
        return;
    }
    println!("cargo::rustc-link-search=native={}", out.display());
    println!("cargo::rustc-link-lib=dylib=tiledb");
    println!("cargo::rustc-link-arg=-Wl,-rpath,{}", dir.display());
    println!("cargo::metadata=lib_dir={}", dir.display());
}
