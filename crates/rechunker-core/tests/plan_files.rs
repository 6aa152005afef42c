//! Plan files are input: a damaged or edited plan is refused with a message naming the array and
//! what is wrong, never a panic, and a plan made for other data is refused against the source.
//! The fuzz test mutates a real plan's JSON and runs every plan the checks let through.

mod common;

use common::random_bytes;
use proptest::prelude::*;
use rechunker_core::array::{ChunkedArray, ChunkedArrayMut, DatasetSource, DatasetTarget};
use rechunker_core::executor::{Executor, ExecutorOptions, NoProgress, Shard};
use rechunker_core::grid::{ChunkGrid, DimGrid};
use rechunker_core::job::{self, DatasetPlan, JobOptions};
use rechunker_core::mem::MemArray;
use rechunker_core::meta::{ArrayMeta, DatasetMeta};
use rechunker_core::planner::{CostModel, Plan, Stage};
use rechunker_core::scratch::{LocalScratch, ScratchCodec, ScratchStore};
use rechunker_core::{DataType, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// An in-memory dataset.
struct MemDataset {
    meta: DatasetMeta,
    arrays: Vec<Arc<MemArray>>,
}

impl MemDataset {
    /// `tas` (two stages under the test budget), a coordinate, and an array whose source grid
    /// is explicit along time, as a NetCDF archive's is.
    fn new() -> Self {
        let mut pr = ArrayMeta::regular(
            "pr",
            &["time", "lat"],
            DataType::Float64,
            &[48, 12],
            &[1, 12],
        );
        pr.grid = ChunkGrid::new(vec![
            DimGrid::from_lengths([10, 14, 24]),
            DimGrid::regular(12, 12),
        ]);
        let metas = vec![
            ArrayMeta::regular(
                "tas",
                &["time", "lat", "lon"],
                DataType::Float32,
                &[48, 12, 16],
                &[1, 12, 16],
            ),
            ArrayMeta::regular("time", &["time"], DataType::Int64, &[48], &[48]),
            pr,
        ];
        let arrays = metas
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let data = random_bytes(m.num_bytes() as usize, i as u64 + 3);
                Arc::new(MemArray::new(m.clone(), Some(data)))
            })
            .collect();
        MemDataset {
            meta: DatasetMeta {
                arrays: metas,
                attrs: Default::default(),
            },
            arrays,
        }
    }
}

impl DatasetSource for MemDataset {
    fn location(&self) -> &str {
        "mem://source"
    }

    fn meta(&self) -> &DatasetMeta {
        &self.meta
    }

    fn open_array(&self, name: &str) -> Result<Arc<dyn ChunkedArray>> {
        let i = self.meta.arrays.iter().position(|a| a.name == name);
        match i {
            Some(i) => Ok(self.arrays[i].clone()),
            None => Err(rechunker_core::Error::Invalid(format!("no array `{name}`"))),
        }
    }
}

/// A target that keeps its arrays in memory; reopening an array returns the same one.
#[derive(Default)]
struct MemTarget {
    arrays: Mutex<HashMap<String, Arc<MemArray>>>,
}

impl DatasetTarget for MemTarget {
    fn location(&self) -> &str {
        "mem://target"
    }

    fn create_array(&self, meta: &ArrayMeta) -> Result<Arc<dyn ChunkedArrayMut>> {
        let mut arrays = self.arrays.lock().unwrap();
        let array = arrays
            .entry(meta.name.clone())
            .or_insert_with(|| Arc::new(MemArray::new(meta.clone(), None)));
        Ok(array.clone())
    }

    fn finalize(&self, _meta: &DatasetMeta) -> Result<()> {
        Ok(())
    }
}

fn options() -> JobOptions {
    JobOptions {
        chunks: "time=-1,lat=4,lon=4".parse().unwrap(),
        max_mem: (1 << 10) + 16_000,
        memory_reserve: 1 << 10,
        threads: 2,
        min_io: 1 << 20,
        cost: CostModel::default(),
    }
}

/// A real plan of the test dataset, and its JSON.
fn base() -> &'static (DatasetPlan, String) {
    static BASE: OnceLock<(DatasetPlan, String)> = OnceLock::new();
    BASE.get_or_init(|| {
        let plan =
            job::plan_dataset(&MemDataset::new(), &MemTarget::default(), &options()).unwrap();
        let tas = &plan.arrays[0];
        assert!(tas.plan.stages.len() >= 2, "{:#?}", tas.plan.summary());
        let text = plan.to_json();
        (plan, text)
    })
}

/// The base plan's JSON with `edit` applied to it.
fn edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(&base().1).unwrap();
    edit(&mut value);
    serde_json::to_string_pretty(&value).unwrap()
}

fn refused(edit: impl FnOnce(&mut Value), fragments: &[&str]) {
    let err = DatasetPlan::from_json(&edited(edit)).unwrap_err();
    for f in fragments {
        assert!(err.contains(f), "the error should mention `{f}`: {err}");
    }
}

fn at<'a>(v: &'a mut Value, pointer: &str) -> &'a mut Value {
    v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the plan"))
}

#[test]
fn the_base_plan_round_trips_and_passes() {
    let (plan, text) = base();
    let back = DatasetPlan::from_json(text).unwrap();
    assert_eq!(back.to_json(), *text);
    plan.check().unwrap();
    plan.check_source(&MemDataset::new().meta).unwrap();
}

#[test]
fn damaged_plans_are_refused_with_the_array_and_the_fault() {
    let tas = "/arrays/0";
    // The panics of issue #11: a zero block extent divided by.
    refused(
        |v| *at(v, &format!("{tas}/plan/stages/0/blocks/0/regular/chunk")) = 0.into(),
        &["`tas`", "length 0"],
    );
    refused(
        |v| *at(v, &format!("{tas}/target/grid/1/regular/chunk")) = 0.into(),
        &["`tas`", "length 0"],
    );
    refused(
        |v| *at(v, "/arrays/2/plan/source/0/explicit/bounds/1") = 0.into(),
        &["`pr`", "do not increase"],
    );
    // An empty stage list was reported done without writing the array.
    refused(
        |v| *at(v, &format!("{tas}/plan/stages")) = Value::Array(vec![]),
        &["`tas`", "no stages"],
    );
    refused(|v| *at(v, "/threads") = 0.into(), &["threads is 0"]);
    refused(
        |v| *at(v, "/max_mem") = 0.into(),
        &["max_mem", "memory_reserve"],
    );
    refused(
        |v| *at(v, &format!("{tas}/plan/item_size")) = 8.into(),
        &["`tas`", "item size 8", "float32"],
    );
    // Grid lengths that do not add up to the array's shape.
    refused(
        |v| *at(v, &format!("{tas}/plan/source/0/regular/len")) = 47.into(),
        &["`tas`", "covers"],
    );
    refused(
        |v| *at(v, &format!("{tas}/target/grid/0/regular/len")) = 47.into(),
        &["`tas`", "covers"],
    );
    // The target's chunks must make up the plan's write units.
    refused(
        |v| *at(v, &format!("{tas}/target/grid/2/regular/chunk")) = 16.into(),
        &["`tas`", "whole target chunks [48, 4, 16]"],
    );
    refused(
        |v| {
            at(v, &format!("{tas}/target/dims"))
                .as_array_mut()
                .unwrap()
                .pop();
        },
        &["`tas`", "dimension names"],
    );
    refused(
        |v| {
            at(v, &format!("{tas}/plan/stages/0/blocks"))
                .as_array_mut()
                .unwrap()
                .pop();
        },
        &["`tas`", "stage 0 block grid has 2 dimensions"],
    );
    // Stage 0 must read whole source chunks (lat is one chunk of 12), the last stage write whole
    // target chunks (lat chunks of 4).
    refused(
        |v| *at(v, &format!("{tas}/plan/stages/0/blocks/1/regular/chunk")) = 5.into(),
        &["`tas`", "whole source chunks"],
    );
    let last = base().0.arrays[0].plan.stages.len() - 1;
    refused(
        |v| {
            *at(
                v,
                &format!("{tas}/plan/stages/{last}/blocks/1/regular/chunk"),
            ) = 6.into()
        },
        &["`tas`", "whole target chunks"],
    );
    // Memory: blocks within their stage's task memory, that within the budget, the budget
    // times the tasks at once within max_mem.
    refused(
        |v| *at(v, &format!("{tas}/plan/stages/0/task_memory")) = 1.into(),
        &["`tas`", "stage 0", "does not fit"],
    );
    refused(
        |v| *at(v, &format!("{tas}/plan/stages/0/task_memory")) = (1u64 << 40).into(),
        &["`tas`", "budget"],
    );
    refused(
        |v| *at(v, &format!("{tas}/plan/task_budget")) = (1u64 << 40).into(),
        &["`tas`", "leaves for data"],
    );
    refused(
        |v| *at(v, &format!("{tas}/parallelism")) = 3.into(),
        &["`tas`", "parallelism 3"],
    );
    refused(
        |v| *at(v, &format!("{tas}/parallelism")) = 0.into(),
        &["parallelism 0"],
    );
    refused(
        |v| {
            let arrays = at(v, "/arrays").as_array_mut().unwrap();
            let again = arrays[1].clone();
            arrays.push(again);
        },
        &["`time`", "twice"],
    );
    // Wrong types and truncation are parse errors, as before.
    refused(|v| *at(v, "/threads") = (-1).into(), &["malformed"]);
    let text = &base().1;
    assert!(DatasetPlan::from_json(&text[..text.len() / 2])
        .unwrap_err()
        .contains("not a plan file"));
}

#[test]
fn plans_for_other_data_are_refused_against_the_source() {
    let plan = &base().0;
    let check = |edit: &dyn Fn(&mut DatasetMeta)| {
        let mut meta = MemDataset::new().meta;
        edit(&mut meta);
        plan.check_source(&meta).unwrap_err()
    };
    let e = check(&|m| m.arrays[0].dtype = DataType::Float64);
    assert!(
        e.contains("`tas`") && e.contains("float64") && e.contains("float32"),
        "{e}"
    );
    let e = check(&|m| m.arrays[0].grid = ChunkGrid::regular(&[40, 12, 16], &[1, 12, 16]));
    assert!(
        e.contains("`tas`") && e.contains("shape [40, 12, 16]"),
        "{e}"
    );
    let e = check(&|m| m.arrays[0].grid = ChunkGrid::regular(&[48, 12, 16], &[2, 12, 16]));
    assert!(
        e.contains("`tas`") && e.contains("chunks [2, 12, 16]"),
        "{e}"
    );
    let e = check(&|m| m.arrays[2].grid.dims[0] = DimGrid::from_lengths([10, 10, 28]));
    assert!(e.contains("`pr`") && e.contains("chunks"), "{e}");
    let e = check(&|m| {
        m.arrays.remove(1);
    });
    assert!(e.contains("no array `time`"), "{e}");
    let e = check(&|m| m.arrays[1].name = "t".into());
    assert!(e.contains("`time`") && e.contains("`t`"), "{e}");
}

#[test]
fn sizes_past_64_bits_are_refused_not_wrapped() {
    let shape = [1u64 << 40, 1 << 30];
    let grid = ChunkGrid::regular(&shape, &[1 << 20, 1 << 20]);
    let plan = Plan {
        item_size: 8,
        source: grid.clone(),
        target: grid.clone(),
        task_budget: u64::MAX,
        stages: vec![Stage {
            blocks: grid,
            task_memory: u64::MAX,
        }],
        task_threads: 1,
        source_prefetch: 0,
    };
    let e = plan.check().unwrap_err();
    assert!(e.contains("16 EiB"), "{e}");
    // An empty dimension does not hide the product of the others.
    let shape = [u64::MAX, u64::MAX, 0];
    let grid = ChunkGrid::regular(&shape, &[1, 1, 1]);
    let plan = Plan {
        item_size: 1,
        source: grid.clone(),
        target: grid.clone(),
        task_budget: 1,
        stages: vec![Stage {
            blocks: grid,
            task_memory: 1,
        }],
        task_threads: 1,
        source_prefetch: 0,
    };
    assert!(plan.check().unwrap_err().contains("16 EiB"));
}

/// One change to a plan's JSON.
#[derive(Clone, Debug)]
enum Mutation {
    /// The `n`-th number (mod their count) becomes `value`.
    Number(usize, Value),
    /// ... is multiplied by `mul` and divided by `div`: a plausible, often consistent, value.
    Scale(usize, u64, u64),
    /// The `n`-th element of all arrays' elements (mod their count) is deleted.
    Delete(usize),
    /// ... or inserted again next to itself.
    Duplicate(usize),
    /// The text is cut at `n` (mod its length).
    Truncate(usize),
    /// Bytes at `n` (mod the length) are overwritten.
    Bytes(usize, Vec<u8>),
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::from(0u64)),
        Just(Value::from(1u64)),
        Just(Value::from(u64::MAX)),
        Just(Value::from(u64::MAX / 2 + 1)),
        Just(Value::from(1u64 << 32)),
        Just(Value::from(-1i64)),
        Just(Value::from(0.5f64)),
        (0u64..100).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), number()).prop_map(|(n, v)| Mutation::Number(n, v)),
        3 => (any::<usize>(), 1u64..4, 1u64..4).prop_map(|(n, m, d)| Mutation::Scale(n, m, d)),
        2 => any::<usize>().prop_map(Mutation::Delete),
        2 => any::<usize>().prop_map(Mutation::Duplicate),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(n, b)| Mutation::Bytes(n, b)),
    ]
}

/// JSON pointers of every number, and of every element of every array, in `v`.
fn paths(v: &Value, here: String, numbers: &mut Vec<String>, elements: &mut Vec<String>) {
    match v {
        Value::Number(_) => numbers.push(here),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                elements.push(format!("{here}/{i}"));
                paths(item, format!("{here}/{i}"), numbers, elements);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                paths(item, format!("{here}/{key}"), numbers, elements);
            }
        }
        _ => {}
    }
}

fn mutate(mutations: &[Mutation]) -> String {
    let mut value: Value = serde_json::from_str(&base().1).unwrap();
    for m in mutations {
        let (mut numbers, mut elements) = (Vec::new(), Vec::new());
        paths(&value, String::new(), &mut numbers, &mut elements);
        match m {
            Mutation::Number(n, new) if !numbers.is_empty() => {
                *value.pointer_mut(&numbers[n % numbers.len()]).unwrap() = new.clone();
            }
            Mutation::Scale(n, mul, div) if !numbers.is_empty() => {
                let slot = value.pointer_mut(&numbers[n % numbers.len()]).unwrap();
                if let Some(x) = slot.as_u64() {
                    *slot = (x.saturating_mul(*mul) / div).into();
                }
            }
            Mutation::Delete(n) | Mutation::Duplicate(n) if !elements.is_empty() => {
                let path = &elements[n % elements.len()];
                let (parent, index) = path.rsplit_once('/').unwrap();
                let index: usize = index.parse().unwrap();
                let items = value.pointer_mut(parent).unwrap().as_array_mut().unwrap();
                if matches!(m, Mutation::Delete(_)) {
                    items.remove(index);
                } else {
                    let again = items[index].clone();
                    items.insert(index, again);
                }
            }
            _ => {}
        }
    }
    let mut bytes = serde_json::to_string_pretty(&value).unwrap().into_bytes();
    for m in mutations {
        match m {
            Mutation::Truncate(n) => bytes.truncate(n % (bytes.len() + 1)),
            Mutation::Bytes(n, new) if !bytes.is_empty() => {
                let at = n % bytes.len();
                for (i, b) in new.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Plans that pass every check are run (the first few of them), to show the checks let
/// through only plans that copy correctly.
static RUNS: AtomicUsize = AtomicUsize::new(0);
const MAX_RUNS: usize = 24;

/// What the CLI does with a plan it loaded: status, stage barriers, task regions, pieces,
/// summary, and (when it fits the source) a run.
fn exercise(plan: &DatasetPlan) -> std::result::Result<(), TestCaseError> {
    plan.check().map_err(TestCaseError::fail)?;
    let text = plan.to_json();
    let again = DatasetPlan::from_json(&text).map_err(TestCaseError::fail)?;
    prop_assert_eq!(again.to_json(), text);
    let _ = plan.target_meta();

    let dir = tempfile::tempdir().unwrap();
    let scratch = LocalScratch::open(dir.path()).unwrap();
    for key in [
        "arrays/0/journal/0/0",
        "arrays/0/journal/0/123456789",
        "arrays/1/journal/0/x",
    ] {
        scratch.put(key, b"").unwrap();
    }
    for stage in 0..plan.num_stages() {
        for st in job::stage_status(plan, &scratch, stage).unwrap() {
            prop_assert!(st.done <= st.tasks && st.missing.len() <= 10);
        }
    }
    let _ = job::check_previous_stages(plan, &scratch, plan.num_stages());

    for a in &plan.arrays {
        let p = &a.plan;
        let shape = p.shape();
        for stage in 0..p.stages.len() {
            let n = p.num_tasks(stage);
            let shard = Shard { index: 1, count: 3 };
            prop_assert!(shard.len(n) <= n);
            let mut tasks = vec![0, n / 2, n.saturating_sub(1)];
            tasks.dedup();
            for task in tasks.into_iter().filter(|&t| t < n) {
                let region = p.task_region(stage, task);
                for ((start, len), dim) in region.start.iter().zip(&region.shape).zip(&shape) {
                    prop_assert!(start.checked_add(*len).is_some_and(|e| e <= *dim));
                }
                // Pieces on either side, where there are not too many to list.
                let boundaries = [
                    stage.checked_sub(1),
                    (stage + 1 < p.stages.len()).then_some(stage),
                ];
                for b in boundaries.into_iter().flatten() {
                    let count: u64 = (0..shape.len())
                        .map(|d| {
                            let r = region.start[d]..region.start[d] + region.shape[d];
                            let (x, y) =
                                (&p.stages[b].blocks.dims[d], &p.stages[b + 1].blocks.dims[d]);
                            let (cx, cy) =
                                (x.chunks_overlapping(r.clone()), y.chunks_overlapping(r));
                            (cx.end - cx.start).saturating_add(cy.end - cy.start)
                        })
                        .fold(1u64, |acc, c| acc.saturating_mul(c));
                    if count <= 10_000 {
                        for piece in p.pieces_in(b, &region) {
                            prop_assert!(region.contains(&piece));
                        }
                    }
                }
            }
        }
        let finest = std::iter::once(&p.source)
            .chain(std::iter::once(&p.target))
            .chain(p.stages.iter().map(|s| &s.blocks))
            .flat_map(|g| g.dims.iter().map(DimGrid::num_chunks))
            .max()
            .unwrap_or(0);
        if finest <= 1_000_000 {
            let _ = p.summary();
            let _ = p.seconds(&CostModel::default(), a.parallelism);
        }
    }

    let source = MemDataset::new();
    if plan.check_source(&source.meta).is_ok() && RUNS.fetch_add(1, Ordering::SeqCst) < MAX_RUNS {
        let target = MemTarget::default();
        let executor = Executor::new(
            ExecutorOptions {
                threads: 2,
                task_memory: plan.max_mem - plan.memory_reserve,
                codec: ScratchCodec::Lz4,
                fail_task: None,
            },
            Arc::new(LocalScratch::open(dir.path().join("run")).unwrap()),
            Arc::new(NoProgress),
        )
        .unwrap();
        job::run_dataset(plan, &source, &target, &executor, false).map_err(|e| {
            TestCaseError::fail(format!("a plan that passed its checks failed: {e}"))
        })?;
        let written = target.arrays.lock().unwrap();
        for (meta, array) in source.meta.arrays.iter().zip(&source.arrays) {
            let copy = written.get(&meta.name).map(|a| a.data());
            prop_assert!(
                copy == Some(array.data()),
                "`{}` was not copied exactly",
                meta.name
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, max_shrink_iters: 256, ..ProptestConfig::default() })]

    /// Mutated plan files load or fail with a message; none panics, in loading or in what the
    /// CLI does with a loaded plan.
    #[test]
    fn mutated_plan_files_never_panic(mutations in prop::collection::vec(mutation(), 1..4)) {
        let text = mutate(&mutations);
        match DatasetPlan::from_json(&text) {
            Ok(plan) => exercise(&plan)?,
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }
}
