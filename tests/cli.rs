//! The `rechunk` command line end to end on the raw reference format: runs, plans, resumes, and
//! one clear error (exit != 0, source untouched) for every kind of bad input.

mod common;

use common::*;
use rechunker_core::DataType;
use std::path::Path;

fn tas(dir: &Path) -> String {
    let path = dir.join("tas.raw");
    write_raw(
        &path,
        &[
            // 64 MB: larger than the data budget of a 100 MiB process (the binary, its native
            // libraries and allocator headroom take 60-75 MiB), so plans need two stages.
            meta(
                "tas",
                &["time", "lat", "lon"],
                DataType::Float32,
                &[1600, 100, 100],
                &[1, 100, 100],
            ),
            meta("time", &["time"], DataType::Int64, &[1600], &[1600]),
        ],
    );
    path.display().to_string()
}

/// Runs `args`, expects failure with every fragment in the error, and checks the source did not
/// change.
fn fails(dir: &Path, src: &str, args: &[&str], fragments: &[&str]) {
    let before = snapshot(Path::new(src));
    let out = rechunk(args);
    let err = stderr(&out);
    assert!(!out.status.success(), "{args:?} should fail; stderr: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "one error line: {err}"
    );
    for f in fragments {
        assert!(
            err.contains(f),
            "{args:?}: error should mention `{f}`: {err}"
        );
    }
    assert_eq!(
        before,
        snapshot(Path::new(src)),
        "{args:?} modified the source"
    );
    let _ = dir;
}

#[test]
fn run_verify_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let src = tas(dir.path());
    // Both ways of moving scratch pieces (direct where the file system allows it, and cached).
    for (name, extra) in [("out.raw", None), ("cached.raw", Some("cached"))] {
        let dst = dir.path().join(name).display().to_string();
        let before = snapshot(Path::new(&src));
        let mut args = vec![
            src.as_str(),
            &dst,
            "--chunks",
            "time=-1,lat=7,lon=5",
            "--max-mem",
            "200MiB",
        ];
        args.extend(extra.iter().flat_map(|io| ["--scratch-io", io]));
        let out = rechunk(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains("stage 1/") && text.contains("done:") && text.contains("peak memory"),
            "{text}"
        );
        assert_eq!(before, snapshot(Path::new(&src)));
        let v = rechunk(&["verify", &src, &dst]);
        assert!(v.status.success(), "{}", stderr(&v));
        let i = rechunk(&["inspect", &dst, "--json"]);
        let meta: serde_json::Value = serde_json::from_slice(&i.stdout).unwrap();
        assert_eq!(meta["arrays"][0]["grid"][0]["regular"]["chunk"], 1600);
        assert_eq!(meta["arrays"][0]["grid"][1]["regular"]["chunk"], 7);
        assert_eq!(
            meta["arrays"][0]["dims"],
            serde_json::json!(["time", "lat", "lon"])
        );
        // No scratch is left behind.
        assert!(!dir.path().join(format!("{name}.rechunk-scratch")).exists());
    }
}

#[test]
fn positional_chunks_and_explicit_run_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.raw");
    write_raw(
        &path,
        &[meta(
            "v",
            &["x", "y"],
            DataType::UInt16,
            &[50, 40],
            &[50, 1],
        )],
    );
    let dst = dir.path().join("b.raw").display().to_string();
    let out = rechunk(&[
        "run",
        path.to_str().unwrap(),
        &dst,
        "--chunks",
        "1,40",
        "--max-mem",
        "200MiB",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(rechunk(&["verify", path.to_str().unwrap(), &dst])
        .status
        .success());
}

#[test]
fn verify_detects_a_difference() {
    let dir = tempfile::tempdir().unwrap();
    let src = tas(dir.path());
    let dst = dir.path().join("out.raw");
    let out = rechunk(&[
        &src,
        dst.to_str().unwrap(),
        "--chunks",
        "time=-1,lat=10,lon=10",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let chunk = dst.join("tas/0.1.1");
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&chunk, bytes).unwrap();
    let v = rechunk(&["verify", &src, dst.to_str().unwrap()]);
    assert!(!v.status.success());
    // Byte 100 of chunk (0, 1, 1) of (1600, 10, 10) is element 25: (0, 2, 5) in the chunk.
    assert!(
        stderr(&v).contains("`tas` differs at [0, 12, 15]"),
        "{}",
        stderr(&v)
    );
}

#[test]
fn plan_prints_stages_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let src = tas(dir.path());
    let dst = dir.path().join("out.raw").display().to_string();
    let plan_file = dir.path().join("plan.json");
    let out = rechunk(&[
        "plan",
        &src,
        &dst,
        "--chunks",
        "time=1600,lat=5,lon=5",
        "--max-mem",
        "100MiB",
        "-o",
        plan_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("stage 1/2") && text.contains("per task") && text.contains("estimate"),
        "{text}"
    );
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert_eq!(plan["format"], "rechunker-plan");
    assert_eq!(plan["version"], 1);
    // With -o the plan file starts a run: the target's arrays exist, but nothing that looks
    // complete; without -o nothing is touched.
    assert!(Path::new(&dst).join("tas").exists() && !Path::new(&dst).join("raw.json").exists());
    let dry = dir.path().join("dry.raw");
    let out = rechunk(&[
        "plan",
        &src,
        dry.to_str().unwrap(),
        "--chunks",
        "time=1600,lat=5,lon=5",
    ]);
    assert!(
        out.status.success() && !dry.exists(),
        "a dry plan must not create the target"
    );
}

#[test]
fn resume_after_a_failure_reruns_no_finished_task() {
    let dir = tempfile::tempdir().unwrap();
    let src = tas(dir.path());
    let dst = dir.path().join("out.raw").display().to_string();
    let args = [
        "--chunks",
        "time=-1,lat=5,lon=5",
        "--max-mem",
        "100MiB",
        "--threads",
        "1",
    ];
    let mut first = vec![src.as_str(), dst.as_str()];
    first.extend(args);
    // Stage 2 (index 1) fails at task 1: stage 1 and task 0 of stage 2 are finished (one
    // thread runs tasks in order).
    let out = rechunk_env(&first, &[("RECHUNKER_FAIL_TASK", "1:1")]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        err.contains("stage 1 task 1") && err.contains("--resume"),
        "{err}"
    );
    // Nothing that looks complete: the target cannot be opened.
    let inspect = rechunk(&["inspect", &dst]);
    assert!(!inspect.status.success());
    assert!(
        stderr(&inspect).contains("--resume"),
        "{}",
        stderr(&inspect)
    );
    // Without --resume the existing target is refused.
    let again = rechunk(&first);
    assert!(
        !again.status.success() && stderr(&again).contains("--overwrite"),
        "{}",
        stderr(&again)
    );

    let mut resumed = first.clone();
    resumed.push("--resume");
    let out = rechunk(&resumed);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let number_after = |marker: &str, end: char| -> u64 {
        let rest = text
            .split(marker)
            .nth(1)
            .unwrap_or_else(|| panic!("no `{marker}` in {text}"));
        rest.split(end).next().unwrap().trim().parse().unwrap()
    };
    let (stage1, stage2) = (
        number_after("stage 1/2: ", 't'),
        number_after("stage 2/2: ", 't'),
    );
    let (run, skipped) = (
        number_after("tasks run ", ','),
        number_after("skipped (resumed) ", ';'),
    );
    // Stages run across arrays: stage 1 of tas and of the `time` coordinate (one direct task)
    // and task 0 of stage 2 of tas were done.
    assert!(stage2 >= 3, "the test needs a few stage-2 tasks: {text}");
    assert_eq!(skipped, stage1 + 1 + 1, "{text}");
    assert_eq!(run, stage2 - 1, "{text}");
    assert!(rechunk(&["verify", &src, &dst]).status.success());
}

#[test]
fn overwrite_replaces_an_existing_target() {
    let dir = tempfile::tempdir().unwrap();
    let src = tas(dir.path());
    let dst = dir.path().join("out.raw").display().to_string();
    assert!(rechunk(&[&src, &dst, "--chunks", "time=10", "-q"])
        .status
        .success());
    fails(
        dir.path(),
        &src,
        &[&src, &dst, "--chunks", "time=20"],
        &[&dst, "exists", "--overwrite"],
    );
    let out = rechunk(&[&src, &dst, "--chunks", "time=20", "--overwrite", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The finished first run left no scratch: replacing its target has nothing to warn about.
    assert!(!stderr(&out).contains("WARN"), "{}", stderr(&out));
    let i = rechunk(&["inspect", &dst, "--json"]);
    let meta: serde_json::Value = serde_json::from_slice(&i.stdout).unwrap();
    assert_eq!(meta["arrays"][0]["grid"][0]["regular"]["chunk"], 20);
}

#[test]
fn bad_input_gives_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = tas(dir.path());
    let dst = dir.path().join("out.raw").display().to_string();
    let missing = dir.path().join("nope.raw").display().to_string();
    fails(
        dir.path(),
        &src,
        &[&missing, &dst, "--chunks", "1"],
        &[&missing, "does not exist"],
    );
    fails(
        dir.path(),
        &src,
        &[&src, &dst, "--chunks", "time=abc"],
        &["`abc`", "chunk size"],
    );
    fails(
        dir.path(),
        &src,
        &[&src, &dst, "--chunks", "60,5"],
        &["`tas`", "3 dimensions", "time=1600,lat=100,lon=100"],
    );
    fails(
        dir.path(),
        &src,
        &[&src, &dst, "--chunks", "depth=3"],
        &["`depth`", "time, lat, lon"],
    );
    fails(
        dir.path(),
        &src,
        &[&src, &dst, "--chunks", "time=1", "--max-mem", "lots"],
        &["`lots`", "size"],
    );
    // One 64 MB target chunk plus its encode buffer does not fit in 100 MiB with the process.
    fails(
        dir.path(),
        &src,
        &[
            &src,
            &dst,
            "--chunks",
            "time=-1,lat=-1,lon=-1",
            "--max-mem",
            "100MiB",
            "--threads",
            "1",
        ],
        &[
            "`tas`",
            "target chunks",
            "--max-mem",
            "or more",
            "smaller target chunks",
        ],
    );
    fails(
        dir.path(),
        &src,
        &[&src, &dst, "--chunks", "time=1", "--max-mem", "1MiB"],
        &["--max-mem", "or more"],
    );
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let scratch = not_a_dir.join("scratch").display().to_string();
    fails(
        dir.path(),
        &src,
        &[&src, &dst, "--chunks", "time=5", "--scratch", &scratch],
        &["scratch", "--scratch"],
    );
    fails(
        dir.path(),
        &src,
        &[&src, &src, "--chunks", "time=5", "--overwrite"],
        &["same"],
    );
    let unknown = dir.path().join("out.xyz").display().to_string();
    fails(
        dir.path(),
        &src,
        &[&src, &unknown, "--chunks", "time=5"],
        &["out.xyz", "--format"],
    );
    assert!(!Path::new(&dst).join("raw.json").exists());
}

#[test]
fn source_chunk_larger_than_budget_names_the_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.raw");
    // One 32 MiB source chunk; its metadata alone is enough, every chunk reads as fill.
    let m = meta(
        "big",
        &["x", "y"],
        DataType::Float64,
        &[2048, 4096],
        &[1024, 4096],
    );
    let target = rechunker_raw::RawTarget::create(&path).unwrap();
    target.array(&m).unwrap();
    rechunker_core::DatasetTarget::finalize(
        &target,
        &rechunker_core::DatasetMeta {
            arrays: vec![m],
            attrs: Default::default(),
        },
    )
    .unwrap();
    let src = path.display().to_string();
    let dst = dir.path().join("o.raw").display().to_string();
    fails(
        dir.path(),
        &src,
        &[&src, &dst, "--chunks", "x=2048,y=64", "--max-mem", "110MiB"],
        &["`big`", "source chunks [1024, 4096]", "or more"],
    );
}

#[test]
fn empty_dimensions_and_scalars_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.raw");
    write_raw(
        &path,
        &[
            meta("empty", &["t", "x"], DataType::Int32, &[0, 10], &[1, 10]),
            meta("scalar", &[], DataType::Float64, &[], &[]),
            meta("x", &["x"], DataType::Int8, &[10], &[3]),
        ],
    );
    let src = path.display().to_string();
    let dst = dir.path().join("odd-out.raw").display().to_string();
    let out = rechunk(&[&src, &dst, "--chunks", "x=5", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = rechunk(&["verify", &src, &dst]);
    assert!(v.status.success(), "{}", stderr(&v));
    let i = rechunk(&["inspect", &dst]);
    assert!(stdout(&i).contains("scalar float64 ()"), "{}", stdout(&i));
}

#[test]
fn zero_threads_huge_sizes_and_damaged_plan_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = tas(dir.path());
    let dst = dir.path().join("out.raw").display().to_string();
    let chunks = "time=1600,lat=5,lon=5";
    for threads in ["--threads", "-j"] {
        fails(
            dir.path(),
            &src,
            &[&src, &dst, "--chunks", chunks, threads, "0"],
            &["--threads", "0 threads would run no task"],
        );
    }
    fails(
        dir.path(),
        &src,
        &["plan", &src, &dst, "--chunks", chunks, "--threads", "0"],
        &["0 threads"],
    );
    fails(
        dir.path(),
        &src,
        &["in-place", &src, "--chunks", "1", "--threads", "0"],
        &["0 threads"],
    );
    fails(
        dir.path(),
        &src,
        &[&src, &dst, "--chunks", chunks, "--max-mem", "100000000TiB"],
        &["--max-mem", "100000000TiB", "more than 16 EiB"],
    );

    // A plan file whose block extent is 0 panicked (divide by zero) in run, status and
    // finalize; now each refuses it, naming the file, the array and the fault.
    let plan_file = dir.path().join("plan.json");
    let plan = plan_file.to_str().unwrap();
    let out = rechunk(&[
        "plan",
        &src,
        &dst,
        "--chunks",
        chunks,
        "--max-mem",
        "100MiB",
        "-o",
        plan,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let good = std::fs::read_to_string(&plan_file).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&good).unwrap();
    let tas = json["arrays"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["target"]["name"] == "tas")
        .unwrap();
    json["arrays"][tas]["plan"]["stages"][0]["blocks"][0]["regular"]["chunk"] = 0.into();
    std::fs::write(&plan_file, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    for args in [
        vec!["run", "--plan", plan, "--stage", "0"],
        vec!["status", "--plan", plan],
        vec!["finalize", "--plan", plan],
    ] {
        let out = rechunk(&args);
        assert_ne!(
            out.status.code(),
            Some(101),
            "{args:?} panicked: {}",
            stderr(&out)
        );
        fails(
            dir.path(),
            &src,
            &args,
            &[plan, "`tas`", "length 0", "rechunk plan ... -o FILE"],
        );
    }
    // An empty stage list was reported done without writing the array.
    json["arrays"][tas]["plan"]["stages"] = serde_json::json!([]);
    std::fs::write(&plan_file, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    fails(
        dir.path(),
        &src,
        &["status", "--plan", plan],
        &[plan, "`tas`", "no stages"],
    );

    // A sound plan file for data that has changed since: refused against the source.
    std::fs::write(&plan_file, &good).unwrap();
    std::fs::remove_dir_all(&src).unwrap();
    write_raw(
        Path::new(&src),
        &[
            meta(
                "tas",
                &["time", "lat", "lon"],
                DataType::Float32,
                &[1600, 100, 100],
                &[2, 100, 100],
            ),
            meta("time", &["time"], DataType::Int64, &[1600], &[1600]),
        ],
    );
    fails(
        dir.path(),
        &src,
        &["run", "--plan", plan, "--stage", "0"],
        &[plan, "does not fit its source", "`tas`", "[2, 100, 100]"],
    );
}
