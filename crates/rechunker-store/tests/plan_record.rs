//! Two processes that record a plan in one scratch place at the same moment: one plan is
//! recorded, and the other process is refused (or, resuming, checked against it), never
//! silently overwritten. Each writer's read of the plan key is held until every writer has
//! read it, so the test sees the race every time, on a local directory and an object store.

use object_store::memory::InMemory;
use rechunker_core::job::{self, DatasetPlan, PLAN_FORMAT, PLAN_KEY, PLAN_VERSION};
use rechunker_core::scratch::{LocalScratch, ScratchStore};
use rechunker_store::ObjectScratch;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

/// A scratch store whose first read of the plan key waits for the other writers' reads.
struct ReadsTogether {
    inner: Arc<dyn ScratchStore>,
    all_read: Arc<Barrier>,
    waited: AtomicBool,
}

impl ScratchStore for ReadsTogether {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn put(&self, key: &str, data: &[u8]) -> rechunker_core::Result<()> {
        self.inner.put(key, data)
    }
    fn put_if_absent(&self, key: &str, data: &[u8]) -> rechunker_core::Result<bool> {
        self.inner.put_if_absent(key, data)
    }
    fn get(&self, key: &str) -> rechunker_core::Result<Option<Vec<u8>>> {
        let found = self.inner.get(key);
        if key == PLAN_KEY && !self.waited.swap(true, Ordering::SeqCst) {
            self.all_read.wait();
        }
        found
    }
    fn list(&self, prefix: &str) -> rechunker_core::Result<Vec<String>> {
        self.inner.list(prefix)
    }
    fn remove_prefix(&self, prefix: &str) -> rechunker_core::Result<()> {
        self.inner.remove_prefix(prefix)
    }
    fn delete(&self, key: &str) -> rechunker_core::Result<()> {
        self.inner.delete(key)
    }
    fn is_empty(&self) -> rechunker_core::Result<bool> {
        self.inner.is_empty()
    }
}

fn plan(chunks: &str) -> DatasetPlan {
    DatasetPlan {
        format: PLAN_FORMAT.into(),
        version: PLAN_VERSION,
        source: "in.zarr".into(),
        target: "out.zarr".into(),
        chunks: chunks.into(),
        max_mem: 1 << 30,
        memory_reserve: 1 << 20,
        threads: 2,
        arrays: vec![],
        attrs: Default::default(),
        opening_seconds: 0.0,
    }
}

/// Records `plans` at once, one writer (with its own store instance) each; returns each
/// writer's outcome and the plan left in the store.
fn record_together(
    open: &dyn Fn() -> Arc<dyn ScratchStore>,
    plans: &[DatasetPlan],
    resume: bool,
) -> (Vec<Result<(), String>>, DatasetPlan) {
    // Claimed first: this test is about the plan record (claiming races on its own marker).
    job::claim_scratch(open().as_ref(), &plans[0].target).unwrap();
    let all_read = Arc::new(Barrier::new(plans.len()));
    let outcomes = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .iter()
            .map(|plan| {
                let store = ReadsTogether {
                    inner: open(),
                    all_read: all_read.clone(),
                    waited: AtomicBool::new(false),
                };
                s.spawn(move || job::record_plan(plan, &store, resume).map_err(|e| e.to_string()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let stored = open().get(PLAN_KEY).unwrap().unwrap();
    let stored = DatasetPlan::from_json(&String::from_utf8(stored).unwrap()).unwrap();
    (outcomes, stored)
}

fn check(open: &dyn Fn() -> Arc<dyn ScratchStore>, resume: bool, refusal: &str) {
    let plans = [plan("time=1"), plan("time=2")];
    let (outcomes, stored) = record_together(open, &plans, resume);
    let winners: Vec<usize> = (0..2).filter(|&i| outcomes[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert_eq!(stored, plans[winners[0]]);
    let loser = outcomes[1 - winners[0]].as_ref().unwrap_err();
    assert!(loser.contains(refusal), "{loser}");
}

#[test]
fn one_plan_is_recorded_in_a_local_directory() {
    for (resume, refusal) in [(false, "holds an unfinished run"), (true, "different plan")] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("scratch");
        let open = || Arc::new(LocalScratch::open(&root).unwrap()) as Arc<dyn ScratchStore>;
        check(&open, resume, refusal);
    }
}

#[test]
fn one_plan_is_recorded_in_an_object_store() {
    for (resume, refusal) in [(false, "holds an unfinished run"), (true, "different plan")] {
        let memory = Arc::new(InMemory::new());
        let open = || {
            Arc::new(ObjectScratch::new("memory://scratch", memory.clone()).unwrap())
                as Arc<dyn ScratchStore>
        };
        check(&open, resume, refusal);
    }
}
