//! The planner: pure functions from shapes, chunk grids and a memory budget to a [`Plan`].
//!
//! A plan is a chain of block grids `B_0 .. B_m`. Stage `k` runs one task per block of `B_k`.
//! Stage 0 reads the source (its blocks are unions of whole source chunks, so each source chunk is
//! decoded by exactly one task); the last stage writes the target (its blocks are unions of whole
//! target chunks, so each target chunk is written whole by exactly one task). Between stages `k`
//! and `k + 1` the data sits in the scratch store as *pieces* `B_k ∩ B_{k+1}`: each piece lies in
//! one block of each grid, so it is written whole once and read once. One grid is a direct copy,
//! two grids the classic push/pull through an intermediate, more grids a multi-stage plan whose
//! middle grids step geometrically from read blocks to write blocks so that pieces stay large.
//!
//! Tasks are never materialized: a task is a linear index into its stage's block grid.

use crate::grid::{ChunkGrid, DimGrid};
use crate::region::Region;
use crate::units::format_bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most stages a plan may have (two intermediates between read and write blocks).
pub const MAX_STAGES: usize = 4;

/// Blocks stop growing before a stage has fewer than this many tasks per parallel slot.
const TASKS_PER_THREAD: u64 = 4;

/// What a task's extra thread is worth next to a task of its own. A task's threads share its
/// phases (all reads, then all writes) and split its chunks in fixed groups, so they idle
/// where separate tasks would not. Counting them at less than a whole task keeps large arrays
/// on many tasks, as measured best, and gives one task many threads only where that saves
/// real work: an array that fits in memory skips the scratch pass entirely.
const TASK_THREAD_SHARE: f64 = 0.8;

/// What threads beyond the cores are worth: they add no codec throughput, but while one waits
/// for storage (direct scratch reads, target writes) another computes. On the 2-core VM, 4
/// tasks at once ran the `tas` T=1000 two-stage plans faster than 2 (see docs/design.md).
const OVERSUBSCRIBED: f64 = 1.15;

/// Direct (single-stage) blocks grow until about this size; bigger brings nothing but fewer tasks.
const DIRECT_BLOCK_TARGET: u64 = 64 << 20;

/// Scratch bytes a task holds per piece in flight: the gathered piece and its encoded copy.
pub fn piece_overhead(piece_bytes: u64) -> u64 {
    if piece_bytes == 0 {
        0
    } else {
        2 * piece_bytes + piece_bytes / 128 + 1024
    }
}

/// Prices a plan in seconds so candidates can be compared: bytes cost throughput (decoding the
/// source, encoding the target and passing through scratch each at their own rate, per thread),
/// every object read or written costs a fixed overhead, and on object stores each request also
/// waits for the store, a wait the run overlaps `io_window` requests at a time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    /// Uncompressed bytes per second one thread reads and decodes from the source.
    pub source_bytes_per_second: f64,
    /// Uncompressed bytes per second one thread encodes and writes to the target.
    pub target_bytes_per_second: f64,
    /// Bytes per second one thread writes or reads through scratch (lz4, local disk).
    pub scratch_bytes_per_second: f64,
    /// Fixed cost of one object read or write (open, syscalls, metadata; a request on S3).
    pub seconds_per_op: f64,
    /// Cores the work runs on: threads beyond them add no throughput. 0 (plans written before
    /// rates were measured, unit tests) counts every thread as a core.
    #[serde(default)]
    pub cores: u64,
    /// Seconds one source chunk read waits for storage beyond the CPU it takes (the request
    /// latency of an object store), measured.
    #[serde(default)]
    pub source_wait: f64,
    /// Seconds one scratch piece written or read waits for its store (0 on a local disk, whose
    /// measured rate includes it).
    #[serde(default)]
    pub scratch_wait: f64,
    /// Seconds one target object written waits for its store.
    #[serde(default)]
    pub target_wait: f64,
    /// Requests one thread keeps in flight to a store, so waits overlap; 0 counts as 1.
    #[serde(default)]
    pub io_window: u64,
    /// Seconds of each request to an object store that the store serves one at a time (a burst
    /// of requests takes that much longer per request than one): no window overlaps it. 0 for
    /// stores that scale out (S3); a server on this machine (moto) also takes it from our cores.
    #[serde(default)]
    pub store_serial: f64,
}

impl CostModel {
    /// Seconds a thread spends on `wait`, with its window of requests in flight.
    fn overlapped(&self, wait: f64) -> f64 {
        wait / self.io_window.max(1) as f64
    }
}

impl Default for CostModel {
    /// Local disk, one core of a typical machine, a zstd/blosc-class codec on the target
    /// (measured on a 2-core VM: decode ~1 GB/s, encode ~0.3 GB/s, lz4 scratch ~1.5 GB/s).
    fn default() -> Self {
        CostModel {
            source_bytes_per_second: 1000e6,
            target_bytes_per_second: 300e6,
            scratch_bytes_per_second: 1500e6,
            seconds_per_op: 2e-4,
            cores: 0,
            source_wait: 0.0,
            scratch_wait: 0.0,
            target_wait: 0.0,
            io_window: 1,
            store_serial: 0.0,
        }
    }
}

/// What the planner needs to know about one array copy.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    pub item_size: u64,
    pub source: ChunkGrid,
    pub target: ChunkGrid,
    /// Bytes one task may hold at its peak.
    pub task_budget: u64,
    /// Memory the source adapter needs beyond the block while reading.
    pub source_read_overhead: u64,
    /// Memory the target adapter needs beyond the block while writing.
    pub target_write_overhead: u64,
    /// Bytes per task thread of the next task's chunks the source fetches while a first-stage
    /// task writes ([`crate::ChunkedArray::prefetch_overhead`]); 0 when it fetches none.
    pub source_prefetch: u64,
    /// Scratch pieces smaller than this are worth an extra stage to avoid, if the cost model agrees.
    pub min_io: u64,
    /// Tasks that will run at once; blocks stop growing before a stage has fewer tasks than this.
    pub parallelism: u64,
    /// Threads each task spreads its chunks over (decoding, encoding, scratch pieces): with
    /// fewer tasks at once than threads, a task uses the idle ones. Each holds its own chunk
    /// buffers, so a task's memory counts the per-chunk overheads this many times.
    pub task_threads: u64,
    pub cost: CostModel,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("source and target chunk grids cover different shapes: {source_shape:?} vs {target_shape:?}")]
    ShapeMismatch {
        source_shape: Vec<u64>,
        target_shape: Vec<u64>,
    },
    #[error("one source chunk {chunk:?} with its decode buffers does not fit in the {} a task may use; the smallest plan needs {} per task", format_bytes(*budget), format_bytes(*needed))]
    SourceChunkTooLarge {
        chunk: Vec<u64>,
        needed: u64,
        budget: u64,
    },
    #[error("one target chunk {chunk:?} with its encode buffers does not fit in the {} a task may use; the smallest plan needs {} per task", format_bytes(*budget), format_bytes(*needed))]
    TargetChunkTooLarge {
        chunk: Vec<u64>,
        needed: u64,
        budget: u64,
    },
    #[error("the smallest possible task needs {} (one chunk plus scratch pieces), but a task may use only {}", format_bytes(*needed), format_bytes(*budget))]
    BudgetTooSmall { needed: u64, budget: u64 },
}

impl PlanError {
    /// The per-task budget that would have made planning succeed (the smallest one, as
    /// [`minimum_task_budget`] gives it), where one is known.
    pub fn needed(&self) -> Option<u64> {
        match self {
            PlanError::ShapeMismatch { .. } => None,
            PlanError::SourceChunkTooLarge { needed, .. }
            | PlanError::TargetChunkTooLarge { needed, .. }
            | PlanError::BudgetTooSmall { needed, .. } => Some(*needed),
        }
    }
}

/// One stage: a task per block of `blocks`, each holding at most `task_memory` bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub blocks: ChunkGrid,
    pub task_memory: u64,
}

/// A complete, serializable plan for copying one array into a new chunking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub item_size: u64,
    pub source: ChunkGrid,
    pub target: ChunkGrid,
    pub task_budget: u64,
    pub stages: Vec<Stage>,
    /// Threads one task spreads its chunks over (see [`PlanRequest::task_threads`]); plans
    /// written before tasks had threads of their own ran each task on one.
    #[serde(default = "one_thread")]
    pub task_threads: u64,
    /// What first-stage tasks count for the next task's chunks fetched while they write (see
    /// [`PlanRequest::source_prefetch`]): 0 for one task, and in plans made before prefetching,
    /// which then run without it.
    #[serde(default)]
    pub source_prefetch: u64,
}

fn one_thread() -> u64 {
    1
}

/// Where a stage's data comes from or goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Source,
    Target,
    /// Scratch pieces between stage `k` and stage `k + 1`.
    Pieces(usize),
}

/// Figures of one stage, for `rechunk plan` and the cost model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageSummary {
    pub tasks: u64,
    pub block_shape: Vec<u64>,
    pub task_memory: u64,
    pub reads: u64,
    pub writes: u64,
    pub bytes: u64,
    pub max_piece_bytes: Option<u64>,
}

impl Plan {
    pub fn ndim(&self) -> usize {
        self.source.ndim()
    }

    pub fn shape(&self) -> Vec<u64> {
        self.source.shape()
    }

    /// Checks the invariants the planner guarantees, for a plan read from a file: well-formed
    /// grids over one shape, one to [`MAX_STAGES`] stages, stage 0's blocks unions of whole
    /// source chunks and the last stage's unions of whole target (write) chunks, every block
    /// within its stage's task memory and that within the task budget, and an array whose size
    /// in bytes (with every dimension counted at least 1) fits in 64 bits, so no count or size
    /// computed from the plan overflows. Cheap on any plan: nothing is enumerated.
    pub fn check(&self) -> Result<(), String> {
        if self.item_size == 0 {
            return Err("item size 0".into());
        }
        if self.task_threads == 0 {
            return Err("0 threads per task".into());
        }
        let ndim = self.source.ndim();
        let grids = std::iter::once(("source chunk grid".to_string(), &self.source))
            .chain(std::iter::once((
                "target write grid".to_string(),
                &self.target,
            )))
            .chain(
                self.stages
                    .iter()
                    .enumerate()
                    .map(|(k, s)| (format!("stage {k} block grid"), &s.blocks)),
            );
        let shape = self.source.shape();
        for (what, grid) in grids {
            grid.check().map_err(|e| format!("{what}: {e}"))?;
            if grid.ndim() != ndim {
                return Err(format!(
                    "{what} has {} dimensions where the source chunk grid has {ndim}",
                    grid.ndim()
                ));
            }
            if grid.shape() != shape {
                return Err(format!(
                    "{what} covers {:?} where the source chunk grid covers {shape:?}",
                    grid.shape()
                ));
            }
        }
        let elements = shape
            .iter()
            .try_fold(1u64, |n, &l| n.checked_mul(l.max(1)))
            .and_then(|n| n.checked_mul(self.item_size));
        if elements.is_none() {
            return Err(format!(
                "an array of {shape:?} elements of {} bytes is more than 16 EiB",
                self.item_size
            ));
        }
        let (Some(first), Some(last)) = (self.stages.first(), self.stages.last()) else {
            return Err("no stages".into());
        };
        if self.stages.len() > MAX_STAGES {
            return Err(format!(
                "{} stages, more than the {MAX_STAGES} a plan may have",
                self.stages.len()
            ));
        }
        if !self.source.refines(&first.blocks) {
            return Err(
                "stage 0's blocks are not unions of whole source chunks (each source chunk must be read by one task)"
                    .into(),
            );
        }
        if !self.target.refines(&last.blocks) {
            return Err(format!(
                "stage {}'s blocks are not unions of whole target chunks (each target chunk must be written by one task)",
                self.stages.len() - 1
            ));
        }
        for (k, stage) in self.stages.iter().enumerate() {
            // Cannot overflow: bounded by the array's size, checked above.
            let block = stage.blocks.max_chunk_elements() * self.item_size;
            if block > stage.task_memory {
                return Err(format!(
                    "stage {k}: a block of {} does not fit in the stage's task memory of {}",
                    format_bytes(block),
                    format_bytes(stage.task_memory)
                ));
            }
            if stage.task_memory > self.task_budget {
                return Err(format!(
                    "stage {k}: task memory {} is more than the plan's budget of {} per task",
                    format_bytes(stage.task_memory),
                    format_bytes(self.task_budget)
                ));
            }
        }
        Ok(())
    }

    /// Uncompressed bytes of the array.
    pub fn array_bytes(&self) -> u64 {
        self.shape().iter().product::<u64>() * self.item_size
    }

    pub fn num_tasks(&self, stage: usize) -> u64 {
        self.stages[stage].blocks.num_chunks()
    }

    pub fn total_tasks(&self) -> u64 {
        (0..self.stages.len()).map(|k| self.num_tasks(k)).sum()
    }

    /// The block task `task` of `stage` works on.
    pub fn task_region(&self, stage: usize, task: u64) -> Region {
        self.stages[stage].blocks.chunk_region_linear(task)
    }

    pub fn input(&self, stage: usize) -> Endpoint {
        if stage == 0 {
            Endpoint::Source
        } else {
            Endpoint::Pieces(stage - 1)
        }
    }

    pub fn output(&self, stage: usize) -> Endpoint {
        if stage + 1 == self.stages.len() {
            Endpoint::Target
        } else {
            Endpoint::Pieces(stage)
        }
    }

    /// The scratch pieces between stage `boundary` and `boundary + 1` that lie in `block` (a
    /// block of either stage), in C order.
    pub fn pieces_in(&self, boundary: usize, block: &Region) -> Vec<Region> {
        let (a, b) = (
            &self.stages[boundary].blocks,
            &self.stages[boundary + 1].blocks,
        );
        // Per dimension, the cuts of both grids inside the block; pieces are their product.
        let cuts: Vec<Vec<u64>> = (0..block.ndim())
            .map(|d| {
                let (lo, hi) = (block.start[d], block.end(d));
                let mut c = vec![lo, hi];
                for g in [&a.dims[d], &b.dims[d]] {
                    for i in g.chunks_overlapping(lo..hi) {
                        let r = g.chunk_range(i);
                        c.extend([r.start.max(lo), r.end.min(hi)]);
                    }
                }
                c.sort_unstable();
                c.dedup();
                c
            })
            .collect();
        let counts: Vec<u64> = cuts.iter().map(|c| c.len() as u64 - 1).collect();
        crate::region::indices(&counts)
            .map(|idx| {
                let (start, shape) = idx
                    .iter()
                    .zip(&cuts)
                    .map(|(&i, c)| (c[i as usize], c[i as usize + 1] - c[i as usize]))
                    .unzip();
                Region::new(start, shape)
            })
            .collect()
    }

    /// Number of pieces between stage `boundary` and `boundary + 1`.
    pub fn num_pieces(&self, boundary: usize) -> u64 {
        count_pieces(
            &self.stages[boundary].blocks,
            &self.stages[boundary + 1].blocks,
        )
    }

    pub fn summary(&self) -> Vec<StageSummary> {
        (0..self.stages.len())
            .map(|k| {
                let stage = &self.stages[k];
                let reads = match self.input(k) {
                    Endpoint::Source => self.source.num_chunks(),
                    Endpoint::Pieces(b) => self.num_pieces(b),
                    Endpoint::Target => 0,
                };
                let writes = match self.output(k) {
                    Endpoint::Target => self.target.num_chunks(),
                    Endpoint::Pieces(b) => self.num_pieces(b),
                    Endpoint::Source => 0,
                };
                let max_piece_bytes = match self.output(k) {
                    Endpoint::Pieces(b) => Some(
                        max_piece_elements(&self.stages[b].blocks, &self.stages[b + 1].blocks)
                            * self.item_size,
                    ),
                    _ => None,
                };
                StageSummary {
                    tasks: stage.blocks.num_chunks(),
                    block_shape: stage.blocks.nominal_chunk_shape(),
                    task_memory: stage.task_memory,
                    reads,
                    writes,
                    bytes: self.array_bytes(),
                    max_piece_bytes,
                }
            })
            .collect()
    }

    /// Estimated work of one thread under `cost`, per stage: reading its input and writing its
    /// output, each with how many chunks or pieces one block holds on that side (the most
    /// threads a task can spread it over).
    fn stage_work(&self, cost: &CostModel) -> Vec<StageWork> {
        let last = self.stages.len() - 1;
        self.summary()
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let bytes = s.bytes as f64;
                let (read, read_wait) = if k == 0 {
                    (cost.source_bytes_per_second, cost.source_wait)
                } else {
                    (cost.scratch_bytes_per_second, cost.scratch_wait)
                };
                let (write, write_wait) = if k == last {
                    (cost.target_bytes_per_second, cost.target_wait)
                } else {
                    (cost.scratch_bytes_per_second, cost.scratch_wait)
                };
                let per_block = |n: u64| n.div_ceil(s.tasks.max(1)).max(1);
                let remote = |wait: f64, requests: u64| {
                    if wait > 0.0 {
                        requests as f64
                    } else {
                        0.0
                    }
                };
                let requests = remote(read_wait, s.reads)
                    + remote(write_wait, s.writes)
                    + remote(cost.scratch_wait, 2 * s.tasks);
                StageWork {
                    read: bytes / read + (s.reads + s.tasks) as f64 * cost.seconds_per_op,
                    write: bytes / write + s.writes as f64 * cost.seconds_per_op,
                    read_units: per_block(s.reads),
                    write_units: per_block(s.writes),
                    // Each task also journals itself and checks the scratch's marker: two
                    // requests it waits for in turn, outside any window.
                    wait: cost
                        .overlapped(s.reads as f64 * read_wait + s.writes as f64 * write_wait)
                        + 2.0 * s.tasks as f64 * cost.scratch_wait,
                    serial: requests * cost.store_serial,
                }
            })
            .collect()
    }

    /// Estimated work in seconds of one thread under `cost`.
    pub fn cost(&self, cost: &CostModel) -> f64 {
        self.stage_work(cost)
            .iter()
            .map(|w| w.read + w.write + w.wait)
            .sum()
    }

    /// Estimated wall seconds with up to `parallelism` tasks at once, each spreading its chunks
    /// over the plan's task threads: a stage of fewer tasks than that, or blocks of fewer chunks
    /// than a task has threads, leaves threads idle.
    pub fn seconds(&self, cost: &CostModel, parallelism: u64) -> f64 {
        self.stage_work(cost)
            .iter()
            .enumerate()
            .map(|(k, w)| {
                let tasks = parallelism.min(self.num_tasks(k)).max(1);
                let threads = |units: u64| {
                    let extra = self.task_threads.clamp(1, units) - 1;
                    let lanes = tasks as f64 * (1.0 + TASK_THREAD_SHARE * extra as f64);
                    let running = (tasks + tasks * extra) as f64;
                    match cost.cores as f64 {
                        0.0 => lanes,
                        cores if running <= cores => lanes,
                        // More threads than cores share them (a task's own threads still
                        // idle at its phase ends, as above), and hide each other's waits
                        // for storage.
                        cores => cores * lanes / running * OVERSUBSCRIBED,
                    }
                };
                // Waiting takes no core: every running thread waits on its own window. What
                // the store serves one at a time adds up whatever the threads (on a server
                // sharing this machine it also takes cores from the codecs).
                let waiting = (tasks * self.task_threads.max(1)) as f64;
                w.read / threads(w.read_units)
                    + w.write / threads(w.write_units)
                    + w.wait / waiting
                    + w.serial
            })
            .sum::<f64>()
            + self.round_trips(cost)
    }

    /// Seconds of the requests a run makes one after another, outside any window: on an
    /// object store, claiming the scratch and recording the plan, creating the array, then
    /// finalizing and releasing the scratch ([`RUN_ROUND_TRIPS`]), and per stage listing the
    /// journal and checking it complete.
    fn round_trips(&self, cost: &CostModel) -> f64 {
        RUN_ROUND_TRIPS * cost.scratch_wait.max(cost.target_wait)
            + 2.0 * self.stages.len() as f64 * cost.scratch_wait
    }
}

/// Requests a run on object stores makes one after another besides its stages, counted on a
/// Zarr v2 S3 -> S3 run of one array (moto's log): about 20.
const RUN_ROUND_TRIPS: f64 = 20.0;

/// One stage's work for one thread, see [`Plan::stage_work`].
struct StageWork {
    read: f64,
    write: f64,
    read_units: u64,
    write_units: u64,
    /// Seconds of this stage's requests spent waiting for stores, with each thread's window
    /// overlapping them.
    wait: f64,
    /// Seconds the stores serve this stage's requests one at a time, whatever the threads.
    serial: f64,
}

/// Lowest common multiple, or `None` on overflow.
fn lcm(a: u64, b: u64) -> Option<u64> {
    fn gcd(mut a: u64, mut b: u64) -> u64 {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }
    (a / gcd(a, b)).checked_mul(b)
}

/// Chunk boundaries of a grid strictly inside `(0, len)`.
fn interior_bounds(g: &DimGrid) -> Vec<u64> {
    (1..g.num_chunks())
        .map(|i| g.chunk_range(i).start)
        .collect()
}

/// Number of intervals when both grids' boundaries cut one dimension.
fn count_union(a: &DimGrid, b: &DimGrid) -> u64 {
    let len = a.len();
    if len == 0 {
        return 0;
    }
    match (a, b) {
        (DimGrid::Regular { chunk: ca, .. }, DimGrid::Regular { chunk: cb, .. }) => {
            let inner = len - 1;
            let both = lcm(*ca, *cb).map_or(0, |l| inner / l);
            1 + inner / ca + inner / cb - both
        }
        _ => {
            let (x, y) = (interior_bounds(a), interior_bounds(b));
            let (mut i, mut j, mut n) = (0, 0, 0u64);
            while i < x.len() || j < y.len() {
                match (x.get(i), y.get(j)) {
                    (Some(p), Some(q)) if p == q => (i, j) = (i + 1, j + 1),
                    (Some(p), Some(q)) if p < q => i += 1,
                    (Some(_), None) => i += 1,
                    _ => j += 1,
                }
                n += 1;
            }
            n + 1
        }
    }
}

fn count_pieces(a: &ChunkGrid, b: &ChunkGrid) -> u64 {
    a.dims
        .iter()
        .zip(&b.dims)
        .map(|(x, y)| count_union(x, y))
        .product()
}

/// Elements of the largest possible piece of `a ∩ b` (an upper bound).
fn max_piece_elements(a: &ChunkGrid, b: &ChunkGrid) -> u64 {
    a.dims
        .iter()
        .zip(&b.dims)
        .map(|(x, y)| x.max_chunk_len().min(y.max_chunk_len()))
        .product()
}

/// The coarsest grid whose chunks are unions of whole chunks of both `a` and `b`.
fn common_coarsening(a: &DimGrid, b: &DimGrid) -> DimGrid {
    let len = a.len();
    match (a, b) {
        (DimGrid::Regular { chunk: ca, .. }, DimGrid::Regular { chunk: cb, .. }) => {
            DimGrid::regular(len, lcm(*ca, *cb).unwrap_or(len).min(len.max(1)))
        }
        _ => {
            let y = interior_bounds(b);
            let shared = interior_bounds(a)
                .into_iter()
                .filter(|x| y.binary_search(x).is_ok());
            let mut bounds = vec![0];
            bounds.extend(shared);
            bounds.push(len);
            bounds.dedup();
            DimGrid::Explicit {
                bounds: Arc::new(bounds),
            }
            .simplified()
        }
    }
}

/// Peak bytes of a task of stage `k` in the chain `blocks`.
fn stage_memory(req: &PlanRequest, blocks: &[ChunkGrid], k: usize) -> u64 {
    let block = blocks[k].max_chunk_elements() * req.item_size;
    let input = if k == 0 {
        req.source_read_overhead
    } else {
        piece_overhead(max_piece_elements(&blocks[k - 1], &blocks[k]) * req.item_size)
    };
    let output = if k + 1 == blocks.len() {
        req.target_write_overhead
    } else {
        piece_overhead(max_piece_elements(&blocks[k], &blocks[k + 1]) * req.item_size)
    };
    // While a first-stage task writes, the next task's first chunks arrive.
    let output = if k == 0 {
        output + source_prefetch(req, blocks)
    } else {
        output
    };
    block + req.task_threads.max(1).saturating_mul(input.max(output))
}

/// The source's prefetch, if its stage has a next task to prefetch for.
fn source_prefetch(req: &PlanRequest, blocks: &[ChunkGrid]) -> u64 {
    match blocks.first() {
        Some(first) if first.num_chunks() > 1 => req.source_prefetch,
        _ => 0,
    }
}

fn fits(req: &PlanRequest, blocks: &[ChunkGrid]) -> bool {
    (0..blocks.len()).all(|k| stage_memory(req, blocks, k) <= req.task_budget)
}

/// Enough blocks to keep `parallelism` tasks busy (or as many as the finest grid allows).
fn parallel_enough(req: &PlanRequest, blocks: &ChunkGrid, finest: &ChunkGrid) -> bool {
    // A few tasks per thread, so that a stage does not end with one thread working alone.
    let wanted = if req.parallelism > 1 {
        TASKS_PER_THREAD * req.parallelism
    } else {
        1
    };
    blocks.num_chunks() >= wanted.min(finest.num_chunks())
}

fn into_plan(req: &PlanRequest, blocks: Vec<ChunkGrid>) -> Plan {
    let stages = (0..blocks.len())
        .map(|k| Stage {
            task_memory: stage_memory(req, &blocks, k),
            blocks: blocks[k].clone(),
        })
        .collect();
    Plan {
        item_size: req.item_size,
        source: req.source.clone(),
        target: req.target.clone(),
        task_budget: req.task_budget,
        task_threads: req.task_threads.max(1),
        source_prefetch: source_prefetch(req, &blocks),
        stages,
    }
}

/// Largest `f` in `lo..=max` with `ok(f)`, assuming `ok` is monotone (true, then false) and
/// `lo` is acceptable.
fn largest_factor(lo: u64, max: u64, ok: impl Fn(u64) -> bool) -> u64 {
    let (mut lo, mut hi) = (lo.max(1), max.max(lo).max(1));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Single stage: blocks that are unions of whole source chunks and whole target chunks.
fn direct_candidate(req: &PlanRequest) -> Option<Plan> {
    let common: Vec<DimGrid> = req
        .source
        .dims
        .iter()
        .zip(&req.target.dims)
        .map(|(a, b)| common_coarsening(a, b))
        .collect();
    let mut blocks = ChunkGrid::new(common.clone());
    if !fits(req, std::slice::from_ref(&blocks)) {
        return None;
    }
    let finest = blocks.clone();
    for d in (0..blocks.ndim()).rev() {
        let max = common[d].num_chunks();
        let f = largest_factor(1, max, |f| {
            let mut g = blocks.clone();
            g.dims[d] = common[d].consolidate(f);
            g.max_chunk_elements() * req.item_size
                <= DIRECT_BLOCK_TARGET.max(finest.max_chunk_elements() * req.item_size)
                && fits(req, std::slice::from_ref(&g))
                && parallel_enough(req, &g, &finest)
        });
        blocks.dims[d] = common[d].consolidate(f);
    }
    Some(into_plan(req, vec![blocks]))
}

/// Two stages: read blocks grown from source chunks towards the target chunk shape, write blocks
/// grown from target chunks towards the read block shape, pieces where they meet.
fn two_stage_grids(req: &PlanRequest) -> Option<(ChunkGrid, ChunkGrid)> {
    let ndim = req.source.ndim();
    let blocks = |factors: &[u64], grid: &ChunkGrid| {
        ChunkGrid::new(
            (0..ndim)
                .map(|d| grid.dims[d].consolidate(factors[d]))
                .collect(),
        )
    };
    let (mut fr, mut fw) = (vec![1u64; ndim], vec![1u64; ndim]);
    if !fits(req, &[req.source.clone(), req.target.clone()]) {
        return None;
    }
    // Read blocks grow along dimensions where target chunks are longer (that lengthens pieces),
    // write blocks along dimensions where read blocks are longer. Pieces are as large as both
    // allow only when neither takes the whole budget first: read blocks grow to half of it,
    // then write blocks, then read blocks into what is left.
    let grow_read = |fr: &mut Vec<u64>, fw: &[u64], cap: u64| {
        let write = blocks(fw, &req.target);
        for d in (0..ndim).rev() {
            let (s, t) = (
                req.source.dims[d].nominal_chunk(),
                write.dims[d].nominal_chunk(),
            );
            if s >= t {
                continue;
            }
            let max = t.div_ceil(s).min(req.source.dims[d].num_chunks());
            fr[d] = largest_factor(fr[d], max, |f| {
                let mut factors = fr.clone();
                factors[d] = f;
                let read = blocks(&factors, &req.source);
                read.max_chunk_elements() * req.item_size <= cap
                    && fits(req, &[read.clone(), write.clone()])
                    && parallel_enough(req, &read, &req.source)
            });
        }
    };
    let grow_write = |fw: &mut Vec<u64>, fr: &[u64]| {
        let read = blocks(fr, &req.source);
        for d in (0..ndim).rev() {
            let (r, t) = (
                read.dims[d].nominal_chunk(),
                req.target.dims[d].nominal_chunk(),
            );
            if t >= r {
                continue;
            }
            let max = r.div_ceil(t).min(req.target.dims[d].num_chunks());
            fw[d] = largest_factor(fw[d], max, |f| {
                let mut factors = fw.clone();
                factors[d] = f;
                let write = blocks(&factors, &req.target);
                fits(req, &[read.clone(), write.clone()])
                    && parallel_enough(req, &write, &req.target)
            });
        }
    };
    grow_read(&mut fr, &fw, req.task_budget / 2);
    grow_write(&mut fw, &fr);
    grow_read(&mut fr, &fw, u64::MAX);
    Some((blocks(&fr, &req.source), blocks(&fw, &req.target)))
}

/// `intermediates` grids stepping geometrically from `read` to `write`, shrunk until they fit.
fn multi_stage_candidate(
    req: &PlanRequest,
    read: &ChunkGrid,
    write: &ChunkGrid,
    intermediates: usize,
) -> Option<Plan> {
    let shape = req.source.shape();
    let (r, w) = (read.nominal_chunk_shape(), write.nominal_chunk_shape());
    let mut blocks = vec![read.clone()];
    for i in 1..=intermediates {
        let t = i as f64 / (intermediates + 1) as f64;
        let chunk: Vec<u64> = (0..shape.len())
            .map(|d| {
                let g = ((r[d] as f64).ln() * (1.0 - t) + (w[d] as f64).ln() * t).exp();
                (g.round() as u64).clamp(1, shape[d].max(1))
            })
            .collect();
        blocks.push(ChunkGrid::regular(&shape, &chunk));
    }
    blocks.push(write.clone());
    // Halve the longest dimension of the largest intermediate until every stage fits.
    for _ in 0..64 * shape.len().max(1) {
        if fits(req, &blocks) {
            // Few tasks: an intermediate stage must not have more tasks than the stages on either
            // side together (halving to fit the budget can multiply them).
            let tasks: Vec<u64> = blocks.iter().map(ChunkGrid::num_chunks).collect();
            if (1..=intermediates).any(|k| tasks[k] > tasks[k - 1] + tasks[k + 1]) {
                return None;
            }
            return Some(into_plan(req, blocks));
        }
        let k = (1..=intermediates).max_by_key(|&k| blocks[k].max_chunk_elements())?;
        let mut chunk = blocks[k].nominal_chunk_shape();
        let d = (0..chunk.len()).max_by_key(|&d| chunk[d])?;
        if chunk[d] <= 1 {
            return None;
        }
        chunk[d] = chunk[d].div_ceil(2);
        blocks[k] = ChunkGrid::regular(&shape, &chunk);
    }
    None
}

/// Plans copying an array from `req.source` chunks to `req.target` chunks within the budget:
/// the cheapest of [`candidates`] under `req.cost`.
pub fn plan(req: &PlanRequest) -> Result<Plan, PlanError> {
    let best = candidates(req)?
        .into_iter()
        .map(|p| (p.seconds(&req.cost, req.parallelism), p))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, p)| p);
    best.ok_or(PlanError::BudgetTooSmall {
        needed: req.task_budget + 1,
        budget: req.task_budget,
    })
}

/// Bytes of the smallest single-stage block: the coarsest grid made of whole source chunks
/// and whole target chunks, which a single stage from memory must hold per task.
pub fn direct_block_bytes(req: &PlanRequest) -> u64 {
    let common: Vec<DimGrid> = req
        .source
        .dims
        .iter()
        .zip(&req.target.dims)
        .map(|(a, b)| common_coarsening(a, b))
        .collect();
    ChunkGrid::new(common)
        .max_chunk_elements()
        .saturating_mul(req.item_size)
}

/// Every plan the planner weighs for `req`: a single stage from memory where its blocks fit,
/// two stages through scratch, and more stages where pieces would be small.
pub fn candidates(req: &PlanRequest) -> Result<Vec<Plan>, PlanError> {
    let (shape, target_shape) = (req.source.shape(), req.target.shape());
    if shape != target_shape {
        return Err(PlanError::ShapeMismatch {
            source_shape: shape,
            target_shape,
        });
    }
    let budget = req.task_budget;
    // Every budget error names the smallest budget that plans, not just what the chunk at fault
    // needs: a budget that fits one source chunk may still be too small for the whole plan.
    let needed = minimum_task_budget(req);
    let source_chunk = req.source.max_chunk_elements() * req.item_size + req.source_read_overhead;
    if source_chunk > budget {
        return Err(PlanError::SourceChunkTooLarge {
            chunk: req.source.nominal_chunk_shape(),
            needed,
            budget,
        });
    }
    let target_chunk = req.target.max_chunk_elements() * req.item_size + req.target_write_overhead;
    if target_chunk > budget {
        return Err(PlanError::TargetChunkTooLarge {
            chunk: req.target.nominal_chunk_shape(),
            needed,
            budget,
        });
    }

    let mut candidates: Vec<Plan> = direct_candidate(req).into_iter().collect();
    match two_stage_grids(req) {
        Some((read, write)) => {
            let two = into_plan(req, vec![read.clone(), write.clone()]);
            let piece = max_piece_elements(&read, &write) * req.item_size;
            if piece < req.min_io {
                for n in 1..=MAX_STAGES - 2 {
                    candidates.extend(multi_stage_candidate(req, &read, &write, n));
                }
            }
            candidates.push(two);
        }
        None if candidates.is_empty() => {
            return Err(PlanError::BudgetTooSmall { needed, budget });
        }
        None => {}
    }
    Ok(candidates)
}

/// The smallest per-task budget with which `req` can be planned at all.
pub fn minimum_task_budget(req: &PlanRequest) -> u64 {
    let pair = [req.source.clone(), req.target.clone()];
    let two = (0..2)
        .map(|k| stage_memory(req, &pair, k))
        .max()
        .unwrap_or(0);
    let direct: Vec<DimGrid> = req
        .source
        .dims
        .iter()
        .zip(&req.target.dims)
        .map(|(a, b)| common_coarsening(a, b))
        .collect();
    two.min(stage_memory(req, &[ChunkGrid::new(direct)], 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(shape: &[u64], s: &[u64], t: &[u64], item: u64, budget: u64) -> PlanRequest {
        let source = ChunkGrid::regular(shape, s);
        let target = ChunkGrid::regular(shape, t);
        PlanRequest {
            item_size: item,
            source_read_overhead: 2 * source.max_chunk_elements() * item,
            target_write_overhead: 2 * target.max_chunk_elements() * item,
            source_prefetch: 0,
            source,
            target,
            task_budget: budget,
            min_io: 1 << 20,
            parallelism: 2,
            task_threads: 1,
            cost: CostModel::default(),
        }
    }

    #[test]
    fn canonical_case_is_two_stage_with_large_pieces() {
        let req = request(
            &[87600, 721, 1440],
            &[1, 721, 1440],
            &[87600, 24, 24],
            4,
            512 << 20,
        );
        let err = plan(&req).unwrap_err();
        assert!(
            matches!(err, PlanError::TargetChunkTooLarge { .. }),
            "{err}"
        );
        let req = request(
            &[87600, 721, 1440],
            &[1, 721, 1440],
            &[87600, 24, 24],
            4,
            4 << 30,
        );
        let p = plan(&req).unwrap();
        assert!(p.stages.len() >= 2);
        for s in &p.stages {
            assert!(s.task_memory <= 4 << 30);
        }
        let read = p.stages[0].blocks.nominal_chunk_shape();
        assert_eq!(&read[1..], &[721, 1440]);
        assert!(read[0] > 1);
    }

    #[test]
    fn identical_chunks_copy_directly() {
        let req = request(&[100, 100], &[10, 10], &[10, 10], 8, 64 << 20);
        let p = plan(&req).unwrap();
        assert_eq!(p.stages.len(), 1);
    }

    #[test]
    fn piece_counts() {
        assert_eq!(
            count_union(&DimGrid::regular(10, 4), &DimGrid::regular(10, 6)),
            4
        ); // 0 4 6 8 10
        assert_eq!(
            count_union(&DimGrid::regular(12, 4), &DimGrid::from_lengths([5, 7])),
            4
        ); // 0 4 5 8 12
        assert_eq!(
            common_coarsening(&DimGrid::regular(12, 4), &DimGrid::regular(12, 6)),
            DimGrid::regular(12, 12)
        );
        assert_eq!(lcm(4, 6), Some(12));
    }

    /// A first-stage task holds the next task's prefetched chunks while it writes, so its
    /// memory counts them beside the write's own buffers; a stage of one task has no next task.
    #[test]
    fn a_first_stage_counts_the_prefetch_only_with_a_next_task() {
        let mut req = request(&[64, 400, 400], &[1, 400, 400], &[64, 50, 50], 4, 64 << 20);
        let without = plan(&req).unwrap();
        req.source_prefetch = 5 << 20;
        let with = plan(&req).unwrap();
        assert!(with.stages[0].blocks.num_chunks() > 1);
        assert_eq!(with.source_prefetch, 5 << 20);
        let write = if with.stages.len() == 1 {
            req.target_write_overhead
        } else {
            piece_overhead(max_piece_elements(&with.stages[0].blocks, &with.stages[1].blocks) * 4)
        };
        let block = with.stages[0].blocks.max_chunk_elements() * 4;
        let read = req.source_read_overhead;
        assert_eq!(
            with.stages[0].task_memory,
            block + read.max(write + (5 << 20))
        );
        assert!(with.stages[0].task_memory <= req.task_budget);
        assert!(without.stages[0].task_memory <= req.task_budget);
        // One task from memory: nothing to prefetch for, nothing counted.
        req.task_budget = 1 << 30;
        req.parallelism = 1;
        let one = plan(&req).unwrap();
        assert_eq!(one.stages.len(), 1);
        assert_eq!(one.stages[0].blocks.num_chunks(), 1);
        assert_eq!(one.source_prefetch, 0);
        assert_eq!(
            one.stages[0].task_memory,
            64 * 400 * 400 * 4 + req.source_read_overhead.max(req.target_write_overhead)
        );
    }

    #[test]
    fn zero_d_and_empty_arrays_plan() {
        let p = plan(&request(&[], &[], &[], 4, 1 << 20)).unwrap();
        assert_eq!(p.total_tasks(), 1);
        let p = plan(&request(&[0, 5], &[1, 5], &[3, 1], 4, 1 << 20)).unwrap();
        assert_eq!(p.total_tasks(), 0);
    }
}
