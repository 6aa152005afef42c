//! Distributed runs under a real SLURM on localhost (started by `cargo xtask setup`, which
//! `cargo xtask test` runs first): `rechunk submit-slurm` submits every stage as a job array
//! chained with `afterok`, and the result is byte for byte the single-process result; a failed
//! array task stops the next stage, `rechunk status` names the missing tasks, and a resubmission
//! finishes the run without redoing finished tasks.
//!
//! Job states are read with `scontrol show job` for every array task (there is no accounting,
//! so no `sacct`), never from `sbatch --wait`, which can report success when a dependent array
//! was cancelled.

mod common;

use common::*;
use rechunker_core::DataType;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long one submission may take to finish, queueing included.
const TIMEOUT: Duration = Duration::from_secs(300);
const SHARDS: u64 = 3;
const CHUNKS: &str = "time=-1,lat=5,lon=5";
/// 64 MB of data under a 100 MiB process: a two-stage plan.
const PLAN_ARGS: &[&str] = &["--chunks", CHUNKS, "--max-mem", "100MiB", "--threads", "1"];

/// Fails (never skips) when no SLURM answers, saying how to start one.
fn require_slurm() {
    let how = "these tests need a SLURM on this machine: `cargo xtask setup` (as root) installs and starts a one-node SLURM on localhost, and `cargo xtask test` does so before running the tests";
    let ping = Command::new("scontrol").arg("ping").output();
    match ping {
        Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("is UP") => {}
        Ok(o) => panic!(
            "slurmctld does not answer (`scontrol ping`: {}); {how}",
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
        ),
        Err(e) => panic!("cannot run `scontrol` ({e}); {how}"),
    }
    let nodes = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        nodes
            .lines()
            .any(|s| matches!(s.trim(), "idle" | "mixed" | "allocated" | "completing")),
        "SLURM has no node that takes jobs (sinfo: {:?}); {how}",
        nodes.trim()
    );
}

fn tas(dir: &Path) -> String {
    let path = dir.join("tas.raw");
    write_raw(
        &path,
        &[
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

/// `rechunk plan SRC DST ... --scratch DIR -o plan.json` in `dir`; returns (src, dst, plan file).
fn make_plan(dir: &Path) -> (String, String, PathBuf) {
    let src = tas(dir);
    let dst = dir.join("out.raw").display().to_string();
    let scratch = dir.join("scratch").display().to_string();
    let plan_file = dir.join("plan.json");
    let mut args = vec!["plan", src.as_str(), dst.as_str()];
    args.extend(PLAN_ARGS);
    args.extend(["--scratch", &scratch, "-o", plan_file.to_str().unwrap()]);
    let out = rechunk(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("stage 2/2"),
        "the test needs a two-stage plan: {}",
        stdout(&out)
    );
    (src, dst, plan_file)
}

/// The single-process result of the same rechunk, for comparison.
fn reference(dir: &Path, src: &str) -> String {
    let dst = dir.join("reference.raw").display().to_string();
    let mut args = vec![src, dst.as_str()];
    args.extend(PLAN_ARGS);
    let out = rechunk(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    dst
}

/// Every file of a dataset directory with its bytes.
fn contents(dir: &str) -> BTreeMap<String, Vec<u8>> {
    snapshot(Path::new(dir))
        .into_iter()
        .map(|(k, (bytes, _))| (k, bytes))
        .collect()
}

fn assert_same_files(got: &str, want: &str) {
    let (got_files, want_files) = (contents(got), contents(want));
    assert_eq!(
        got_files.keys().collect::<Vec<_>>(),
        want_files.keys().collect::<Vec<_>>(),
        "{got} and {want} hold different files"
    );
    for (name, bytes) in &want_files {
        assert!(
            got_files[name] == *bytes,
            "{got}/{name} differs from the single-process result {want}/{name}"
        );
    }
}

/// The job ids `rechunk submit-slurm` printed: one array per stage, then the finalize job.
fn submit(plan: &Path, logs: &Path, sbatch: &[&str]) -> Jobs {
    std::fs::create_dir_all(logs).unwrap();
    let shards = SHARDS.to_string();
    let mut args = vec![
        "submit-slurm",
        "--plan",
        plan.to_str().unwrap(),
        "--shards",
        &shards,
        "--logs",
        logs.to_str().unwrap(),
    ];
    if !sbatch.is_empty() {
        args.push("--");
        args.extend(sbatch);
    }
    let out = rechunk(&args);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    let ids: Vec<String> = text
        .lines()
        .find(|l| l.starts_with("submitted"))
        .and_then(|l| l.rsplit(": ").next())
        .unwrap_or_else(|| panic!("no job ids in {text}"))
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 3, "two stage arrays and a finalize job: {text}");
    eprintln!("submitted jobs {ids:?}");
    Jobs(ids)
}

/// Submitted jobs, cancelled when the test ends so that a failed test leaves nothing queued.
struct Jobs(Vec<String>);

impl Drop for Jobs {
    fn drop(&mut self) {
        let _ = Command::new("scancel").args(&self.0).output();
    }
}

/// What `scontrol show job` says of one job record (an array task, or a pending array's
/// remaining tasks, which share one record).
#[derive(Clone, Debug)]
struct Record {
    tasks: Vec<u64>,
    state: String,
    reason: String,
}

impl Record {
    /// Finished, or pending on a dependency that can never be satisfied.
    fn settled(&self) -> bool {
        !matches!(
            self.state.as_str(),
            "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED" | "REQUEUED"
        ) || self.reason == "DependencyNeverSatisfied"
    }
}

/// `0-2`, `1,2`, `0-4%2`, `3` -> the task indices.
fn array_tasks(spec: &str) -> Vec<u64> {
    let spec = spec.split('%').next().unwrap_or_default();
    let mut out = Vec::new();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u64>().unwrap()..=b.parse::<u64>().unwrap()),
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

/// The records of job (or job array) `id`.
fn job_records(id: &str) -> Vec<Record> {
    let out = Command::new("scontrol")
        .args(["-o", "show", "job", id])
        .output()
        .expect("run scontrol");
    assert!(
        out.status.success(),
        "`scontrol show job {id}` failed (was the job purged, or slurmctld restarted?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|t| t.strip_prefix(name))
                    .unwrap_or_default()
                    .to_string()
            };
            let tasks = field("ArrayTaskId=");
            Record {
                tasks: if tasks.is_empty() {
                    vec![0]
                } else {
                    array_tasks(&tasks)
                },
                state: field("JobState="),
                reason: field("Reason="),
            }
        })
        .collect()
}

/// Waits until every job of `ids` has settled; returns each job's state per array task.
fn wait(ids: &[String]) -> Vec<BTreeMap<u64, Record>> {
    let started = Instant::now();
    loop {
        let all: Vec<Vec<Record>> = ids.iter().map(String::as_str).map(job_records).collect();
        if all.iter().flatten().all(Record::settled) {
            eprintln!(
                "jobs {ids:?} settled after {:.1}s",
                started.elapsed().as_secs_f64()
            );
            return all
                .into_iter()
                .map(|records| {
                    records
                        .into_iter()
                        .flat_map(|r| r.tasks.clone().into_iter().map(move |t| (t, r.clone())))
                        .collect()
                })
                .collect();
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "jobs {ids:?} not finished after {}s: {all:?}; squeue: {}",
            TIMEOUT.as_secs(),
            String::from_utf8_lossy(&Command::new("squeue").output().unwrap().stdout)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The contents of every log file in `logs` whose name starts with `prefix`.
fn logs_of(logs: &Path, prefix: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(logs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .map(|n| {
            let text = std::fs::read_to_string(logs.join(&n)).unwrap();
            (n, text)
        })
        .collect();
    out.sort();
    out
}

fn all_logs(logs: &Path) -> String {
    logs_of(logs, "")
        .into_iter()
        .map(|(n, t)| format!("--- {n}\n{t}"))
        .collect()
}

/// Asserts every array task 0..SHARDS of the stage arrays and the finalize job COMPLETED.
fn assert_all_completed(jobs: &Jobs, states: &[BTreeMap<u64, Record>], logs: &Path) {
    let num_stages = states.len() - 1;
    for (stage, tasks) in states[..num_stages].iter().enumerate() {
        assert_eq!(
            tasks.keys().copied().collect::<Vec<_>>(),
            (0..SHARDS).collect::<Vec<_>>(),
            "stage {stage} array {} should have tasks 0..{SHARDS}: {tasks:?}",
            jobs.0[stage]
        );
        for (task, r) in tasks {
            assert_eq!(
                r.state,
                "COMPLETED",
                "stage {stage} array task {}_{task}: {r:?}\n{}",
                jobs.0[stage],
                all_logs(logs)
            );
        }
    }
    let finalize: Vec<&Record> = states[num_stages].values().collect();
    assert!(
        finalize.len() == 1 && finalize[0].state == "COMPLETED",
        "finalize job {}: {finalize:?}\n{}",
        jobs.0[num_stages],
        all_logs(logs)
    );
}

/// The summed `tasks run R, skipped (resumed) K` of the `done:` lines in `logs`.
fn run_and_skipped(logs: &[(String, String)]) -> (u64, u64) {
    let number_after = |text: &str, marker: &str, end: char| -> u64 {
        text.split(marker)
            .nth(1)
            .and_then(|r| r.split(end).next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{marker}` in the log: {text}"))
    };
    logs.iter().fold((0, 0), |(run, skipped), (_, text)| {
        (
            run + number_after(text, "tasks run ", ','),
            skipped + number_after(text, "skipped (resumed) ", ';'),
        )
    })
}

/// `rechunk status`: (done, tasks) of each stage, summed over arrays.
fn status(plan: &Path) -> (String, Vec<(u64, u64)>) {
    let out = rechunk(&["status", "--plan", plan.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut stages: Vec<(u64, u64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("stage ") else {
            continue;
        };
        let stage: usize = rest.split_whitespace().next().unwrap().parse().unwrap();
        let counts = rest.split(": ").nth(1).unwrap().split_whitespace().next();
        let (done, tasks) = counts.unwrap().split_once('/').unwrap();
        if stages.len() <= stage {
            stages.resize(stage + 1, (0, 0));
        }
        stages[stage].0 += done.parse::<u64>().unwrap();
        stages[stage].1 += tasks.parse::<u64>().unwrap();
    }
    (text, stages)
}

#[test]
fn job_arrays_give_the_single_process_result() {
    require_slurm();
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, plan) = make_plan(dir.path());
    let (_, tasks) = status(&plan);
    assert!(
        tasks.iter().all(|&(done, n)| done == 0 && n >= SHARDS),
        "every shard needs a task of each stage: {tasks:?}"
    );
    let logs = dir.path().join("logs");
    let jobs = submit(&plan, &logs, &[]);
    let states = wait(&jobs.0);
    assert_eq!(states.len(), 3);
    assert_all_completed(&jobs, &states, &logs);
    assert!(
        scratch_folder_in(&dir.path().join("scratch"), "out.raw").is_none(),
        "finalize removes the scratch folder rechunk made"
    );
    let (text, stages) = status(&plan);
    assert!(
        stages.is_empty() && text.contains("finalized"),
        "the finalize job finished the run: {text}"
    );

    // The shards shared each stage: together they ran every task once.
    for (stage, &(_, n)) in tasks.iter().enumerate() {
        let stage_logs = logs_of(&logs, &format!("rechunk-stage{stage}-"));
        assert_eq!(stage_logs.len() as u64, SHARDS, "{stage_logs:?}");
        assert_eq!(
            run_and_skipped(&stage_logs),
            (n, 0),
            "stage {stage}: {stage_logs:?}"
        );
    }

    let verify = rechunk(&["verify", &src, &dst]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    assert_same_files(&dst, &reference(dir.path(), &src));
}

#[test]
fn a_failed_array_task_stops_the_next_stage_and_a_resubmission_finishes_the_run() {
    require_slurm();
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, plan) = make_plan(dir.path());

    // Stage 0's task 1 fails (in array task 1: shards take tasks i, i+3, ...), as a crash would.
    common::require_fault_injection();
    let logs = dir.path().join("logs-1");
    let jobs = submit(&plan, &logs, &["--export=ALL,RECHUNKER_FAIL_TASK=0:1"]);
    // Stage 0 finishes, stage 1 never starts; the finalize job waits on stage 1 (for ever,
    // where SLURM does not cancel jobs whose dependency failed).
    let mut states = wait(&jobs.0[..2]);
    states.extend(job_records(&jobs.0[2]).into_iter().map(|r| {
        let tasks = r.tasks.clone();
        tasks.into_iter().map(|t| (t, r.clone())).collect()
    }));
    let failed: Vec<u64> = states[0]
        .iter()
        .filter(|(_, r)| r.state != "COMPLETED")
        .map(|(&t, _)| t)
        .collect();
    assert_eq!(
        failed,
        [1],
        "only array task 1 of stage 0 fails: {:?}",
        states[0]
    );
    assert_eq!(states[0][&1].state, "FAILED", "{:?}", states[0]);
    let failed_log = logs_of(&logs, "rechunk-stage0-")
        .into_iter()
        .find(|(n, _)| n.ends_with("_1.log"))
        .unwrap();
    assert!(
        failed_log.1.contains("RECHUNKER_FAIL_TASK") && failed_log.1.contains("rerun it"),
        "{failed_log:?}"
    );
    // afterok: no task of stage 1, nor the finalize job, ran.
    for tasks in &states[1..] {
        for r in tasks.values() {
            assert!(
                r.state == "CANCELLED" || r.state == "PENDING",
                "a job depending on the failed array ran: {:?}\n{}",
                states,
                all_logs(&logs)
            );
        }
    }
    drop(jobs);
    assert!(logs_of(&logs, "rechunk-stage1-").is_empty());

    // The journal, not the scheduler, is the barrier: stage 1 submitted without a dependency
    // refuses to start, and touches nothing.
    let before = (
        snapshot(&dir.path().join("scratch")),
        snapshot(Path::new(&dst)),
    );
    let early_log = logs.join("early-stage1.log");
    let wrap = format!(
        "'{}' run --plan '{}' --stage 1 --shard 0/1 -q",
        env!("CARGO_BIN_EXE_rechunk"),
        plan.display()
    );
    let out = Command::new("sbatch")
        .args(["--parsable", "--mem=64M", "--job-name=rechunk-early"])
        .arg(format!("--output={}", early_log.display()))
        .arg(format!("--wrap={wrap}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let early = Jobs(vec![String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string()]);
    let states = wait(&early.0);
    let text = std::fs::read_to_string(&early_log).unwrap_or_default();
    assert_eq!(states[0][&0].state, "FAILED", "{text}");
    assert!(text.contains("stage 0 is not complete"), "{text}");
    assert_eq!(
        before,
        (
            snapshot(&dir.path().join("scratch")),
            snapshot(Path::new(&dst))
        ),
        "a refused stage changed the scratch or the target"
    );

    // `status` names what is missing.
    let (text, stages) = status(&plan);
    assert!(
        text.contains("incomplete")
            && text.contains("missing tasks")
            && text.contains("not complete"),
        "{text}"
    );
    let (done_before, stage0_tasks) = stages[0];
    assert!(
        done_before > 0 && done_before < stage0_tasks,
        "array tasks 0 and 2 finished their tasks, task 1 did not: {text}"
    );
    assert_eq!(stages[1].0, 0, "{text}");

    // Resubmitted without the fault: everything completes, finished tasks are skipped.
    let logs = dir.path().join("logs-2");
    let jobs = submit(&plan, &logs, &[]);
    let states = wait(&jobs.0);
    assert_all_completed(&jobs, &states, &logs);
    let (run, skipped) = run_and_skipped(&logs_of(&logs, "rechunk-stage0-"));
    assert_eq!(
        (run, skipped),
        (stage0_tasks - done_before, done_before),
        "stage 0 after the resubmission: only the missing tasks run"
    );
    let (run, skipped) = run_and_skipped(&logs_of(&logs, "rechunk-stage1-"));
    assert_eq!((run, skipped), (stages[1].1, 0));

    let verify = rechunk(&["verify", &src, &dst]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    assert_same_files(&dst, &reference(dir.path(), &src));
}
