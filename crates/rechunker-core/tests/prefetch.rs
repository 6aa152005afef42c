//! The executor asks a source that prefetches for each runner's next first-stage task once the
//! current task's reads are done, and only where the plan counted in its task memory what the
//! source will hold: a plan file that counted less (made elsewhere, or before prefetching) runs
//! without it rather than over its memory.

mod common;

use common::{float_meta, two_stage};
use rechunker_core::executor::{ArrayJob, Executor, ExecutorOptions, NoProgress};
use rechunker_core::mem::MemArray;
use rechunker_core::planner::Plan;
use rechunker_core::scratch::{LocalScratch, ScratchCodec};
use rechunker_core::{ArrayMeta, ChunkedArray, Region};
use std::sync::{Arc, Mutex};

/// A source in memory that records the regions it is asked to prefetch and to read, in order.
struct Prefetching {
    inner: MemArray,
    overhead: u64,
    events: Mutex<Vec<(&'static str, Region)>>,
}

impl ChunkedArray for Prefetching {
    fn meta(&self) -> &ArrayMeta {
        self.inner.meta()
    }

    fn read_region(&self, region: &Region, out: &mut [u8]) -> rechunker_core::Result<()> {
        self.events.lock().unwrap().push(("read", region.clone()));
        self.inner.read_region(region, out)
    }

    fn prefetch_overhead(&self) -> u64 {
        self.overhead
    }

    fn prefetch(&self, region: &Region, _threads: usize) {
        self.events
            .lock()
            .unwrap()
            .push(("prefetch", region.clone()));
    }
}

/// Runs both stages of `plan` on one thread from a source that holds `overhead` when it
/// prefetches; returns what the source saw, after checking the target holds the source's data.
fn run(plan: &Plan, overhead: u64) -> Vec<(&'static str, Region)> {
    let data: Vec<u8> = (0..plan.array_bytes()).map(|i| (i % 251) as u8).collect();
    let source = Prefetching {
        inner: MemArray::new(float_meta(&plan.source), Some(data.clone())),
        overhead,
        events: Mutex::default(),
    };
    let target = MemArray::new(float_meta(&plan.target), None);
    let dir = tempfile::tempdir().unwrap();
    let scratch = Arc::new(LocalScratch::open(dir.path()).unwrap());
    let options = ExecutorOptions {
        threads: 1,
        task_memory: plan.task_budget * 2,
        codec: ScratchCodec::None,
        fail_task: None,
    };
    let executor = Executor::new(options, scratch, Arc::new(NoProgress)).unwrap();
    let job = ArrayJob {
        name: "v",
        scratch_prefix: "arrays/0/".into(),
        plan,
        source: &source,
        target: &target,
    };
    for stage in 0..plan.stages.len() {
        executor.run_stage(&job, stage).unwrap();
    }
    assert!(target.data() == data, "the target differs from the source");
    source.events.into_inner().unwrap()
}

fn plan_counting(prefetch: u64) -> Plan {
    let mut plan = two_stage(&[16, 12, 20], &[1, 12, 20], &[16, 4, 4], 6 << 10);
    assert!(plan.num_tasks(0) > 3, "{:#?}", plan.summary());
    plan.source_prefetch = prefetch;
    plan
}

#[test]
fn each_next_task_is_prefetched_after_the_current_reads_and_before_its_own() {
    let plan = plan_counting(1000);
    let events = run(&plan, 1000);
    let tasks: Vec<Region> = (0..plan.num_tasks(0))
        .map(|t| plan.task_region(0, t))
        .collect();
    // One runner: read task 0, prefetch task 1, read task 1, prefetch task 2, ...; the last
    // task has no next one, and the second stage reads scratch, not the source.
    let mut expected = vec![("read", tasks[0].clone())];
    for next in &tasks[1..] {
        expected.push(("prefetch", next.clone()));
        expected.push(("read", next.clone()));
    }
    assert_eq!(events, expected);
}

#[test]
fn a_plan_that_counted_less_than_the_source_holds_runs_without_prefetch() {
    for counted in [0, 999] {
        let plan = plan_counting(counted);
        let events = run(&plan, 1000);
        assert!(
            events.iter().all(|(what, _)| *what == "read"),
            "the plan counted {counted} B for a prefetch of 1000 B: {events:?}"
        );
        assert_eq!(events.len() as u64, plan.num_tasks(0));
    }
}
