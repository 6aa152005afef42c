//! Property tests of the executor: random small arrays of every data type are planned and copied
//! between in-memory arrays through a local scratch directory; the target must equal the source
//! byte for byte, with every target chunk written whole, once. Deterministic tests interrupt runs
//! with an injected failure and check that a resumed run redoes no journaled task, and that the
//! memory budget bounds how many tasks run at once.

mod common;

use common::{files, random_bytes};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};
use rechunker_core::array::{ChunkedArray, ChunkedArrayMut};
use rechunker_core::executor::{ArrayJob, Executor, ExecutorOptions, NoProgress};
use rechunker_core::grid::{ChunkGrid, DimGrid};
use rechunker_core::mem::MemArray;
use rechunker_core::meta::{ArrayMeta, Attributes};
use rechunker_core::planner::{self, CostModel, Plan, PlanRequest, Stage};
use rechunker_core::region::{ravel, unravel, Region};
use rechunker_core::scratch::{LocalScratch, ScratchCodec};
use rechunker_core::{DataType, Error, Scalar};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Arrays are cut down to at most this many elements: every piece is a file in the scratch store.
const MAX_ELEMENTS: u64 = 8192;

fn meta(dtype: DataType, grid: ChunkGrid) -> ArrayMeta {
    ArrayMeta {
        name: "v".into(),
        dims: (0..grid.ndim()).map(|d| format!("dim_{d}")).collect(),
        dtype,
        grid,
        // A fill value that random data rarely matches everywhere, so unwritten chunks show.
        fill_value: Some(Scalar::Int(1)),
        attrs: Attributes::default(),
        codecs: Vec::new(),
        encoding: None,
        unlimited_dims: Vec::new(),
    }
}

/// A source that records every region read from it and how many reads overlapped in time.
struct CountingSource {
    array: MemArray,
    reads: Mutex<Vec<Region>>,
    /// Each read takes at least this long, so that concurrent tasks overlap visibly.
    delay: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl CountingSource {
    fn new(array: MemArray, delay: Duration) -> Self {
        CountingSource {
            array,
            reads: Mutex::new(Vec::new()),
            delay,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    fn reads(&self) -> Vec<Region> {
        self.reads.lock().unwrap().clone()
    }
}

impl ChunkedArray for CountingSource {
    fn meta(&self) -> &ArrayMeta {
        self.array.meta()
    }

    fn read_region(&self, region: &Region, out: &mut [u8]) -> rechunker_core::Result<()> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        self.reads.lock().unwrap().push(region.clone());
        std::thread::sleep(self.delay);
        let result = self.array.read_region(region, out);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn read_overhead(&self) -> u64 {
        self.array.read_overhead()
    }
}

/// A scratch directory for one run. Every piece is a file, and on this project's machines a file
/// create + rename on disk costs about a millisecond, so the random cases use a RAM-backed
/// directory where there is one (the resume tests use the ordinary temporary directory).
fn fast_tempdir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("rechunker-test-")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

fn executor(
    dir: &std::path::Path,
    threads: usize,
    codec: ScratchCodec,
    task_memory: u64,
    fail_task: Option<(usize, u64)>,
) -> Executor {
    let scratch = Arc::new(LocalScratch::open(dir).unwrap());
    let options = ExecutorOptions {
        threads,
        task_memory,
        codec,
        fail_task,
    };
    Executor::new(options, scratch, Arc::new(NoProgress)).unwrap()
}

fn job<'a>(plan: &'a Plan, source: &'a dyn ChunkedArray, target: &'a MemArray) -> ArrayJob<'a> {
    ArrayJob {
        name: "v",
        scratch_prefix: "arrays/0/".into(),
        plan,
        source,
        target,
    }
}

/// Linear index of the chunk of `grid` that starts at `chunk.start`.
fn chunk_index(grid: &ChunkGrid, chunk: &Region) -> usize {
    let index: Vec<u64> = chunk
        .start
        .iter()
        .zip(&grid.dims)
        .map(|(&x, g)| g.chunk_of(x))
        .collect();
    ravel(&index, &grid.grid_shape()) as usize
}

/// How often each target chunk was written, checking that every write is a union of whole
/// target chunks.
fn target_chunk_writes(grid: &ChunkGrid, writes: &[Region]) -> Result<Vec<u32>, TestCaseError> {
    let mut counts = vec![0u32; grid.num_chunks() as usize];
    for w in writes {
        prop_assert!(!w.is_empty(), "empty write {}", w);
        prop_assert!(
            grid.is_aligned(w),
            "write {} is not aligned to the target chunks",
            w
        );
        for chunk in grid.chunk_regions_overlapping(w) {
            prop_assert!(
                w.contains(&chunk),
                "write {} cuts target chunk {}",
                w,
                chunk
            );
            counts[chunk_index(grid, &chunk)] += 1;
        }
    }
    Ok(counts)
}

/// Fails unless every target chunk was written exactly once.
fn check_each_chunk_once(grid: &ChunkGrid, writes: &[Region]) -> Result<(), TestCaseError> {
    let counts = target_chunk_writes(grid, writes)?;
    if let Some(i) = counts.iter().position(|&n| n != 1) {
        let chunk = grid.chunk_region_linear(i as u64);
        prop_assert!(
            false,
            "target chunk {} was written {} times",
            chunk,
            counts[i]
        );
    }
    Ok(())
}

/// Fails with the first differing element when the copy is not exact.
fn check_equal(got: &[u8], want: &[u8], shape: &[u64], item: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        let element = unravel((i / item) as u64, shape);
        prop_assert!(
            false,
            "element {:?} differs: {:?} instead of {:?}",
            element,
            got[i],
            want[i]
        );
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum GridSpec {
    /// A regular chunk length, taken as is (it may exceed the dimension).
    Regular(u64),
    /// One chunk over the whole dimension.
    Full,
    /// Chunk lengths, repeated until they cover the dimension (rectilinear).
    Explicit(Vec<u64>),
}

impl GridSpec {
    fn grid(&self, len: u64) -> DimGrid {
        match self {
            GridSpec::Regular(c) => DimGrid::regular(len, *c),
            GridSpec::Full => DimGrid::regular(len, len),
            GridSpec::Explicit(lengths) => {
                let (mut out, mut covered) = (Vec::new(), 0);
                for &l in lengths.iter().cycle() {
                    if covered >= len {
                        break;
                    }
                    out.push(l.min(len - covered));
                    covered += l.min(len - covered);
                }
                DimGrid::from_lengths(out)
            }
        }
    }
}

fn grid_spec() -> impl Strategy<Value = GridSpec> {
    prop_oneof![
        3 => (1..=4u64).prop_map(GridSpec::Regular),
        3 => (1..=24u64).prop_map(GridSpec::Regular),
        1 => Just(GridSpec::Full),
        1 => prop::collection::vec(1..=6u64, 1..=4).prop_map(GridSpec::Explicit),
    ]
}

/// Shape, source and target chunkings.
type Shapes = (Vec<u64>, Vec<GridSpec>, Vec<GridSpec>);

/// Independent random shapes and chunkings of rank 0 to 4 (some with empty dimensions).
fn random_shapes() -> impl Strategy<Value = Shapes> {
    (0..=4usize).prop_flat_map(|ndim| {
        (
            prop::collection::vec(prop_oneof![1 => Just(0u64), 25 => 1..=32u64], ndim),
            prop::collection::vec(grid_spec(), ndim),
            prop::collection::vec(grid_spec(), ndim),
        )
    })
}

/// Reshapes of rank 2 or 3: per dimension small chunks on one side and the whole dimension on
/// the other, which the planner copies through scratch pieces.
fn reshape_shapes() -> impl Strategy<Value = Shapes> {
    (2..=3usize).prop_flat_map(|ndim| {
        (
            prop::collection::vec(12..=40u64, ndim),
            prop::collection::vec((any::<bool>(), 1..=3u64), ndim),
        )
            .prop_map(|(lens, dims)| {
                let (source, target) = dims
                    .into_iter()
                    .map(|(flip, c)| {
                        if flip {
                            (GridSpec::Full, GridSpec::Regular(c))
                        } else {
                            (GridSpec::Regular(c), GridSpec::Full)
                        }
                    })
                    .unzip();
                (lens, source, target)
            })
    })
}

#[derive(Clone, Debug)]
struct Case {
    lens: Vec<u64>,
    source: Vec<GridSpec>,
    target: Vec<GridSpec>,
    dtype: DataType,
    seed: u64,
    /// Budget above the minimum, in quarters of it.
    budget_quarters: u64,
    min_io: u64,
    /// When set, an intermediate stage of these blocks (fitted to the array) is inserted before
    /// the last stage, so that piece exchange runs on every kind of array.
    extra_stage: Option<Vec<u64>>,
    threads: usize,
    codec: ScratchCodec,
    /// Executor memory in multiples of the largest task reservation (1: one task at a time).
    memory_factor: u64,
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![2 => random_shapes(), 1 => reshape_shapes()]
        .prop_flat_map(|(lens, source, target)| {
            let ndim = lens.len();
            (
                Just((lens, source, target)),
                prop::option::weighted(0.3, prop::collection::vec(1..=12u64, ndim)),
                prop::sample::select(DataType::ALL.to_vec()),
                any::<u64>(),
                0..=6u64,
                prop::sample::select(vec![0u64, 64, 1 << 30]),
                1..=3usize,
                prop::sample::select(vec![ScratchCodec::None, ScratchCodec::Lz4]),
                1..=3u64,
            )
        })
        .prop_map(
            |(
                (lens, source, target),
                extra_stage,
                dtype,
                seed,
                budget_quarters,
                min_io,
                threads,
                codec,
                memory_factor,
            )| Case {
                lens,
                source,
                target,
                dtype,
                seed,
                budget_quarters,
                min_io,
                extra_stage,
                threads,
                codec,
                memory_factor,
            },
        )
}

fn fit_shape(mut lens: Vec<u64>) -> Vec<u64> {
    while lens.iter().product::<u64>() > MAX_ELEMENTS {
        let d = (0..lens.len()).max_by_key(|&d| lens[d]).unwrap();
        lens[d] = lens[d].div_ceil(2);
    }
    lens
}

/// Inserts an intermediate stage of regular `block` blocks before the last stage.
fn with_extra_stage(mut plan: Plan, block: &[u64]) -> Plan {
    let shape = plan.shape();
    let block: Vec<u64> = block
        .iter()
        .zip(&shape)
        .map(|(&b, &l)| b.min(l.max(1)))
        .collect();
    let task_memory = plan.stages.iter().map(|s| s.task_memory).max().unwrap_or(0);
    let at = plan.stages.len() - 1;
    plan.stages.insert(
        at,
        Stage {
            blocks: ChunkGrid::regular(&shape, &block),
            task_memory,
        },
    );
    plan
}

/// The arrays and the planner's plan of a case (before any extra stage).
fn setup(c: &Case) -> (MemArray, MemArray, Plan) {
    let shape = fit_shape(c.lens.clone());
    let source_grid = ChunkGrid::new(
        shape
            .iter()
            .zip(&c.source)
            .map(|(&l, s)| s.grid(l))
            .collect(),
    );
    let target_grid = ChunkGrid::new(
        shape
            .iter()
            .zip(&c.target)
            .map(|(&l, s)| s.grid(l))
            .collect(),
    );
    let len = shape.iter().product::<u64>() as usize * c.dtype.size();
    let source = MemArray::new(
        meta(c.dtype, source_grid.clone()),
        Some(random_bytes(len, c.seed)),
    );
    let target = MemArray::new(meta(c.dtype, target_grid.clone()), None);
    let mut req = PlanRequest {
        item_size: c.dtype.size() as u64,
        source: source_grid,
        target: target_grid,
        task_budget: 0,
        source_read_overhead: source.read_overhead(),
        target_write_overhead: target.write_overhead(),
        source_prefetch: 0,
        min_io: c.min_io,
        parallelism: c.threads as u64,
        task_threads: 1 + c.seed % c.threads as u64,
        cost: CostModel::default(),
    };
    let min = planner::minimum_task_budget(&req);
    req.task_budget = min + min * c.budget_quarters / 4;
    let plan = planner::plan(&req).unwrap_or_else(|e| panic!("{e}\n{req:#?}"));
    (source, target, plan)
}

fn run_case(c: &Case) -> Result<(), TestCaseError> {
    let (source, target, mut plan) = setup(c);
    if let Some(block) = &c.extra_stage {
        plan = with_extra_stage(plan, block);
    }
    let max_task = plan.stages.iter().map(|s| s.task_memory).max().unwrap_or(0);
    let dir = fast_tempdir();
    let exec = executor(
        dir.path(),
        c.threads,
        c.codec,
        max_task * c.memory_factor,
        None,
    );
    let job = job(&plan, &source, &target);
    let reports = exec
        .run_array(&job)
        .map_err(|e| TestCaseError::fail(format!("run failed: {e}\n{plan:#?}")))?;

    prop_assert_eq!(reports.len(), plan.stages.len());
    for (k, r) in reports.iter().enumerate() {
        prop_assert_eq!(
            r.tasks_run,
            plan.num_tasks(k),
            "stage {} ran {} tasks",
            k,
            r.tasks_run
        );
        prop_assert_eq!(r.tasks_skipped, 0);
        let journaled = exec.finished_tasks(&job, k).unwrap();
        prop_assert_eq!(
            journaled,
            (0..plan.num_tasks(k)).collect::<HashSet<u64>>(),
            "journal of stage {}",
            k
        );
    }
    check_equal(
        &target.data(),
        &source.data(),
        &plan.shape(),
        c.dtype.size(),
    )?;
    let writes = target.writes();
    prop_assert_eq!(
        writes.len() as u64,
        plan.num_tasks(plan.stages.len() - 1),
        "target writes"
    );
    check_each_chunk_once(&plan.target, &writes)
}

proptest! {
    // Failing cases are slow to shrink (every piece is a file), so shrinking is capped.
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 64, ..ProptestConfig::default() })]

    /// Planned copies of random arrays of every data type, through one to four stages, on one to
    /// three threads, with and without scratch compression, reproduce the source exactly and
    /// write every target chunk whole, once.
    #[test]
    fn copies_are_exact_and_write_each_target_chunk_once(c in case()) {
        run_case(&c)?;
    }
}

/// The random cases are not all trivial: the planner's own plans go through scratch pieces in a
/// good share of them, and every kind of array occurs.
#[test]
fn random_cases_cover_staged_plans() {
    let mut runner = TestRunner::deterministic();
    let (mut staged, mut multi_task, mut scalar, mut empty, mut explicit) = (0, 0, 0, 0, 0);
    let mut dtypes = HashSet::new();
    for _ in 0..256 {
        let c = case().new_tree(&mut runner).unwrap().current();
        let (_, _, plan) = setup(&c);
        staged += usize::from(plan.stages.len() >= 2);
        multi_task += usize::from(plan.total_tasks() >= 4);
        scalar += usize::from(plan.ndim() == 0);
        empty += usize::from(plan.array_bytes() == 0);
        explicit += usize::from(
            plan.source
                .dims
                .iter()
                .any(|d| matches!(d, DimGrid::Explicit { .. })),
        );
        dtypes.insert(c.dtype);
    }
    assert!(
        staged >= 25,
        "only {staged} of 256 plans have two or more stages"
    );
    assert!(
        multi_task >= 60,
        "only {multi_task} of 256 plans have four or more tasks"
    );
    assert!(
        scalar > 0 && empty > 0 && explicit > 0,
        "{scalar} 0-d, {empty} empty, {explicit} rectilinear"
    );
    assert_eq!(dtypes.len(), DataType::ALL.len());
}

/// Interrupts a run of `plan` at task `fail_task` of `fail_stage`, resumes it in a new executor
/// on the same scratch directory, and checks that no task journaled by the first run runs again
/// and that the result is exact.
fn interrupt_and_resume(
    plan: &Plan,
    dtype: DataType,
    fail_stage: usize,
    threads: usize,
    codec: ScratchCodec,
) {
    let n = plan.stages.len();
    let last = n - 1;
    let tasks: Vec<u64> = (0..n).map(|k| plan.num_tasks(k)).collect();
    assert!(tasks.iter().all(|&t| t >= 4), "{tasks:?}");
    let fail_task = tasks[fail_stage] / 2;
    let data = random_bytes(plan.array_bytes() as usize, 42);
    let source = CountingSource::new(
        MemArray::new(meta(dtype, plan.source.clone()), Some(data.clone())),
        Duration::ZERO,
    );
    let target = MemArray::new(meta(dtype, plan.target.clone()), None);
    let memory = plan.task_budget * 2;
    let dir = tempfile::tempdir().unwrap();
    let job = job(plan, &source, &target);

    // First run: stops at the injected failure.
    let first = executor(
        dir.path(),
        threads,
        codec,
        memory,
        Some((fail_stage, fail_task)),
    );
    let err = first.run_array(&job).unwrap_err();
    match &err {
        Error::Task {
            variable,
            stage,
            task,
            region,
            ..
        } => {
            assert_eq!(
                (variable.as_str(), *stage, *task),
                ("v", fail_stage, fail_task),
                "{err}"
            );
            assert_eq!(region, &plan.task_region(fail_stage, fail_task));
        }
        other => panic!("expected a task error, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("stage {fail_stage} task {fail_task}")),
        "{message}"
    );
    assert!(
        matches!(err.root(), Error::Invalid(m) if m.contains("injected")),
        "{message}"
    );
    let journal: Vec<HashSet<u64>> = (0..n)
        .map(|k| first.finished_tasks(&job, k).unwrap())
        .collect();
    drop(first);
    assert!(!journal[fail_stage].contains(&fail_task));
    if threads == 1 {
        // One worker runs a stage's tasks in order: those before the failing one are journaled.
        assert!(
            !journal[fail_stage].is_empty(),
            "no task of stage {fail_stage} finished before the failure"
        );
    }
    for k in 0..n {
        if k < fail_stage {
            assert_eq!(
                journal[k].len() as u64,
                tasks[k],
                "stage {k} is not complete"
            );
        } else if k > fail_stage {
            assert!(
                journal[k].is_empty(),
                "stage {k} ran after stage {fail_stage} failed"
            );
        }
    }
    // The journal records tasks whose output exists.
    let first_reads = source.reads();
    let first_writes = target.writes();
    assert!(journal[0]
        .iter()
        .all(|&t| first_reads.contains(&plan.task_region(0, t))));
    assert!(journal[last]
        .iter()
        .all(|&t| first_writes.contains(&plan.task_region(last, t))));

    // Second run: resumes, skips every journaled task and finishes.
    let second = executor(dir.path(), threads, codec, memory, None);
    let reports = second.run_array(&job).unwrap();
    for k in 0..n {
        let done = journal[k].len() as u64;
        assert_eq!(reports[k].tasks_skipped, done, "stage {k} skipped");
        assert_eq!(reports[k].tasks_run, tasks[k] - done, "stage {k} ran");
        assert_eq!(
            second.finished_tasks(&job, k).unwrap().len() as u64,
            tasks[k],
            "stage {k} journal"
        );
    }
    let reads = &source.reads()[first_reads.len()..];
    assert_eq!(reads.len() as u64, tasks[0] - journal[0].len() as u64);
    for t in &journal[0] {
        assert!(
            !reads.contains(&plan.task_region(0, *t)),
            "stage 0 task {t} read the source again"
        );
    }
    let writes = &target.writes()[first_writes.len()..];
    assert_eq!(
        writes.len() as u64,
        tasks[last] - journal[last].len() as u64
    );
    for t in &journal[last] {
        assert!(
            !writes.contains(&plan.task_region(last, *t)),
            "stage {last} task {t} wrote the target again"
        );
    }
    // Over both runs, every target chunk was written exactly once, and the copy is exact.
    check_each_chunk_once(&plan.target, &target.writes()).unwrap();
    assert!(
        target.data() == data,
        "the resumed copy differs from the source"
    );
}

/// The two-stage plan for `source` to `target` with a budget of 1.5 times the least workable.
fn squeezed_plan(item_size: u64, source: ChunkGrid, target: ChunkGrid) -> Plan {
    let mut req = common::request(item_size, source, target, 0);
    req.task_budget = planner::minimum_task_budget(&req) * 3 / 2;
    let plan = planner::plan(&req).unwrap();
    assert_eq!(plan.stages.len(), 2, "{:#?}", plan.summary());
    plan
}

/// A two-stage plan: time slices with a rectilinear second dimension to small time series.
fn two_stage_plan() -> Plan {
    let source = ChunkGrid::new(vec![
        DimGrid::regular(24, 1),
        DimGrid::from_lengths([7, 8, 5]),
        DimGrid::regular(16, 16),
    ]);
    squeezed_plan(2, source, ChunkGrid::regular(&[24, 20, 16], &[24, 4, 4]))
}

#[test]
fn resume_after_a_failure_in_the_last_stage_skips_journaled_tasks() {
    let plan = two_stage_plan();
    interrupt_and_resume(&plan, DataType::Int16, 1, 1, ScratchCodec::Lz4);
    interrupt_and_resume(&plan, DataType::Int16, 1, 2, ScratchCodec::None);
}

#[test]
fn resume_after_a_failure_in_the_first_stage_skips_journaled_tasks() {
    let plan = two_stage_plan();
    interrupt_and_resume(&plan, DataType::Int16, 0, 1, ScratchCodec::None);
    interrupt_and_resume(&plan, DataType::Int16, 0, 2, ScratchCodec::Lz4);
}

#[test]
fn resume_after_a_failure_in_a_middle_stage_skips_journaled_tasks() {
    let plan = with_extra_stage(two_stage_plan(), &[6, 5, 8]);
    interrupt_and_resume(&plan, DataType::Int16, 1, 1, ScratchCodec::Lz4);
    interrupt_and_resume(&plan, DataType::Int16, 1, 3, ScratchCodec::None);
}

/// Tasks start only while their reservations fit the executor's memory: with room for one task,
/// tasks run one at a time even on three threads; with room for two, at most two.
#[test]
fn memory_budget_bounds_concurrent_tasks() {
    let plan = two_stage_plan();
    let per_task = plan.stages[0].task_memory;
    assert!(plan.num_tasks(0) >= 6 && per_task > 0);
    let max_concurrent_reads = |memory: u64| {
        let data = random_bytes(plan.array_bytes() as usize, 7);
        let source = CountingSource::new(
            MemArray::new(
                meta(DataType::Int16, plan.source.clone()),
                Some(data.clone()),
            ),
            Duration::from_millis(3),
        );
        let target = MemArray::new(meta(DataType::Int16, plan.target.clone()), None);
        let dir = tempfile::tempdir().unwrap();
        executor(dir.path(), 3, ScratchCodec::Lz4, memory, None)
            .run_array(&job(&plan, &source, &target))
            .unwrap();
        assert!(target.data() == data);
        source.max_in_flight.load(Ordering::SeqCst)
    };
    assert_eq!(max_concurrent_reads(per_task), 1);
    assert!(max_concurrent_reads(2 * per_task + per_task / 2) <= 2);
    // Without a binding budget three threads do overlap, so the bounds above are not vacuous.
    assert!(max_concurrent_reads(100 * per_task) >= 2);
}

/// Time slices to series, with pieces whose contiguous runs inside their blocks are long
/// enough (64 KiB) to be written and read in place when the scratch codec is none.
fn long_run_plan() -> Plan {
    let shape = [8u64, 64, 1024];
    squeezed_plan(
        4,
        ChunkGrid::regular(&shape, &[1, 64, 1024]),
        ChunkGrid::regular(&shape, &[8, 16, 1024]),
    )
}

/// A two-stage plan whose pieces are several MiB of runs of 1031 floats: big enough for direct
/// I/O, aligned where the file system allows and with odd tails.
fn big_piece_plan() -> Plan {
    let shape = [16u64, 256, 1031];
    let req = common::request(
        4,
        ChunkGrid::regular(&shape, &[1, 256, 1031]),
        ChunkGrid::regular(&shape, &[16, 128, 1031]),
        40 << 20,
    );
    let plan = planner::plan(&req).unwrap();
    let pieces = plan.summary()[0].max_piece_bytes.unwrap_or(0);
    assert!(
        plan.stages.len() == 2 && pieces >= 1 << 20,
        "{:#?}",
        plan.summary()
    );
    plan
}

/// Raw pieces go through the in-place path: exact copies, damage detected (and the piece's
/// producer forgotten so it runs again), and pieces an lz4 run left behind still read. Small
/// pieces take the cached path, big ones direct I/O (where the temporary directory allows it).
#[test]
fn raw_pieces_in_place_are_exact_checked_and_read_compressed_leftovers() {
    for plan in [long_run_plan(), big_piece_plan()] {
        raw_pieces_round_trip(&plan);
    }
}

fn raw_pieces_round_trip(plan: &Plan) {
    let data = random_bytes(plan.array_bytes() as usize, 11);
    let source = MemArray::new(
        meta(DataType::Float32, plan.source.clone()),
        Some(data.clone()),
    );
    let memory = plan.task_budget * 2;
    for (first, second) in [
        (ScratchCodec::None, ScratchCodec::None),
        (ScratchCodec::Lz4, ScratchCodec::None),
    ] {
        let target = MemArray::new(meta(DataType::Float32, plan.target.clone()), None);
        let dir = tempfile::tempdir().unwrap();
        let job = job(plan, &source, &target);
        executor(dir.path(), 2, first, memory, None)
            .run_stage(&job, 0)
            .unwrap();
        executor(dir.path(), 2, second, memory, None)
            .run_stage(&job, 1)
            .unwrap();
        assert!(target.data() == data, "{first:?} then {second:?}");
        let leftovers: Vec<_> = files(&dir.path().join("arrays/0/pieces"));
        assert!(
            leftovers.is_empty(),
            "pieces outlived their reader: {leftovers:?}"
        );
    }

    let target = MemArray::new(meta(DataType::Float32, plan.target.clone()), None);
    let dir = tempfile::tempdir().unwrap();
    let job = job(plan, &source, &target);
    let run =
        |stage| executor(dir.path(), 1, ScratchCodec::None, memory, None).run_stage(&job, stage);
    run(0).unwrap();
    let piece = files(&dir.path().join("arrays/0/pieces"))
        .into_iter()
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&piece).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&piece, bytes).unwrap();
    let err = run(1).unwrap_err();
    assert!(
        matches!(err.root(), Error::LostPiece { what, .. } if what.contains("checksum")),
        "{err}"
    );
    run(0).unwrap();
    run(1).unwrap();
    assert!(target.data() == data);
}

/// A plan of one task still uses every thread it was given: the task's source chunks are read
/// side by side (slabs of whole chunks along the first dimension), and the result is exact.
#[test]
fn one_task_spreads_its_chunks_over_its_threads() {
    let shape = [12u64, 40, 30];
    let source_grid = ChunkGrid::regular(&shape, &[1, 40, 30]);
    let target_grid = ChunkGrid::regular(&shape, &[12, 8, 6]);
    let max_concurrent_reads = |task_threads: u64| {
        let data = random_bytes(shape.iter().product::<u64>() as usize * 2, 11);
        let source = CountingSource::new(
            MemArray::new(
                meta(DataType::Int16, source_grid.clone()),
                Some(data.clone()),
            ),
            Duration::from_millis(3),
        );
        let target = MemArray::new(meta(DataType::Int16, target_grid.clone()), None);
        let plan = planner::plan(&PlanRequest {
            item_size: 2,
            source: source_grid.clone(),
            target: target_grid.clone(),
            task_budget: 64 << 20,
            source_read_overhead: source.read_overhead(),
            target_write_overhead: target.write_overhead(),
            source_prefetch: 0,
            min_io: 0,
            parallelism: 1,
            task_threads,
            cost: CostModel::default(),
        })
        .unwrap();
        assert_eq!(plan.total_tasks(), 1, "{:#?}", plan.summary());
        let dir = tempfile::tempdir().unwrap();
        executor(dir.path(), 3, ScratchCodec::Lz4, 64 << 20, None)
            .run_array(&job(&plan, &source, &target))
            .unwrap();
        assert!(target.data() == data);
        source.max_in_flight.load(Ordering::SeqCst)
    };
    assert_eq!(max_concurrent_reads(1), 1);
    let spread = max_concurrent_reads(3);
    assert!((2..=3).contains(&spread), "{spread} reads at once");
}
