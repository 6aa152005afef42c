//! A scratch piece's checksum covers its key: two pieces of one size swapped on disk (or one
//! copied over another) are lost pieces, recomputed, not data read into the wrong place.

mod common;

use common::{files, float_meta, random_bytes, two_stage};
use rechunker_core::executor::{ArrayJob, Executor, ExecutorOptions, NoProgress};
use rechunker_core::mem::MemArray;
use rechunker_core::planner::Plan;
use rechunker_core::scratch::{LocalScratch, ScratchCodec};
use rechunker_core::Error;
use std::sync::Arc;

/// Runs stage 0, swaps two different pieces of the same size, and runs stage 1: the swap is
/// found as lost pieces (checksum), their producers rerun, and the copy ends exact.
fn swapped_pieces_are_lost_not_used(plan: &Plan, codec: ScratchCodec) {
    let meta = float_meta;
    let data = random_bytes(plan.array_bytes() as usize, 5);
    let source = MemArray::new(meta(&plan.source), Some(data.clone()));
    let target = MemArray::new(meta(&plan.target), None);
    let dir = tempfile::tempdir().unwrap();
    let job = ArrayJob {
        name: "v",
        scratch_prefix: "arrays/0/".into(),
        plan,
        source: &source,
        target: &target,
    };
    let run = |stage| {
        let options = ExecutorOptions {
            threads: 1,
            task_memory: plan.task_budget * 2,
            codec,
            fail_task: None,
        };
        let scratch = Arc::new(LocalScratch::open(dir.path()).unwrap());
        Executor::new(options, scratch, Arc::new(NoProgress))
            .unwrap()
            .run_stage(&job, stage)
    };
    run(0).unwrap();
    let pieces = files(&dir.path().join("arrays/0/pieces"));
    let (a, b) = pieces
        .iter()
        .enumerate()
        .find_map(|(i, a)| {
            let len = std::fs::metadata(a).unwrap().len();
            pieces[i + 1..].iter().find_map(|b| {
                (std::fs::metadata(b).unwrap().len() == len
                    && std::fs::read(a).unwrap() != std::fs::read(b).unwrap())
                .then(|| (a.clone(), b.clone()))
            })
        })
        .expect("two different pieces of one size");
    let parked = a.with_extension("parked");
    std::fs::rename(&a, &parked).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&parked, &b).unwrap();

    let err = run(1).unwrap_err();
    assert!(
        matches!(err.root(), Error::LostPiece { what, stage: 0, .. } if what.contains("checksum")),
        "{codec:?}: a swapped piece must be lost, not read: {err}"
    );
    // Each lost piece forgets its producer; rerunning the stages recomputes them (the second
    // swapped piece is found when its own reader runs).
    let mut lost = 1;
    loop {
        run(0).unwrap();
        match run(1) {
            Ok(_) => break,
            Err(e) if matches!(e.root(), Error::LostPiece { .. }) && lost < 4 => lost += 1,
            Err(e) => panic!("{codec:?}: {e}"),
        }
    }
    assert!(
        target.data() == data,
        "{codec:?}: the copy differs after recomputing"
    );
}

#[test]
fn swapped_pieces_of_one_size_are_recomputed() {
    // Small pieces, gathered and framed whole (lz4, or raw when it does not pay).
    let small = two_stage(&[16, 12, 20], &[1, 12, 20], &[16, 4, 4], 6 << 10);
    // Pieces of 64 KiB runs, which a raw scratch writes and reads in place.
    let long = two_stage(&[8, 64, 1024], &[1, 64, 1024], &[8, 16, 1024], 1 << 20);
    for plan in [&small, &long] {
        for codec in [ScratchCodec::None, ScratchCodec::Lz4] {
            swapped_pieces_are_lost_not_used(plan, codec);
        }
    }
}
