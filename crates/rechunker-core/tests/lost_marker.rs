//! A scratch that loses its ownership marker mid-run (an object store emptied or restarted
//! under the run) fails the run, and the task that found out takes back what it wrote there:
//! no unmarked pieces stay behind that a rerun would have to refuse as someone else's files,
//! and files someone else put there stay.

mod common;

use common::{files, float_meta, two_stage};
use rechunker_core::executor::{ArrayJob, Executor, ExecutorOptions, Progress};
use rechunker_core::job;
use rechunker_core::mem::MemArray;
use rechunker_core::scratch::{LocalScratch, ScratchCodec};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Empties the scratch folder after the `after`-th finished task, as a store that restarts
/// without its data would.
struct EmptyTheStore {
    dir: PathBuf,
    after: u64,
    finished: AtomicU64,
}

impl Progress for EmptyTheStore {
    fn task_finished(&self, _bytes: u64) {
        if self.finished.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            for entry in std::fs::read_dir(&self.dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(path).unwrap();
                } else {
                    std::fs::remove_file(path).unwrap();
                }
            }
            // Someone else's files land there: they are not the task's to take back.
            for planted in PLANTED {
                let path = self.dir.join(planted);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, b"not rechunk's").unwrap();
            }
        }
    }
}

/// Files put into the emptied scratch by someone else, beside the pieces and the journal too.
const PLANTED: [&str; 3] = [
    "notes.txt",
    "arrays/0/pieces/0/0/notes.txt",
    "arrays/0/journal/0/notes",
];

#[test]
fn a_scratch_emptied_mid_stage_fails_the_run_and_keeps_nothing_unmarked() {
    let plan = two_stage(&[16, 12, 20], &[1, 12, 20], &[16, 4, 4], 6 << 10);
    assert!(plan.num_tasks(0) > 3, "{:#?}", plan.summary());
    let meta = float_meta;
    let data: Vec<u8> = (0..plan.array_bytes()).map(|i| (i % 251) as u8).collect();
    let source = MemArray::new(meta(&plan.source), Some(data));
    let target = MemArray::new(meta(&plan.target), None);
    let dir = tempfile::tempdir().unwrap();
    let scratch = Arc::new(LocalScratch::open(dir.path()).unwrap());
    job::claim_scratch(scratch.as_ref(), "out.zarr").unwrap();
    let progress = Arc::new(EmptyTheStore {
        dir: dir.path().to_path_buf(),
        after: 2,
        finished: AtomicU64::new(0),
    });
    let options = ExecutorOptions {
        threads: 1,
        task_memory: plan.task_budget * 2,
        codec: ScratchCodec::None,
        fail_task: None,
    };
    let executor = Executor::new(options, scratch.clone(), progress)
        .unwrap()
        .with_owner_marker(job::OWNER_KEY);
    let job = ArrayJob {
        name: "v",
        scratch_prefix: "arrays/0/".into(),
        plan: &plan,
        source: &source,
        target: &target,
    };
    let err = executor.run_stage(&job, 0).unwrap_err().to_string();
    assert!(
        err.contains(job::OWNER_KEY) && err.contains("--overwrite"),
        "{err}"
    );
    let mut planted: Vec<PathBuf> = PLANTED.iter().map(|p| dir.path().join(p)).collect();
    planted.sort();
    assert_eq!(
        files(dir.path()),
        planted,
        "the task that found the marker gone must take back what it wrote, and only that \
         (folders, which object stores do not have, may stay)"
    );
}
