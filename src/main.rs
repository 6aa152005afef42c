//! `rechunk`: rewrite chunked N-d arrays into a new chunk layout within a memory limit.

mod progress;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use rechunker::formats::{self, TargetFormat};
use rechunker::memory;
use rechunker_core::executor::{Executor, ExecutorOptions};
use rechunker_core::job::{self, DatasetPlan, JobOptions};
use rechunker_core::planner::CostModel;
use rechunker_core::scratch::ScratchCodec;
use rechunker_core::units::{format_bytes, format_seconds, parse_size};
use rechunker_core::{ChunkSpec, DatasetSource};
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
}

fn parse_chunks(s: &str) -> Result<ChunkSpec, String> {
    s.parse()
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    parse_size(s)
}

#[derive(Args, Clone)]
struct PlanOptions {
    /// Source dataset.
    src: String,
    /// Target dataset (its format follows from the extension, or --format).
    dst: String,
    /// Target chunks by dimension name (time=8760,lat=24,lon=24) or position (8760,24,24);
    /// -1 means the whole dimension; unnamed dimensions keep their source chunks.
    #[arg(long, short = 'c', value_parser = parse_chunks)]
    chunks: ChunkSpec,
    /// Peak memory of the whole process, e.g. 2GiB or 512MB.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    max_mem: u64,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    threads: Option<usize>,
    /// Scratch pieces smaller than this make the planner consider an extra stage.
    #[arg(long, default_value = "1MiB", value_parser = parse_bytes)]
    min_io: u64,
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
    #[arg(long)]
    shards: Option<String>,
}

impl PlanOptions {
    fn write_options(&self) -> formats::WriteOptions {
        formats::WriteOptions {
            codec: self.codec.clone(),
            zarr_format: self.zarr_format,
            shards: self.shards.clone(),
        }
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    plan: PlanOptions,
    /// Where intermediate pieces and the task journal go: a directory or an object-store URI
    /// (default: DST.rechunk-scratch beside the target).
    #[arg(long)]
    scratch: Option<String>,
    /// Codec of the intermediate pieces.
    #[arg(long, default_value = "lz4")]
    scratch_codec: ScratchCodec,
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
    /// Print the metadata as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct VerifyArgs {
    src: String,
    dst: String,
    /// Peak memory for the comparison buffers.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    max_mem: u64,
}

/// Lets `rechunk SRC DST ...` stand for `rechunk run SRC DST ...`.
fn with_default_subcommand(mut args: Vec<String>) -> Vec<String> {
    const KNOWN: [&str; 8] = [
        "run", "plan", "inspect", "verify", "help", "-h", "--help", "-V",
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
    let cli = Cli::parse_from(with_default_subcommand(std::env::args().collect()));
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("RECHUNK_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Run(a) => run(a),
        Command::Plan(a) => plan(a),
        Command::Inspect(a) => inspect(a),
        Command::Verify(a) => verify(a),
    };
    if let Err(e) = result {
        eprintln!("error: {}", error_message(&e));
        std::process::exit(1);
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
/// opened source) plus headroom for thread stacks, allocator slack and metadata.
fn memory_reserve(threads: usize) -> u64 {
    memory::current_rss().unwrap_or(32 << 20) + (12 << 20) + threads as u64 * (1 << 20)
}

fn job_options(p: &PlanOptions) -> JobOptions {
    let threads = p
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    JobOptions {
        chunks: p.chunks.clone(),
        max_mem: p.max_mem,
        memory_reserve: memory_reserve(threads),
        threads,
        min_io: p.min_io,
        cost: CostModel::default(),
    }
}

fn same_path(a: &str, b: &str) -> bool {
    match (Path::new(a).canonicalize(), Path::new(b).canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Plans SRC → DST without touching DST.
fn make_plan(p: &PlanOptions) -> Result<(Box<dyn DatasetSource>, TargetFormat, DatasetPlan)> {
    let source = formats::open_source(&p.src)?;
    let format = formats::target_format(&p.dst, p.format)?;
    let options = job_options(p);
    // Adapters touch nothing before the first array is created: planning only asks for sizes.
    let target = formats::create_target(&p.dst, format, &p.write_options())?;
    let plan = job::plan_dataset(source.as_ref(), target.as_ref(), &options)?;
    Ok((source, format, plan))
}

fn run(a: RunArgs) -> Result<()> {
    let started = Instant::now();
    let p = &a.plan;
    if same_path(&p.src, &p.dst) {
        bail!(
            "source and target are the same ({}); write to a new path",
            p.src
        );
    }
    let scratch_at = a
        .scratch
        .clone()
        .unwrap_or_else(|| formats::default_scratch(&p.dst));
    let (source, format, fresh_plan) = make_plan(p)?;
    if formats::target_exists(&p.dst)? && !a.overwrite && !a.resume {
        bail!("target {} exists; add --overwrite to replace it, or --resume to continue an interrupted run into it", p.dst);
    }
    if a.overwrite {
        formats::remove_target(&p.dst)?;
        formats::open_scratch(&scratch_at)?.remove_prefix("")?;
    }
    let scratch = formats::open_scratch(&scratch_at)?;
    // A resumed run continues the plan it started with, whatever this process measures now.
    let stored = match scratch.get(job::PLAN_KEY)? {
        Some(bytes) if a.resume => Some(
            DatasetPlan::from_json(&String::from_utf8_lossy(&bytes))
                .map_err(|e| anyhow::anyhow!("{scratch_at}/{}: {e}", job::PLAN_KEY))?,
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
    let target = formats::create_target(&p.dst, format, &p.write_options())?;
    let progress: Arc<dyn rechunker_core::executor::Progress> = if a.quiet {
        Arc::new(rechunker_core::executor::NoProgress)
    } else {
        Arc::new(progress::CliProgress::new())
    };
    let fail_task = std::env::var("RECHUNKER_FAIL_TASK").ok().and_then(|v| {
        let (s, t) = v.split_once(':')?;
        Some((s.parse().ok()?, t.parse().ok()?))
    });
    let executor = Executor::new(
        ExecutorOptions {
            threads: plan.threads,
            task_memory: plan.max_mem - plan.memory_reserve,
            codec: a.scratch_codec,
            resume: a.resume,
            fail_task,
        },
        scratch,
        progress,
    )?;
    let report = job::run_dataset(&plan, source.as_ref(), target.as_ref(), &executor, a.resume).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "rechunking {} into {} stopped; the scratch {} keeps the finished tasks: rerun the same command with --resume to continue",
            p.src,
            p.dst,
            scratch_at
        ))
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes: u64 = plan.arrays.iter().map(|a| a.plan.array_bytes()).sum();
    let peak = memory::peak_rss().unwrap_or(0);
    println!(
        "done: {} arrays, {} in {} ({}/s); tasks run {}, skipped (resumed) {}; peak memory {} of --max-mem {}",
        plan.arrays.len(),
        format_bytes(bytes),
        format_seconds(seconds),
        format_bytes((bytes as f64 / seconds.max(1e-9)) as u64),
        report.tasks_run(),
        report.tasks_skipped(),
        format_bytes(peak),
        format_bytes(plan.max_mem),
    );
    Ok(())
}

fn shape_text(v: &[u64]) -> String {
    format!(
        "({})",
        v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
    )
}

fn print_plan(plan: &DatasetPlan) {
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
        total_seconds += p.seconds(&cost, a.parallelism);
        println!(
            "    {} tasks at once; moves {} through {} stage(s)",
            a.parallelism,
            format_bytes(2 * p.array_bytes() * p.stages.len() as u64),
            p.stages.len()
        );
    }
    println!(
        "  estimate: about {} (per thread: source {}/s, target {}/s, scratch {}/s, {:.1} ms per object)",
        format_seconds(total_seconds),
        format_bytes(cost.source_bytes_per_second as u64),
        format_bytes(cost.target_bytes_per_second as u64),
        format_bytes(cost.scratch_bytes_per_second as u64),
        cost.seconds_per_op * 1e3
    );
}

fn plan(a: PlanArgs) -> Result<()> {
    let (_, _, plan) = make_plan(&a.plan)?;
    if let Some(path) = &a.output {
        std::fs::write(path, plan.to_json())
            .with_context(|| format!("cannot write the plan to {}", path.display()))?;
    }
    if a.json {
        println!("{}", plan.to_json());
    } else {
        print_plan(&plan);
    }
    Ok(())
}

fn inspect(a: InspectArgs) -> Result<()> {
    let source = formats::open_source(&a.src)?;
    let meta = source.meta();
    if a.json {
        println!("{}", serde_json::to_string_pretty(meta)?);
        return Ok(());
    }
    println!("{}", source.location());
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
    let src = formats::open_source(&a.src)?;
    let dst = formats::open_source(&a.dst)?;
    let compared = rechunker::verify::verify(src.as_ref(), dst.as_ref(), a.max_mem)?;
    println!(
        "identical: {} arrays, {} compared",
        src.meta().arrays.len(),
        format_bytes(compared)
    );
    Ok(())
}
