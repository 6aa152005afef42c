//! Property tests of the planner: on random shapes, chunkings, item sizes, budgets and minimum
//! I/O sizes, every plan the planner produces is checked against the invariants of the design by
//! enumerating its tasks and pieces (the arrays are kept small enough for that).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};
use rechunker_core::grid::{ChunkGrid, DimGrid};
use rechunker_core::planner::{self, CostModel, Plan, PlanError, PlanRequest};
use rechunker_core::region::{indices, ravel, Region};

/// Arrays are cut down to at most this many elements so that every element can be counted.
const MAX_ELEMENTS: u64 = 65536;

/// How one dimension is cut, before it is fitted to the dimension's length.
#[derive(Clone, Debug)]
enum GridSpec {
    /// A regular chunk length; mapped into `1..=len + 1` so chunks longer than the dimension occur.
    Regular(u64),
    /// A small regular chunk length, taken as is.
    Small(u64),
    /// One chunk over the whole dimension.
    Full,
    /// Chunk lengths, repeated until they cover the dimension (rectilinear, as from several files).
    Explicit(Vec<u64>),
}

impl GridSpec {
    fn grid(&self, len: u64) -> DimGrid {
        match self {
            GridSpec::Regular(c) => DimGrid::regular(len, 1 + (c - 1) % (len + 1)),
            GridSpec::Small(c) => DimGrid::regular(len, *c),
            GridSpec::Full => DimGrid::regular(len, len),
            GridSpec::Explicit(lengths) => {
                let mut out = Vec::new();
                let mut covered = 0;
                for &l in lengths.iter().cycle() {
                    if covered >= len {
                        break;
                    }
                    let l = l.min(len - covered);
                    out.push(l);
                    covered += l;
                }
                DimGrid::from_lengths(out)
            }
        }
    }
}

#[derive(Clone, Debug)]
struct RawCase {
    lens: Vec<u64>,
    source: Vec<GridSpec>,
    target: Vec<GridSpec>,
    item_size: u64,
    /// (kind, raw) for each overhead: none, a multiple of the chunk bytes, or a few KiB.
    read_overhead: (u8, u64),
    write_overhead: (u8, u64),
    /// (kind, raw) for the budget above (or around) the minimum.
    budget: (u8, u64),
    min_io: (u8, u64),
    parallelism: u64,
    seconds_per_op: f64,
}

fn grid_spec(explicit_weight: u32) -> impl Strategy<Value = GridSpec> {
    prop_oneof![
        6 => (1..=48u64).prop_map(GridSpec::Regular),
        3 => (1..=3u64).prop_map(GridSpec::Small),
        1 => Just(GridSpec::Full),
        explicit_weight => prop::collection::vec(1..=12u64, 1..=6).prop_map(GridSpec::Explicit),
    ]
}

/// A random case: independent random shapes and chunkings, any budget.
fn random_shapes() -> impl Strategy<Value = (Vec<u64>, Vec<GridSpec>, Vec<GridSpec>, u8)> {
    (1..=5usize).prop_flat_map(|ndim| {
        (
            prop::collection::vec(prop_oneof![1 => Just(0u64), 40 => 1..=40u64], ndim),
            prop::collection::vec(grid_spec(4), ndim),
            prop::collection::vec(grid_spec(1), ndim),
            0..8u8,
        )
    })
}

/// An extreme reshape, where multi-stage plans pay: per dimension, small chunks on one side and
/// the whole dimension on the other, a larger array and a budget near the minimum.
fn reshape_shapes() -> impl Strategy<Value = (Vec<u64>, Vec<GridSpec>, Vec<GridSpec>, u8)> {
    (2..=4usize).prop_flat_map(|ndim| {
        (
            prop::collection::vec(4..=64u64, ndim),
            prop::collection::vec((any::<bool>(), 1..=3u64), ndim),
            1..=5u8,
        )
            .prop_map(|(lens, flips, budget_kind)| {
                let (source, target) = flips
                    .into_iter()
                    .map(|(flip, c)| {
                        if flip {
                            (GridSpec::Full, GridSpec::Small(c))
                        } else {
                            (GridSpec::Small(c), GridSpec::Full)
                        }
                    })
                    .unzip();
                (lens, source, target, budget_kind)
            })
    })
}

fn raw_case() -> impl Strategy<Value = RawCase> {
    (
        prop_oneof![2 => random_shapes(), 1 => reshape_shapes()],
        prop::sample::select(vec![1u64, 2, 4, 8]),
        (0..3u8, any::<u64>()),
        (0..3u8, any::<u64>()),
        any::<u64>(),
        (0..4u8, any::<u64>()),
        1..=4u64,
        prop::sample::select(vec![1e-6, 2e-4, 5e-3]),
    )
        .prop_map(
            |(
                (lens, source, target, budget_kind),
                item_size,
                read_overhead,
                write_overhead,
                budget,
                min_io,
                parallelism,
                seconds_per_op,
            )| RawCase {
                lens,
                source,
                target,
                item_size,
                read_overhead,
                write_overhead,
                budget: (budget_kind, budget),
                min_io,
                parallelism,
                seconds_per_op,
            },
        )
}

/// Halves the longest dimensions until the array has at most `MAX_ELEMENTS` elements.
fn fit_shape(mut lens: Vec<u64>) -> Vec<u64> {
    while lens.iter().product::<u64>() > MAX_ELEMENTS {
        let d = (0..lens.len()).max_by_key(|&d| lens[d]).unwrap();
        lens[d] = lens[d].div_ceil(2);
    }
    lens
}

fn overhead((kind, raw): (u8, u64), chunk_bytes: u64) -> u64 {
    match kind {
        0 => 0,
        1 => (raw % 4) * chunk_bytes,
        _ => raw % 8192,
    }
}

/// The request without its budget (set to 0).
fn request_without_budget(raw: &RawCase) -> PlanRequest {
    let shape = fit_shape(raw.lens.clone());
    let source = ChunkGrid::new(
        shape
            .iter()
            .zip(&raw.source)
            .map(|(&l, s)| s.grid(l))
            .collect(),
    );
    let target = ChunkGrid::new(
        shape
            .iter()
            .zip(&raw.target)
            .map(|(&l, s)| s.grid(l))
            .collect(),
    );
    let min_io = match raw.min_io.0 {
        0 => 0,
        1 => raw.min_io.1 % 4096,
        2 => raw.min_io.1 % (1 << 20),
        _ => 1 << 40,
    };
    PlanRequest {
        item_size: raw.item_size,
        source_read_overhead: overhead(
            raw.read_overhead,
            source.max_chunk_elements() * raw.item_size,
        ),
        target_write_overhead: overhead(
            raw.write_overhead,
            target.max_chunk_elements() * raw.item_size,
        ),
        source_prefetch: 0,
        source,
        target,
        task_budget: 0,
        min_io,
        parallelism: raw.parallelism,
        task_threads: 1,
        cost: CostModel {
            seconds_per_op: raw.seconds_per_op,
            ..CostModel::default()
        },
    }
}

/// A request whose budget is at least `minimum_task_budget`: planning it must succeed.
fn plannable_request(raw: &RawCase) -> PlanRequest {
    let mut req = request_without_budget(raw);
    let min = planner::minimum_task_budget(&req);
    let (kind, r) = raw.budget;
    let extra = match kind {
        0 => 0,
        1 => r % 256,
        2..=4 => r % (min + 1),
        5 => r % (4 * min + 1),
        _ => r % (64 * min + (1 << 20)),
    };
    req.task_budget = min + extra;
    req
}

/// A request whose budget is anywhere from 0 to about twice the minimum.
fn tight_request(raw: &RawCase) -> PlanRequest {
    let mut req = request_without_budget(raw);
    let min = planner::minimum_task_budget(&req);
    req.task_budget = raw.budget.1 % (2 * min + 2);
    req
}

fn plan_ok(req: &PlanRequest) -> Result<Plan, TestCaseError> {
    let min = planner::minimum_task_budget(req);
    planner::plan(req).map_err(|e| {
        TestCaseError::fail(format!(
            "planning failed with budget {} >= minimum {min}: {e}\n{req:#?}",
            req.task_budget
        ))
    })
}

/// Counts how often each element of an array is covered by a set of regions.
struct Cover {
    shape: Vec<u64>,
    counts: Vec<u32>,
}

impl Cover {
    fn new(shape: &[u64]) -> Self {
        Cover {
            shape: shape.to_vec(),
            counts: vec![0; shape.iter().product::<u64>() as usize],
        }
    }

    fn add(&mut self, r: &Region) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            r.ndim(),
            self.shape.len(),
            "region {} has the wrong rank",
            r
        );
        prop_assert!(!r.is_empty(), "empty region {}", r);
        for d in 0..r.ndim() {
            prop_assert!(
                r.end(d) <= self.shape[d],
                "region {} exceeds the array shape {:?}",
                r,
                self.shape
            );
        }
        let n = r.ndim();
        if n == 0 {
            self.counts[0] += 1;
            return Ok(());
        }
        let row = r.shape[n - 1] as usize;
        for outer in indices(&r.shape[..n - 1]) {
            let mut idx: Vec<u64> = outer.iter().zip(&r.start).map(|(a, b)| a + b).collect();
            idx.push(r.start[n - 1]);
            let first = ravel(&idx, &self.shape) as usize;
            for c in &mut self.counts[first..first + row] {
                *c += 1;
            }
        }
        Ok(())
    }

    /// Fails unless every element was covered exactly once.
    fn check_once(&self, what: &str) -> Result<(), TestCaseError> {
        if let Some(i) = self.counts.iter().position(|&c| c != 1) {
            let idx: Vec<u64> = {
                let mut rest = i as u64;
                let mut out = vec![0; self.shape.len()];
                for d in (0..self.shape.len()).rev() {
                    out[d] = rest % self.shape[d];
                    rest /= self.shape[d];
                }
                out
            };
            prop_assert!(
                false,
                "{}: element {:?} is covered {} times",
                what,
                idx,
                self.counts[i]
            );
        }
        Ok(())
    }
}

/// Checks that `blocks` are unions of whole chunks of `chunks` and that every chunk lies in
/// exactly one block.
fn check_whole_chunks(
    chunks: &ChunkGrid,
    blocks: impl Iterator<Item = Region>,
    what: &str,
) -> Result<(), TestCaseError> {
    let grid_shape = chunks.grid_shape();
    let mut counts = vec![0u32; chunks.num_chunks() as usize];
    for block in blocks {
        for chunk in chunks.chunk_regions_overlapping(&block) {
            prop_assert!(
                block.contains(&chunk),
                "{}: block {} cuts chunk {}",
                what,
                block,
                chunk
            );
            let index: Vec<u64> = chunk
                .start
                .iter()
                .zip(&chunks.dims)
                .map(|(&x, g)| g.chunk_of(x))
                .collect();
            prop_assert_eq!(&chunks.chunk_region(&index), &chunk);
            counts[ravel(&index, &grid_shape) as usize] += 1;
        }
    }
    if let Some(i) = counts.iter().position(|&c| c != 1) {
        prop_assert!(
            false,
            "{}: chunk {} lies in {} blocks",
            what,
            chunks.chunk_region_linear(i as u64),
            counts[i]
        );
    }
    Ok(())
}

fn stage_blocks(plan: &Plan, k: usize) -> impl Iterator<Item = Region> + '_ {
    (0..plan.num_tasks(k)).map(move |t| plan.task_region(k, t))
}

fn largest_piece(plan: &Plan, boundary: usize, block: &Region) -> Result<u64, TestCaseError> {
    let mut max = 0;
    for piece in plan.pieces_in(boundary, block) {
        prop_assert!(
            block.contains(&piece),
            "piece {} of boundary {} sticks out of block {}",
            piece,
            boundary,
            block
        );
        max = max.max(piece.num_elements() * plan.item_size);
    }
    Ok(max)
}

fn check_structure(req: &PlanRequest, plan: &Plan) -> Result<(), TestCaseError> {
    prop_assert!(
        !plan.stages.is_empty() && plan.stages.len() <= planner::MAX_STAGES,
        "{} stages",
        plan.stages.len()
    );
    prop_assert_eq!(&plan.source, &req.source);
    prop_assert_eq!(&plan.target, &req.target);
    prop_assert_eq!(plan.item_size, req.item_size);
    prop_assert_eq!(plan.task_budget, req.task_budget);
    for (k, stage) in plan.stages.iter().enumerate() {
        prop_assert_eq!(
            stage.blocks.shape(),
            req.source.shape(),
            "stage {} blocks cover another shape",
            k
        );
    }
    Ok(())
}

fn check_memory(req: &PlanRequest, plan: &Plan) -> Result<(), TestCaseError> {
    let last = plan.stages.len() - 1;
    for (k, stage) in plan.stages.iter().enumerate() {
        prop_assert!(
            stage.task_memory <= req.task_budget,
            "stage {} reserves {} per task, over the budget {}",
            k,
            stage.task_memory,
            req.task_budget
        );
        for (t, block) in stage_blocks(plan, k).enumerate() {
            let input = if k == 0 {
                req.source_read_overhead
            } else {
                planner::piece_overhead(largest_piece(plan, k - 1, &block)?)
            };
            let output = if k == last {
                req.target_write_overhead
            } else {
                planner::piece_overhead(largest_piece(plan, k, &block)?)
            };
            let peak = block.num_elements() * req.item_size + input.max(output);
            prop_assert!(
                peak <= stage.task_memory && peak <= req.task_budget,
                "stage {} task {} (block {}) peaks at {} but reserves {} of budget {}",
                k,
                t,
                block,
                peak,
                stage.task_memory,
                req.task_budget
            );
        }
    }
    Ok(())
}

fn check_source_read_once(req: &PlanRequest, plan: &Plan) -> Result<(), TestCaseError> {
    check_whole_chunks(
        &req.source,
        stage_blocks(plan, 0),
        "stage 0 vs source chunks",
    )
}

fn check_target_written_once(req: &PlanRequest, plan: &Plan) -> Result<(), TestCaseError> {
    let last = plan.stages.len() - 1;
    check_whole_chunks(
        &req.target,
        stage_blocks(plan, last),
        "last stage vs target chunks",
    )?;
    let mut cover = Cover::new(&req.source.shape());
    for block in stage_blocks(plan, last) {
        cover.add(&block)?;
    }
    cover.check_once("target writes")
}

fn check_pieces(req: &PlanRequest, plan: &Plan) -> Result<(), TestCaseError> {
    for boundary in 0..plan.stages.len() - 1 {
        let collect = |k: usize| -> Result<Vec<Region>, TestCaseError> {
            let mut out = Vec::new();
            for block in stage_blocks(plan, k) {
                for piece in plan.pieces_in(boundary, &block) {
                    prop_assert!(
                        block.contains(&piece),
                        "piece {} outside stage {} block {}",
                        piece,
                        k,
                        block
                    );
                    out.push(piece);
                }
            }
            Ok(out)
        };
        let sorted_unique =
            |mut v: Vec<Region>, side: &str| -> Result<Vec<Region>, TestCaseError> {
                let n = v.len();
                v.sort_by(|a, b| a.start.cmp(&b.start).then(a.shape.cmp(&b.shape)));
                v.dedup();
                prop_assert_eq!(
                    v.len(),
                    n,
                    "a piece of boundary {} is {} by two tasks",
                    boundary,
                    side
                );
                Ok(v)
            };
        let written = sorted_unique(collect(boundary)?, "written")?;
        let read = sorted_unique(collect(boundary + 1)?, "read")?;
        prop_assert!(
            written == read,
            "boundary {}: the pieces written are not the pieces read",
            boundary
        );
        prop_assert_eq!(
            written.len() as u64,
            plan.num_pieces(boundary),
            "piece count of boundary {}",
            boundary
        );
        // The summary (what `rechunk plan` shows and the cost model prices) agrees.
        let summary = &plan.summary()[boundary];
        prop_assert_eq!(summary.writes, written.len() as u64);
        prop_assert_eq!(plan.summary()[boundary + 1].reads, written.len() as u64);
        let largest = written
            .iter()
            .map(|p| p.num_elements() * plan.item_size)
            .max()
            .unwrap_or(0);
        prop_assert!(
            summary.max_piece_bytes.is_some_and(|m| m >= largest),
            "summary says the largest piece has {:?} bytes, but one has {}",
            summary.max_piece_bytes,
            largest
        );
        let mut cover = Cover::new(&req.source.shape());
        for piece in &written {
            cover.add(piece)?;
        }
        cover.check_once(&format!("pieces of boundary {boundary}"))?;
    }
    Ok(())
}

fn check_task_counts(req: &PlanRequest, plan: &Plan) -> Result<(), TestCaseError> {
    let n = plan.stages.len();
    for k in 0..n {
        let input = if k == 0 {
            req.source.num_chunks()
        } else {
            plan.num_tasks(k - 1)
        };
        let output = if k + 1 == n {
            req.target.num_chunks()
        } else {
            plan.num_tasks(k + 1)
        };
        prop_assert!(
            plan.num_tasks(k) <= input + output,
            "stage {} has {} tasks, more than its {} input and {} output blocks",
            k,
            plan.num_tasks(k),
            input,
            output
        );
    }
    let (sources, targets) = (req.source.num_chunks(), req.target.num_chunks());
    if n <= 2 {
        prop_assert!(
            plan.total_tasks() <= sources + targets,
            "{} tasks for {} source and {} target chunks",
            plan.total_tasks(),
            sources,
            targets
        );
    }
    if n == 1 {
        check_whole_chunks(
            &req.source,
            stage_blocks(plan, 0),
            "direct plan vs source chunks",
        )?;
        check_whole_chunks(
            &req.target,
            stage_blocks(plan, 0),
            "direct plan vs target chunks",
        )?;
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Every stage's reservation fits the budget, and so does every task's actual peak: its block
    /// plus the larger of its input and output buffers (adapter overheads or the largest piece
    /// it really reads or writes).
    #[test]
    fn tasks_fit_the_budget(raw in raw_case()) {
        let req = plannable_request(&raw);
        let plan = plan_ok(&req)?;
        check_structure(&req, &plan)?;
        check_memory(&req, &plan)?;
    }

    /// Stage 0 blocks are unions of whole source chunks, and every source chunk lies in exactly
    /// one of them: each source chunk is decoded once.
    #[test]
    fn source_chunks_are_read_once(raw in raw_case()) {
        let req = plannable_request(&raw);
        let plan = plan_ok(&req)?;
        check_source_read_once(&req, &plan)?;
    }

    /// Last-stage blocks are unions of whole target chunks, every target chunk lies in exactly one
    /// of them, and the writes cover every element exactly once.
    #[test]
    fn target_chunks_are_written_once(raw in raw_case()) {
        let req = plannable_request(&raw);
        let plan = plan_ok(&req)?;
        check_target_written_once(&req, &plan)?;
    }

    /// Between consecutive stages, the pieces enumerated from the writing tasks are exactly the
    /// pieces enumerated from the reading tasks, each once, and they partition the array.
    #[test]
    fn pieces_are_written_once_and_read_once(raw in raw_case()) {
        let req = plannable_request(&raw);
        let plan = plan_ok(&req)?;
        check_pieces(&req, &plan)?;
    }

    /// Few tasks: a stage has at most as many tasks as its input and output grids have blocks,
    /// one- and two-stage plans at most source + target chunks, and a direct plan only when its
    /// blocks are aligned to both chunk grids.
    #[test]
    fn task_counts_are_bounded(raw in raw_case()) {
        let req = plannable_request(&raw);
        let plan = plan_ok(&req)?;
        check_task_counts(&req, &plan)?;
    }

    /// Below the minimum, planning fails with a budget error whose `needed()` budget does plan;
    /// `minimum_task_budget` is exactly the smallest budget that plans.
    #[test]
    fn failures_name_a_budget_that_works(raw in raw_case()) {
        let req = tight_request(&raw);
        let min = planner::minimum_task_budget(&req);
        match planner::plan(&req) {
            Ok(plan) => {
                prop_assert!(req.task_budget >= min, "planned with {} below the minimum {}", req.task_budget, min);
                check_memory(&req, &plan)?;
            }
            Err(e) => {
                prop_assert!(!matches!(e, PlanError::ShapeMismatch { .. }), "{}", e);
                let budget = match &e {
                    PlanError::SourceChunkTooLarge { budget, .. }
                    | PlanError::TargetChunkTooLarge { budget, .. }
                    | PlanError::BudgetTooSmall { budget, .. } => *budget,
                    PlanError::ShapeMismatch { .. } => unreachable!(),
                };
                prop_assert_eq!(budget, req.task_budget, "{}", e);
                prop_assert!(req.task_budget < min, "failed with {} >= minimum {}: {}", req.task_budget, min, e);
                let needed = e.needed();
                prop_assert!(needed.is_some(), "{} names no budget", e);
                let needed = needed.unwrap();
                prop_assert!(needed > req.task_budget, "{}: needed {} is not above the budget", e, needed);
                let retry = PlanRequest { task_budget: needed, ..req.clone() };
                let plan = planner::plan(&retry);
                prop_assert!(plan.is_ok(), "{} said {} is needed, but that fails too: {}", e, needed, plan.unwrap_err());
                check_memory(&retry, &plan.unwrap())?;
                let at_min = PlanRequest { task_budget: min, ..req.clone() };
                prop_assert!(planner::plan(&at_min).is_ok(), "minimum_task_budget {} does not plan", min);
                if min > 0 {
                    let below = PlanRequest { task_budget: min - 1, ..req.clone() };
                    prop_assert!(planner::plan(&below).is_err(), "{} below minimum_task_budget {} plans", min - 1, min);
                }
            }
        }
    }

    /// Plans survive a round trip through JSON unchanged.
    #[test]
    fn plans_round_trip_through_json(raw in raw_case()) {
        let req = plannable_request(&raw);
        let plan = plan_ok(&req)?;
        let json = serde_json::to_string(&plan).unwrap();
        let back: Plan = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(&back, &plan);
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }
}

/// An extreme reshape, time slices to time series, with a small budget and a large minimum I/O:
/// the planner must go through at least one intermediate layout because that costs less than
/// two stages with tiny pieces, and that plan must hold every invariant.
#[test]
fn extreme_reshape_plans_multiple_stages() {
    let shape = [256u64, 16, 16];
    let mut req = PlanRequest {
        item_size: 4,
        source_read_overhead: 0,
        target_write_overhead: 0,
        source_prefetch: 0,
        source: ChunkGrid::regular(&shape, &[1, 16, 16]),
        target: ChunkGrid::regular(&shape, &[256, 1, 1]),
        task_budget: 0,
        min_io: 1 << 20,
        parallelism: 1,
        task_threads: 1,
        cost: CostModel::default(),
    };
    req.task_budget = planner::minimum_task_budget(&req) * 3;
    let plan = planner::plan(&req).unwrap();
    assert!(
        plan.stages.len() >= 3,
        "{} stages: {:#?}",
        plan.stages.len(),
        plan.summary()
    );
    for check in [
        check_structure,
        check_memory,
        check_source_read_once,
        check_target_written_once,
        check_pieces,
        check_task_counts,
    ] {
        check(&req, &plan).unwrap();
    }
    // Without a minimum I/O size the planner keeps to two stages, which cost more here.
    let two = planner::plan(&PlanRequest {
        min_io: 0,
        ..req.clone()
    })
    .unwrap();
    assert_eq!(two.stages.len(), 2);
    assert!(plan.cost(&req.cost) < two.cost(&req.cost));
    assert!(plan.num_pieces(0) < two.num_pieces(0));
}

/// Regression: the smallest task of this reshape needs more than one source chunk with its
/// decode buffers (a scratch piece besides), so a budget error must not name the source chunk's
/// own size as the budget needed.
#[test]
fn budget_errors_name_a_budget_that_plans() {
    let shape = [8u64, 16, 16];
    let mut req = PlanRequest {
        item_size: 4,
        source_read_overhead: 0,
        target_write_overhead: 0,
        source_prefetch: 0,
        source: ChunkGrid::regular(&shape, &[1, 16, 16]),
        target: ChunkGrid::regular(&shape, &[8, 1, 1]),
        task_budget: 1000,
        min_io: 0,
        parallelism: 1,
        task_threads: 1,
        cost: CostModel::default(),
    };
    let err = planner::plan(&req).unwrap_err();
    assert!(
        matches!(err, PlanError::SourceChunkTooLarge { .. }),
        "{err}"
    );
    let needed = err.needed().unwrap();
    assert!(needed > 16 * 16 * 4, "{err}");
    assert_eq!(needed, planner::minimum_task_budget(&req));
    req.task_budget = needed;
    let plan = planner::plan(&req).unwrap();
    check_memory(&req, &plan).unwrap();
    req.task_budget = needed - 1;
    assert!(planner::plan(&req).is_err());
}

/// Regression: halving an intermediate grid until it fits the budget multiplied its tasks, and
/// the planner chose a three-stage plan of 19, 50 and 24 tasks. A middle stage may not have
/// more tasks than the stages on either side together.
#[test]
fn multi_stage_plans_keep_few_tasks() {
    let shape = [19u64, 24, 24];
    let mut req = PlanRequest {
        item_size: 4,
        source_read_overhead: 0,
        target_write_overhead: 0,
        source_prefetch: 0,
        source: ChunkGrid::regular(&shape, &[1, 24, 24]),
        target: ChunkGrid::regular(&shape, &[19, 1, 1]),
        task_budget: 0,
        min_io: 1 << 20,
        parallelism: 1,
        task_threads: 1,
        cost: CostModel::default(),
    };
    req.task_budget = planner::minimum_task_budget(&req) * 5 / 4;
    let plan = planner::plan(&req).unwrap();
    for check in [
        check_structure,
        check_memory,
        check_pieces,
        check_task_counts,
    ] {
        check(&req, &plan).unwrap();
    }
}

/// The generator is not vacuous: among its cases are direct, two-stage and multi-stage plans,
/// rectilinear source grids, empty arrays, and budgets below the minimum.
#[test]
fn random_cases_cover_every_kind_of_plan() {
    let mut runner = TestRunner::deterministic();
    let mut stages = [0u32; planner::MAX_STAGES + 1];
    let (mut explicit, mut empty, mut failures) = (0, 0, 0);
    for _ in 0..1000 {
        let raw = raw_case().new_tree(&mut runner).unwrap().current();
        let req = plannable_request(&raw);
        stages[planner::plan(&req).unwrap().stages.len()] += 1;
        explicit += usize::from(
            req.source
                .dims
                .iter()
                .any(|d| matches!(d, DimGrid::Explicit { .. })),
        );
        empty += usize::from(req.source.shape().contains(&0));
        failures += usize::from(planner::plan(&tight_request(&raw)).is_err());
    }
    let multi: u32 = stages[3..].iter().sum();
    assert!(
        stages[1] >= 100 && stages[2] >= 100 && multi >= 5,
        "plans by stage count: {stages:?}"
    );
    assert!(
        explicit >= 100 && empty >= 10 && failures >= 200,
        "{explicit} rectilinear, {empty} empty, {failures} failures"
    );
}
