//! Files written by other software (`../shared/data/real/`, read in place, never copied): what
//! rechunk cannot carry yet is refused in one line that names the variable and the option, and
//! `--skip-unsupported` converts the rest, listing each variable it leaves out.

mod common;

use common::*;
use std::path::PathBuf;

/// A file of the shared collection of real files (see its README).
fn real(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/real")
        .join(path);
    assert!(
        p.exists(),
        "{} is missing: the real files live in ../shared/data/real beside the project",
        p.display()
    );
    p.display().to_string()
}

/// `file` is refused naming `variable` and `--skip-unsupported`; with the option it converts,
/// warning once for each of `skipped`, and the output holds the same values as the source
/// without them.
fn refused_then_skipped(file: &str, chunks: &str, variable: &str, skipped: &[&str]) {
    let src = real(file);
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.zarr").display().to_string();
    let out = rechunk(&[&src, &dst, "--chunks", chunks]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{file} should be refused");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(
        lines[0].contains(&format!("`{variable}`"))
            && lines[0].contains("--skip-unsupported")
            && lines[0].contains(file.rsplit('/').next().unwrap()),
        "{err}"
    );
    assert!(
        !std::path::Path::new(&dst).exists(),
        "a refused run wrote {dst}"
    );

    let out = rechunk(&[&src, &dst, "--chunks", chunks, "--skip-unsupported", "-q"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    for v in skipped {
        assert_eq!(
            err.lines()
                .filter(|l| l.contains("skipping") && l.contains(&format!("`{v}`")))
                .count(),
            1,
            "one line for `{v}`: {err}"
        );
    }
    let inspect = ok(&["inspect", &dst]);
    for v in skipped {
        assert!(
            !inspect.contains(&format!("  {v} ")),
            "{v} was written: {inspect}"
        );
    }
    ok(&["verify", &src, &dst, "--skip-unsupported"]);
}

#[test]
fn netcdf_char_variables_are_refused_or_skipped() {
    refused_then_skipped(
        "netcdf/nc01-netcdf-c-ref_nctest_classic.nc",
        "rec=-1",
        "charv",
        &["charv", "charvar"],
    );
}

#[test]
fn hdf5_string_datasets_are_refused_or_skipped() {
    refused_then_skipped(
        "hdf5/h13-jhdf-chunked_v4_datasets.hdf5",
        "phony_dim_2=50",
        "btree_v2/string",
        &[
            "btree_v2/string",
            "extensible_array/string",
            "filtered_btree_v2/string",
            "fixed_array/string",
        ],
    );
}
