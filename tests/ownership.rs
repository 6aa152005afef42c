//! The user's data is sacred: every way `rechunk` deletes or overwrites, tried as an unlucky
//! user would. Each test shows the user's files, the source and the target intact afterwards,
//! or a clear refusal, and never a panic.

mod common;

#[path = "common/python.rs"]
mod python;

use common::*;
use python::S3Server;
use rechunker_core::DataType;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A small raw dataset: 2 MB in time slices, plus its time coordinate.
fn small(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    write_raw(
        &path,
        &[
            meta(
                "tas",
                &["time", "lat", "lon"],
                DataType::Float32,
                &[200, 50, 50],
                &[1, 50, 50],
            ),
            meta("time", &["time"], DataType::Int64, &[200], &[200]),
        ],
    );
    path.display().to_string()
}

const CHUNKS: [&str; 2] = ["--chunks", "time=-1,lat=10,lon=10"];

/// A folder of the user's: a note and a `.git` folder.
fn user_folder(path: &Path) {
    std::fs::create_dir_all(path.join(".git/objects")).unwrap();
    std::fs::write(path.join("notes.txt"), b"my notes").unwrap();
    std::fs::write(path.join(".git/HEAD"), b"ref: refs/heads/main\n").unwrap();
}

/// Runs `args` and expects one clear error holding every fragment, and no panic.
fn refused(args: &[&str], fragments: &[&str]) -> String {
    let out = rechunk(args);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "{args:?} should fail: {}",
        stdout(&out)
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "one error line: {err}"
    );
    for f in fragments {
        assert!(
            err.contains(f),
            "{args:?}: the error should say `{f}`: {err}"
        );
    }
    err
}

/// Every entry below `dir` (names only), to show nothing appeared or vanished.
fn entries(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = snapshot(dir).into_keys().collect();
    out.sort();
    out
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn a_scratch_folder_of_the_users_is_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let src = small(dir.path(), "in.raw");
    let mine = dir.path().join("mydir");
    user_folder(&mine);
    let before = snapshot(&mine);
    let dst = s(&dir.path().join("out.raw"));
    let mut args = vec![
        src.as_str(),
        dst.as_str(),
        "--scratch",
        "mydir_placeholder",
        "--max-mem",
        "100MiB",
        "-q",
    ];
    let mine_text = s(&mine);
    args[3] = &mine_text;
    args.extend(CHUNKS);
    ok(&args);
    // rechunk worked in a folder of its own inside mydir, and removed only that.
    assert_eq!(before, snapshot(&mine), "mydir changed");
    assert_eq!(scratch_folder_in(&mine, "out.raw"), None);
    ok(&["verify", &src, &dst]);

    // --overwrite removes the earlier target and rechunk's own scratch, never mydir.
    args.push("--overwrite");
    ok(&args);
    assert_eq!(before, snapshot(&mine), "mydir changed under --overwrite");
}

#[test]
fn a_folder_at_the_scratch_name_that_rechunk_did_not_make_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = small(dir.path(), "in.raw");
    let dst = s(&dir.path().join("out.raw"));
    // Someone's folder happens to sit where the default scratch goes.
    let squatter = dir.path().join("out.raw.rechunk-scratch");
    user_folder(&squatter);
    let before = snapshot(&squatter);
    let mut args = vec![src.as_str(), dst.as_str()];
    args.extend(CHUNKS);
    refused(
        &args,
        &["out.raw.rechunk-scratch", "did not write", "--scratch"],
    );
    assert_eq!(before, snapshot(&squatter));
    args.push("--overwrite");
    refused(&args, &["did not write"]);
    assert_eq!(before, snapshot(&squatter));
}

#[test]
fn scratch_inside_the_source_or_the_target_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = small(dir.path(), "in.raw");
    let source_before = snapshot(Path::new(&src));
    let dst = s(&dir.path().join("out.raw"));
    let mut args = vec![src.as_str(), dst.as_str(), "--scratch", &src];
    args.extend(CHUNKS);
    refused(&args, &["lies inside", "the source", "--scratch"]);
    assert_eq!(source_before, snapshot(Path::new(&src)));

    // The target does not exist yet: its future place is compared all the same.
    let mut args = vec![src.as_str(), dst.as_str(), "--scratch", &dst];
    args.extend(CHUNKS);
    refused(&args, &["lies inside", "the target"]);
    assert!(!Path::new(&dst).exists());

    // Another dataset named as scratch: rechunk works in a new folder of its own inside it and
    // leaves the dataset exactly as it was.
    let mut first = vec![src.as_str(), dst.as_str(), "-q"];
    first.extend(CHUNKS);
    ok(&first);
    let target_before = snapshot(Path::new(&dst));
    let other = s(&dir.path().join("other.raw"));
    let mut args = vec![src.as_str(), other.as_str(), "--scratch", &dst, "-q"];
    args.extend(["--chunks", "time=-1,lat=5,lon=5", "--max-mem", "100MiB"]);
    ok(&args);
    assert_eq!(target_before, snapshot(Path::new(&dst)));
    assert_eq!(scratch_folder_in(Path::new(&dst), "other.raw"), None);
    ok(&["verify", &src, &other]);
}

#[test]
fn a_source_inside_the_target_is_refused_even_with_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.raw");
    std::fs::create_dir_all(&big).unwrap();
    let src = small(&big, "in.raw");
    let before = snapshot(&big);
    let dst = s(&big);
    let mut args = vec![src.as_str(), dst.as_str(), "--overwrite"];
    args.extend(CHUNKS);
    refused(&args, &["the source", "lies inside", "the target"]);
    assert_eq!(before, snapshot(&big));
    // The other way round, and the same path twice.
    let inner = s(&dir.path().join("big.raw/in.raw/sub.raw"));
    let mut args = vec![src.as_str(), inner.as_str()];
    args.extend(CHUNKS);
    refused(&args, &["the target", "lies inside", "the source"]);
    let mut args = vec![src.as_str(), src.as_str(), "--overwrite"];
    args.extend(CHUNKS);
    refused(&args, &["is the same place as"]);
    // Through a link to the source.
    let link = dir.path().join("link.raw");
    std::os::unix::fs::symlink(&src, &link).unwrap();
    let link = s(&link);
    let mut args = vec![src.as_str(), link.as_str(), "--overwrite"];
    args.extend(CHUNKS);
    refused(&args, &["is the same place as"]);
    assert_eq!(before, snapshot(&big));
}

#[test]
fn overwrite_replaces_only_a_dataset_of_the_target_format() {
    let dir = tempfile::tempdir().unwrap();
    let src = small(dir.path(), "in.raw");
    // A folder of the user's named as DST.
    let folder = dir.path().join("out.raw");
    user_folder(&folder);
    let before = snapshot(&folder);
    let dst = s(&folder);
    let mut args = vec![src.as_str(), dst.as_str(), "--overwrite"];
    args.extend(CHUNKS);
    refused(
        &args,
        &[
            "is not a raw dataset",
            "notes.txt",
            "--overwrite replaces only",
        ],
    );
    assert_eq!(before, snapshot(&folder));

    // A Zarr DST that is the user's NetCDF file under a .zarr name is not Zarr either.
    let file = dir.path().join("data.zarr");
    std::fs::write(&file, b"CDF\x01 not zarr").unwrap();
    let file_text = s(&file);
    let mut args = vec![src.as_str(), file_text.as_str(), "--overwrite"];
    args.extend(CHUNKS);
    refused(&args, &["is not a Zarr dataset"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"CDF\x01 not zarr");

    // A link at DST is never deleted through, even when it points at a dataset.
    let real = small(dir.path(), "real.raw");
    let real_before = snapshot(Path::new(&real));
    let link = dir.path().join("linked.raw");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let link_text = s(&link);
    let mut args = vec![src.as_str(), link_text.as_str(), "--overwrite"];
    args.extend(CHUNKS);
    refused(&args, &["symbolic link"]);
    assert_eq!(real_before, snapshot(Path::new(&real)));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());

    // A raw dataset at DST is replaced.
    let dst = s(&dir.path().join("done.raw"));
    let mut args = vec![src.as_str(), dst.as_str(), "-q"];
    args.extend(CHUNKS);
    ok(&args);
    args.push("--overwrite");
    ok(&args);
    ok(&["verify", &src, &dst]);
}

#[test]
fn overwrite_replaces_the_unfinished_target_of_an_interrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let src = small(dir.path(), "in.raw");
    let dst = s(&dir.path().join("out.raw"));
    let mut args = vec![
        src.as_str(),
        dst.as_str(),
        "--max-mem",
        "100MiB",
        "--threads",
        "1",
    ];
    args.extend(["--chunks", "time=-1,lat=5,lon=5"]);
    let out = rechunk_env(&args, &[("RECHUNKER_FAIL_TASK", "0:0")]);
    assert!(!out.status.success());
    args.push("--overwrite");
    args.push("-q");
    ok(&args);
    ok(&["verify", &src, &dst]);
}

#[test]
fn names_from_the_source_never_leave_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let outer = dir.path().join("outer");
    std::fs::create_dir_all(&outer).unwrap();
    let src = outer.join("in.raw");
    // Hostile variable names: parent folders, an absolute path, a separator, an empty name.
    let names = ["..", "../../escaped", "/abs/olute", "a/../../b", "."];
    let arrays: Vec<_> = names
        .iter()
        .map(|n| meta(n, &["x"], DataType::Int32, &[64], &[8]))
        .collect();
    write_raw(&src, &arrays);
    let dst = outer.join("out.raw");
    let src_text = s(&src);
    let dst_text = s(&dst);
    let out = rechunk(&[&src_text, &dst_text, "--chunks", "x=32", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Nothing appeared beside or above the target.
    let mut outside: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    outside.sort();
    assert_eq!(outside, vec![outer.clone()], "files escaped the target");
    let mut beside: Vec<String> = std::fs::read_dir(&outer)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, vec!["in.raw", "out.raw"]);
    assert!(!Path::new("/abs").exists());
    // And every array reads back with its name and values.
    ok(&["verify", &src_text, &dst_text]);
    let inspect = ok(&["inspect", &dst_text]);
    for n in names {
        assert!(inspect.contains(&format!("  {n} int32")), "{n}: {inspect}");
    }
}

#[test]
fn resume_on_a_finished_target_is_refused_not_redone() {
    let dir = tempfile::tempdir().unwrap();
    let src = small(dir.path(), "in.raw");
    let dst = s(&dir.path().join("out.raw"));
    let mut args = vec![src.as_str(), dst.as_str(), "-q"];
    args.extend(CHUNKS);
    ok(&args);
    let before = snapshot(Path::new(&dst));
    args.push("--resume");
    refused(&args, &["not an interrupted run", "--overwrite"]);
    assert_eq!(before, snapshot(Path::new(&dst)));
}

#[test]
fn a_resumed_run_leaves_no_temporary_files_in_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let src = small(dir.path(), "in.raw");
    let dst = dir.path().join("out.raw");
    let dst_text = s(&dst);
    let mut args = vec![
        src.as_str(),
        dst_text.as_str(),
        "--max-mem",
        "100MiB",
        "--threads",
        "1",
    ];
    args.extend(["--chunks", "time=-1,lat=5,lon=5"]);
    let out = rechunk_env(&args, &[("RECHUNKER_FAIL_TASK", "0:0")]);
    assert!(!out.status.success());
    // What a kill during an atomic write leaves: an empty temporary file beside a chunk.
    let leftover = dst.join("tas/.0.0.0.4242.7.tmp");
    std::fs::write(&leftover, b"").unwrap();
    args.push("--resume");
    ok(&args);
    let temps: Vec<String> = entries(&dst)
        .into_iter()
        .filter(|e| e.ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
    ok(&["verify", &src, &dst_text]);
}

#[test]
fn a_second_run_into_the_same_target_is_refused_and_a_stale_lock_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let src = small(dir.path(), "in.raw");
    let dst = s(&dir.path().join("out.raw"));
    let mut args = vec![src.as_str(), dst.as_str(), "-q", "--threads", "1"];
    args.extend(CHUNKS);
    // A slow first run.
    common::require_fault_injection();
    let mut first = Command::new(env!("CARGO_BIN_EXE_rechunk"))
        .args(&args)
        .env("RECHUNKER_TASK_DELAY_MS", "400")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = dir.path().join("out.raw.rechunk-lock");
    let started = std::time::Instant::now();
    while !lock.exists() {
        assert!(
            started.elapsed().as_secs() < 30,
            "the first run never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut second = args.clone();
    second.push("--resume");
    let err = refused(
        &second,
        &[
            "being written by another rechunk",
            &format!("pid {}", first.id()),
        ],
    );
    assert!(err.contains("out.raw.rechunk-lock"), "{err}");
    // The first run is killed: its lock is stale and the rerun takes it over.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(lock.exists(), "a killed run cannot remove its lock");
    ok(&second);
    assert!(!lock.exists(), "a finished run removes its lock");
    ok(&["verify", &src, &dst]);
}

#[test]
fn a_plan_file_scratch_place_survives_finalize() {
    let dir = tempfile::tempdir().unwrap();
    let src = small(dir.path(), "in.raw");
    let proj = dir.path().join("proj");
    user_folder(&proj);
    let before = snapshot(&proj);
    let dst = s(&dir.path().join("out.raw"));
    let plan = s(&dir.path().join("plan.json"));
    let proj_text = s(&proj);
    let mut args = vec![
        "plan",
        src.as_str(),
        dst.as_str(),
        "--scratch",
        &proj_text,
        "-o",
        &plan,
    ];
    args.extend(["--chunks", "time=-1,lat=5,lon=5", "--max-mem", "100MiB"]);
    ok(&args);
    run_plan_file(&plan);
    assert_eq!(before, snapshot(&proj), "proj changed");
    assert_eq!(scratch_folder_in(&proj, "out.raw"), None);
    ok(&["verify", &src, &dst]);
    // `-o` never replaces a file that is not a plan.
    let notes = proj.join("notes.txt");
    let notes_text = s(&notes);
    let other = s(&dir.path().join("other.raw"));
    refused(
        &[
            "plan",
            &src,
            &other,
            "-o",
            &notes_text,
            "--chunks",
            "time=-1",
        ],
        &["not a rechunk plan file"],
    );
    assert_eq!(std::fs::read(&notes).unwrap(), b"my notes");
}

#[test]
fn a_bucket_named_as_scratch_keeps_everything_but_rechunks_own_keys() {
    let s3 = S3Server::start(&["lab"]);
    let env: Vec<(&str, String)> = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let raw = small(dir.path(), "in.raw");
    let run = |args: &[&str]| {
        let out = rechunk_env(args, &env);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    run(&[&raw, "s3://lab/in.zarr", "--chunks", "time=1", "-q"]);
    run(&[&raw, "s3://lab/keep.zarr", "--chunks", "time=1", "-q"]);
    let listing = |prefix: &str| {
        let body = s3.get(&format!("/lab?list-type=2&prefix={prefix}"));
        let mut keys: Vec<String> = body
            .split("<Key>")
            .skip(1)
            .map(|k| k.split("</Key>").next().unwrap().to_string())
            .collect();
        keys.sort();
        keys
    };
    let before_in = listing("in.zarr");
    let before_keep = listing("keep.zarr");
    assert!(!before_in.is_empty() && !before_keep.is_empty());
    run(&[
        "s3://lab/in.zarr",
        "s3://lab/out.zarr",
        "--scratch",
        "s3://lab/",
        "--chunks",
        "time=-1,lat=10,lon=10",
        // Room above the 85-100 MiB the process holds itself with an S3 source.
        "--max-mem",
        "128MiB",
        "-q",
    ]);
    assert_eq!(before_in, listing("in.zarr"), "the source changed");
    assert_eq!(
        before_keep,
        listing("keep.zarr"),
        "another dataset in the bucket changed"
    );
    assert!(listing("out.zarr-").is_empty(), "scratch left behind");
    run(&["verify", &raw, "s3://lab/out.zarr"]);
    // --overwrite never empties a prefix that is not a Zarr dataset.
    s3.request("PUT", "/lab/notes/readme.txt");
    let out = rechunk_env(
        &[
            "s3://lab/in.zarr",
            "s3://lab/notes",
            "--chunks",
            "time=-1",
            "--overwrite",
        ],
        &env,
    );
    assert!(
        !out.status.success(),
        "a prefix of the user's was overwritten"
    );
    assert!(
        stderr(&out).contains("is not a Zarr dataset"),
        "{}",
        stderr(&out)
    );
    assert_eq!(listing("notes"), ["notes/readme.txt"]);
    // Scratch inside the source or the target on the store is refused.
    for scratch in [
        "s3://lab/in.zarr",
        "s3://lab/in.zarr/sub",
        "s3://lab/out2.zarr",
    ] {
        let out = rechunk_env(
            &[
                "s3://lab/in.zarr",
                "s3://lab/out2.zarr",
                "--scratch",
                scratch,
                "--chunks",
                "time=-1",
            ],
            &env,
        );
        assert!(!out.status.success(), "--scratch {scratch} was accepted");
        assert!(stderr(&out).contains("lies inside"), "{}", stderr(&out));
    }
    assert_eq!(before_in, listing("in.zarr"));
}

#[test]
fn a_corrupt_source_chunk_is_not_met_with_advice_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let src = small(dir.path(), "in.raw");
    std::fs::write(Path::new(&src).join("tas/5.0.0"), b"cut short").unwrap();
    let before = snapshot(Path::new(&src));
    let dst = s(&dir.path().join("out.raw"));
    let mut args = vec![src.as_str(), dst.as_str(), "-q"];
    args.extend(CHUNKS);
    let err = refused(
        &args,
        &[
            "tas/5.0.0",
            "the source could not be read",
            "repaired or replaced",
        ],
    );
    assert!(
        !err.contains("rerun the same command with --resume to continue"),
        "{err}"
    );
    assert_eq!(before, snapshot(Path::new(&src)));
    // Nothing that looks complete.
    assert!(!rechunk(&["inspect", &dst]).status.success());
}

#[test]
fn in_place_on_a_link_rechunks_the_array_it_points_to() {
    let dir = tempfile::tempdir().unwrap();
    let src = small(dir.path(), "in.raw");
    let array = dir.path().join("data/tas.tdb");
    std::fs::create_dir_all(array.parent().unwrap()).unwrap();
    let array_text = s(&array);
    ok(&[&src, &array_text, "--chunks", "time=1", "-q"]);
    let link = dir.path().join("tas-link.tdb");
    std::os::unix::fs::symlink(&array, &link).unwrap();
    let link_text = s(&link);
    ok(&[
        "in-place",
        &link_text,
        "--chunks",
        "time=-1,lat=10,lon=10",
        "-q",
    ]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), array);
    let inspect = ok(&["inspect", &array_text]);
    assert!(inspect.contains("chunks (200, 10, 10)"), "{inspect}");
    ok(&["verify", &src, &link_text]);
    // Nothing of the job is left beside the link or the array.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["data", "in.raw", "tas-link.tdb"]);
    let data: Vec<String> = std::fs::read_dir(array.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(data, ["tas.tdb"]);
    // A rerun through the link has nothing to do.
    let again = ok(&["in-place", &link_text, "--chunks", "time=-1,lat=10,lon=10"]);
    assert!(again.contains("nothing to do"), "{again}");
}

/// Found in review: two targets of one name sharing a `--scratch` place, a DST spelled with a
/// trailing `/` through a link, a folder holding files named like raw metadata, and a worker
/// run after finalize.
#[test]
fn look_alike_targets_links_with_slashes_and_late_workers_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = small(dir.path(), "in.raw");
    let place = s(&dir.path().join("shared-scratch"));
    // Project A's run into a/out.raw is interrupted...
    let a = dir.path().join("a");
    std::fs::create_dir_all(&a).unwrap();
    let a_dst = s(&a.join("out.raw"));
    let mut args = vec![
        src.as_str(),
        a_dst.as_str(),
        "--scratch",
        &place,
        "--threads",
        "1",
    ];
    args.extend(["--chunks", "time=-1,lat=5,lon=5", "--max-mem", "100MiB"]);
    let out = rechunk_env(&args, &[("RECHUNKER_FAIL_TASK", "0:0")]);
    assert!(!out.status.success());
    // ... and project B's folder out.raw (the user's) is named as DST with --overwrite.
    let b = dir.path().join("b/out.raw");
    user_folder(&b);
    let before = snapshot(&b);
    let b_dst = s(&b);
    let mut args = vec![
        src.as_str(),
        b_dst.as_str(),
        "--scratch",
        &place,
        "--overwrite",
    ];
    args.extend(CHUNKS);
    refused(&args, &["is not a raw dataset"]);
    assert_eq!(before, snapshot(&b));
    // A's run still resumes from its own scratch.
    let mut resume = vec![
        src.as_str(),
        a_dst.as_str(),
        "--scratch",
        &place,
        "--threads",
        "1",
    ];
    resume.extend([
        "--chunks",
        "time=-1,lat=5,lon=5",
        "--max-mem",
        "100MiB",
        "--resume",
        "-q",
    ]);
    ok(&resume);
    ok(&["verify", &src, &a_dst]);

    // A link spelled with a trailing slash is still a link.
    let real = small(dir.path(), "real.raw");
    let real_before = snapshot(Path::new(&real));
    let link = dir.path().join("link.raw");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for spelled in [format!("{}/", s(&link)), format!("{}/./", s(&link))] {
        let mut args = vec![src.as_str(), spelled.as_str(), "--overwrite"];
        args.extend(CHUNKS);
        refused(&args, &["symbolic link"]);
        assert_eq!(real_before, snapshot(Path::new(&real)));
    }

    // Files merely named like raw metadata do not make a folder a raw dataset.
    let results = dir.path().join("results.raw");
    std::fs::create_dir_all(results.join("web")).unwrap();
    std::fs::write(results.join("web/array.json"), b"{\"format\": \"mine\"}").unwrap();
    std::fs::write(results.join("raw.json"), b"{}").unwrap();
    let before = snapshot(&results);
    let results_text = s(&results);
    let mut args = vec![src.as_str(), results_text.as_str(), "--overwrite"];
    args.extend(CHUNKS);
    refused(&args, &["is not a raw dataset"]);
    assert_eq!(before, snapshot(&results));

    // A worker started after finalize does not rewrite the finished target.
    let dst = s(&dir.path().join("planned.raw"));
    let plan = s(&dir.path().join("plan.json"));
    let mut args = vec!["plan", src.as_str(), dst.as_str(), "-o", &plan];
    args.extend(CHUNKS);
    ok(&args);
    run_plan_file(&plan);
    let finished = snapshot(Path::new(&dst));
    refused(
        &["run", "--plan", &plan, "--stage", "0", "-q"],
        &["is finalized"],
    );
    assert_eq!(finished, snapshot(Path::new(&dst)));
}
