//! Many processes, one plan: shards of a stage in parallel processes give the same result as one
//! process; the journal is the barrier; a killed worker, a corrupt scratch piece, a shard run
//! twice at once and a restarted S3 server lose nothing.

mod common;

#[path = "common/python.rs"]
mod python;

use common::*;
use rechunker_core::DataType;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A 64 MB float32 dataset: more than a 100 MiB process has for data, so plans have two stages.
fn source(dir: &Path) -> String {
    let path = dir.join("tas.raw");
    write_raw(
        &path,
        &[meta(
            "tas",
            &["time", "lat", "lon"],
            DataType::Float32,
            &[1600, 100, 100],
            &[1, 100, 100],
        )],
    );
    path.display().to_string()
}

const CHUNKS: [&str; 6] = [
    "--chunks",
    "time=-1,lat=5,lon=5",
    "--max-mem",
    "100MiB",
    "--threads",
    "1",
];

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// `rechunk plan SRC DST ... --scratch SCRATCH -o PLAN`.
fn plan_file(dir: &Path, src: &str, dst: &str, scratch: &str, env: &[(&str, &str)]) -> String {
    let plan = dir.join("plan.json").display().to_string();
    let mut args = vec!["plan", src, dst, "--scratch", scratch, "-o", &plan];
    args.extend(CHUNKS);
    ok(rechunk_env(&args, env), "plan -o");
    plan
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    if env.iter().any(|(k, _)| FAULT_HOOKS.contains(k)) {
        require_fault_injection();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rechunk"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn rechunk")
}

/// Runs every shard of `stage` as its own process, all at once.
fn run_shards(plan: &str, stage: usize, shards: u64, env: &[(&str, &str)]) {
    let stage = stage.to_string();
    let children: Vec<Child> = (0..shards)
        .map(|i| {
            let shard = format!("{i}/{shards}");
            spawn(
                &[
                    "run", "--plan", plan, "--stage", &stage, "--shard", &shard, "-q",
                ],
                env,
            )
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        ok(
            c.wait_with_output().unwrap(),
            &format!("stage {stage} shard {i}/{shards}"),
        );
    }
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(dir)
        .into_iter()
        .map(|(k, (bytes, _))| (k, bytes))
        .collect()
}

fn number_after(text: &str, marker: &str) -> u64 {
    let rest = text
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("no `{marker}` in {text}"));
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The journal entries of stage `stage` with their modification times.
fn journal(scratch: &Path, stage: usize) -> BTreeMap<String, std::time::SystemTime> {
    let dir = scratch.join(format!("arrays/0/journal/{stage}"));
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().unwrap().modified().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn shards_in_parallel_processes_equal_a_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let dst = dir.path().join("sharded.raw").display().to_string();
    let scratch = dir.path().join("scratch").display().to_string();
    let plan = plan_file(dir.path(), &src, &dst, &scratch, &[]);

    // The journal, not the scheduler, is the barrier.
    let early = rechunk(&["run", "--plan", &plan, "--stage", "1", "--shard", "0/2"]);
    assert!(
        !early.status.success() && stderr(&early).contains("stage 0 is not complete"),
        "{}",
        stderr(&early)
    );
    let status = ok(rechunk(&["status", "--plan", &plan]), "status");
    assert!(
        status.contains("stage 0 `tas`: 0/") && status.contains("missing tasks"),
        "{status}"
    );

    run_shards(&plan, 0, 3, &[]);
    // rechunk works in a folder of its own inside the place --scratch names.
    let work = scratch_folder_in(Path::new(&scratch), "sharded.raw")
        .expect("plan -o made the scratch folder");
    let pieces = work.join("arrays/0/pieces");
    assert!(!files(&pieces).is_empty(), "stage 0 wrote no pieces");
    run_shards(&plan, 1, 3, &[]);
    // Every piece has one reader, which deletes it once journaled.
    assert!(files(&pieces).is_empty(), "pieces outlived their reader");
    let status = ok(rechunk(&["status", "--plan", &plan]), "status");
    assert!(status.contains("all stages complete"), "{status}");
    ok(rechunk(&["finalize", "--plan", &plan]), "finalize");
    assert!(!work.exists(), "scratch left behind");

    let single = dir.path().join("single.raw").display().to_string();
    let mut args = vec![src.as_str(), single.as_str(), "-q"];
    args.extend(CHUNKS);
    ok(rechunk(&args), "single-process run");
    assert_eq!(
        files(Path::new(&dst)),
        files(Path::new(&single)),
        "sharded and single runs differ"
    );
    ok(rechunk(&["verify", &src, &dst]), "verify");
}

#[test]
fn a_killed_worker_resumes_without_redoing_finished_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let dst = dir.path().join("out.raw").display().to_string();
    let place = dir.path().join("scratch");
    let plan = plan_file(dir.path(), &src, &dst, place.to_str().unwrap(), &[]);
    let scratch = scratch_folder_in(&place, "out.raw").expect("plan -o made the scratch folder");
    let mut worker = spawn(
        &["run", "--plan", &plan, "--stage", "0", "-q"],
        &[("RECHUNKER_TASK_DELAY_MS", "400")],
    );
    let started = Instant::now();
    while journal(&scratch, 0).len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the worker finished no task"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    worker.kill().unwrap(); // SIGKILL, mid-task
    let _ = worker.wait();
    let before = journal(&scratch, 0);
    let out = ok(
        rechunk(&["run", "--plan", &plan, "--stage", "0"]),
        "rerun of stage 0",
    );
    assert_eq!(
        number_after(&out, "skipped (resumed)"),
        before.len() as u64,
        "{out}"
    );
    let after = journal(&scratch, 0);
    for (task, modified) in &before {
        assert_eq!(
            after.get(task),
            Some(modified),
            "finished task {task} was redone"
        );
    }
    ok(
        rechunk(&["run", "--plan", &plan, "--stage", "1", "-q"]),
        "stage 1",
    );
    ok(rechunk(&["finalize", "--plan", &plan]), "finalize");
    ok(rechunk(&["verify", &src, &dst]), "verify");
}

/// The scratch piece read by the last write block (highest `lat` start), i.e. not by task 0.
fn last_piece(scratch: &Path) -> PathBuf {
    let mut pieces: Vec<PathBuf> = Vec::new();
    for time_dir in std::fs::read_dir(scratch.join("arrays/0/pieces/0"))
        .unwrap()
        .flatten()
    {
        pieces.extend(
            std::fs::read_dir(time_dir.path())
                .unwrap()
                .flatten()
                .map(|e| e.path()),
        );
    }
    let lat = |p: &PathBuf| -> u64 {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .split('.')
            .next()
            .unwrap()
            .parse()
            .unwrap_or(0)
    };
    pieces
        .into_iter()
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .max_by_key(lat)
        .unwrap()
}

fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_corrupt_scratch_piece_is_detected_and_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    // Distributed: the reading stage fails naming the piece; its producer is unjournaled;
    // rerunning the stages recomputes it.
    let dst = dir.path().join("out.raw").display().to_string();
    let place = dir.path().join("scratch");
    let plan = plan_file(dir.path(), &src, &dst, place.to_str().unwrap(), &[]);
    let scratch = scratch_folder_in(&place, "out.raw").expect("plan -o made the scratch folder");
    ok(
        rechunk(&["run", "--plan", &plan, "--stage", "0", "-q"]),
        "stage 0",
    );
    corrupt(&last_piece(&scratch));
    let failed = rechunk(&["run", "--plan", &plan, "--stage", "1", "-q"]);
    let err = stderr(&failed);
    assert!(
        !failed.status.success() && err.contains("checksum") && err.contains("recomputed"),
        "{err}"
    );
    let status = ok(rechunk(&["status", "--plan", &plan]), "status");
    assert!(
        status.contains("stage 0 `tas`") && status.contains("incomplete"),
        "{status}"
    );
    let out = ok(
        rechunk(&["run", "--plan", &plan, "--stage", "0"]),
        "stage 0 again",
    );
    assert_eq!(
        number_after(&out, "tasks run"),
        1,
        "only the producer is recomputed: {out}"
    );
    ok(
        rechunk(&["run", "--plan", &plan, "--stage", "1", "-q"]),
        "stage 1 again",
    );
    ok(rechunk(&["finalize", "--plan", &plan]), "finalize");
    ok(rechunk(&["verify", &src, &dst]), "verify");

    // One process with --resume recomputes by itself.
    let dst = dir.path().join("single.raw").display().to_string();
    let scratch = dir.path().join("single.raw.rechunk-scratch");
    let mut args = vec![src.as_str(), dst.as_str()];
    args.extend(CHUNKS);
    let failed = rechunk_env(&args, &[("RECHUNKER_FAIL_TASK", "1:1")]);
    assert!(!failed.status.success());
    corrupt(&last_piece(&scratch));
    args.push("--resume");
    ok(rechunk(&args), "resumed run over a corrupt piece");
    ok(rechunk(&["verify", &src, &dst]), "verify");
}

/// `(tasks run, tasks skipped)` from the summary line of a `rechunk run`.
fn tasks_of(out: &str) -> (u64, u64) {
    (
        number_after(out, "tasks run"),
        number_after(out, "skipped (resumed)"),
    )
}

/// The same shard run by two processes whose stages provably overlap: the second starts its
/// stage after the first has journaled a task, and still finds tasks the first has not
/// journaled, which both then run. Both succeed and the result is the source, rechunked.
#[test]
fn the_same_shard_twice_at_once_gives_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let dst = dir.path().join("out.raw").display().to_string();
    let place = dir.path().join("scratch");
    let plan = plan_file(dir.path(), &src, &dst, place.to_str().unwrap(), &[]);
    let scratch = scratch_folder_in(&place, "out.raw").expect("plan -o made the scratch folder");
    for stage in [0, 1] {
        let stage_text = stage.to_string();
        let args = [
            "run",
            "--plan",
            &plan,
            "--stage",
            &stage_text,
            "--shard",
            "0/1",
        ];
        // Slow tasks leave the second process most of the stage to share.
        let slow = [("RECHUNKER_TASK_DELAY_MS", "300")];
        let mut first = spawn(&args, &slow);
        let waiting = Instant::now();
        while journal(&scratch, stage).is_empty() {
            assert!(
                first.try_wait().unwrap().is_none(),
                "stage {stage}: the first process ended before journaling a task"
            );
            assert!(
                waiting.elapsed() < Duration::from_secs(60),
                "stage {stage}: the first process journaled no task"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let second = spawn(&args, &slow);
        let first = ok(first.wait_with_output().unwrap(), "first copy");
        let second = ok(second.wait_with_output().unwrap(), "second copy");
        let ((run_1, skipped_1), (run_2, skipped_2)) = (tasks_of(&first), tasks_of(&second));
        let tasks = run_1 + skipped_1;
        assert_eq!(
            (run_1, skipped_1),
            (tasks, 0),
            "stage {stage}: the first process ran every task:\n{first}"
        );
        assert_eq!(run_2 + skipped_2, tasks, "stage {stage}:\n{second}");
        // The first process journals every task before it ends, so a second that started
        // after it would have skipped them all: running some proves both worked at once
        // (and skipping some, that the second began after the first's first task).
        assert!(
            skipped_2 >= 1 && run_2 >= 1,
            "stage {stage}: the two runs did not overlap (second ran {run_2} of {tasks} tasks)"
        );
        assert_eq!(
            journal(&scratch, stage).len() as u64,
            tasks,
            "stage {stage}: one journal entry a task"
        );
    }
    ok(rechunk(&["finalize", "--plan", &plan]), "finalize");
    ok(rechunk(&["verify", &src, &dst]), "verify");
}

#[test]
fn processes_share_s3_scratch_and_target() {
    let s3 = python::S3Server::start(&["data", "work"]);
    let env: Vec<(&str, String)> = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let plan = plan_file(
        dir.path(),
        &src,
        "s3://data/out.zarr",
        "s3://work/run1",
        &env,
    );
    run_shards(&plan, 0, 2, &env);
    run_shards(&plan, 1, 2, &env);
    ok(
        rechunk_env(&["finalize", "--plan", &plan], &env),
        "finalize",
    );
    ok(
        rechunk_env(&["verify", &src, "s3://data/out.zarr"], &env),
        "verify",
    );
    let listing = s3.get("/work?list-type=2");
    assert!(
        listing.contains("<ListBucketResult") && !listing.contains("<Key>"),
        "scratch left behind: {listing}"
    );
}

#[test]
fn a_restarted_s3_server_fails_the_run_cleanly_and_a_rerun_completes() {
    // A short retry budget: the run gives up while the server is away.
    restarted_s3_server(&["--retry-timeout", "1s"]);
}

#[test]
fn a_run_that_rides_out_a_restart_into_an_empty_store_fails_cleanly() {
    // The default budget rides out the restart and writes on into the emptied store, where the
    // scratch's marker and journal are gone: the next task finds that out, takes back what it
    // wrote there and fails the run, so the rerun finds no unmarked pieces to refuse.
    restarted_s3_server(&[]);
}

/// An S3 server that restarts empty mid-run: the run fails with one clear error, and a rerun
/// with --overwrite starts over and completes.
fn restarted_s3_server(retry: &[&str]) {
    let s3 = python::S3Server::start(&["data", "work"]);
    let port = s3.port();
    let env: Vec<(&str, String)> = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let dst = "s3://data/out.zarr";
    let mut args = vec![src.as_str(), dst, "--scratch", "s3://work/run", "-q"];
    args.extend(CHUNKS);
    let mut slow = env.clone();
    slow.push(("RECHUNKER_TASK_DELAY_MS", "300"));
    let mut first = args.clone();
    first.extend(retry);
    let worker = spawn(&first, &slow);
    std::thread::sleep(Duration::from_millis(1500));
    drop(s3); // the server goes away mid-run (moto keeps no state) ...
    std::thread::sleep(Duration::from_millis(500));
    let s3 = python::S3Server::start_on(port, &["data", "work"]); // ... and comes back empty
    let out = worker.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "the run cannot succeed after losing its scratch"
    );
    assert!(!err.contains("panicked") && err.contains("s3://"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{err}"
    );
    // The journal went with the server: the rerun starts over and completes.
    args.push("--overwrite");
    ok(rechunk_env(&args, &env), "rerun");
    ok(rechunk_env(&["verify", &src, dst], &env), "verify");
    drop(s3);
}
