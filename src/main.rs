//! `rechunk`: rewrite chunked N-d arrays into a new chunk layout within a memory limit.

mod distributed;
mod progress;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use rechunker::formats::{self, TargetFormat};
use rechunker::memory;
use rechunker::ownership;
use rechunker_core::autochunk::AccessPattern;
use rechunker_core::executor::{Executor, ExecutorOptions};
use rechunker_core::job::{self, DatasetPlan, JobOptions};
use rechunker_core::planner::CostModel;
use rechunker_core::scratch::{ScratchCodec, ScratchIo};
use rechunker_core::units::{format_bytes, format_seconds, parse_size};
use rechunker_core::{ChunkSpec, SelectedSource, VariableSelection};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "rechunk",
    version,
    about = "Rewrite chunked N-d arrays into a new chunk layout within a hard memory limit",
    after_help = "Examples:\n  rechunk in.raw out.raw --chunks time=8760,lat=24,lon=24 --max-mem 2GiB\n  rechunk plan in.raw out.raw --chunks 8760,24,24\n  rechunk inspect in.raw\n\n`rechunk SRC DST ...` is short for `rechunk run SRC DST ...`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rechunk SRC into DST.
    Run(RunArgs),
    /// Show what a run would do: stages, tasks, bytes, memory per task and an estimate.
    Plan(PlanArgs),
    /// Show a dataset's variables, dimensions, types, chunks and codecs.
    Inspect(InspectArgs),
    /// Check that DST holds the same values as SRC, chunk by chunk.
    Verify(VerifyArgs),
    /// Show per-stage progress of a plan file's run and which tasks are missing.
    Status(distributed::StatusArgs),
    /// Write the target's final metadata and remove the scratch, once every stage is complete.
    Finalize(distributed::FinalizeArgs),
    /// Submit a plan file's stages to SLURM as job arrays chained with afterok.
    SubmitSlurm(distributed::SubmitSlurmArgs),
    /// Rechunk a TileDB array (or group) in place: copy, verify, swap in crash-safely.
    /// Rerun the same command to finish an interrupted run.
    InPlace(InPlaceArgs),
}

#[derive(Args)]
struct InPlaceArgs {
    /// The TileDB array or group (a local path).
    array: String,
    /// New tile extents, by dimension name or position; -1 is the whole dimension.
    #[arg(long, short = 'c', value_parser = parse_chunks, allow_hyphen_values = true)]
    chunks: ChunkSpec,
    /// New filters for every attribute (zstd:3, gzip:6, lz4, none, with +byteshuffle or
    /// +bitshuffle); default: keep each attribute's own.
    #[arg(long)]
    codec: Option<String>,
    /// Peak memory of the whole process.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    max_mem: u64,
    /// Tasks run at once, each on its own thread (default: twice the cores, while --max-mem
    /// leaves each at least 64 MiB).
    #[arg(long, short = 'j', value_parser = parse_threads)]
    threads: Option<usize>,
    /// How large scratch pieces move: direct (default; past the page cache where the file
    /// system allows it) or cached (through it).
    #[arg(long, default_value = "direct")]
    scratch_io: ScratchIo,
    /// Accepted for symmetry with `rechunk run`: an interrupted job always resumes.
    #[arg(long)]
    resume: bool,
    /// Print no progress.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// A chunk spec, or `@FILE` for one in a file (the JSON form, or text).
fn parse_chunks(s: &str) -> Result<ChunkSpec, String> {
    match s.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the chunk spec file {path}: {e}"))?
            .parse()
            .map_err(|e| format!("{path}: {e}")),
        None => s.parse(),
    }
}

fn parse_pattern(s: &str) -> Result<AccessPattern, String> {
    s.parse()
}

fn parse_target_size(s: &str) -> Result<u64, String> {
    rechunker_core::autochunk::parse_target_size(s)
}

/// `--variables` and `--drop-variables`.
#[derive(Args, Clone, Default)]
struct SelectArgs {
    /// Only these variables (comma-separated), with their coordinates: 1-d variables named
    /// after their dimensions, and those a CF `coordinates` attribute names.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    variables: Option<Vec<String>>,
    /// Leave out these variables (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    drop_variables: Vec<String>,
}

impl SelectArgs {
    fn selection(&self) -> VariableSelection {
        let clean = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect()
        };
        VariableSelection {
            variables: self.variables.as_deref().map(clean),
            drop: clean(&self.drop_variables),
        }
    }
}

/// `source` seen through `selection` (unchanged when it selects everything).
pub(crate) fn select_source(
    mut source: formats::OpenedSource,
    selection: &VariableSelection,
) -> Result<formats::OpenedSource> {
    if !selection.is_all() {
        source.dataset = Box::new(SelectedSource::new(source.dataset, selection)?);
    }
    Ok(source)
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    parse_size(s)
}

/// A thread count: a whole number from 1 (0 would run no task).
fn parse_threads(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("0 threads would run no task; give 1 or more, or leave --threads out for twice the cores".into()),
        Ok(n) if n > job::MAX_THREADS => Err(format!("{n} threads is more than the {} rechunk runs", job::MAX_THREADS)),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a number of threads; give a whole number from 1")),
    }
}

#[derive(Args, Clone)]
struct PlanOptions {
    /// Source dataset.
    src: Option<String>,
    /// Target dataset (its format follows from the extension, or --format).
    dst: Option<String>,
    /// Join the files a SRC pattern ('archive/*.nc', quoted) matches along this dimension.
    #[arg(long)]
    concat_dim: Option<String>,
    /// Target chunks by dimension name (time=8760,lat=24,lon=24) or position (8760,24,24);
    /// -1 means the whole dimension; unnamed dimensions keep their source chunks. Per
    /// variable: 'tas:time=-1,lat=24;pr:time=240;time=100' (the group without a name is for
    /// the other variables), or @chunks.json ({"tas": {"time": -1}, "pr": null, "*": {...}}).
    /// `auto` picks shapes near --target-chunk-size for --for. Needed unless no variable has a
    /// dimension (a file of scalars).
    #[arg(long, short = 'c', value_parser = parse_chunks, allow_hyphen_values = true)]
    chunks: Option<ChunkSpec>,
    /// With --chunks auto: the chunk size to aim for (default 8MiB).
    #[arg(long, value_parser = parse_target_size)]
    target_chunk_size: Option<u64>,
    /// With --chunks auto: how the data will be read: time-series, maps or balanced (default).
    #[arg(long = "for", value_parser = parse_pattern, value_name = "PATTERN")]
    access: Option<AccessPattern>,
    #[command(flatten)]
    select: SelectArgs,
    /// Peak memory of the whole process, e.g. 2GiB or 512MB.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    max_mem: u64,
    /// Tasks run at once, each on its own thread (default: twice the cores, while --max-mem
    /// leaves each at least 64 MiB).
    #[arg(long, short = 'j', value_parser = parse_threads)]
    threads: Option<usize>,
    /// Scratch pieces smaller than this make the planner consider an extra stage.
    #[arg(long, default_value = "1MiB", value_parser = parse_bytes)]
    min_io: u64,
    /// Leave out variables of types rechunk cannot carry yet (NetCDF char and string
    /// variables, enums, compounds; HDF5 strings and compounds), printing one line for each,
    /// instead of refusing the whole source.
    #[arg(long)]
    skip_unsupported: bool,
    /// Target format, when the extension of DST does not say.
    #[arg(long, value_enum)]
    format: Option<TargetFormat>,
    /// Compression of the target: zstd:LEVEL, blosc:CNAME:LEVEL:SHUFFLE (e.g. blosc:lz4:5:shuffle),
    /// gzip:LEVEL or none (Zarr default: zstd:3).
    #[arg(long)]
    codec: Option<String>,
    /// Zarr format version of the target (default 3).
    #[arg(long)]
    zarr_format: Option<u8>,
    /// Shard shape of Zarr v3 output, by name (time=8760,lat=48,lon=48) or position.
    #[arg(long, allow_hyphen_values = true)]
    shards: Option<String>,
    /// Where intermediate pieces and the task journal go: a directory or an object-store URI,
    /// inside which rechunk makes (and at the end removes) its own folder DST-NAME.rechunk-scratch
    /// (default: DST.rechunk-scratch beside the target).
    #[arg(long)]
    scratch: Option<String>,
    /// Codec of the intermediate pieces: none or lz4 (default: none in a local directory, where
    /// writing floats raw beats compressing them; lz4 on object stores).
    #[arg(long)]
    scratch_codec: Option<ScratchCodec>,
    /// How pieces of a MiB and more move in a local scratch directory: direct (default; past the
    /// page cache, where the file system allows it: no CPU spent caching bytes read once) or
    /// cached (through the page cache: better where RAM holds the whole scratch and the disk is
    /// slow).
    #[arg(long, default_value = "direct")]
    scratch_io: ScratchIo,
    /// NetCDF output flavour: netcdf4 (default), netcdf4-classic, classic, 64bit-offset, cdf5.
    #[arg(long)]
    netcdf_format: Option<String>,
}

/// SRC and DST, which every command but `run --plan` needs (with --chunks).
struct Required<'a> {
    src: &'a str,
    dst: &'a str,
}

impl PlanOptions {
    fn required(&self) -> Result<Required<'_>> {
        match (&self.src, &self.dst) {
            (Some(src), Some(dst)) => Ok(Required { src, dst }),
            _ => bail!("give SRC and DST (or, for `rechunk run`, --plan PLAN.json)"),
        }
    }

    /// The scratch folder rechunk works in: `DST.rechunk-scratch`, or a folder of that name
    /// inside the place `--scratch` gives (see `ownership::scratch_folder`).
    fn scratch_location(&self) -> Result<String> {
        Ok(ownership::scratch_folder(
            self.scratch.as_deref(),
            self.dst.as_deref().unwrap_or("target"),
        ))
    }

    fn scratch_codec(&self) -> Result<ScratchCodec> {
        Ok(self
            .scratch_codec
            .unwrap_or(if formats::is_object_store(&self.scratch_location()?) {
                ScratchCodec::Lz4
            } else {
                ScratchCodec::None
            }))
    }

    fn write_options(&self, source: &formats::OpenedSource, resume: bool) -> formats::WriteOptions {
        formats::WriteOptions {
            codec: self.codec.clone(),
            zarr_format: self.zarr_format,
            shards: self.shards.clone(),
            netcdf_format: self.netcdf_format.clone(),
            unlimited_dims: source.unlimited_dims.clone(),
            resume,
        }
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    plan: PlanOptions,
    #[command(flatten)]
    distributed: distributed::StageArgs,
    /// Continue an interrupted run, skipping the tasks it finished.
    #[arg(long)]
    resume: bool,
    /// Replace DST (and any scratch of an earlier run) if it exists.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Print no progress, only errors and the final summary.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args)]
struct PlanArgs {
    #[command(flatten)]
    plan: PlanOptions,
    /// Write the plan as JSON to this file.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Print the plan as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InspectArgs {
    /// Dataset to describe.
    src: String,
    /// Join the files a SRC pattern matches along this dimension.
    #[arg(long)]
    concat_dim: Option<String>,
    /// Print the metadata as JSON.
    #[arg(long)]
    json: bool,
    /// Leave out (and list) variables of types rechunk cannot carry yet.
    #[arg(long)]
    skip_unsupported: bool,
    #[command(flatten)]
    select: SelectArgs,
}

#[derive(Args)]
struct VerifyArgs {
    src: String,
    dst: String,
    /// Join the files a SRC pattern matches along this dimension.
    #[arg(long)]
    concat_dim: Option<String>,
    /// Peak memory of the whole process.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    max_mem: u64,
    /// Compare without the variables `--skip-unsupported` left out of the run.
    #[arg(long)]
    skip_unsupported: bool,
    /// Compare only the variables a run with these --variables/--drop-variables copied.
    #[command(flatten)]
    select: SelectArgs,
}

/// Lets `rechunk SRC DST ...` stand for `rechunk run SRC DST ...`.
fn with_default_subcommand(mut args: Vec<String>) -> Vec<String> {
    const KNOWN: [&str; 12] = [
        "run",
        "plan",
        "inspect",
        "verify",
        "status",
        "finalize",
        "submit-slurm",
        "in-place",
        "help",
        "-h",
        "--help",
        "-V",
    ];
    if let Some(first) = args.get(1) {
        if !KNOWN.contains(&first.as_str()) && first != "--version" {
            args.insert(1, "run".into());
        }
    }
    args
}

fn main() {
    memory::tune_allocator();
    // Like other Unix tools, end quietly when stdout goes away (`rechunk inspect x | head`).
    // The native libraries set SIGPIPE to ignored when they initialize, so std's printing
    // panics instead; that one panic becomes the exit status a shell expects (128 + SIGPIPE).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    let cli = Cli::parse_from(with_default_subcommand(std::env::args().collect()));
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .without_time()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Run(a) => run(a),
        Command::Plan(a) => plan(a),
        Command::Inspect(a) => inspect(a),
        Command::Verify(a) => verify(a),
        Command::Status(a) => distributed::status(a),
        Command::Finalize(a) => distributed::finalize(a),
        Command::SubmitSlurm(a) => distributed::submit_slurm(a),
        Command::InPlace(a) => in_place(a),
    };
    if let Err(e) = result {
        eprintln!("error: {}", error_message(&e));
        std::process::exit(1);
    }
}

/// What is logged to stderr: `RECHUNK_LOG` (e.g. `debug`), else rechunk's own warnings
/// (variables skipped, stale locks taken over, scratch folders kept), not those of libraries.
fn log_filter() -> tracing_subscriber::EnvFilter {
    match std::env::var("RECHUNK_LOG") {
        Ok(directives) if !directives.is_empty() => tracing_subscriber::EnvFilter::new(directives),
        _ => tracing_subscriber::EnvFilter::new(
            [
                "rechunk",
                "rechunker",
                "rechunker_core",
                "rechunker_raw",
                "rechunker_zarr",
                "rechunker_netcdf",
                "rechunker_hdf5",
                "rechunker_h5",
                "rechunker_tiledb",
            ]
            .map(|c| format!("{c}=warn"))
            .join(","),
        ),
    }
}

/// The error and its causes in one line, skipping causes whose text the message already holds.
fn error_message(e: &anyhow::Error) -> String {
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

/// Memory the process needs besides task buffers: what it holds now (binary, libraries, the
/// opened source), what the allocator may keep of freed memory (see `memory::tune_allocator`),
/// headroom for thread stacks, small per-chunk buffers of codecs and metadata, and each
/// thread's direct-I/O transfer buffer for the scratch.
fn memory_reserve(threads: usize) -> u64 {
    let per_thread = (2 << 20) + rechunker_core::scratch::DIRECT_IO_BUFFER_BYTES as u64;
    memory::current_rss().unwrap_or(32 << 20)
        + memory::ALLOCATOR_RETENTION
        + (16 << 20)
        + threads as u64 * per_thread
}

/// Tasks run at once unless `--threads` says: twice the cores, so that while one task waits
/// for storage (a piece read straight from disk, a chunk fetched under the HDF5 lock) another
/// keeps the core busy; but no more than leave each task 64 MiB of `max_mem`, since more tasks
/// mean smaller blocks and pieces.
fn default_threads(max_mem: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let affordable = usize::try_from(max_mem / (64 << 20)).unwrap_or(usize::MAX);
    affordable.clamp(cores, 2 * cores)
}

fn job_options(p: &PlanOptions) -> Result<JobOptions> {
    let threads = p.threads.unwrap_or_else(|| default_threads(p.max_mem));
    let chunks = p.chunks.clone().unwrap_or_else(rechunker_core::spec::keep);
    if !chunks.has_auto() && (p.target_chunk_size.is_some() || p.access.is_some()) {
        bail!("--target-chunk-size and --for choose chunks for --chunks auto; add it (e.g. --chunks auto, or per variable 'tas:auto;time=100'), or leave them out");
    }
    Ok(JobOptions {
        chunks: chunks.with_auto(p.target_chunk_size, p.access),
        max_mem: p.max_mem,
        memory_reserve: memory_reserve(threads),
        threads,
        min_io: p.min_io,
        cost: CostModel::default(),
    })
}

/// Refuses, in one line, a run that would convert nothing, and a missing `--chunks` when some
/// variable has a dimension to chunk (a file of scalars needs none); the example is built from
/// the source's own dimensions.
fn check_convertible(src: &str, meta: &rechunker_core::DatasetMeta, p: &PlanOptions) -> Result<()> {
    if meta.arrays.is_empty() {
        if p.skip_unsupported {
            bail!("{src}: --skip-unsupported leaves nothing to convert: every variable is of a type rechunk cannot carry yet");
        }
        if !p.select.selection().is_all() {
            bail!("{src}: --variables/--drop-variables leave nothing to convert");
        }
        bail!("{src} has no variables to convert");
    }
    if p.chunks.is_none() && meta.arrays.iter().any(|a| a.ndim() > 0) {
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

/// Plans SRC → DST without touching DST.
fn make_plan(p: &PlanOptions) -> Result<(formats::OpenedSource, TargetFormat, DatasetPlan)> {
    let r = p.required()?;
    let source = select_source(
        formats::open_source(r.src, p.concat_dim.as_deref(), p.skip_unsupported)?,
        &p.select.selection(),
    )?;
    check_convertible(r.src, source.dataset.meta(), p)?;
    let format = formats::target_format(r.dst, p.format)?;
    let options = job_options(p)?;
    // Adapters touch nothing before the first array is created: planning only asks for sizes.
    let target = formats::create_target(r.dst, format, &p.write_options(&source, false))?;
    let plan = job::plan_dataset_with(
        source.dataset.as_ref(),
        target.as_ref(),
        &options,
        &source.unlimited_dims,
    )?;
    Ok((source, format, plan))
}

fn run(mut a: RunArgs) -> Result<()> {
    // `out.zarr/` names the same place as `out.zarr`, and a link as the link itself.
    a.plan.dst = a.plan.dst.as_deref().map(ownership::normalize_location);
    if let Some(plan_file) = &a.distributed.plan {
        return distributed::run_stage(plan_file, &a.distributed, a.quiet);
    }
    let started = Instant::now();
    let p = &a.plan;
    let r = p.required()?;
    let scratch_at = p.scratch_location()?;
    ownership::check_locations(r.src, r.dst, Some(&scratch_at))?;
    // Held until the run ends: a second run into the same target fails at once.
    let _lock = ownership::TargetLock::acquire(r.dst)?;
    let (source, format, fresh_plan) = make_plan(p)?;
    let exists = formats::target_exists(r.dst)?;
    if exists && !a.overwrite && !a.resume {
        bail!("target {} exists; add --overwrite to replace it, or --resume to continue an interrupted run into it", r.dst);
    }
    let mut scratch = formats::open_scratch(&scratch_at, p.scratch_io)?;
    let recorded = scratch.get(job::PLAN_KEY)?;
    if a.resume && exists && recorded.is_none() {
        bail!("target {} is not an interrupted run: {} holds no plan to continue (a finished run removes it); use --overwrite to write the target again", r.dst, scratch_at);
    }
    if a.overwrite {
        ownership::check_replaceable(r.dst, format, scratch.as_ref())?;
        job::release_scratch(scratch.as_ref(), &fresh_plan.target)?;
        formats::remove_target(r.dst)?;
        // Releasing removed the folder: open it afresh.
        scratch = formats::open_scratch(&scratch_at, p.scratch_io)?;
    }
    // A resumed run continues the plan it started with, whatever this process measures now.
    let stored = match recorded {
        Some(bytes) if a.resume => Some(
            DatasetPlan::from_json(&String::from_utf8_lossy(&bytes))
                .and_then(|stored| {
                    let names = |p: &DatasetPlan| {
                        p.arrays
                            .iter()
                            .map(|a| a.target.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    if names(&stored) != names(&fresh_plan) {
                        return Err(format!(
                            "the interrupted run copies the variables {}, this command {}; repeat its --variables/--drop-variables to resume it",
                            names(&stored),
                            names(&fresh_plan)
                        ));
                    }
                    stored.check_source(source.dataset.meta()).map(|()| stored)
                })
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{scratch_at}/{}: {e}; use --overwrite to start over",
                        job::PLAN_KEY
                    )
                })?,
        ),
        _ => None,
    };
    let plan = match stored {
        Some(stored) => {
            if stored.source != fresh_plan.source
                || stored.target != fresh_plan.target
                || stored.chunks != fresh_plan.chunks
                || stored.max_mem != fresh_plan.max_mem
            {
                bail!(
                    "the interrupted run in {scratch_at} was {} -> {} with --chunks {} --max-mem {}; repeat those arguments to resume it, or use --overwrite to start over",
                    stored.source,
                    stored.target,
                    stored.chunks,
                    format_bytes(stored.max_mem)
                );
            }
            stored
        }
        None => fresh_plan,
    };
    if !a.quiet {
        print_plan(&plan);
    }
    let target = formats::create_target(r.dst, format, &p.write_options(&source, a.resume))?;
    let progress: Arc<dyn rechunker_core::executor::Progress> = if a.quiet {
        Arc::new(rechunker_core::executor::NoProgress)
    } else {
        Arc::new(progress::CliProgress::new())
    };
    let executor = executor(&plan, p.scratch_codec()?, scratch, progress)?;
    let report = job::run_dataset(&plan, source.dataset.as_ref(), target.as_ref(), &executor, a.resume).map_err(|e| {
        let advice = if matches!(e.root(), rechunker_core::Error::SourceRead(_)) {
            format!("the source could not be read; a rerun cannot help until it is repaired or replaced (then rerun with --resume: the scratch {scratch_at} keeps the finished tasks)")
        } else {
            format!("the scratch {scratch_at} keeps the finished tasks: rerun the same command with --resume to continue")
        };
        anyhow::Error::new(e).context(format!(
            "rechunking {} into {} stopped; {advice}",
            r.src, r.dst
        ))
    })?;
    print_summary(&plan, &report, started);
    Ok(())
}

/// The executor for `plan`: its threads, the task memory its budget leaves, and the test hooks
/// `RECHUNKER_FAIL_TASK=STAGE:TASK` (fails one task as a crash would) and
/// `RECHUNKER_TASK_DELAY_MS` (slows every task, so a test can kill a worker mid-stage).
fn executor(
    plan: &DatasetPlan,
    codec: ScratchCodec,
    scratch: Arc<dyn rechunker_core::scratch::ScratchStore>,
    progress: Arc<dyn rechunker_core::executor::Progress>,
) -> Result<Executor> {
    let fail_task = std::env::var("RECHUNKER_FAIL_TASK").ok().and_then(|v| {
        let (s, t) = v.split_once(':')?;
        Some((s.parse().ok()?, t.parse().ok()?))
    });
    let options = ExecutorOptions {
        threads: plan.threads,
        task_memory: plan.max_mem.saturating_sub(plan.memory_reserve).max(1),
        codec,
        fail_task,
    };
    let executor = Executor::new(options, scratch, progress)?;
    // Test hook for fault tests: RECHUNKER_TASK_DELAY_MS slows every task down.
    Ok(
        match std::env::var("RECHUNKER_TASK_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            Some(ms) => executor.with_task_delay(std::time::Duration::from_millis(ms)),
            None => executor,
        },
    )
}

fn print_summary(plan: &DatasetPlan, report: &job::RunReport, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    // Bytes the tasks of this process moved (a resumed run or one shard moves less than all).
    let bytes: u64 = report
        .arrays
        .iter()
        .flat_map(|(_, stages)| stages)
        .map(|s| s.bytes)
        .sum();
    let data: u64 = plan.arrays.iter().map(|a| a.plan.array_bytes()).sum();
    println!(
        "done: {} arrays, {} in {} ({}/s moved); tasks run {}, skipped (resumed) {}; peak memory {} of --max-mem {}",
        plan.arrays.len(),
        format_bytes(data),
        format_seconds(seconds),
        format_bytes((bytes as f64 / seconds.max(1e-9)) as u64),
        report.tasks_run(),
        report.tasks_skipped(),
        format_bytes(memory::peak_rss().unwrap_or(0)),
        format_bytes(plan.max_mem),
    );
}

fn shape_text(v: &[u64]) -> String {
    format!(
        "({})",
        v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
    )
}

fn print_plan(plan: &DatasetPlan) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    println!(
        "plan: {} -> {}, chunks {}, --max-mem {} ({} for data after the process's own {}), {} threads",
        plan.source,
        plan.target,
        plan.chunks,
        format_bytes(plan.max_mem),
        format_bytes(plan.max_mem.saturating_sub(plan.memory_reserve)),
        format_bytes(plan.memory_reserve),
        plan.threads
    );
    let cost = CostModel::default();
    let mut total_seconds = 0.0;
    for a in &plan.arrays {
        let p = &a.plan;
        let meta = &a.target;
        println!(
            "  {} {} {}: {} -> {}, {}",
            meta.name,
            meta.dtype,
            shape_text(&p.shape()),
            shape_text(&p.source.nominal_chunk_shape()),
            shape_text(&p.target.nominal_chunk_shape()),
            format_bytes(p.array_bytes())
        );
        if let Some(why) = &a.chunks_why {
            println!(
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
            println!(
                "    stage {}/{}: {} tasks, blocks {}, {from} -> {to}, {} per task",
                k + 1,
                p.stages.len(),
                s.tasks,
                shape_text(&s.block_shape),
                format_bytes(s.task_memory)
            );
        }
        // Tasks beyond the cores hide waits for storage; they do not add codec throughput.
        total_seconds += p.seconds(&cost, a.parallelism.min(cores));
        println!(
            "    {} tasks at once; moves {} through {} stage(s)",
            a.parallelism,
            format_bytes(2 * p.array_bytes() * p.stages.len() as u64),
            p.stages.len()
        );
    }
    println!(
        "  estimate: about {} on {cores} cores (per core: source {}/s, target {}/s, scratch {}/s, {:.1} ms per object)",
        format_seconds(total_seconds),
        format_bytes(cost.source_bytes_per_second as u64),
        format_bytes(cost.target_bytes_per_second as u64),
        format_bytes(cost.scratch_bytes_per_second as u64),
        cost.seconds_per_op * 1e3
    );
}

/// `path` made absolute when it is local, so that a plan file means the same from any worker's
/// working directory.
fn absolute(path: &str) -> String {
    if path.contains("://") || Path::new(path).is_absolute() {
        return path.to_string();
    }
    std::env::current_dir()
        .map(|d| d.join(path).display().to_string())
        .unwrap_or_else(|_| path.to_string())
}

fn plan(mut a: PlanArgs) -> Result<()> {
    a.plan.dst = a.plan.dst.as_deref().map(ownership::normalize_location);
    if a.output.is_some() {
        let p = &mut a.plan;
        p.src = p.src.as_deref().map(absolute);
        p.dst = p.dst.as_deref().map(absolute);
        p.scratch = p.scratch.as_deref().map(absolute);
        let r = p.required()?;
        ownership::check_locations(r.src, r.dst, Some(&p.scratch_location()?))?;
    }
    let (source, format, plan) = make_plan(&a.plan)?;
    if let Some(path) = &a.output {
        let file = distributed::JobFile {
            plan: plan.clone(),
            source_arg: a.plan.src.clone().unwrap_or_default(),
            concat_dim: a.plan.concat_dim.clone(),
            skip_unsupported: a.plan.skip_unsupported,
            selection: a.plan.select.selection(),
            target_format: format,
            // Workers reopen what `plan -o` and other workers created.
            write: a.plan.write_options(&source, true),
            scratch: a.plan.scratch_location()?,
            scratch_codec: a.plan.scratch_codec()?,
            scratch_io: a.plan.scratch_io,
        };
        file.create(path)?;
    }
    if a.json {
        println!("{}", plan.to_json());
    } else {
        print_plan(&plan);
    }
    Ok(())
}

fn inspect(a: InspectArgs) -> Result<()> {
    let source = select_source(
        formats::open_source(&a.src, a.concat_dim.as_deref(), a.skip_unsupported)?,
        &a.select.selection(),
    )?
    .dataset;
    let meta = source.meta();
    if a.json {
        println!("{}", serde_json::to_string_pretty(meta)?);
        return Ok(());
    }
    println!("{}", source.location());
    if let Some(format) = rechunker_zarr::describe_dataset(meta) {
        println!("  format: {format}");
    }
    let dims: Vec<String> = meta
        .dims()
        .iter()
        .map(|(n, l)| format!("{n}={l}"))
        .collect();
    println!(
        "  dimensions: {}",
        if dims.is_empty() {
            "(none)".into()
        } else {
            dims.join(", ")
        }
    );
    for v in &meta.arrays {
        println!(
            "  {} {} ({}): shape {}, chunks {}, {}{}",
            v.name,
            v.dtype,
            v.dims.join(", "),
            shape_text(&v.shape()),
            shape_text(&v.grid.nominal_chunk_shape()),
            format_bytes(v.num_bytes()),
            v.fill_value
                .map(|f| format!(", fill {f}"))
                .unwrap_or_default()
        );
        if !v.codecs.is_empty() {
            println!("    codecs: {}", v.codecs.join(" | "));
        }
        for (name, value) in v.attrs.iter() {
            println!("    {name}: {}", value.value);
        }
    }
    for (name, value) in meta.attrs.iter() {
        println!("  :{name} = {}", value.value);
    }
    Ok(())
}

fn verify(a: VerifyArgs) -> Result<()> {
    let src = select_source(
        formats::open_source(&a.src, a.concat_dim.as_deref(), a.skip_unsupported)?,
        &a.select.selection(),
    )?
    .dataset;
    let dst = formats::open_source(&a.dst, None, false)?.dataset;
    // Like a run, --max-mem bounds the whole process: its own footprint comes off first.
    let threads = rayon::current_num_threads();
    let buffers = a
        .max_mem
        .saturating_sub(memory_reserve(threads))
        .max(1 << 20);
    let compared = rechunker::verify::verify(src.as_ref(), dst.as_ref(), buffers)?;
    println!(
        "identical: {} arrays, {} compared",
        src.meta().arrays.len(),
        format_bytes(compared)
    );
    Ok(())
}

fn in_place(a: InPlaceArgs) -> Result<()> {
    let started = Instant::now();
    let _lock = ownership::TargetLock::acquire(&a.array)?;
    let threads = a.threads.unwrap_or_else(|| default_threads(a.max_mem));
    let mut options = rechunker_tiledb::in_place::InPlaceOptions::new(
        a.chunks.clone(),
        a.max_mem,
        memory_reserve(threads),
    );
    options.threads = threads;
    options.scratch_io = a.scratch_io;
    options.codec = a
        .codec
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    if !a.quiet {
        options.progress = Arc::new(progress::CliProgress::new());
    }
    options.fail_task = std::env::var("RECHUNKER_FAIL_TASK").ok().and_then(|v| {
        let (s, t) = v.split_once(':')?;
        Some((s.parse().ok()?, t.parse().ok()?))
    });
    let report = rechunker_tiledb::in_place::run(&a.array, &options)
        .map_err(|e| anyhow::Error::new(e).context(format!("rechunking {} in place stopped; rerun the same command to finish it (the array stays readable meanwhile)", a.array)))?;
    if report.unchanged {
        println!("{} already has those tile extents: nothing to do", a.array);
        return Ok(());
    }
    println!(
        "done: {} rechunked in place ({} arrays, {} copied and verified) in {}{}; tasks run {}, skipped {}; peak memory {} of --max-mem {}",
        a.array,
        report.arrays,
        format_bytes(report.bytes),
        format_seconds(started.elapsed().as_secs_f64()),
        report.resumed_from.map(|s| format!(", resumed from `{s}`")).unwrap_or_default(),
        report.tasks_run,
        report.tasks_skipped,
        format_bytes(memory::peak_rss().unwrap_or(0)),
        format_bytes(a.max_mem),
    );
    Ok(())
}
