//! The `rechunk` command line: argument parsing and printing only; every command is a call into
//! the library ([`crate::api`] and its neighbours). It lives in the library so that the
//! `rechunk` binary and the Python package's `rechunk` entry point run the same main
//! ([`main_with_args`]).

mod distributed;
mod progress;

use crate::api::{self, Progress, Rechunk};
use crate::formats::{self, TargetFormat};
use crate::in_place::InPlace;
use crate::memory;
use crate::verify::Verify;
use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use rechunker_core::autochunk::AccessPattern;
use rechunker_core::job;
use rechunker_core::scratch::{ScratchCodec, ScratchIo};
use rechunker_core::units::{format_bytes, parse_size};
use rechunker_core::{ChunkSpec, VariableSelection};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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
    /// How long a request to an object store (s3://, gs://, az://, http(s)://) is retried,
    /// with backoff, before the command fails: throttling (503 SlowDown), server errors,
    /// timeouts and dropped connections are ridden out for this long (e.g. 120s, 10m).
    #[arg(long, global = true, value_parser = parse_duration, default_value = "120s")]
    retry_timeout: std::time::Duration,
    /// Requests to object stores in flight at once, for the whole process (default: sized
    /// from the latency measured when planning, 16 to 128): chunks are stored while the next
    /// ones are encoded. Each one in flight holds an encoded chunk, counted in --max-mem.
    #[arg(long, global = true, value_parser = parse_requests)]
    io_concurrency: Option<usize>,
    /// Send requests to s3://, gs:// and az:// unsigned, as to a public bucket (no
    /// credentials are looked up). For reading open data; writes need credentials.
    #[arg(long, global = true)]
    anon: bool,
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

fn parse_bytes(s: &str) -> Result<u64, String> {
    parse_size(s)
}

/// A duration: a number of seconds, or one with a unit (`500ms`, `90s`, `10m`, `1h`).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let seconds = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    match number.parse::<f64>() {
        Ok(n) if seconds.is_finite() && n * seconds > 0.0 && n * seconds < 1e9 => {
            Ok(std::time::Duration::from_secs_f64(n * seconds))
        }
        _ => Err(format!(
            "`{s}` is not a duration; give e.g. 90s, 500ms, 10m or 1h"
        )),
    }
}

/// A number of requests in flight: a whole number from 1.
fn parse_requests(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=4096).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}` is not a number of requests; give a whole number from 1 to 4096"
        )),
    }
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

impl PlanOptions {
    /// The format-specific flags given, by name: the target's driver takes the ones its format
    /// has and refuses the others.
    fn format_options(&self) -> formats::WriteOptions {
        formats::WriteOptions::default()
            .with("codec", self.codec.as_ref())
            .with("zarr-format", self.zarr_format)
            .with("shards", self.shards.as_ref())
            .with("netcdf-format", self.netcdf_format.as_ref())
    }

    /// The library's settings for these arguments.
    fn rechunk(&self) -> Result<Rechunk> {
        let (Some(src), Some(dst)) = (&self.src, &self.dst) else {
            bail!("give SRC and DST (or, for `rechunk run`, --plan PLAN.json)");
        };
        Ok(Rechunk::new(src.as_str(), dst.as_str())
            .concat_dim(self.concat_dim.clone())
            .chunks(self.chunks.clone())
            .target_chunk_size(self.target_chunk_size)
            .access(self.access)
            .select(self.select.selection())
            .max_mem(self.max_mem)
            .threads(self.threads)
            .min_io(self.min_io)
            .skip_unsupported(self.skip_unsupported)
            .format(self.format)
            .write_options(self.format_options())
            .scratch(self.scratch.clone())
            .scratch_codec(self.scratch_codec)
            .scratch_io(self.scratch_io))
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

/// Runs `rechunk` with `args` (the program name first, as `std::env::args` gives them) and
/// returns its exit status. Meant to be a process's whole life: it sets the panic hook, the
/// allocator and the log subscriber.
pub fn main_with_args(args: Vec<String>) -> ExitCode {
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
    let cli = match Cli::try_parse_from(with_default_subcommand(args)) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version end here too, successfully.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    // `try_init`: a second call in one process (the Python entry point called twice) keeps
    // the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .without_time()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
    rechunker_store::set_retry_timeout(cli.retry_timeout);
    rechunker_store::set_anonymous(cli.anon);
    if let Some(n) = cli.io_concurrency {
        rechunker_store::set_io_concurrency(n);
    }
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
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", api::error_message(&e));
            ExitCode::FAILURE
        }
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
                "rechunker_store",
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

/// Progress on stderr (and the plan on stdout when the run starts), or none with `--quiet`.
fn progress(quiet: bool) -> Arc<dyn Progress> {
    if quiet {
        Arc::new(api::NoProgress)
    } else {
        Arc::new(progress::CliProgress::new())
    }
}

fn run(a: RunArgs) -> Result<()> {
    if let Some(plan_file) = &a.distributed.plan {
        return distributed::run_stage(plan_file, &a.distributed, progress(a.quiet));
    }
    let report = a
        .plan
        .rechunk()?
        .resume(a.resume)
        .overwrite(a.overwrite)
        .run(progress(a.quiet))?;
    println!("{}", report.summary());
    Ok(())
}

fn plan(a: PlanArgs) -> Result<()> {
    let rechunk = a.plan.rechunk()?;
    let plan = match &a.output {
        Some(path) => rechunk.save_plan(path)?.0,
        None => rechunk.plan()?,
    };
    if a.json {
        println!("{}", plan.to_json());
    } else {
        print!("{}", plan.describe());
    }
    Ok(())
}

fn inspect(a: InspectArgs) -> Result<()> {
    let source = api::open_source(
        &a.src,
        a.concat_dim.as_deref(),
        a.skip_unsupported,
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
            api::shape_text(&v.shape()),
            api::shape_text(&v.grid.nominal_chunk_shape()),
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
    let verified = Verify::new(a.src, a.dst)
        .concat_dim(a.concat_dim)
        .skip_unsupported(a.skip_unsupported)
        .select(a.select.selection())
        .max_mem(a.max_mem)
        .run()?;
    println!(
        "identical: {} arrays, {} compared",
        verified.arrays,
        format_bytes(verified.bytes)
    );
    Ok(())
}

fn in_place(a: InPlaceArgs) -> Result<()> {
    let done = InPlace::new(a.array, a.chunks)
        .codec(a.codec)
        .max_mem(a.max_mem)
        .threads(a.threads)
        .scratch_io(a.scratch_io)
        .run(progress(a.quiet))?;
    println!("{}", done.summary());
    Ok(())
}
