//! TileDB -> TileDB keeps what the user had (issue #13): with no `--codec`, a lone array comes
//! back as a lone array (a multi-attribute one with all its attributes), a group as a group,
//! with the source's dimensions (names, types, domains that need not start at 0), cell and
//! tile order, attributes, filters and their options, fill values and metadata; only the tile
//! extents change. Sources: the project's fixtures and the read-only real arrays in
//! `../shared/data/real/tiledb/` (read in place); the copies are judged by `rechunk inspect`,
//! `rechunk verify` and tiledb-py (`tests/python/tiledb_keep_check.py`).

mod common;

#[path = "common/python.rs"]
mod python;

use common::*;
use python::check;
use std::path::{Path, PathBuf};

/// The real TileDB array whose name starts with `id` (`t01`, ...), read in place.
fn real(id: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/real/tiledb");
    let found = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{id}-")))
        })
        .unwrap_or_else(|| panic!("no {id}-* in {}", dir.display()));
    found.display().to_string()
}

/// `rechunk inspect` of `path` without its first line (the location), each variable's
/// `chunks (...)` cut out and returned apart.
fn inspect_without_chunks(path: &str) -> (Vec<String>, Vec<String>) {
    let text = ok(&["inspect", path]);
    let mut lines = Vec::new();
    let mut chunks = Vec::new();
    for line in text.lines().skip(1) {
        match line.split_once(", chunks (") {
            Some((head, rest)) => {
                let (shape, tail) = rest.split_once(')').expect("chunks (...) closes");
                chunks.push(shape.to_string());
                lines.push(format!("{head}, chunks (*){tail}"));
            }
            None => lines.push(line.to_string()),
        }
    }
    (lines, chunks)
}

/// Rechunks `src` into `dst` with `--chunks chunks` and nothing else, and checks the copy:
/// `inspect` differs in chunks only (and they are `expected`), `verify` passes, tiledb-py sees
/// the same schema, values and metadata.
fn rechunk_and_check(src: &str, dst: &Path, chunks: &str, expected: &[&str]) {
    let dst_s = dst.display().to_string();
    ok(&["-q", src, &dst_s, "--chunks", chunks]);
    assert_kept(src, &dst_s, expected);
}

fn assert_kept(src: &str, dst: &str, expected: &[&str]) {
    let (src_lines, _) = inspect_without_chunks(src);
    let (dst_lines, dst_chunks) = inspect_without_chunks(dst);
    assert_eq!(
        src_lines, dst_lines,
        "`rechunk inspect` of {src} and {dst} differ in more than the chunks"
    );
    assert_eq!(dst_chunks, expected, "the chunks of {dst}");
    let verified = ok(&["verify", src, dst]);
    assert!(verified.contains("identical"), "{verified}");
    check("tiledb_keep_check.py", &[src, dst]);
}

#[test]
fn fixture_arrays_and_groups_keep_their_schema() {
    let dir = tempfile::tempdir().unwrap();
    // Three attributes with three filter pipelines, domains starting at 100 and -5.
    rechunk_and_check(
        &fixture("tiledb/multi.tdb"),
        &dir.path().join("multi.tdb"),
        "time=40,y=3",
        &["40, 3", "40, 3", "40, 3"],
    );
    // An anonymous attribute without filters (named after the array, so the copy's name
    // is the source's).
    rechunk_and_check(
        &fixture("tiledb/from_numpy.tdb"),
        &dir.path().join("from_numpy.tdb"),
        "__dim_0=2,__dim_1=9",
        &["2, 9"],
    );
    rechunk_and_check(
        &fixture("tiledb/group.tdb"),
        &dir.path().join("group.tdb"),
        "time=7,lat=2",
        &["10", "7, 2, 8"],
    );
}

#[test]
fn real_arrays_keep_their_schema() {
    let dir = tempfile::tempdir().unwrap();
    // Column-major cell and tile order, int32 dimensions, fill NaN.
    rechunk_and_check(
        &real("t01"),
        &dir.path().join("t01.tdb"),
        "rows=7,cols=100",
        &["7, 100"],
    );
    // uint64 values with fill 2^64-1, column-major.
    rechunk_and_check(
        &real("t03"),
        &dir.path().join("t03.tdb"),
        "rows=100,cols=3",
        &["100, 3"],
    );
    rechunk_and_check(
        &real("t04"),
        &dir.path().join("t04.tdb"),
        "rows=25",
        &["25"],
    );
}

#[test]
fn column_major_arrays_keep_filter_options() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("colmajor.tdb").display().to_string();
    check("tiledb_keep_check.py", &["--make", &src, "int32"]);
    rechunk_and_check(
        &src,
        &dir.path().join("copy.tdb"),
        "t=6,x=23",
        &["6, 23", "6, 23", "6, 23"],
    );
    // libtiledb refuses global-order writes along an int16 dimension spanning 0: such an
    // array is written as a source of another format would be, with the same values.
    let small = dir.path().join("int16.tdb").display().to_string();
    check("tiledb_keep_check.py", &["--make", &small, "int16"]);
    let dst = dir.path().join("int16-copy.tdb").display().to_string();
    ok(&["-q", &small, &dst, "--chunks", "t=6,x=23"]);
    ok(&["verify", &small, &dst]);
}

#[test]
fn a_selection_of_attributes_keeps_only_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("tiledb/multi.tdb");
    let dst = dir.path().join("multi.tdb").display().to_string();
    ok(&[
        "-q",
        &src,
        &dst,
        "--chunks",
        "time=40,y=3",
        "--variables",
        "temp,count",
    ]);
    let text = ok(&["inspect", &dst]);
    // Past the first line, which names the array's path: a temporary folder's random name may
    // hold any letters (`.tmpzS7qcQ` made this fail once).
    let listing = text.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert!(
        listing.contains("byteshuffle | zstd(level=5)")
            && listing.contains("bitshuffle | lz4(level=-1)")
            && !listing.contains("qc")
            && !listing.contains("flag_values"),
        "{text}"
    );
}

#[test]
fn a_codec_given_is_the_users_choice() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("zstd.tdb").display().to_string();
    ok(&[
        "-q",
        &fixture("tiledb/multi.tdb"),
        &dst,
        "--chunks",
        "time=40,y=3",
        "--codec",
        "zstd:3",
    ]);
    let text = ok(&["inspect", &dst]);
    assert_eq!(
        text.matches("codecs: zstd(level=3)").count(),
        3,
        "every attribute re-encoded:\n{text}"
    );
    ok(&["verify", &fixture("tiledb/multi.tdb"), &dst]);
}

#[test]
fn a_lone_multi_attribute_array_resumes_and_is_overwritten() {
    require_fault_injection();
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("tiledb/multi.tdb");
    let dst = dir.path().join("multi.tdb");
    let dst_s = dst.display().to_string();
    let args = [
        "-q",
        src.as_str(),
        dst_s.as_str(),
        "--chunks",
        "time=4,y=3",
        "--min-io",
        "1",
        "-j",
        "1",
    ];
    let expected = ["4, 3"; 3];
    let failed = rechunk_env(&args, &[("RECHUNKER_FAIL_TASK", "0:0")]);
    assert!(
        !failed.status.success(),
        "the injected failure did not happen"
    );
    assert!(!dst.exists(), "a failed run left {}", dst.display());
    let mut resumed = args.to_vec();
    resumed.push("--resume");
    ok(&resumed);
    assert_kept(&src, &dst_s, &expected);
    // A finished lone array is replaced with --overwrite, and so is an unfinished one.
    let mut overwrite = args.to_vec();
    overwrite.push("--overwrite");
    ok(&overwrite);
    assert_kept(&src, &dst_s, &expected);
    let failed = rechunk_env(&overwrite, &[("RECHUNKER_FAIL_TASK", "0:0")]);
    assert!(!failed.status.success());
    ok(&overwrite);
    assert_kept(&src, &dst_s, &expected);
    assert!(
        !scratch_left(&dst),
        "the staging folder of {} is left",
        dst.display()
    );

    // `plan -o`, every stage from the plan file (each its own process), finalize: the same.
    let planned = dir.path().join("planned.tdb").display().to_string();
    let plan = dir.path().join("plan.json").display().to_string();
    ok(&[
        "plan",
        &src,
        &planned,
        "--chunks",
        "time=4,y=3",
        "-o",
        &plan,
    ]);
    run_plan_file(&plan);
    assert_kept(&src, &planned, &expected);
}

/// True when the target's staging folder is still there.
fn scratch_left(dst: &Path) -> bool {
    let mut s = dst.as_os_str().to_owned();
    s.push(".rechunk-partial");
    Path::new(&s).exists()
}
