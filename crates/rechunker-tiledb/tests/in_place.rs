//! In-place rechunking: results, refusals, and crash safety. The fault tests run the job in a
//! child process (this test binary, re-run on the ignored `child_entry` alone) that aborts itself
//! after step k of the swap (RECHUNKER_IN_PLACE_ABORT=k) for every k, and check that the array is
//! readable with the same values after every kill and that a rerun finishes the job.

mod common;

use common::fixtures;
use rechunker_core::{DatasetSource, Region};
use rechunker_tiledb::in_place::{self, InPlaceOptions, Paths, ABORT_ENV, LAST_STEP};
use rechunker_tiledb::{fragment_count, TileDbError, TileDbSource};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHILD_URI: &str = "RECHUNKER_TEST_IN_PLACE_URI";
const CHILD_CHUNKS: &str = "RECHUNKER_TEST_IN_PLACE_CHUNKS";
const CHILD_MEM: &str = "RECHUNKER_TEST_IN_PLACE_MAX_MEM";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A fresh copy of a fixture in a temporary folder.
fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    copy_dir(&fixtures().join(name), &path);
    (dir, path)
}

fn options(chunks: &str) -> InPlaceOptions {
    let mut o = InPlaceOptions::new(chunks.parse().unwrap(), 512 << 20, 64 << 20);
    o.threads = 2;
    o
}

/// Every variable's bytes, and its tile shape.
fn snapshot(path: &Path) -> Vec<(String, Vec<u64>, Vec<u8>)> {
    let s = TileDbSource::open(path.to_str().unwrap()).unwrap();
    s.meta()
        .arrays
        .iter()
        .map(|m| {
            let mut out = vec![0u8; m.num_bytes() as usize];
            s.array(&m.name)
                .unwrap()
                .read(&Region::full(&m.shape()), &mut out)
                .unwrap();
            (m.name.clone(), m.grid.nominal_chunk_shape(), out)
        })
        .collect()
}

fn no_leftovers(path: &Path) {
    let p = Paths::new(path.to_str().unwrap());
    for leftover in [&p.new, &p.journal, &p.scratch] {
        assert!(!leftover.exists(), "{} is left", leftover.display());
    }
}

#[test]
fn multi_attribute_array_in_place() {
    let (_dir, path) = fixture_copy("multi.tdb");
    let uri = path.to_str().unwrap();
    let before = TileDbSource::open(uri).unwrap().meta().clone();
    let data = snapshot(&path);
    let report = in_place::run(uri, &options("time=20,y=12")).unwrap();
    assert!(!report.unchanged && report.resumed_from.is_none());
    // Slot views pad smaller attributes to the largest one: at least the data was compared.
    assert!(report.verified_bytes >= data.iter().map(|(_, _, d)| d.len() as u64).sum::<u64>());
    no_leftovers(&path);
    let after = TileDbSource::open(uri).unwrap().meta().clone();
    for (a, b) in before.arrays.iter().zip(&after.arrays) {
        assert_eq!(b.grid.nominal_chunk_shape(), [20, 12]);
        assert_eq!(
            (&a.name, &a.dims, a.dtype, &a.attrs, &a.codecs),
            (&b.name, &b.dims, b.dtype, &b.attrs, &b.codecs)
        );
        assert_eq!(format!("{:?}", a.fill_value), format!("{:?}", b.fill_value));
    }
    assert_eq!(before.attrs, after.attrs);
    let new = snapshot(&path);
    for ((n, _, a), (m, _, b)) in data.iter().zip(&new) {
        assert_eq!(n, m);
        assert!(a == b, "{n} differs");
    }
    assert!(fragment_count(uri) >= 1);
}

#[test]
fn group_in_place_with_a_new_codec() {
    let (_dir, path) = fixture_copy("group.tdb");
    let uri = path.to_str().unwrap();
    let data = snapshot(&path);
    let mut o = options("lat=6,lon=2");
    o.codec = Some("gzip:2".parse().unwrap());
    in_place::run(uri, &o).unwrap();
    no_leftovers(&path);
    let s = TileDbSource::open(uri).unwrap();
    let field = s.meta().array("field").unwrap();
    assert_eq!(field.grid.nominal_chunk_shape(), [4, 6, 2]);
    assert_eq!(field.codecs, ["gzip(level=2)"]);
    assert_eq!(s.meta().attrs.get("Conventions").unwrap().value, "CF-1.8");
    assert_eq!(field.attrs.get("long_name").unwrap().value, "a field");
    let new = snapshot(&path);
    assert_eq!(data.len(), new.len());
    for ((n, _, a), (m, _, b)) in data.iter().zip(&new) {
        assert_eq!(n, m);
        assert!(a == b, "{n} differs");
    }
}

#[test]
fn nothing_to_do_and_bad_specs_leave_the_array_alone() {
    let (_dir, path) = fixture_copy("multi.tdb");
    let uri = path.to_str().unwrap();
    let listing = |p: &Path| {
        let mut v: Vec<_> = walk(p);
        v.sort();
        v
    };
    let before = listing(path.parent().unwrap());
    let report = in_place::run(uri, &options("time=8,y=5")).unwrap();
    assert!(report.unchanged);
    for (spec, needle) in [("depth=3", "`depth`"), ("1,2,3", "3 sizes")] {
        let e = in_place::run(uri, &options(spec)).unwrap_err().to_string();
        assert!(e.contains(needle), "{spec}: {e}");
    }
    // Tiles the domain's type cannot hold once rounded up (uint8 [0, 249] in tiles of 100).
    let (_dir8, path8) = fixture_copy("uint8_dim.tdb");
    let before8 = listing(path8.parent().unwrap());
    let e = in_place::run(path8.to_str().unwrap(), &options("x=100"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tiles of 100 along `x` do not fit its uint8 domain [0, 249]"),
        "{e}"
    );
    assert_eq!(listing(path8.parent().unwrap()), before8);
    in_place::run(path8.to_str().unwrap(), &options("x=125")).unwrap();
    let e = in_place::run(
        fixtures().join("sparse.tdb").to_str().unwrap(),
        &options("i=5"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("sparse array"), "{e}");
    let e = in_place::run(
        path.parent().unwrap().join("nope.tdb").to_str().unwrap(),
        &options("x=1"),
    )
    .unwrap_err();
    assert!(
        matches!(e, TileDbError::NotTileDb { exists: false, .. }),
        "{e}"
    );
    assert_eq!(
        listing(path.parent().unwrap()),
        before,
        "nothing may change"
    );
}

fn walk(p: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push((e.path(), e.metadata().unwrap().len()));
        }
    }
    out
}

/// The child process of the fault tests, not a test: runs the job the environment names. Ignored,
/// so that a normal run does not count it; [`child_command`] runs it alone with `--ignored`.
#[test]
#[ignore = "the child process of the fault tests in this file, which run it with --ignored"]
fn child_entry() {
    let (Ok(uri), Ok(chunks)) = (std::env::var(CHILD_URI), std::env::var(CHILD_CHUNKS)) else {
        panic!(
            "child_entry is the child process of this file's fault tests, not a test: they run it \
             with {CHILD_URI} and {CHILD_CHUNKS} set"
        );
    };
    let mut o = options(&chunks);
    o.threads = 2;
    // A small budget gives the copy of a large enough array several tasks, so that killing it
    // mid-copy leaves some done and some not.
    o.max_mem = std::env::var(CHILD_MEM).map_or(64 << 20, |m| m.parse().unwrap());
    o.memory_reserve = 16 << 20;
    match in_place::run(&uri, &o) {
        Ok(report) => eprintln!("child report: {report:?}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

/// Runs the job in a child process with `abort` set; returns whether it finished.
fn run_child(uri: &str, chunks: &str, abort: Option<&str>) -> bool {
    run_child_with(uri, chunks, abort, 64 << 20).0
}

/// This test binary re-run as [`child_entry`] alone, on the job `uri` to `chunks`, with no
/// abort set.
fn child_command(uri: &str, chunks: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_entry",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_URI, uri)
    .env(CHILD_CHUNKS, chunks)
    .env_remove(ABORT_ENV);
    cmd
}

/// Like [`run_child`] with a memory budget; also returns the child's stderr.
fn run_child_with(uri: &str, chunks: &str, abort: Option<&str>, max_mem: u64) -> (bool, String) {
    let mut cmd = child_command(uri, chunks);
    cmd.env(CHILD_MEM, max_mem.to_string())
        // The child finds libtiledb through its rpath, as a binary run outside cargo does.
        .env_remove("LD_LIBRARY_PATH");
    if let Some(a) = abort {
        cmd.env(ABORT_ENV, a);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if abort.is_some() && !out.status.success() {
        assert!(
            stderr.contains("aborting after"),
            "the child failed otherwise: {stderr}"
        );
    } else {
        assert!(out.status.success(), "child failed: {stderr}");
    }
    if out.status.success() {
        // A filter that matched no test would exit 0 too, having run nothing.
        assert!(
            stderr.contains("child report:"),
            "the child did not run the job: {stderr}"
        );
    }
    (out.status.success(), stderr.into_owned())
}

/// Kills the job after each step (and after the first copy task), checks the array after each
/// kill, reruns, and checks the result.
fn kill_at_every_step(fixture: &str, chunks: &str, expected_tiles: &[Vec<u64>]) {
    let mut aborts: Vec<String> = vec!["task:1".into()];
    aborts.extend((1..=LAST_STEP).map(|k| k.to_string()));
    for abort in aborts {
        let (_dir, path) = fixture_copy(fixture);
        let uri = path.to_str().unwrap();
        let original = snapshot(&path);
        let finished = run_child(uri, chunks, Some(&abort));
        // Whatever the moment of death, the array is there, readable, with the same values,
        // and with either all the old or all the new tile extents.
        let now = snapshot(&path);
        assert_eq!(now.len(), original.len());
        let tiles: Vec<Vec<u64>> = now.iter().map(|(_, t, _)| t.clone()).collect();
        let old_tiles: Vec<Vec<u64>> = original.iter().map(|(_, t, _)| t.clone()).collect();
        assert!(
            tiles == old_tiles || tiles == expected_tiles,
            "abort {abort}: tiles {tiles:?}"
        );
        for ((n, _, a), (m, _, b)) in original.iter().zip(&now) {
            assert_eq!(n, m);
            assert!(a == b, "abort {abort}: {n} differs after the kill");
        }
        let step: u8 = abort.parse().unwrap_or(0);
        if step >= 5 {
            assert_eq!(tiles, expected_tiles, "abort {abort}: the swap happened");
        } else {
            assert_eq!(tiles, old_tiles, "abort {abort}: not swapped yet");
        }
        // The rerun completes the job.
        if !finished || step == LAST_STEP {
            assert!(run_child(uri, chunks, None), "rerun after abort {abort}");
        }
        let done = snapshot(&path);
        for ((n, t, a), ((_, _, b), e)) in done.iter().zip(original.iter().zip(expected_tiles)) {
            assert_eq!(t, e, "abort {abort}: {n} tiles");
            assert!(a == b, "abort {abort}: {n} differs after the rerun");
        }
        no_leftovers(&path);
    }
}

#[test]
fn killed_at_every_step_of_a_multi_attribute_array() {
    kill_at_every_step("multi.tdb", "time=16,y=3", &vec![vec![16, 3]; 3]);
}

#[test]
fn killed_at_every_step_of_a_group() {
    kill_at_every_step("group.tdb", "time=5,lon=3", &[vec![10], vec![5, 3, 3]]);
}

#[test]
fn killed_in_the_middle_of_the_copy() {
    use rechunker_core::{ArrayMeta, DataType, DatasetMeta, DatasetTarget};
    // 64 MiB in tiles of one time step; the copy into (64, 128, 128) tiles within 96 MiB runs
    // in two tasks, of which the first is done when the child dies.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.tdb");
    let uri = path.to_str().unwrap();
    let meta = ArrayMeta::regular(
        "v",
        &["t", "y", "x"],
        DataType::Float32,
        &[64, 512, 512],
        &[1, 512, 512],
    );
    let target = rechunker_tiledb::TileDbTarget::create(uri, Default::default()).unwrap();
    let array = target.create_array(&meta).unwrap();
    let data = common::data_for(&meta, 7);
    array
        .write_region(&Region::full(&meta.shape()), &data)
        .unwrap();
    target
        .finalize(&DatasetMeta {
            arrays: vec![meta],
            attrs: Default::default(),
        })
        .unwrap();
    let chunks = "t=64,y=128,x=128";
    let (finished, stderr) = run_child_with(uri, chunks, Some("task:1"), 96 << 20);
    assert!(
        !finished && stderr.contains("aborting after task 1"),
        "{stderr}"
    );
    let scratch = Paths::new(uri).scratch;
    assert!(
        scratch.exists(),
        "the scratch journal keeps the finished task"
    );
    let now = snapshot(&path);
    assert_eq!(now[0].1, [1, 512, 512], "the original is in place");
    assert!(now[0].2 == data);
    let (finished, stderr) = run_child_with(uri, chunks, None, 96 << 20);
    assert!(finished);
    // The other worker may have finished its task too before the abort: one or more skipped.
    assert!(
        stderr.contains("tasks_skipped: ") && !stderr.contains("tasks_skipped: 0"),
        "the rerun skips the finished task: {stderr}"
    );
    let done = snapshot(&path);
    assert_eq!(done[0].1, [64, 128, 128]);
    assert!(done[0].2 == data);
    no_leftovers(&path);
}

#[test]
fn a_copy_that_differs_is_never_swapped_in() {
    let python = common::python();
    let (_dir, path) = fixture_copy("from_numpy.tdb");
    let uri = path.to_str().unwrap();
    let original = snapshot(&path);
    // Stop once the copy is complete, then damage one value of the copy.
    assert!(!run_child(uri, "7,1", Some("3")));
    let copy = Paths::new(uri).new;
    common::run_python(
        &python,
        "import sys, numpy as np, tiledb\nwith tiledb.open(sys.argv[1], 'w') as A:\n    A[0:1, 0:1] = np.array([[12345]], dtype=np.int32)",
        &[copy.to_str().unwrap()],
    );
    let out = child_command(uri, "7,1").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("differs from the original, which is untouched")
            && stderr.contains("differs at [0, 0]"),
        "{stderr}"
    );
    let now = snapshot(&path);
    assert_eq!(now[0].1, original[0].1, "not swapped");
    assert!(now[0].2 == original[0].2);
}

#[test]
fn an_interrupted_array_creation_is_redone() {
    let (_dir, path) = fixture_copy("int32_dims.tdb");
    let uri = path.to_str().unwrap();
    let original = snapshot(&path);
    assert!(!run_child(uri, "row=5,col=11", Some("1")));
    // As if killed while TileDB was creating the copy: its folder exists, with no schema.
    let p = Paths::new(uri);
    std::fs::create_dir_all(p.new.join("__schema")).unwrap();
    assert!(run_child(uri, "row=5,col=11", None));
    let done = snapshot(&path);
    assert_eq!(done[0].1, [5, 11]);
    assert!(done[0].2 == original[0].2);
    no_leftovers(&path);
}

/// `in-place` on a symbolic link rechunks the array it points to: the link stays a link to
/// the real folder, which holds the new tiles and the same values, and nothing is deleted
/// through the link.
#[test]
fn in_place_through_a_symbolic_link_rechunks_the_real_array() {
    let (dir, path) = fixture_copy("multi.tdb");
    let data = snapshot(&path);
    let link = dir.path().join("link.tdb");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let report = in_place::run(link.to_str().unwrap(), &options("time=20,y=12")).unwrap();
    assert!(!report.unchanged);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), path);
    no_leftovers(&path);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["link.tdb", "multi.tdb"],
        "leftovers beside the array"
    );
    let new = snapshot(&path);
    for ((n, _, a), (m, shape, b)) in data.iter().zip(&new) {
        assert_eq!(n, m);
        assert_eq!(shape, &[20, 12]);
        assert!(a == b, "{n} differs");
    }
    // A rerun through the link finds nothing to do.
    let again = in_place::run(link.to_str().unwrap(), &options("time=20,y=12")).unwrap();
    assert!(again.unchanged);
}
