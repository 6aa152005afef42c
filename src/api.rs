//! The library API: a rechunk run without a command line. `rechunk` is a thin shell over it,
//! and so can a Python package or any Rust program be.
//!
//! [`Rechunk`] gathers the settings and [`Rechunk::plan`]s (touching nothing); a [`Plan`] can be
//! described, saved as a plan file for many workers ([`Plan::save`], then
//! [`PlanFile::run_stage`](crate::plan_file::PlanFile::run_stage) and
//! [`PlanFile::finalize`](crate::plan_file::PlanFile::finalize)) or executed here
//! ([`Plan::execute`]). The run policy lives here once: whether an existing target may be
//! replaced or resumed, the plan a resumed run continues, the memory the process keeps for
//! itself, the scratch place and codec, and the executor's settings. Progress goes to a
//! [`Progress`] the caller implements; the library prints nothing.
//!
//! ```
//! use rechunker::api::{NoProgress, Rechunk};
//! use rechunker::ChunkSpec;
//! use rechunker_core::{ArrayMeta, ChunkedArrayMut, DataType, DatasetMeta, DatasetTarget, Region};
//! use std::sync::Arc;
//!
//! # fn main() -> anyhow::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let (src, dst) = (dir.path().join("maps.raw"), dir.path().join("series.zarr"));
//! // A source to rechunk: `tas`, 100 x 40 x 40 floats stored as maps (chunks of 1 x 40 x 40).
//! let shape = [100, 40, 40];
//! let tas = ArrayMeta::regular("tas", &["time", "lat", "lon"], DataType::Float32, &shape, &[1, 40, 40]);
//! let values: Vec<u8> = (0..100 * 40 * 40).flat_map(|i| (i as f32).to_ne_bytes()).collect();
//! let raw = rechunker_raw::RawTarget::create(&src)?;
//! raw.array(&tas)?.write_region(&Region::full(&shape), &values)?;
//! raw.finalize(&DatasetMeta { arrays: vec![tas], attrs: Default::default() })?;
//!
//! // Rewrite it as time series of 10 x 10 points, in 256 MiB.
//! let (src, dst) = (src.to_str().unwrap(), dst.to_str().unwrap());
//! let chunks: ChunkSpec = "time=-1,lat=10,lon=10".parse().map_err(anyhow::Error::msg)?;
//! let plan = Rechunk::new(src, dst).chunks(chunks).max_mem(256 << 20).threads(2).plan()?;
//! println!("{}", plan.describe());
//! let report = plan.execute(Arc::new(NoProgress))?;
//! assert_eq!((report.arrays, report.data_bytes), (1, 100 * 40 * 40 * 4));
//!
//! // The copy holds the same values, now in chunks of 100 x 10 x 10.
//! let same = rechunker::verify::Verify::new(src, dst).run()?;
//! assert_eq!(same.bytes, 100 * 40 * 40 * 4);
//! # Ok(())
//! # }
//! ```

use crate::formats::{self, OpenedSource, TargetFormat, WriteOptions};
use crate::ownership::{self, TargetLock};
use crate::plan_file::PlanFile;
use crate::{fault, memory};
use anyhow::{bail, Result};
use rechunker_core::autochunk::AccessPattern;
use rechunker_core::executor::Executor;
use rechunker_core::job::{self, DatasetPlan, JobOptions, RunReport};
use rechunker_core::planner::CostModel;
use rechunker_core::rates::{self, RemoteProbe, RequestCost, ScratchProbe, TimedStore};
use rechunker_core::scratch::{Fetched, ScratchCodec, ScratchIo, ScratchStore};
use rechunker_core::units::{format_bytes, format_seconds};
use rechunker_core::{ChunkSpec, DatasetTarget, SelectedSource, VariableSelection};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub use rechunker_core::executor::{StageReport, StageStart};

/// What a caller learns of a run while it goes. Every method has a do-nothing default; the
/// stage and task events are the core executor's (`rechunker_core::executor::Progress`).
pub trait Progress: rechunker_core::executor::Progress {
    /// The run starts with `plan`: the one given, or the one an interrupted run recorded.
    fn run_started(&self, _plan: &DatasetPlan) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;
impl rechunker_core::executor::Progress for NoProgress {}
impl Progress for NoProgress {}

/// What to do when the target already exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Existing {
    /// Refuse the run.
    #[default]
    Refuse,
    /// Replace the target (and the scratch of an earlier run into it), when it is ours to
    /// replace (see [`ownership::check_replaceable`]).
    Overwrite,
    /// Continue an interrupted run into it, skipping the tasks it finished.
    Resume,
}

/// The settings of a run from `src` to `dst`. Everything but the two locations has a default.
#[derive(Clone, Debug)]
pub struct Rechunk {
    src: String,
    dst: String,
    concat_dim: Option<String>,
    chunks: Option<ChunkSpec>,
    target_chunk_size: Option<u64>,
    access: Option<AccessPattern>,
    selection: VariableSelection,
    max_mem: u64,
    threads: Option<usize>,
    min_io: u64,
    skip_unsupported: bool,
    format: Option<TargetFormat>,
    write: WriteOptions,
    scratch: Option<String>,
    scratch_codec: Option<ScratchCodec>,
    scratch_io: ScratchIo,
    existing: Existing,
}

impl Rechunk {
    /// A run from `src` (a path, URI or, with [`Rechunk::concat_dim`], a file pattern) into
    /// `dst`, whose format follows from its extension unless [`Rechunk::format`] says.
    pub fn new(src: impl Into<String>, dst: impl Into<String>) -> Self {
        Rechunk {
            src: src.into(),
            // `out.zarr/` names the same place as `out.zarr`, and a link as the link itself.
            dst: ownership::normalize_location(&dst.into()),
            concat_dim: None,
            chunks: None,
            target_chunk_size: None,
            access: None,
            selection: VariableSelection::default(),
            max_mem: 1 << 30,
            threads: None,
            min_io: 1 << 20,
            skip_unsupported: false,
            format: None,
            write: WriteOptions::default(),
            scratch: None,
            scratch_codec: None,
            scratch_io: ScratchIo::default(),
            existing: Existing::Refuse,
        }
    }

    /// Joins the files a pattern `src` matches along this dimension.
    pub fn concat_dim(mut self, dim: impl Into<Option<String>>) -> Self {
        self.concat_dim = dim.into();
        self
    }

    /// Target chunks (needed unless no variable has a dimension).
    pub fn chunks(mut self, chunks: impl Into<Option<ChunkSpec>>) -> Self {
        self.chunks = chunks.into();
        self
    }

    /// With `auto` chunks: the chunk size to aim for.
    pub fn target_chunk_size(mut self, bytes: impl Into<Option<u64>>) -> Self {
        self.target_chunk_size = bytes.into();
        self
    }

    /// With `auto` chunks: how the data will be read.
    pub fn access(mut self, pattern: impl Into<Option<AccessPattern>>) -> Self {
        self.access = pattern.into();
        self
    }

    /// Which variables to copy.
    pub fn select(mut self, selection: VariableSelection) -> Self {
        self.selection = selection;
        self
    }

    /// Peak memory of the whole process (default 1 GiB).
    pub fn max_mem(mut self, bytes: u64) -> Self {
        self.max_mem = bytes;
        self
    }

    /// Tasks run at once (default: see [`memory::default_threads`]).
    pub fn threads(mut self, threads: impl Into<Option<usize>>) -> Self {
        self.threads = threads.into();
        self
    }

    /// Scratch pieces smaller than this make the planner consider an extra stage.
    pub fn min_io(mut self, bytes: u64) -> Self {
        self.min_io = bytes;
        self
    }

    /// Leave out variables of types rechunk cannot carry instead of refusing the source.
    pub fn skip_unsupported(mut self, skip: bool) -> Self {
        self.skip_unsupported = skip;
        self
    }

    /// The target format, when the extension of `dst` does not say (e.g.
    /// `TargetFormat::by_id("netcdf")`).
    pub fn format(mut self, format: impl Into<Option<TargetFormat>>) -> Self {
        self.format = format.into();
        self
    }

    /// The target format's options by name (`codec`, `zarr-format`, `shards`,
    /// `netcdf-format`; see [`WriteOptions::with`]), which its driver checks when the target
    /// is created: an option the format does not have is refused. `resume` is the run's to
    /// set.
    pub fn write_options(mut self, write: WriteOptions) -> Self {
        self.write = write;
        self
    }

    /// Where the scratch folder goes (default: beside the target); see
    /// [`ownership::scratch_folder`].
    pub fn scratch(mut self, place: impl Into<Option<String>>) -> Self {
        self.scratch = place.into();
        self
    }

    /// The codec of scratch pieces (default: none locally, lz4 on object stores).
    pub fn scratch_codec(mut self, codec: impl Into<Option<ScratchCodec>>) -> Self {
        self.scratch_codec = codec.into();
        self
    }

    /// How large scratch pieces move in a local scratch directory.
    pub fn scratch_io(mut self, io: ScratchIo) -> Self {
        self.scratch_io = io;
        self
    }

    /// Replace an existing target.
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        if overwrite {
            self.existing = Existing::Overwrite;
        } else if self.existing == Existing::Overwrite {
            self.existing = Existing::Refuse;
        }
        self
    }

    /// Continue an interrupted run into an existing target.
    pub fn resume(mut self, resume: bool) -> Self {
        if resume {
            self.existing = Existing::Resume;
        } else if self.existing == Existing::Resume {
            self.existing = Existing::Refuse;
        }
        self
    }

    /// The same run with local paths made absolute, so that a plan file means the same from
    /// any worker's working directory.
    pub fn absolute_paths(mut self) -> Self {
        self.src = absolute(&self.src);
        self.dst = absolute(&self.dst);
        self.scratch = self.scratch.as_deref().map(absolute);
        self
    }

    /// The scratch folder the run works in: `DST.rechunk-scratch`, or a folder of that name
    /// inside the [`Rechunk::scratch`] place.
    pub fn scratch_location(&self) -> String {
        ownership::scratch_folder(self.scratch.as_deref(), &self.dst)
    }

    fn scratch_codec_or_default(&self) -> ScratchCodec {
        self.scratch_codec
            .unwrap_or(if formats::is_object_store(&self.scratch_location()) {
                ScratchCodec::Lz4
            } else {
                ScratchCodec::None
            })
    }

    fn job_options(&self) -> Result<JobOptions> {
        let threads = self
            .threads
            .unwrap_or_else(|| memory::default_threads(self.max_mem));
        let chunks = self
            .chunks
            .clone()
            .unwrap_or_else(rechunker_core::spec::keep);
        if !chunks.has_auto() && (self.target_chunk_size.is_some() || self.access.is_some()) {
            bail!("--target-chunk-size and --for choose chunks for --chunks auto; add it (e.g. --chunks auto, or per variable 'tas:auto;time=100'), or leave them out");
        }
        Ok(JobOptions {
            chunks: chunks.with_auto(self.target_chunk_size, self.access),
            max_mem: self.max_mem,
            // Source chunks fetched from an object store while planning stay for the run's
            // own read of them (see `ChunkedArray::read_sample`).
            memory_reserve: memory::reserve(threads)
                + if formats::is_object_store(&self.src) {
                    rechunker_core::rates::KEPT_SAMPLE_BYTES
                } else {
                    0
                },
            threads,
            min_io: self.min_io,
            cost: CostModel::default(),
        })
    }

    /// Refuses, in one line, a run that would convert nothing, and missing chunks when some
    /// variable has a dimension to chunk; the example is built from the source's dimensions.
    fn check_convertible(&self, meta: &rechunker_core::DatasetMeta) -> Result<()> {
        let src = &self.src;
        if meta.arrays.is_empty() {
            if self.skip_unsupported {
                bail!("{src}: --skip-unsupported leaves nothing to convert: every variable is of a type rechunk cannot carry yet");
            }
            if !self.selection.is_all() {
                bail!("{src}: --variables/--drop-variables leave nothing to convert");
            }
            bail!("{src} has no variables to convert");
        }
        if self.chunks.is_none() && meta.arrays.iter().any(|a| a.ndim() > 0) {
            let example: Vec<String> = meta
                .dims()
                .iter()
                .take(3)
                .enumerate()
                .map(|(i, (name, len))| {
                    if i == 0 {
                        format!("{name}=-1")
                    } else {
                        format!("{name}={}", len.div_ceil(2).max(1))
                    }
                })
                .collect();
            bail!(
                "give the target chunks with --chunks, e.g. --chunks {} (-1: the whole dimension), or --chunks auto",
                example.join(",")
            );
        }
        Ok(())
    }

    fn write_for(&self, resume: bool) -> WriteOptions {
        WriteOptions {
            resume,
            ..self.write.clone()
        }
    }

    /// The object stores this run talks to, with what one request to each costs (reads of a
    /// key that is not there: nothing is written). Each bucket is timed once, buckets at the
    /// same time. Unless `--io-concurrency` says, the requests in flight are sized from the
    /// slowest, before the adapters count their windows' buffers.
    fn remote_probe(&self, scratch_at: &str) -> RemoteProbe {
        let locations = [self.src.as_str(), scratch_at, self.dst.as_str()];
        let bucket = |location: &str| match ownership::Place::of(location) {
            Ok(ownership::Place::Remote { root, .. }) => Some(root),
            _ => None,
        };
        let mut buckets: Vec<String> = locations.iter().filter_map(|l| bucket(l)).collect();
        buckets.sort();
        buckets.dedup();
        let costs: Vec<Result<RequestCost, String>> = std::thread::scope(|scope| {
            let timing: Vec<_> = buckets
                .iter()
                .map(|root| {
                    scope.spawn(move || {
                        let store = formats::open_scratch(root, ScratchIo::Cached)
                            .map_err(|e| format!("{e:#}"))?;
                        rates::request_cost(store.as_ref()).map_err(|e| e.to_string())
                    })
                })
                .collect();
            timing
                .into_iter()
                .map(|t| t.join().unwrap_or_else(|_| Err("the timing failed".into())))
                .collect()
        });
        let timed = |location: &str| {
            let root = bucket(location)?;
            let at = buckets.iter().position(|b| *b == root)?;
            Some(TimedStore {
                location: location.to_string(),
                cost: costs[at].clone(),
            })
        };
        let (source, scratch, target) = (timed(&self.src), timed(scratch_at), timed(&self.dst));
        let slowest = costs.iter().flatten().map(|c| c.wait).reduce(f64::max);
        if let Some(wait) = slowest {
            rechunker_store::size_io_concurrency_for(wait);
        }
        RemoteProbe {
            source: source.is_some(),
            scratch,
            target,
            io_window: rechunker_store::io_window() as u64,
        }
    }

    /// Plans the run without touching the target or the scratch.
    pub fn plan(&self) -> Result<Plan> {
        let started = Instant::now();
        let source = open_source(
            &self.src,
            self.concat_dim.as_deref(),
            self.skip_unsupported,
            &self.selection,
        )?;
        self.check_convertible(source.dataset.meta())
            .map_err(InvalidRequest)?;
        let format = formats::target_format(&self.dst, self.format).map_err(InvalidRequest)?;
        let options = self.job_options().map_err(InvalidRequest)?;
        // Adapters touch nothing before the first array is created: planning only asks for
        // sizes, and a run then writes through the same target (so what fails here is the
        // request: a format option the driver refuses, a target it cannot be).
        let resume = self.existing == Existing::Resume;
        let target = formats::create_target(&self.dst, format, &self.write_for(resume))
            .map_err(InvalidRequest)?;
        // What this data costs, timed here once; the plan records it for every worker.
        let scratch_at = self.scratch_location();
        let measure = job::Measure {
            scratch: (!formats::is_object_store(&scratch_at)).then(|| ScratchProbe {
                location: scratch_at.trim_start_matches("file://").into(),
                direct: self.scratch_io == ScratchIo::Direct,
                codec: self.scratch_codec_or_default(),
            }),
            remote: self.remote_probe(&scratch_at),
        };
        let opening_seconds = started.elapsed().as_secs_f64();
        let mut plan = job::plan_dataset_measured(
            source.dataset.as_ref(),
            target.as_ref(),
            &options,
            &source.dataset.meta().unlimited_dims(),
            Some(&measure),
        )
        .map_err(|e| {
            // A request that plans with (practically) unbounded memory failed for its budget.
            let unbounded = JobOptions {
                max_mem: options.memory_reserve + (1 << 50),
                ..options.clone()
            };
            let planned = job::plan_dataset_with(
                source.dataset.as_ref(),
                target.as_ref(),
                &unbounded,
                &source.dataset.meta().unlimited_dims(),
            );
            match planned {
                Ok(_) => anyhow::Error::new(BudgetTooSmall(e)),
                Err(_) => anyhow::Error::new(e),
            }
        })?;
        plan.opening_seconds = opening_seconds;
        Ok(Plan {
            settings: self.clone(),
            source,
            format,
            target,
            plan,
            guard: None,
        })
    }

    /// Plans and executes the run, holding the target's lock from before planning to the end.
    pub fn run(&self, progress: Arc<dyn Progress>) -> Result<Report> {
        let guard = self.guard()?;
        let mut plan = self.plan()?;
        plan.guard = Some(guard);
        plan.execute(progress)
    }

    /// Plans the run with absolute paths and saves it as a plan file for workers (see
    /// [`Plan::save`]).
    pub fn save_plan(self, path: &Path) -> Result<(Plan, PlanFile)> {
        let this = self.absolute_paths();
        // Before planning, so that a bad location is what the user hears of.
        ownership::check_locations(&this.src, &this.dst, Some(&this.scratch_location()))?;
        let plan = this.plan()?;
        let file = plan.save(path)?;
        Ok((plan, file))
    }

    /// Checks that source, target and scratch are apart, and takes the target's lock (a
    /// second run into the same target fails at once).
    fn guard(&self) -> Result<Option<TargetLock>> {
        ownership::check_locations(&self.src, &self.dst, Some(&self.scratch_location()))?;
        TargetLock::acquire(&self.dst)
    }
}

/// `source` opened and seen through `selection` (unchanged when it selects everything).
pub fn open_source(
    path: &str,
    concat_dim: Option<&str>,
    skip_unsupported: bool,
    selection: &VariableSelection,
) -> Result<OpenedSource> {
    let mut source = formats::open_source(path, concat_dim, skip_unsupported)?;
    if !selection.is_all() {
        source.dataset = Box::new(SelectedSource::new(source.dataset, selection)?);
    }
    Ok(source)
}

/// `path` made absolute when it is local.
fn absolute(path: &str) -> String {
    if path.contains("://") || Path::new(path).is_absolute() {
        return path.to_string();
    }
    std::env::current_dir()
        .map(|d| d.join(path).display().to_string())
        .unwrap_or_else(|_| path.to_string())
}

/// A planned run: the source opened, the target's adapter ready, and the plan.
pub struct Plan {
    settings: Rechunk,
    source: OpenedSource,
    format: TargetFormat,
    target: Box<dyn DatasetTarget>,
    plan: DatasetPlan,
    /// The target's lock, once the locations are checked (see [`Rechunk::run`]).
    guard: Option<Option<TargetLock>>,
}

impl Plan {
    /// The plan itself (stages, tasks, budgets), as the plan file and the scratch record it.
    pub fn dataset_plan(&self) -> &DatasetPlan {
        &self.plan
    }

    /// What `rechunk plan` prints: stages, tasks, bytes, memory per task and an estimate.
    pub fn describe(&self) -> String {
        describe(&self.plan)
    }

    /// The plan as JSON.
    pub fn to_json(&self) -> String {
        self.plan.to_json()
    }

    /// Writes a plan file at `path` for workers to run stage by stage
    /// ([`PlanFile::run_stage`]), records the plan in the scratch store and creates the target's
    /// arrays. Plan with [`Rechunk::absolute_paths`] so that workers elsewhere find the data.
    pub fn save(&self, path: &Path) -> Result<PlanFile> {
        let s = &self.settings;
        ownership::check_locations(&s.src, &s.dst, Some(&s.scratch_location()))?;
        let file = PlanFile {
            plan: self.plan.clone(),
            source_arg: s.src.clone(),
            concat_dim: s.concat_dim.clone(),
            skip_unsupported: s.skip_unsupported,
            selection: s.selection.clone(),
            target_format: self.format,
            // Workers reopen what `plan -o` and other workers created.
            write: s.write_for(true),
            scratch: s.scratch_location(),
            scratch_codec: s.scratch_codec_or_default(),
            scratch_io: s.scratch_io,
            path: path.to_path_buf(),
        };
        file.create(path)?;
        Ok(file)
    }

    /// Runs the whole plan in this process: refuses an existing target unless told to
    /// overwrite or resume it, continues the plan an interrupted run recorded, writes every
    /// stage, finalizes the target and removes the scratch.
    pub fn execute(self, progress: Arc<dyn Progress>) -> Result<Report> {
        self.execute_until(progress, &Cancel::default())
    }

    /// [`Plan::execute`] that stops, with an [`Interrupted`] error, once `cancel` is set
    /// (e.g. by a Ctrl-C handler): the tasks running then finish but are not journaled, so a
    /// rerun with [`Rechunk::resume`] redoes them and skips every task finished before.
    pub fn execute_until(mut self, progress: Arc<dyn Progress>, cancel: &Cancel) -> Result<Report> {
        let started = Instant::now();
        let s = self.settings.clone();
        let (src, dst) = (s.src.as_str(), s.dst.as_str());
        let _lock = match self.guard.take() {
            Some(lock) => lock,
            None => s.guard()?,
        };
        let scratch_at = s.scratch_location();
        let (resume, overwrite) = (
            s.existing == Existing::Resume,
            s.existing == Existing::Overwrite,
        );
        let exists = formats::target_exists(dst)?;
        if exists && s.existing == Existing::Refuse {
            bail!("target {dst} exists; add --overwrite to replace it, or --resume to continue an interrupted run into it");
        }
        let mut scratch = formats::open_scratch(&scratch_at, s.scratch_io)?;
        let recorded = if resume {
            job::recorded_plan(scratch.as_ref())
                .map_err(|e| anyhow::anyhow!("{e}; use --overwrite to start over"))?
        } else {
            None
        };
        if resume && exists && recorded.is_none() {
            bail!("target {dst} is not an interrupted run: {scratch_at} holds no plan to continue (a finished run removes it); use --overwrite to write the target again");
        }
        if overwrite {
            ownership::check_replaceable(dst, self.format, scratch.as_ref())?;
            job::release_scratch(scratch.as_ref(), &self.plan.target)?;
            formats::remove_target(dst)?;
            // Releasing removed the folder: open it afresh.
            scratch = formats::open_scratch(&scratch_at, s.scratch_io)?;
        }
        let plan = match recorded {
            Some(stored) => {
                resumable(&stored, &self.plan, self.source.dataset.meta()).map_err(|e| {
                    anyhow::anyhow!(
                        "{scratch_at}/{}: {e}; use --overwrite to start over",
                        job::PLAN_KEY
                    )
                })?;
                same_arguments(&stored, &self.plan, &scratch_at)?;
                stored
            }
            None => self.plan.clone(),
        };
        progress.run_started(&plan);
        let scratch = cancel.guard(scratch);
        let executor = executor(&plan, s.scratch_codec_or_default(), scratch, progress)?;
        let run = job::run_dataset(
            &plan,
            self.source.dataset.as_ref(),
            self.target.as_ref(),
            &executor,
            resume,
        )
        .map_err(|e| {
            if cancel.is_set() {
                return anyhow::Error::new(Interrupted {
                    scratch: scratch_at.clone(),
                });
            }
            let advice = if matches!(e.root(), rechunker_core::Error::SourceRead(_)) {
                format!("the source could not be read; a rerun cannot help until it is repaired or replaced (then rerun with --resume: the scratch {scratch_at} keeps the finished tasks)")
            } else {
                format!("the scratch {scratch_at} keeps the finished tasks: rerun the same command with --resume to continue")
            };
            anyhow::Error::new(e).context(format!("rechunking {src} into {dst} stopped; {advice}"))
        })?;
        Ok(Report::new(&plan, run, started))
    }
}

/// Whether the plan an interrupted run recorded copies the same variables as `fresh` from a
/// source that still fits it: a resumed run continues that plan, whatever this process
/// measures now.
pub(crate) fn resumable(
    stored: &DatasetPlan,
    fresh: &DatasetPlan,
    source: &rechunker_core::DatasetMeta,
) -> std::result::Result<(), String> {
    let names = |p: &DatasetPlan| {
        p.arrays
            .iter()
            .map(|a| a.target.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if names(stored) != names(fresh) {
        return Err(format!(
            "the interrupted run copies the variables {}, this command {}; repeat its --variables/--drop-variables to resume it",
            names(stored),
            names(fresh)
        ));
    }
    stored.check_source(source)
}

/// Refuses to resume a run made with other locations, chunks or budget than this one.
fn same_arguments(stored: &DatasetPlan, fresh: &DatasetPlan, scratch_at: &str) -> Result<()> {
    if stored.source != fresh.source
        || stored.target != fresh.target
        || stored.chunks != fresh.chunks
        || stored.max_mem != fresh.max_mem
    {
        bail!(
            "the interrupted run in {scratch_at} was {} -> {} with --chunks {} --max-mem {}; repeat those arguments to resume it, or use --overwrite to start over",
            stored.source,
            stored.target,
            stored.chunks,
            format_bytes(stored.max_mem)
        );
    }
    Ok(())
}

/// The executor for `plan`: its threads and the task memory its budget leaves (see
/// [`job::executor_options`]), with the test hooks of the `fault-injection` feature.
pub(crate) fn executor(
    plan: &DatasetPlan,
    codec: ScratchCodec,
    scratch: Arc<dyn ScratchStore>,
    progress: Arc<dyn Progress>,
) -> Result<Executor> {
    let mut options = job::executor_options(plan, codec);
    options.fail_task = fault::fail_task();
    let executor = Executor::new(options, scratch, progress)?.with_owner_marker(job::OWNER_KEY);
    Ok(match fault::task_delay() {
        Some(delay) => executor.with_task_delay(delay),
        None => executor,
    })
}

/// A flag that stops a run between tasks (see [`Plan::execute_until`]); clones share it.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Asks the run to stop.
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `scratch` refusing every write once the flag is set: the executor records each finished
    /// task in the scratch journal, so the first task to finish after that fails and the stage
    /// stops, with nothing journaled that was not done.
    pub(crate) fn guard(&self, scratch: Arc<dyn ScratchStore>) -> Arc<dyn ScratchStore> {
        Arc::new(Cancellable {
            inner: scratch,
            cancel: self.clone(),
        })
    }
}

/// The run stopped because its [`Cancel`] was set.
#[derive(Debug, thiserror::Error)]
#[error(
    "interrupted; the scratch {scratch} keeps the finished tasks: rerun with resume to continue"
)]
pub struct Interrupted {
    pub scratch: String,
}

/// A scratch store whose writes fail once a [`Cancel`] is set.
struct Cancellable {
    inner: Arc<dyn ScratchStore>,
    cancel: Cancel,
}

impl Cancellable {
    fn check(&self) -> rechunker_core::Result<()> {
        if self.cancel.is_set() {
            return Err(rechunker_core::Error::scratch(
                self.inner.location(),
                "the run was interrupted",
            ));
        }
        Ok(())
    }
}

impl ScratchStore for Cancellable {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn put(&self, key: &str, data: &[u8]) -> rechunker_core::Result<()> {
        self.check()?;
        self.inner.put(key, data)
    }
    fn put_if_absent(&self, key: &str, data: &[u8]) -> rechunker_core::Result<bool> {
        self.check()?;
        self.inner.put_if_absent(key, data)
    }
    fn get(&self, key: &str) -> rechunker_core::Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn get_into(&self, key: &str, buf: &mut Vec<u8>) -> rechunker_core::Result<bool> {
        self.inner.get_into(key, buf)
    }
    fn put_vec(&self, key: &str, data: &mut Vec<u8>) -> rechunker_core::Result<()> {
        self.check()?;
        self.inner.put_vec(key, data)
    }
    fn put_parts(&self, key: &str, parts: &[&[u8]]) -> rechunker_core::Result<()> {
        self.check()?;
        self.inner.put_parts(key, parts)
    }
    fn get_parts(&self, key: &str, parts: &mut [&mut [u8]]) -> rechunker_core::Result<Fetched> {
        self.inner.get_parts(key, parts)
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
    fn delete_many(&self, keys: &[String]) -> rechunker_core::Result<()> {
        self.inner.delete_many(keys)
    }
    fn is_empty(&self) -> rechunker_core::Result<bool> {
        self.inner.is_empty()
    }
    fn remove_root_if_empty(&self) -> rechunker_core::Result<bool> {
        self.inner.remove_root_if_empty()
    }
}

/// The source of a run does not exist.
#[derive(Debug, thiserror::Error)]
#[error("source {0} does not exist; check the path")]
pub struct SourceNotFound(pub String);

/// `--max-mem` cannot hold the smallest task (one chunk and its buffers) or the process itself:
/// the same request plans with more memory.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BudgetTooSmall(pub rechunker_core::Error);

/// The settings of a run do not fit (missing chunks, unknown target format, a format option
/// the target's driver refuses): the user's request, not the data or the storage, must change.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct InvalidRequest(pub anyhow::Error);

/// The error and its causes in one line, skipping causes whose text the message already holds.
pub fn error_message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

/// What kind of failure an error of this library is, for callers that map errors onto their
/// own kinds (the Python package raises `FileNotFoundError`, `MemoryError`, `ValueError`,
/// `KeyboardInterrupt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The source does not exist.
    NotFound,
    /// The memory budget cannot hold the smallest task (one chunk and its buffers).
    Memory,
    /// The request does not fit the data (chunks of unknown dimensions, shapes, options).
    Invalid,
    /// The run was stopped through its [`Cancel`].
    Interrupted,
    /// Anything else: storage, scratch, a failed task.
    Other,
}

/// The kind of `error`, from the first cause in its chain that tells.
pub fn error_kind(error: &anyhow::Error) -> ErrorKind {
    use rechunker_core::planner::PlanError;
    for cause in error.chain() {
        if cause.is::<SourceNotFound>() {
            return ErrorKind::NotFound;
        }
        if cause.is::<Interrupted>() {
            return ErrorKind::Interrupted;
        }
        if cause.is::<BudgetTooSmall>() {
            return ErrorKind::Memory;
        }
        if cause.is::<InvalidRequest>() {
            return ErrorKind::Invalid;
        }
        let plan_kind = |p: &PlanError| match p {
            PlanError::ShapeMismatch { .. } => ErrorKind::Invalid,
            _ => ErrorKind::Memory,
        };
        if let Some(p) = cause.downcast_ref::<PlanError>() {
            return plan_kind(p);
        }
        if let Some(e) = cause.downcast_ref::<rechunker_core::Error>() {
            match e.root() {
                rechunker_core::Error::Plan(p) => return plan_kind(p),
                rechunker_core::Error::Invalid(_) => return ErrorKind::Invalid,
                _ => {}
            }
        }
    }
    ErrorKind::Other
}

/// One stage of one array of a plan, as a row of a table (what [`describe`] says in words).
#[derive(Clone, Debug, Serialize)]
pub struct StageRow {
    pub array: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub source_chunks: Vec<u64>,
    pub target_chunks: Vec<u64>,
    /// 0-based; `stages` in all for this array.
    pub stage: usize,
    pub stages: usize,
    pub tasks: u64,
    /// The region one task covers.
    pub block_shape: Vec<u64>,
    /// Source chunks (stage 0) or scratch pieces the stage reads.
    pub reads: u64,
    /// Target chunks (last stage) or scratch pieces the stage writes.
    pub writes: u64,
    /// The largest scratch piece written, when the stage writes pieces.
    pub max_piece_bytes: Option<u64>,
    pub bytes: u64,
    pub task_memory: u64,
    /// Tasks of this array run at once.
    pub parallelism: u64,
}

/// Every stage of every array of `plan`, in order.
pub fn stage_rows(plan: &DatasetPlan) -> Vec<StageRow> {
    let mut rows = Vec::new();
    for a in &plan.arrays {
        let p = &a.plan;
        let summary = p.summary();
        let stages = summary.len();
        for (k, s) in summary.into_iter().enumerate() {
            rows.push(StageRow {
                array: a.target.name.clone(),
                dtype: a.target.dtype.to_string(),
                shape: p.shape(),
                source_chunks: p.source.nominal_chunk_shape(),
                target_chunks: p.target.nominal_chunk_shape(),
                stage: k,
                stages,
                tasks: s.tasks,
                block_shape: s.block_shape,
                reads: s.reads,
                writes: s.writes,
                max_piece_bytes: s.max_piece_bytes,
                bytes: s.bytes,
                task_memory: s.task_memory,
                parallelism: a.parallelism,
            });
        }
    }
    rows
}

/// What a run (or one shard of one stage) did.
#[derive(Clone, Debug)]
pub struct Report {
    /// Arrays in the plan.
    pub arrays: usize,
    /// Uncompressed bytes of the whole dataset.
    pub data_bytes: u64,
    /// Bytes the tasks of this process moved (a resumed run or one shard moves less).
    pub moved_bytes: u64,
    pub seconds: f64,
    pub tasks_run: u64,
    pub tasks_skipped: u64,
    /// The process's peak resident memory at the end, if the system tells.
    pub peak_memory: Option<u64>,
    /// The budget the plan was made for.
    pub max_mem: u64,
    /// Per array, per stage.
    pub run: RunReport,
}

impl Report {
    pub(crate) fn new(plan: &DatasetPlan, run: RunReport, started: Instant) -> Report {
        Report {
            arrays: plan.arrays.len(),
            data_bytes: plan.arrays.iter().map(|a| a.plan.array_bytes()).sum(),
            moved_bytes: run
                .arrays
                .iter()
                .flat_map(|(_, stages)| stages)
                .map(|s| s.bytes)
                .sum(),
            seconds: started.elapsed().as_secs_f64(),
            tasks_run: run.tasks_run(),
            tasks_skipped: run.tasks_skipped(),
            peak_memory: memory::peak_rss(),
            max_mem: plan.max_mem,
            run,
        }
    }

    /// The one-line summary `rechunk` prints at the end.
    pub fn summary(&self) -> String {
        format!(
            "done: {} arrays, {} in {} ({}/s moved); tasks run {}, skipped (resumed) {}; peak memory {} of --max-mem {}",
            self.arrays,
            format_bytes(self.data_bytes),
            format_seconds(self.seconds),
            format_bytes((self.moved_bytes as f64 / self.seconds.max(1e-9)) as u64),
            self.tasks_run,
            self.tasks_skipped,
            format_bytes(self.peak_memory.unwrap_or(0)),
            format_bytes(self.max_mem),
        )
    }
}

/// `(a, b, c)`.
pub fn shape_text(v: &[u64]) -> String {
    format!(
        "({})",
        v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
    )
}

/// A plan in words, one line per fact (what `rechunk plan` prints).
pub fn describe(plan: &DatasetPlan) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "plan: {} -> {}, chunks {}, --max-mem {} ({} for data after the process's own {}), {} threads",
        plan.source,
        plan.target,
        plan.chunks,
        format_bytes(plan.max_mem),
        format_bytes(plan.max_mem.saturating_sub(plan.memory_reserve)),
        format_bytes(plan.memory_reserve),
        plan.threads
    );
    let mut total_seconds = plan.opening_seconds;
    for a in &plan.arrays {
        let p = &a.plan;
        let meta = &a.target;
        let _ = writeln!(
            out,
            "  {} {} {}: {} -> {}, {}",
            meta.name,
            meta.dtype,
            shape_text(&p.shape()),
            shape_text(&p.source.nominal_chunk_shape()),
            shape_text(&p.target.nominal_chunk_shape()),
            format_bytes(p.array_bytes())
        );
        if let Some(why) = &a.chunks_why {
            let _ = writeln!(
                out,
                "    chunks {}: {why}",
                shape_text(&meta.grid.nominal_chunk_shape())
            );
        }
        for (k, s) in p.summary().iter().enumerate() {
            let from = if k == 0 {
                format!("{} source chunks", s.reads)
            } else {
                format!("{} pieces", s.reads)
            };
            let to = match s.max_piece_bytes {
                Some(b) => format!("{} pieces of up to {}", s.writes, format_bytes(b)),
                None => format!("{} target chunks", s.writes),
            };
            let _ = writeln!(
                out,
                "    stage {}/{}: {} tasks, blocks {}, {from} -> {to}, {} per task",
                k + 1,
                p.stages.len(),
                s.tasks,
                shape_text(&s.block_shape),
                format_bytes(s.task_memory)
            );
        }
        let threads = if p.task_threads > 1 {
            format!(", each on {} threads", p.task_threads)
        } else {
            String::new()
        };
        let scratch = if p.stages.len() > 1 {
            ""
        } else {
            ", from memory (no scratch)"
        };
        let _ = writeln!(
            out,
            "    {} tasks at once{threads}; moves {} through {} stage(s){scratch}",
            a.parallelism,
            format_bytes(2 * p.array_bytes() * p.stages.len() as u64),
            p.stages.len()
        );
        match &a.estimate {
            Some(e) => {
                total_seconds += e.seconds;
                let c = &e.rates.cost;
                let _ = writeln!(
                    out,
                    "    rates per core, timed in {:.0} ms: source {}/s ({}); target {}/s ({}); scratch {}/s ({}); {:.1} ms per object",
                    e.rates.seconds * 1e3,
                    format_bytes(c.source_bytes_per_second as u64),
                    e.rates.source,
                    format_bytes(c.target_bytes_per_second as u64),
                    e.rates.target,
                    format_bytes(c.scratch_bytes_per_second as u64),
                    e.rates.scratch,
                    c.seconds_per_op * 1e3
                );
                if c.source_wait + c.scratch_wait + c.target_wait > 0.0 {
                    let _ = writeln!(
                        out,
                        "    waits per request: source {:.1} ms, scratch {:.1} ms, target {:.1} ms; {} requests in flight per thread overlap them, except {:.1} ms each the store serves one at a time",
                        c.source_wait * 1e3,
                        c.scratch_wait * 1e3,
                        c.target_wait * 1e3,
                        c.io_window.max(1),
                        c.store_serial * 1e3
                    );
                }
                let _ = writeln!(out, "    plans weighed:");
                for (i, c) in e.candidates.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "      {} {}: about {}",
                        if i == 0 { "*" } else { "-" },
                        c.describe(),
                        format_seconds(c.seconds)
                    );
                }
                let _ = writeln!(out, "    why: {}", e.why);
            }
            // A plan file written before rates were recorded: the fixed rates.
            None => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
                total_seconds += p.seconds(&CostModel::default(), a.parallelism.min(cores));
            }
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Opening only shows where it is worth a word: round trips to a distant store.
    let opening = if plan.opening_seconds >= 0.05 {
        format!(
            " ({} of it opening the source and timing the stores)",
            format_seconds(plan.opening_seconds)
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  estimate: about {} on {cores} cores{opening}",
        format_seconds(total_seconds)
    );
    out
}

/// The plan's estimated wall seconds (opening the source and timing the stores, then each
/// array), where it has one.
pub fn estimated_seconds(plan: &DatasetPlan) -> Option<f64> {
    let arrays: Option<f64> = plan
        .arrays
        .iter()
        .map(|a| a.estimate.as_ref().map(|e| e.seconds))
        .sum();
    arrays.map(|seconds| seconds + plan.opening_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rechunker_core::{ArrayMeta, ChunkedArrayMut, DataType, DatasetMeta, Region};
    use std::sync::Mutex;

    /// Writes `tas`, 20 x 8 x 8 int32 stored as maps, at `path`.
    fn maps(path: &Path) {
        let shape = [20, 8, 8];
        let tas = ArrayMeta::regular(
            "tas",
            &["time", "lat", "lon"],
            DataType::Int32,
            &shape,
            &[1, 8, 8],
        );
        let values: Vec<u8> = (0..20 * 8 * 8i32).flat_map(|i| i.to_ne_bytes()).collect();
        let raw = rechunker_raw::RawTarget::create(path).unwrap();
        raw.array(&tas)
            .unwrap()
            .write_region(&Region::full(&shape), &values)
            .unwrap();
        raw.finalize(&DatasetMeta {
            arrays: vec![tas],
            attrs: Default::default(),
        })
        .unwrap();
    }

    /// Everything a run tells its progress, in order.
    #[derive(Default)]
    struct Recording(Mutex<Vec<String>>);

    impl Recording {
        fn push(&self, event: String) {
            self.0.lock().unwrap().push(event);
        }
    }

    impl rechunker_core::executor::Progress for Recording {
        fn stage_started(&self, s: &StageStart) {
            self.push(format!("stage {} started", s.stage));
        }
        fn task_finished(&self, _bytes: u64) {
            self.push("task".into());
        }
        fn stage_finished(&self, s: &StageStart, _r: &StageReport) {
            self.push(format!("stage {} finished", s.stage));
        }
    }

    impl Progress for Recording {
        fn run_started(&self, plan: &DatasetPlan) {
            self.push(format!("run of {} stages", plan.num_stages()));
        }
    }

    fn rechunk(dir: &Path) -> Rechunk {
        let (src, dst) = (dir.join("maps.raw"), dir.join("series.raw"));
        Rechunk::new(src.to_str().unwrap(), dst.to_str().unwrap())
            .chunks("time=-1,lat=4,lon=4".parse::<ChunkSpec>().unwrap())
            .max_mem(256 << 20)
            .threads(2)
    }

    #[test]
    fn the_callers_progress_sees_the_plan_then_every_stage_and_task() {
        let dir = tempfile::tempdir().unwrap();
        maps(&dir.path().join("maps.raw"));
        let progress = Arc::new(Recording::default());
        let report = rechunk(dir.path()).run(progress.clone()).unwrap();
        let events = progress.0.lock().unwrap().clone();
        assert_eq!(events[0], "run of 1 stages", "{events:?}");
        assert_eq!(events[1], "stage 0 started");
        assert_eq!(events.last().unwrap(), "stage 0 finished");
        let tasks = events.iter().filter(|e| *e == "task").count() as u64;
        assert_eq!(tasks, report.tasks_run);
        assert!(tasks > 0 && report.tasks_skipped == 0);
        assert_eq!(report.data_bytes, 20 * 8 * 8 * 4);
    }

    #[test]
    fn an_existing_target_is_replaced_or_resumed_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        maps(&dir.path().join("maps.raw"));
        rechunk(dir.path()).run(Arc::new(NoProgress)).unwrap();
        let again = rechunk(dir.path()).run(Arc::new(NoProgress)).unwrap_err();
        assert!(again.to_string().contains("add --overwrite"), "{again}");
        // A finished run leaves no plan to continue.
        let resumed = rechunk(dir.path())
            .resume(true)
            .run(Arc::new(NoProgress))
            .unwrap_err();
        assert!(
            resumed.to_string().contains("is not an interrupted run"),
            "{resumed}"
        );
        let replaced = rechunk(dir.path())
            .resume(true)
            .overwrite(true)
            .run(Arc::new(NoProgress))
            .unwrap();
        assert_eq!(replaced.tasks_skipped, 0);
        assert!(replaced.tasks_run > 0);
    }

    #[test]
    fn errors_tell_their_kind_and_a_cancelled_run_resumes() {
        let dir = tempfile::tempdir().unwrap();
        maps(&dir.path().join("maps.raw"));
        let missing = Rechunk::new(
            dir.path().join("none.raw").to_str().unwrap(),
            dir.path().join("x.raw").to_str().unwrap(),
        )
        .plan()
        .err()
        .unwrap();
        assert_eq!(error_kind(&missing), ErrorKind::NotFound, "{missing}");
        let tiny = rechunk(dir.path()).max_mem(1 << 20).plan().err().unwrap();
        assert_eq!(error_kind(&tiny), ErrorKind::Memory, "{tiny}");
        let no_chunks = rechunk(dir.path()).chunks(None).plan().err().unwrap();
        assert_eq!(error_kind(&no_chunks), ErrorKind::Invalid, "{no_chunks}");

        let cancel = Cancel::default();
        cancel.set();
        let stopped = rechunk(dir.path())
            .plan()
            .unwrap()
            .execute_until(Arc::new(NoProgress), &cancel)
            .unwrap_err();
        assert_eq!(error_kind(&stopped), ErrorKind::Interrupted, "{stopped}");
        assert!(error_message(&stopped).contains("resume"), "{stopped}");
        let resumed = rechunk(dir.path())
            .resume(true)
            .run(Arc::new(NoProgress))
            .unwrap();
        assert!(resumed.tasks_run > 0);
        let same = crate::verify::Verify::new(
            dir.path().join("maps.raw").to_str().unwrap(),
            dir.path().join("series.raw").to_str().unwrap(),
        )
        .run()
        .unwrap();
        assert_eq!(same.bytes, 20 * 8 * 8 * 4);
    }

    /// Planning times this data (source decode, the target's codec, scratch I/O where scratch
    /// would go), records the rates and the plans weighed in the plan, and leaves nothing
    /// behind: the probe's file is gone and neither target nor scratch exists.
    #[test]
    fn planning_measures_rates_and_records_them() {
        let dir = tempfile::tempdir().unwrap();
        maps(&dir.path().join("maps.raw"));
        let dst = dir.path().join("series.zarr");
        let plan = Rechunk::new(
            dir.path().join("maps.raw").to_str().unwrap(),
            dst.to_str().unwrap(),
        )
        .chunks("time=-1,lat=4,lon=4".parse::<ChunkSpec>().unwrap())
        .max_mem(256 << 20)
        .threads(2)
        .plan()
        .unwrap();
        let estimate = plan.dataset_plan().arrays[0].estimate.clone().unwrap();
        for (what, how) in [
            ("source", &estimate.rates.source),
            ("target", &estimate.rates.target),
            ("scratch", &estimate.rates.scratch),
        ] {
            assert!(how.starts_with("measured"), "{what}: {how}");
        }
        let c = estimate.rates.cost;
        assert!(c.source_bytes_per_second > 0.0 && c.target_bytes_per_second > 0.0);
        assert!(c.cores >= 1);
        assert!(!estimate.candidates.is_empty() && estimate.seconds > 0.0);
        assert!(estimate.candidates[0].seconds <= estimate.seconds);
        assert!(!estimate.why.is_empty());
        let text = plan.describe();
        assert!(
            text.contains("rates per core, timed in")
                && text.contains("plans weighed")
                && text.contains("why: cheapest"),
            "{text}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["maps.raw"], "planning left files behind");
        // The plan file carries the rates: workers follow them, they do not measure again.
        let path = dir.path().join("plan.json");
        let saved = plan.save(&path).unwrap();
        let loaded = PlanFile::load(&path).unwrap();
        assert_eq!(loaded.plan.arrays[0].estimate, Some(estimate));
        assert_eq!(saved.plan, loaded.plan);
    }

    #[test]
    fn the_target_driver_refuses_options_of_other_formats_when_planning() {
        let dir = tempfile::tempdir().unwrap();
        maps(&dir.path().join("maps.raw"));
        let dst = dir.path().join("series.zarr");
        let with = |name: &str, value: &str| {
            Rechunk::new(
                dir.path().join("maps.raw").to_str().unwrap(),
                dst.to_str().unwrap(),
            )
            .chunks("time=-1,lat=4,lon=4".parse::<ChunkSpec>().unwrap())
            .write_options(WriteOptions::default().with(name, Some(value)))
        };
        let err = with("netcdf-format", "classic")
            .plan()
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("--netcdf-format") && err.contains("Zarr"),
            "{err}"
        );
        assert!(!dst.exists());
        let plan = with("zarr-format", "2").plan().unwrap();
        assert!(plan.dataset_plan().num_stages() > 0);
    }

    /// Plan files written before arrays carried their unlimited dimensions had them in the
    /// write options; loading one moves them into the arrays, and nothing writes them there.
    #[test]
    fn older_plan_files_keep_their_unlimited_dimensions() {
        let dir = tempfile::tempdir().unwrap();
        maps(&dir.path().join("maps.raw"));
        let path = dir.path().join("plan.json");
        let (_, file) = rechunk(dir.path()).save_plan(&path).unwrap();
        assert!(file.plan.arrays[0].target.unlimited_dims.is_empty());
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(json["write"].get("unlimited_dims").is_none(), "{json}");
        json["write"]["unlimited_dims"] = serde_json::json!(["time"]);
        std::fs::write(&path, json.to_string()).unwrap();
        let file = PlanFile::load(&path).unwrap();
        assert_eq!(file.plan.arrays[0].target.unlimited_dims, ["time"]);
        assert!(file.write.legacy_unlimited_dims.is_empty());
    }
}
