//! Helpers shared by the end-to-end tests: datasets on disk and the `rechunk` binary.

#![allow(dead_code)]

use rechunker_core::{
    ArrayMeta, ChunkedArrayMut, DataType, DatasetMeta, DatasetTarget, Region, Scalar,
};
use rechunker_raw::RawTarget;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

pub fn meta(
    name: &str,
    dims: &[&str],
    dtype: DataType,
    shape: &[u64],
    chunks: &[u64],
) -> ArrayMeta {
    ArrayMeta {
        fill_value: Some(Scalar::Int(0)),
        ..ArrayMeta::regular(name, dims, dtype, shape, chunks)
    }
}

/// Deterministic bytes that differ at every position, so misplaced elements are caught.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes a complete raw dataset of `arrays`, each filled with `pattern` data.
pub fn write_raw(path: &Path, arrays: &[ArrayMeta]) {
    let target = RawTarget::create(path).unwrap();
    for (i, m) in arrays.iter().enumerate() {
        let a = target.array(m).unwrap();
        let full = Region::full(&m.shape());
        if full.is_empty() {
            continue;
        }
        // Write chunk by chunk, as the raw format requires whole chunks.
        let data = pattern((full.num_elements() as usize) * m.item_size(), i as u64 + 1);
        a.write_region(&full, &data).unwrap();
    }
    target
        .finalize(&DatasetMeta {
            arrays: arrays.to_vec(),
            attrs: Default::default(),
        })
        .unwrap();
}

/// Writes a raw file holding one float32 array `tas(time, lat, lon)` of random values, of
/// `shape` in `chunks`; returns its path as a string.
pub fn write_tas(path: &Path, shape: &[u64], chunks: &[u64]) -> String {
    write_raw(
        path,
        &[meta(
            "tas",
            &["time", "lat", "lon"],
            DataType::Float32,
            shape,
            chunks,
        )],
    );
    path.display().to_string()
}

pub fn rechunk(args: &[&str]) -> Output {
    rechunk_env(args, &[])
}

/// The environment variables of the test hooks `rechunk` reads only when built with the
/// `fault-injection` feature.
pub const FAULT_HOOKS: [&str; 3] = [
    "RECHUNKER_FAIL_TASK",
    "RECHUNKER_TASK_DELAY_MS",
    "RECHUNKER_IN_PLACE_ABORT",
];

/// Fails the test, saying how to run it, unless `rechunk` was built with its test hooks: a
/// build without them ignores the variables, so the fault tests would test nothing.
pub fn require_fault_injection() {
    if !cfg!(feature = "fault-injection") {
        panic!(
            "this test injects faults through {FAULT_HOOKS:?}, which `rechunk` reads only with \
             the `fault-injection` feature: run `cargo xtask test`, or `cargo test --features \
             fault-injection`"
        );
    }
}

pub fn rechunk_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    if env.iter().any(|(k, _)| FAULT_HOOKS.contains(k)) {
        require_fault_injection();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rechunk"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run rechunk")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every file under `dir` with its contents and modification time: equal before and after a
/// command means the command did not touch it.
pub fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (Vec<u8>, std::time::SystemTime)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                let modified = e.metadata().unwrap().modified().unwrap();
                out.insert(rel, (std::fs::read(&p).unwrap(), modified));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// `fixtures/<path>` of the workspace.
pub fn fixture(path: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
        .display()
        .to_string()
}

/// Runs `rechunk args`, failing the test with its stderr unless it succeeds; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = rechunk(args);
    assert!(
        out.status.success(),
        "rechunk {args:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

/// Copies a directory tree (a fixture a test may damage or rewrite).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The scratch folder rechunk made for target `dst_name` inside the place `--scratch` named
/// (`DST_NAME-TAG.rechunk-scratch`), if there is one.
pub fn scratch_folder_in(place: &Path, dst_name: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir(place)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&format!("{dst_name}-")) && n.ends_with(".rechunk-scratch")
            })
        })
}

/// Runs every stage of the plan file `plan` (written by `rechunk plan ... -o`) in order, then
/// finalizes it, failing the test on any error.
pub fn run_plan_file(plan: &str) {
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap();
    let stages = file["arrays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["plan"]["stages"].as_array().unwrap().len())
        .max()
        .unwrap_or(0);
    for stage in 0..stages {
        ok(&["run", "--plan", plan, "--stage", &stage.to_string(), "-q"]);
    }
    ok(&["finalize", "--plan", plan]);
}
