//! Whole-dataset jobs: plan every array of a source dataset into a target, run the plans, and
//! finalize the target. This is what `rechunk` does; the CLI only parses arguments around it.

use crate::array::{DatasetSource, DatasetTarget};
use crate::autochunk;
use crate::error::{Error, Result};
use crate::executor::{self, ArrayJob, Executor, ExecutorOptions, StageReport};
use crate::grid::ChunkGrid;
use crate::meta::{ArrayMeta, DatasetMeta};
use crate::planner::{self, CostModel, Plan, PlanError, PlanRequest};
pub use crate::rates::Measure;
use crate::rates::{self, Rates};
use crate::scratch::{ScratchCodec, ScratchStore};
use crate::spec::ChunkSpec;
use crate::units::format_bytes;
use serde::{Deserialize, Serialize};

/// Identifies our plan files.
pub const PLAN_FORMAT: &str = "rechunker-plan";
/// Bumped whenever a plan file's meaning changes.
pub const PLAN_VERSION: u32 = 1;

/// Coordinate variables up to this size are written as one chunk whatever `--chunks` says.
pub const WHOLE_COORDINATE_BYTES: u64 = 64 << 20;

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct JobOptions {
    pub chunks: ChunkSpec,
    /// Peak memory of the whole process.
    pub max_mem: u64,
    /// Memory the process needs besides task buffers (binary, libraries, threads, allocator).
    pub memory_reserve: u64,
    pub threads: usize,
    pub min_io: u64,
    pub cost: CostModel,
}

impl JobOptions {
    /// Bytes left for task buffers.
    pub fn task_memory(&self) -> Result<u64> {
        self.max_mem.checked_sub(self.memory_reserve).filter(|&m| m > 0).ok_or_else(|| {
            Error::Invalid(format!(
                "--max-mem {} is below the {} this process needs before it holds any data; use --max-mem {} or more",
                format_bytes(self.max_mem),
                format_bytes(self.memory_reserve),
                suggest(self.memory_reserve + (64 << 20))
            ))
        })
    }
}

/// A size rounded up to a friendly figure, in the syntax `--max-mem` accepts.
fn suggest(bytes: u64) -> String {
    let mib = bytes.div_ceil(1 << 20);
    if mib >= 1024 {
        format!("{:.1}GiB", (mib as f64 / 1024.0 * 10.0).ceil() / 10.0)
    } else {
        format!("{}MiB", mib.div_ceil(16) * 16)
    }
}

/// The plan of one array of the dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArrayPlan {
    /// The target array: the source's metadata with the new chunk grid.
    pub target: ArrayMeta,
    /// Tasks that may run at once within the memory budget.
    pub parallelism: u64,
    pub plan: Plan,
    /// Why the target chunks are what they are, when rechunk chose them (`--chunks auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_why: Option<String>,
    /// The rates the plan was made with, the plans weighed and why this one (plans written
    /// before rates were measured have none). Recorded once: workers do not measure again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
}

/// What a plan is expected to cost, and what it was weighed against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub rates: Rates,
    /// Wall seconds of the chosen plan under `rates`, with the time measuring them took.
    pub seconds: f64,
    /// The cheapest plan of each kind weighed, cheapest first (the chosen one first).
    pub candidates: Vec<Candidate>,
    /// Why this plan, in a sentence: what the next kind would cost, or why a kind was not
    /// possible.
    pub why: String,
}

/// One plan the planner weighed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// `one stage from memory`, `2 stages through scratch`, ...
    pub kind: String,
    pub tasks_at_once: u64,
    pub task_threads: u64,
    /// Tasks per stage.
    pub tasks: Vec<u64>,
    pub seconds: f64,
}

impl Candidate {
    fn of(plan: &Plan, parallelism: u64, seconds: f64) -> Candidate {
        let kind = match plan.stages.len() {
            1 => "one stage from memory".to_string(),
            n => format!("{n} stages through scratch"),
        };
        Candidate {
            kind,
            tasks_at_once: parallelism,
            task_threads: plan.task_threads,
            tasks: (0..plan.stages.len()).map(|k| plan.num_tasks(k)).collect(),
            seconds,
        }
    }

    /// `2 stages through scratch (4 tasks at once, 1 thread each; 16 + 64 tasks)`.
    pub fn describe(&self) -> String {
        let tasks: Vec<String> = self.tasks.iter().map(u64::to_string).collect();
        format!(
            "{} ({} tasks at once, {} thread{} each; {} tasks)",
            self.kind,
            self.tasks_at_once,
            self.task_threads,
            if self.task_threads == 1 { "" } else { "s" },
            tasks.join(" + ")
        )
    }
}

/// A self-contained, versioned plan for a whole dataset, as written by `rechunk plan -o`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetPlan {
    pub format: String,
    pub version: u32,
    pub source: String,
    pub target: String,
    pub chunks: String,
    pub max_mem: u64,
    pub memory_reserve: u64,
    pub threads: usize,
    pub arrays: Vec<ArrayPlan>,
    pub attrs: crate::meta::Attributes,
    /// Wall seconds planning spent before the arrays: opening the source and timing the
    /// object stores. A run does both again, so its estimate counts them; on a store 100 ms
    /// away they are several round trips. 0 in plans written without it.
    #[serde(default)]
    pub opening_seconds: f64,
}

impl DatasetPlan {
    /// The target dataset's metadata.
    pub fn target_meta(&self) -> DatasetMeta {
        DatasetMeta {
            arrays: self.arrays.iter().map(|a| a.target.clone()).collect(),
            attrs: self.attrs.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing cannot fail: every map is keyed by strings and non-finite floats are
        // written as strings (see `dtype::float_json`).
        serde_json::to_string_pretty(self).expect("a plan always serializes to JSON")
    }

    /// Reads a plan written by [`DatasetPlan::to_json`] and checks it ([`DatasetPlan::check`]):
    /// a plan file is input like any other, and a damaged one must fail here with a message,
    /// not panic or do the wrong thing later.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not a plan file: {e}"))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(PLAN_FORMAT) {
            return Err("not a rechunker plan file".into());
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == PLAN_VERSION as u64 => {}
            other => return Err(format!("plan version {other:?} is not supported; this rechunk reads version {PLAN_VERSION}")),
        }
        // Arrays one by one first, so that an error names the array it is in.
        if let Some(arrays) = value.get("arrays").and_then(|a| a.as_array()) {
            for (i, a) in arrays.iter().enumerate() {
                if let Err(e) = ArrayPlan::deserialize(a) {
                    let name = a.pointer("/target/name").and_then(|n| n.as_str());
                    return Err(match name {
                        Some(name) => format!("array `{name}`: malformed plan: {e}"),
                        None => format!("array {i}: malformed plan: {e}"),
                    });
                }
            }
        }
        let plan: DatasetPlan =
            serde_json::from_value(value).map_err(|e| format!("malformed plan file: {e}"))?;
        plan.check()?;
        Ok(plan)
    }

    /// Checks the plan's structure, as the planner made it: at least one thread, a budget above
    /// the process's own reserve, and per array ([`check_array_plan`]) well-formed grids over the
    /// target's shape, stages that read whole source chunks and write whole target chunks,
    /// write units made of whole target chunks, task memory within the budget. Names the array
    /// and what is wrong.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.threads == 0 {
            return Err("threads is 0; a plan runs at least one task at a time".into());
        }
        if self.threads > MAX_THREADS {
            return Err(format!(
                "threads is {}, more than the {MAX_THREADS} a plan may use",
                self.threads
            ));
        }
        let Some(pool) = self
            .max_mem
            .checked_sub(self.memory_reserve)
            .filter(|&m| m > 0)
        else {
            return Err(format!(
                "max_mem {} is not above the memory_reserve of {}: no memory is left for data",
                format_bytes(self.max_mem),
                format_bytes(self.memory_reserve)
            ));
        };
        for (i, a) in self.arrays.iter().enumerate() {
            let name = &a.target.name;
            if self.arrays[..i].iter().any(|b| b.target.name == *name) {
                return Err(format!("array `{name}` is planned twice"));
            }
            check_array_plan(a, self.threads, pool).map_err(|e| format!("array `{name}`: {e}"))?;
        }
        Ok(())
    }

    /// Checks that `source` is the dataset this plan was made for: the same arrays, with the
    /// same shapes, types and chunk grids. A plan made for other data would read the wrong
    /// chunks (or none); names the array and what differs.
    pub fn check_source(&self, source: &DatasetMeta) -> std::result::Result<(), String> {
        for a in &self.arrays {
            let name = &a.target.name;
            let Some(s) = source.array(name) else {
                return Err(format!(
                    "the source has no array `{name}` (it has {})",
                    array_names(source)
                ));
            };
            if s.dtype != a.target.dtype {
                return Err(format!(
                    "array `{name}` is {} in the source but {} in the plan",
                    s.dtype, a.target.dtype
                ));
            }
            if s.shape() != a.plan.shape() {
                return Err(format!(
                    "array `{name}` has shape {:?} in the source but {:?} in the plan",
                    s.shape(),
                    a.plan.shape()
                ));
            }
            if s.grid != a.plan.source {
                return Err(format!(
                    "array `{name}` is stored in chunks {:?} in the source but {:?} in the plan",
                    s.grid.nominal_chunk_shape(),
                    a.plan.source.nominal_chunk_shape()
                ));
            }
        }
        if let Some(extra) = source
            .arrays
            .iter()
            .find(|s| !self.arrays.iter().any(|a| a.target.name == s.name))
        {
            return Err(format!(
                "the source has an array `{}` the plan does not copy",
                extra.name
            ));
        }
        Ok(())
    }
}

/// Most threads a plan file may ask for (more is a damaged file, not a machine).
pub const MAX_THREADS: usize = 1 << 16;

fn array_names(meta: &DatasetMeta) -> String {
    if meta.arrays.is_empty() {
        return "none".into();
    }
    meta.arrays
        .iter()
        .map(|a| format!("`{}`", a.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks one array's plan against the plan-wide `threads` and data memory `pool`.
fn check_array_plan(a: &ArrayPlan, threads: usize, pool: u64) -> std::result::Result<(), String> {
    let meta = &a.target;
    meta.grid
        .check()
        .map_err(|e| format!("target chunk grid: {e}"))?;
    if meta.dims.len() != meta.grid.ndim() {
        return Err(format!(
            "{} dimension names for a {}-dimensional chunk grid",
            meta.dims.len(),
            meta.grid.ndim()
        ));
    }
    if a.plan.item_size != meta.item_size() as u64 {
        return Err(format!(
            "item size {} does not match its type {} ({} bytes)",
            a.plan.item_size,
            meta.dtype,
            meta.item_size()
        ));
    }
    a.plan.check()?;
    if meta.grid.shape() != a.plan.shape() {
        return Err(format!(
            "the target's chunk grid covers {:?} but the plan's grids cover {:?}",
            meta.grid.shape(),
            a.plan.shape()
        ));
    }
    // Targets write whole chunks (a Zarr shard holds whole chunks): every unit the plan's last
    // stage writes must be a union of the target's chunks.
    if !meta.grid.refines(&a.plan.target) {
        return Err(format!(
            "the target write grid {:?} is not made of whole target chunks {:?}",
            a.plan.target.nominal_chunk_shape(),
            meta.grid.nominal_chunk_shape()
        ));
    }
    if a.parallelism == 0 || a.parallelism > threads as u64 {
        return Err(format!(
            "parallelism {} is not between 1 and the plan's {threads} threads",
            a.parallelism
        ));
    }
    if a.parallelism.saturating_mul(a.plan.task_threads) > threads as u64 {
        return Err(format!(
            "{} tasks at once of {} threads each are more than the plan's {threads} threads",
            a.parallelism, a.plan.task_threads
        ));
    }
    match a.plan.task_budget.checked_mul(a.parallelism) {
        Some(m) if m <= pool => Ok(()),
        _ => Err(format!(
            "{} tasks at once of up to {} each need more than the {} max_mem leaves for data",
            a.parallelism,
            format_bytes(a.plan.task_budget),
            format_bytes(pool)
        )),
    }
}

/// The target chunk shape of `array` under `chunks` (checked by [`ChunkSpec::for_dataset`]),
/// and why, when rechunk chose it. Coordinate variables stay in one chunk, as xarray writes
/// them (readers load them whole), unless a per-variable spec names them.
fn target_chunks(
    array: &ArrayMeta,
    chunks: &ChunkSpec,
    time_dims: &[String],
    location: &str,
) -> Result<(Vec<u64>, Option<String>)> {
    if array.is_coordinate()
        && array.num_bytes() <= WHOLE_COORDINATE_BYTES
        && !chunks.names_variable(&array.name)
    {
        let whole: Vec<u64> = array.shape().iter().map(|&n| n.max(1)).collect();
        let why = matches!(chunks.for_variable(&array.name), ChunkSpec::Auto(_)).then(|| {
            format!(
                "coordinate: whole ({}), as xarray writes coordinates",
                whole[0]
            )
        });
        return Ok((whole, why));
    }
    chunks.choose(array, time_dims, location)
}

/// The target chunk shape `chunks` gives `array` when planned (coordinates stay whole, see
/// [`target_chunks`]): what a copy is checked against.
pub fn planned_chunk_shape(
    array: &ArrayMeta,
    chunks: &ChunkSpec,
    location: &str,
) -> Result<Vec<u64>> {
    Ok(target_chunks(array, chunks, &[], location)?.0)
}

/// Plans one array into target `chunks`: tries the most parallel per-task budget first, then
/// fewer, larger tasks.
fn plan_array(
    source_meta: &ArrayMeta,
    source: &dyn crate::ChunkedArray,
    (chunks, chunks_why): (Vec<u64>, Option<String>),
    target: &dyn DatasetTarget,
    options: &JobOptions,
    location: &str,
    measure: Option<&Measure>,
) -> Result<ArrayPlan> {
    let read_overhead = source.read_overhead();
    let mut target_meta = source_meta.clone();
    target_meta.grid = ChunkGrid::regular(&source_meta.shape(), &chunks);
    target_meta.codecs.clear();
    let pool = options.task_memory()?;
    let threads = options.threads.max(1) as u64;
    let write_grid = target.write_grid(&target_meta)?;
    let rates = match measure {
        Some(m) => rates::measure(
            source,
            target,
            &target_meta,
            &write_grid,
            m,
            pool,
            options.cost,
        ),
        None => Rates::fixed(options.cost, "planned without timing the data"),
    };
    let cost = rates.cost;
    let mut request = PlanRequest {
        item_size: source_meta.item_size() as u64,
        source: source_meta.grid.clone(),
        target: write_grid,
        task_budget: pool / threads,
        source_read_overhead: read_overhead,
        target_write_overhead: target.write_overhead(&target_meta),
        source_prefetch: source.prefetch_overhead(),
        min_io: options.min_io,
        parallelism: threads,
        task_threads: 1,
        cost,
    };
    // More tasks at once means smaller blocks and pieces: let the cost model weigh the two.
    let mut last_error = None;
    let mut best: Option<(f64, ArrayPlan)> = None;
    let mut weighed: Vec<Candidate> = Vec::new();
    // Threads no task at once would use go to the tasks' own chunks; each needs its own chunk
    // buffers, so where they do not fit, one thread per task is tried too.
    let tries = (1..=threads).rev().flat_map(|parallelism| {
        let spread = threads / parallelism;
        std::iter::once((parallelism, spread)).chain((spread > 1).then_some((parallelism, 1)))
    });
    for (parallelism, task_threads) in tries {
        request.task_budget = pool / parallelism;
        request.parallelism = parallelism;
        request.task_threads = task_threads;
        match planner::candidates(&request) {
            Ok(plans) => {
                for plan in plans {
                    let seconds = plan.seconds(&cost, parallelism);
                    let candidate = Candidate::of(&plan, parallelism, seconds);
                    match weighed.iter_mut().find(|c| c.kind == candidate.kind) {
                        Some(c) if c.seconds <= seconds => {}
                        Some(c) => *c = candidate,
                        None => weighed.push(candidate),
                    }
                    if best.as_ref().is_none_or(|(b, _)| seconds < *b) {
                        let target = target_meta.clone();
                        best = Some((
                            seconds,
                            ArrayPlan {
                                target,
                                parallelism,
                                plan,
                                chunks_why: chunks_why.clone(),
                                estimate: None,
                            },
                        ));
                    }
                }
            }
            Err(e @ PlanError::ShapeMismatch { .. }) => return Err(e.into()),
            Err(e) => last_error = Some(e),
        }
    }
    if let Some((seconds, mut plan)) = best {
        weighed.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let why = why_chosen(&weighed, &request, pool);
        plan.estimate = Some(Estimate {
            // Measuring is part of a run that plans.
            seconds: seconds + rates.seconds,
            rates,
            candidates: weighed,
            why,
        });
        return Ok(plan);
    }
    let error = last_error.unwrap_or(PlanError::BudgetTooSmall {
        needed: pool + 1,
        budget: pool,
    });
    let needed = error
        .needed()
        .unwrap_or(pool + 1)
        .max(planner::minimum_task_budget(&request));
    let what = match &error {
        PlanError::SourceChunkTooLarge { chunk, .. } => format!("its source chunks {chunk:?}"),
        PlanError::TargetChunkTooLarge { chunk, .. } => format!("target chunks {chunk:?}"),
        _ => "the smallest task".to_string(),
    };
    Err(Error::Invalid(format!(
        "`{}` in {location}: {what} need {} per task, but --max-mem {} leaves {} for data; use --max-mem {} or more{}",
        source_meta.name,
        format_bytes(needed),
        format_bytes(options.max_mem),
        format_bytes(pool),
        suggest(needed + options.memory_reserve),
        if matches!(error, PlanError::TargetChunkTooLarge { .. }) { ", or smaller target chunks" } else { "" }
    )))
}

/// Why the cheapest of `weighed` (sorted, cheapest first) was chosen: what the next kind
/// costs, and why a single stage from memory was not possible when it was not.
fn why_chosen(weighed: &[Candidate], request: &PlanRequest, pool: u64) -> String {
    let Some(chosen) = weighed.first() else {
        return String::new();
    };
    let mut why = format!("cheapest: {}", chosen.kind);
    if let Some(next) = weighed.get(1) {
        why.push_str(&format!(
            "; {} would take {:.1}x as long",
            next.kind,
            next.seconds / chosen.seconds.max(1e-9)
        ));
    }
    if !weighed.iter().any(|c| c.tasks.len() == 1) {
        let block = planner::direct_block_bytes(request);
        why.push_str(&format!(
            "; one stage from memory needs blocks of whole source and target chunks, {} each, more than the {} a task may hold",
            format_bytes(block),
            format_bytes(pool)
        ));
    }
    why
}

/// Plans every array of `source` for writing to `target`.
pub fn plan_dataset(
    source: &dyn DatasetSource,
    target: &dyn DatasetTarget,
    options: &JobOptions,
) -> Result<DatasetPlan> {
    plan_dataset_with(source, target, options, &[])
}

/// [`plan_dataset`], knowing which dimensions the source has as unlimited (NetCDF): `--chunks
/// auto` takes them for time.
pub fn plan_dataset_with(
    source: &dyn DatasetSource,
    target: &dyn DatasetTarget,
    options: &JobOptions,
    unlimited_dims: &[String],
) -> Result<DatasetPlan> {
    plan_dataset_measured(source, target, options, unlimited_dims, None)
}

/// [`plan_dataset_with`], timing each array's source, target codec and scratch first (when
/// `measure` is given) so that the cost model weighs the plans with this data's rates.
pub fn plan_dataset_measured(
    source: &dyn DatasetSource,
    target: &dyn DatasetTarget,
    options: &JobOptions,
    unlimited_dims: &[String],
    measure: Option<&Measure>,
) -> Result<DatasetPlan> {
    let meta = source.meta();
    let chunks = options.chunks.for_dataset(meta, source.location())?;
    let time_dims = autochunk::time_dims(meta, unlimited_dims);
    let arrays = meta
        .arrays
        .iter()
        .map(|a| {
            let array = source.open_array(&a.name)?;
            let shape = target_chunks(a, &chunks, &time_dims, source.location())?;
            plan_array(
                a,
                array.as_ref(),
                shape,
                target,
                options,
                source.location(),
                measure,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DatasetPlan {
        format: PLAN_FORMAT.into(),
        version: PLAN_VERSION,
        source: source.location().into(),
        target: target.location().into(),
        chunks: options.chunks.to_string(),
        max_mem: options.max_mem,
        memory_reserve: options.memory_reserve,
        threads: options.threads,
        arrays,
        attrs: meta.attrs.clone(),
        opening_seconds: 0.0,
    })
}

/// What a run did, per array and stage.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub arrays: Vec<(String, Vec<StageReport>)>,
}

impl RunReport {
    pub fn tasks_run(&self) -> u64 {
        self.arrays
            .iter()
            .flat_map(|(_, s)| s)
            .map(|s| s.tasks_run)
            .sum()
    }

    pub fn tasks_skipped(&self) -> u64 {
        self.arrays
            .iter()
            .flat_map(|(_, s)| s)
            .map(|s| s.tasks_skipped)
            .sum()
    }
}

/// Where a run keeps its plan in the scratch store, so a resumed run continues the same plan.
pub const PLAN_KEY: &str = "plan.json";

/// Where array `index`'s pieces and journal live in the scratch store.
fn array_prefix(index: usize) -> String {
    format!("{ARRAYS_PREFIX}{index}/")
}

/// Everything of the arrays' pieces and journals, below one prefix.
const ARRAYS_PREFIX: &str = "arrays/";

/// The marker rechunk writes first into a scratch place it claims; it names the target. Only a
/// place holding it is ever cleaned, and then only of the keys rechunk writes.
pub const OWNER_KEY: &str = "rechunk-scratch.json";

#[derive(Serialize, Deserialize)]
struct Owner {
    rechunk_scratch: u32,
    target: String,
}

/// Claims `scratch` for a run into `target`: a place already marked for that target is ours
/// (an interrupted run); an empty or new one gets the marker; anything else is refused, since
/// rechunk deletes its scratch when it finishes and must not take files it did not write.
pub fn claim_scratch(scratch: &dyn ScratchStore, target: &str) -> Result<()> {
    let refuse = |message: String| Err(Error::scratch(scratch.location(), message));
    if let Some(bytes) = scratch.get(OWNER_KEY)? {
        let owner: Owner = match serde_json::from_slice(&bytes) {
            Ok(o) => o,
            Err(e) => return refuse(format!("its `{OWNER_KEY}` is damaged ({e}); remove that scratch folder by hand, or choose another place with --scratch")),
        };
        if owner.target != target {
            return refuse(format!(
                "holds the scratch of a run into {}, not {target}; finish that run, or choose another place with --scratch",
                owner.target
            ));
        }
        return Ok(());
    }
    if !scratch.is_empty()? {
        return refuse(format!(
            "exists and holds files rechunk did not write (it has no `{OWNER_KEY}`); rechunk deletes its scratch when it finishes, so it only uses a new or empty place: give --scratch a folder of your own and rechunk makes its scratch folder inside it"
        ));
    }
    let owner = Owner {
        rechunk_scratch: 1,
        target: target.into(),
    };
    let text = serde_json::to_vec_pretty(&owner)
        .map_err(|e| Error::scratch(scratch.location(), e.to_string()))?;
    if !scratch.put_if_absent(OWNER_KEY, &text)? {
        // Another process claimed it between our read and write: check it is for our target.
        return claim_scratch(scratch, target);
    }
    Ok(())
}

/// The target a claimed scratch place was claimed for, or `None` if it holds no marker.
pub fn scratch_owner(scratch: &dyn ScratchStore) -> Result<Option<String>> {
    match scratch.get(OWNER_KEY)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice::<Owner>(&bytes)
            .map(|o| Some(o.target))
            .map_err(|e| {
                Error::scratch(
                    scratch.location(),
                    format!("its `{OWNER_KEY}` is damaged ({e}); remove that scratch folder by hand, or choose another place with --scratch"),
                )
            }),
    }
}

/// Removes what rechunk wrote to a scratch place it claimed for `target` (pieces, journals, the
/// plan, the marker, then the folder if nothing else is left), and nothing else. A place
/// without the marker is left alone; one claimed for another target is refused, since its
/// pieces belong to another run.
pub fn release_scratch(scratch: &dyn ScratchStore, target: &str) -> Result<()> {
    match scratch_owner(scratch)? {
        // Nothing there (a run that never claimed it, or one released already): nothing to say.
        None if scratch.is_empty()? => return Ok(()),
        None => {
            tracing::warn!(scratch = %scratch.location(), "not removing a scratch place rechunk did not mark as its own");
            return Ok(());
        }
        Some(owner) if owner != target => {
            return Err(Error::scratch(
                scratch.location(),
                format!("holds the scratch of a run into {owner}, not {target}; finish that run, or choose another place with --scratch"),
            ))
        }
        Some(_) => {}
    }
    scratch.remove_prefix(ARRAYS_PREFIX)?;
    scratch.delete(PLAN_KEY)?;
    scratch.delete(OWNER_KEY)?;
    if !scratch.remove_root_if_empty()? {
        tracing::warn!(scratch = %scratch.location(), "left the scratch folder in place: it holds files rechunk did not write");
    }
    Ok(())
}

impl DatasetPlan {
    /// Stages of the whole job: stage `s` runs stage `s` of every array that has one.
    pub fn num_stages(&self) -> usize {
        self.arrays
            .iter()
            .map(|a| a.plan.stages.len())
            .max()
            .unwrap_or(0)
    }
}

/// Progress of one array's stage, from the journal.
#[derive(Clone, Debug, PartialEq)]
pub struct StageStatus {
    pub array: String,
    pub stage: usize,
    pub tasks: u64,
    pub done: u64,
    /// The first few unfinished tasks.
    pub missing: Vec<u64>,
}

impl StageStatus {
    pub fn complete(&self) -> bool {
        self.done >= self.tasks
    }
}

/// How far job stage `stage` has come, per array that has it.
pub fn stage_status(
    plan: &DatasetPlan,
    scratch: &dyn ScratchStore,
    stage: usize,
) -> Result<Vec<StageStatus>> {
    let mut out = Vec::new();
    for (index, a) in plan.arrays.iter().enumerate() {
        if stage >= a.plan.stages.len() {
            continue;
        }
        let tasks = a.plan.num_tasks(stage);
        let finished = executor::finished_tasks(scratch, &array_prefix(index), stage)?;
        let done = finished.iter().filter(|&&t| t < tasks).count() as u64;
        let missing = (0..tasks)
            .filter(|t| !finished.contains(t))
            .take(10)
            .collect();
        out.push(StageStatus {
            array: a.target.name.clone(),
            stage,
            tasks,
            done,
            missing,
        });
    }
    Ok(out)
}

/// Fails unless every job stage before `stage` is complete in the journal. The journal, not the
/// scheduler, is the barrier: a scheduler may report success for work that never ran.
pub fn check_previous_stages(
    plan: &DatasetPlan,
    scratch: &dyn ScratchStore,
    stage: usize,
) -> Result<()> {
    for s in 0..stage {
        for st in stage_status(plan, scratch, s)? {
            if !st.complete() {
                return Err(Error::Invalid(format!(
                    "stage {s} is not complete: `{}` has {} of {} tasks done (missing e.g. {:?}); run stage {s} (or its failed shards) before stage {stage}",
                    st.array, st.done, st.tasks, st.missing
                )));
            }
        }
    }
    Ok(())
}

/// Runs job stage `stage` (only the executor's shard of it), after checking that the previous
/// stages are complete. Target arrays are created or reopened as needed, so any process can run
/// any stage.
pub fn run_stage(
    plan: &DatasetPlan,
    source: &dyn DatasetSource,
    target: &dyn DatasetTarget,
    executor: &Executor,
    stage: usize,
) -> Result<RunReport> {
    check_previous_stages(plan, executor.scratch(), stage)?;
    target.prepare(&plan.target_meta())?;
    let mut report = RunReport::default();
    for (index, array_plan) in plan.arrays.iter().enumerate() {
        if stage >= array_plan.plan.stages.len() {
            continue;
        }
        let name = &array_plan.target.name;
        let src = source.open_array(name)?;
        let dst = target.create_array(&array_plan.target)?;
        let job = ArrayJob {
            name,
            scratch_prefix: array_prefix(index),
            plan: &array_plan.plan,
            source: src.as_ref(),
            target: dst.as_ref(),
        };
        let stage_report = executor.run_stage(&job, stage)?;
        report.arrays.push((name.clone(), vec![stage_report]));
    }
    Ok(report)
}

/// Writes the target's metadata (making it visible as complete) and removes the scratch data,
/// once the journal shows every stage complete.
pub fn finalize(
    plan: &DatasetPlan,
    target: &dyn DatasetTarget,
    scratch: &dyn ScratchStore,
) -> Result<()> {
    check_previous_stages(plan, scratch, plan.num_stages())?;
    target.finalize(&plan.target_meta())?;
    release_scratch(scratch, &plan.target)
}

/// Records `plan` in the scratch store, or checks that the one there is the same.
/// The scratch place is claimed for the plan's target first (see [`claim_scratch`]).
pub fn record_plan(plan: &DatasetPlan, scratch: &dyn ScratchStore, resume: bool) -> Result<()> {
    claim_scratch(scratch, &plan.target)?;
    match scratch.get(PLAN_KEY)? {
        Some(existing) if resume => {
            let existing = DatasetPlan::from_json(&String::from_utf8_lossy(&existing))
                .map_err(|e| Error::scratch(scratch.location(), e))?;
            // Compared as JSON: a NaN fill value is never equal to itself as a float.
            if existing.to_json() != plan.to_json() {
                return Err(Error::scratch(
                    scratch.location(),
                    "holds a run with a different plan (other chunks, budget or threads); repeat the original command, or remove the scratch folder to start over",
                ));
            }
            Ok(())
        }
        Some(_) => Err(Error::scratch(
            scratch.location(),
            "holds an unfinished run; add --resume to continue it, or --overwrite to start over",
        )),
        // Create-if-absent: of two processes recording at once, one records its plan and the
        // other, finding it there, checks it as a resumed run would (or is refused).
        None if scratch.put_if_absent(PLAN_KEY, plan.to_json().as_bytes())? => Ok(()),
        None => record_plan(plan, scratch, resume),
    }
}

/// The plan an earlier run recorded in `scratch` (see [`record_plan`]), if any: a resumed run
/// continues it, whatever this process would plan now.
pub fn recorded_plan(scratch: &dyn ScratchStore) -> Result<Option<DatasetPlan>> {
    match scratch.get(PLAN_KEY)? {
        Some(bytes) => DatasetPlan::from_json(&String::from_utf8_lossy(&bytes))
            .map(Some)
            .map_err(|e| Error::scratch(scratch.location(), format!("{PLAN_KEY}: {e}"))),
        None => Ok(None),
    }
}

/// The executor settings `plan` was made for: its threads, and for task buffers what its
/// budget leaves after the process's own reserve.
pub fn executor_options(plan: &DatasetPlan, codec: ScratchCodec) -> ExecutorOptions {
    ExecutorOptions {
        threads: plan.threads,
        task_memory: plan.max_mem.saturating_sub(plan.memory_reserve).max(1),
        codec,
        fail_task: None,
    }
}

/// How many lost scratch pieces one run recomputes before giving up.
const MAX_RECOMPUTES: u32 = 8;

/// Runs `plan` from `source` into `target` in this process, stage by stage, then finalizes the
/// target and removes the scratch data. With `resume`, a scratch store holding the same plan
/// continues it.
pub fn run_dataset(
    plan: &DatasetPlan,
    source: &dyn DatasetSource,
    target: &dyn DatasetTarget,
    executor: &Executor,
    resume: bool,
) -> Result<RunReport> {
    record_plan(plan, executor.scratch(), resume)?;
    let mut report = RunReport::default();
    let mut stage = 0;
    let mut recomputed = 0;
    while stage < plan.num_stages() {
        let stage_report = match run_stage(plan, source, target, executor, stage) {
            // A lost piece: its producer is unjournaled; go back and recompute it (bounded, so
            // a store that keeps damaging pieces fails instead of looping).
            Err(e)
                if recomputed < MAX_RECOMPUTES && matches!(e.root(), Error::LostPiece { .. }) =>
            {
                if let Error::LostPiece {
                    stage: producer, ..
                } = e.root()
                {
                    tracing::warn!("{e}");
                    stage = *producer;
                }
                recomputed += 1;
                continue;
            }
            other => other?,
        };
        for (name, stages) in stage_report.arrays {
            match report.arrays.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => existing.extend(stages),
                None => report.arrays.push((name, stages)),
            }
        }
        stage += 1;
    }
    finalize(plan, target, executor.scratch())?;
    Ok(report)
}
