//! `rechunk in-place` through the library workflow (`rechunker::in_place`) on TileDB, the
//! format whose driver supplies the copy and the exchange: results, refusals, and crash
//! safety. The fault tests run the job in a child process (this test binary, re-run on the
//! ignored `child_entry` alone) that aborts itself after step k (RECHUNKER_IN_PLACE_ABORT=k)
//! for every k, and check that the array is readable with the same values after every kill and
//! that a rerun finishes the job. They need the `fault-injection` feature and fail without it.

mod common;

#[path = "common/python.rs"]
mod python;

use rechunker::in_place::{InPlace, InPlaceReport, Paths, ABORT_ENV, LAST_STEP};
use rechunker::{memory, NoProgress};
use rechunker_core::{DatasetSource, Region};
use rechunker_tiledb::{fragment_count, TileDbSource};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const CHILD_URI: &str = "RECHUNKER_TEST_IN_PLACE_URI";
const CHILD_CHUNKS: &str = "RECHUNKER_TEST_IN_PLACE_CHUNKS";
const CHILD_BUFFERS: &str = "RECHUNKER_TEST_IN_PLACE_BUFFERS";

/// A fresh copy of `fixtures/tiledb/NAME` in a temporary folder.
fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    common::copy_dir(
        Path::new(&common::fixture(&format!("tiledb/{name}"))),
        &path,
    );
    (dir, path)
}

/// The job on `location`, with `buffers` bytes for task buffers beyond what the process
/// needs for itself (its reserve, measured as a run measures it).
fn job(location: &Path, chunks: &str, buffers: u64) -> InPlace {
    InPlace::new(location.to_str().unwrap(), chunks.parse().unwrap())
        .threads(2)
        .max_mem(memory::reserve(2) + buffers)
}

fn in_place(location: &Path, chunks: &str) -> anyhow::Result<InPlaceReport> {
    Ok(job(location, chunks, 448 << 20)
        .run(Arc::new(NoProgress))?
        .report)
}

/// The whole error chain, as the CLI prints it.
fn error(location: &Path, chunks: &str) -> String {
    format!("{:#}", in_place(location, chunks).unwrap_err())
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

fn listing(p: &Path) -> Vec<(PathBuf, u64)> {
    let mut v = walk(p);
    v.sort();
    v
}

#[test]
fn multi_attribute_array_in_place() {
    let (_dir, path) = fixture_copy("multi.tdb");
    let uri = path.to_str().unwrap();
    let before = TileDbSource::open(uri).unwrap().meta().clone();
    let data = snapshot(&path);
    let report = in_place(&path, "time=20,y=12").unwrap();
    assert!(!report.unchanged && report.resumed_from.is_none());
    // Slot views pad smaller attributes to the largest one: at least the data was compared.
    assert!(report.verified_bytes >= data.iter().map(|(_, _, d)| d.len() as u64).sum::<u64>());
    assert!(
        report.tasks_run >= 1 && report.tasks_skipped == 0,
        "{report:?}"
    );
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
    job(&path, "lat=6,lon=2", 448 << 20)
        .codec("gzip:2".to_string())
        .run(Arc::new(NoProgress))
        .unwrap();
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
    let (dir, path) = fixture_copy("multi.tdb");
    let before = listing(dir.path());
    let report = in_place(&path, "time=8,y=5").unwrap();
    assert!(report.unchanged);
    for (spec, needle) in [("depth=3", "`depth`"), ("1,2,3", "3 sizes")] {
        let e = error(&path, spec);
        assert!(e.contains(needle), "{spec}: {e}");
    }
    // A codec the format does not know is refused by its driver.
    let e = format!(
        "{:#}",
        job(&path, "time=20", 448 << 20)
            .codec("bogus".to_string())
            .run(Arc::new(NoProgress))
            .unwrap_err()
    );
    assert!(e.contains("bogus"), "{e}");
    // Tiles the domain's type cannot hold once rounded up (uint8 [0, 249] in tiles of 100).
    let (dir8, path8) = fixture_copy("uint8_dim.tdb");
    let before8 = listing(dir8.path());
    let e = error(&path8, "x=100");
    assert!(
        e.contains("tiles of 100 along `x` do not fit its uint8 domain [0, 249]"),
        "{e}"
    );
    assert_eq!(listing(dir8.path()), before8);
    in_place(&path8, "x=125").unwrap();
    let e = error(Path::new(&common::fixture("tiledb/sparse.tdb")), "i=5");
    assert!(e.contains("sparse array"), "{e}");
    let e = error(&dir.path().join("nope.tdb"), "x=1");
    assert!(e.contains("nope.tdb does not exist"), "{e}");
    assert_eq!(listing(dir.path()), before, "nothing may change");
}

/// The workflow is the library's, the capability the driver's: a format that cannot
/// exchange datasets refuses, naming itself, before anything is written.
#[test]
fn formats_without_in_place_support_are_refused_by_their_driver() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.raw");
    common::write_raw(
        &src,
        &[common::meta(
            "tas",
            &["time", "lat"],
            rechunker_core::DataType::Float32,
            &[20, 10],
            &[1, 10],
        )],
    );
    let before = listing(dir.path());
    let e = error(&src, "time=20");
    assert!(
        e.contains("is a raw dataset, which cannot be rechunked in place")
            && e.contains("rechunk it into a new dataset instead"),
        "{e}"
    );
    assert_eq!(listing(dir.path()), before);
    let e = format!(
        "{:#}",
        InPlace::new("s3://bucket/a.tdb", "x=1".parse().unwrap())
            .run(Arc::new(NoProgress))
            .unwrap_err()
    );
    assert!(e.contains("needs a local path"), "{e}");
}

/// The child process of the fault tests, not a test: runs the job the environment names.
/// Ignored, so that a normal run does not count it; [`child_command`] runs it alone with
/// `--ignored`.
#[test]
#[ignore = "the child process of the fault tests in this file, which run it with --ignored"]
fn child_entry() {
    let (Ok(uri), Ok(chunks)) = (std::env::var(CHILD_URI), std::env::var(CHILD_CHUNKS)) else {
        panic!(
            "child_entry is the child process of this file's fault tests, not a test: they run it \
             with {CHILD_URI} and {CHILD_CHUNKS} set"
        );
    };
    // A small budget gives the copy of a large enough array several tasks, so that killing it
    // mid-copy leaves some done and some not.
    let buffers = std::env::var(CHILD_BUFFERS).map_or(48 << 20, |m| m.parse().unwrap());
    match job(Path::new(&uri), &chunks, buffers).run(Arc::new(NoProgress)) {
        Ok(done) => eprintln!("child report: {:?}", done.report),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Runs the job in a child process with `abort` set; returns whether it finished.
fn run_child(uri: &str, chunks: &str, abort: Option<&str>) -> bool {
    run_child_with(uri, chunks, abort, 48 << 20).0
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

/// Like [`run_child`] with a budget for task buffers; also returns the child's stderr.
fn run_child_with(uri: &str, chunks: &str, abort: Option<&str>, buffers: u64) -> (bool, String) {
    let mut cmd = child_command(uri, chunks);
    cmd.env(CHILD_BUFFERS, buffers.to_string())
        // The child finds libtiledb through its rpath, as a binary run outside cargo does.
        .env_remove("LD_LIBRARY_PATH");
    if let Some(a) = abort {
        common::require_fault_injection();
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
    // 64 MiB in tiles of one time step; the copy into (64, 128, 128) tiles within 80 MiB of
    // buffers runs in several tasks, of which the first is done when the child dies.
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
    let data: Vec<u8> = (0..meta.shape().iter().product::<u64>())
        .flat_map(|i| ((i % 100_003) as f32 * 0.5).to_ne_bytes())
        .collect();
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
    let (finished, stderr) = run_child_with(uri, chunks, Some("task:1"), 80 << 20);
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
    let (finished, stderr) = run_child_with(uri, chunks, None, 80 << 20);
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

/// A rerun of the job after `abort`, in a child process with no abort: (finished, stderr).
fn rerun(uri: &str, chunks: &str) -> (bool, String) {
    let out = child_command(uri, chunks)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cleaning_never_deletes_a_folder_put_where_the_old_dataset_was() {
    let (dir, path) = fixture_copy("from_numpy.tdb");
    let uri = path.to_str().unwrap();
    // Stop once the journal says `cleaning`: `A.rechunk-new` holds the original.
    assert!(!run_child(uri, "7,1", Some("6")));
    let paths = Paths::new(uri);
    // Someone moves the original away and puts a folder of their own in its place.
    std::fs::rename(&paths.new, dir.path().join("moved-original")).unwrap();
    std::fs::create_dir(&paths.new).unwrap();
    std::fs::write(paths.new.join("precious.txt"), b"not rechunk's").unwrap();
    let (finished, stderr) = rerun(uri, "7,1");
    assert!(!finished, "the rerun must refuse: {stderr}");
    assert!(
        stderr.contains("is not the original dataset the journal"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(paths.new.join("precious.txt")).unwrap(),
        b"not rechunk's"
    );
    assert!(
        paths.journal.exists(),
        "the journal stays for the user to inspect"
    );
    assert_eq!(
        snapshot(&path)[0].1,
        [7, 1],
        "A holds the rechunked dataset"
    );
}

#[test]
fn cleaning_leaves_a_scratch_folder_it_did_not_write() {
    for replacement in ["folder", "link"] {
        let (dir, path) = fixture_copy("from_numpy.tdb");
        let uri = path.to_str().unwrap();
        // Stop once the old dataset is deleted, before the scratch folder's cleanup (the copy
        // released its scratch when it finished).
        assert!(!run_child(uri, "7,1", Some("8")));
        let paths = Paths::new(uri);
        assert!(paths.journal.exists() && !paths.scratch.exists());
        // Someone puts a folder of their own there, or a link to one, holding files named as
        // rechunk names its own.
        let theirs = dir.path().join("theirs");
        std::fs::create_dir_all(theirs.join("arrays/0")).unwrap();
        std::fs::write(theirs.join("plan.json"), b"{}").unwrap();
        std::fs::write(theirs.join("arrays/0/piece"), b"data").unwrap();
        if replacement == "folder" {
            std::fs::rename(&theirs, &paths.scratch).unwrap();
        } else {
            std::os::unix::fs::symlink(&theirs, &paths.scratch).unwrap();
        }
        let (finished, stderr) = rerun(uri, "7,1");
        assert!(finished, "{replacement}: {stderr}");
        let kept = if replacement == "folder" {
            paths.scratch.clone()
        } else {
            assert!(paths.scratch.symlink_metadata().is_ok(), "the link stays");
            theirs
        };
        assert_eq!(std::fs::read(kept.join("plan.json")).unwrap(), b"{}");
        assert_eq!(std::fs::read(kept.join("arrays/0/piece")).unwrap(), b"data");
        assert!(!paths.journal.exists() && !paths.new.exists());
        assert_eq!(snapshot(&path)[0].1, [7, 1]);
    }
}

#[test]
fn a_copy_that_differs_is_never_swapped_in() {
    let (_dir, path) = fixture_copy("from_numpy.tdb");
    let uri = path.to_str().unwrap();
    let original = snapshot(&path);
    // Stop once the copy is complete, then damage one value of the copy.
    assert!(!run_child(uri, "7,1", Some("3")));
    let copy = Paths::new(uri).new;
    let out = Command::new(python::python())
        .args([
            "-c",
            "import sys, numpy as np, tiledb\nwith tiledb.open(sys.argv[1], 'w') as A:\n    A[0:1, 0:1] = np.array([[12345]], dtype=np.int32)",
            copy.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tiledb-py could not damage the copy: {}",
        String::from_utf8_lossy(&out.stderr)
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
    let report = in_place(&link, "time=20,y=12").unwrap();
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
    let again = in_place(&link, "time=20,y=12").unwrap();
    assert!(again.unchanged);
}

const SUMMARY: &str = r#"
import hashlib, json, sys
import tiledb

def summary(uri):
    with tiledb.open(uri) as A:
        s = A.schema
        data = A.multi_index[tuple(slice(*d.domain) for d in s.domain)]
        return {
            "tiles": [int(d.tile) for d in s.domain],
            "domain": [[int(v) for v in d.domain] for d in s.domain],
            "dtypes": [str(d.dtype) for d in s.domain],
            "attrs": {a.name: [str(a.dtype), [type(f).__name__ for f in a.filters], str(a.fill),
                               hashlib.sha256(data[a.name].tobytes()).hexdigest()] for a in s},
            "meta": {k: str(A.meta[k]) for k in A.meta.keys()},
            "order": [s.cell_order, s.tile_order],
        }

uri = sys.argv[1]
if tiledb.object_type(uri) == "group":
    g = tiledb.Group(uri)
    out = {"group_meta": {k: str(g.meta[k]) for k in g.meta.keys()}, "members": {m.name: summary(m.uri) for m in g}}
else:
    out = summary(uri)
print(json.dumps(out))
"#;

/// tiledb-py reads arrays rechunked in place as it read them before, tiles aside.
#[test]
fn tiledb_py_reads_arrays_rechunked_in_place() {
    use serde_json::{json, Value};
    let python = python::python();
    for (fixture, chunks, tiles) in [
        ("multi.tdb", "time=40,y=3", json!([40, 3])),
        ("from_numpy.tdb", "1,9", json!([1, 9])),
        ("int32_dims.tdb", "row=20,col=11", json!([20, 11])),
    ] {
        let (_dir, path) = fixture_copy(fixture);
        let uri = path.to_str().unwrap();
        let summarize = || -> Value {
            let out = Command::new(&python)
                .args(["-c", SUMMARY, uri])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "tiledb-py cannot read {uri}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        };
        let mut before = summarize();
        in_place(&path, chunks).unwrap();
        let mut after = summarize();
        assert_eq!(after["tiles"], tiles, "{fixture}");
        // Everything else as tiledb-py saw it before: values, types, domains, filters, fill
        // values, metadata, orders.
        before["tiles"] = Value::Null;
        after["tiles"] = Value::Null;
        assert_eq!(before, after, "{fixture}");
    }
}
