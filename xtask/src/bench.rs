//! `cargo xtask bench`: benchmarks whose figures go in the closing notes and `docs/benchmarks.md`.
//!
//! 1. Memory: rechunk a >= 2 GiB array with `--max-mem 256MiB` and compare the peak RSS of the
//!    whole process (kernel high-water mark, via `wait4`) with the budget and with the idle
//!    baseline of the same binary doing a trivial run.
//! 2. Planning: plan the canonical worked example (87600, 721, 1440) and an array of 10^9 source
//!    chunks; wall time and peak RSS of the whole `rechunk plan` process.

use crate::{synth, util};
use anyhow::{bail, Result};
use rechunker_core::units::{format_bytes, format_seconds};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

struct Row {
    case: String,
    seconds: f64,
    peak: u64,
    note: String,
}

fn rechunk_cmd(bin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(args).stdout(Stdio::null()).stderr(Stdio::inherit());
    c
}

pub fn run(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let bin = util::build_rechunk()?;
    let dir = util::root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();

    // Idle baseline: the same binary on a trivial job.
    let tiny = dir.join("tiny.raw");
    if !tiny.join("raw.json").exists() {
        synth::write_tas(&tiny, 4, 4, 4)?;
    }
    let tiny_out = dir.join("tiny-out.raw");
    let m = util::measure(&mut rechunk_cmd(
        &bin,
        &[
            tiny.to_str().unwrap_or_default(),
            tiny_out.to_str().unwrap_or_default(),
            "--chunks",
            "4,2,2",
            "--overwrite",
            "-q",
        ],
    ))?;
    if !m.success {
        bail!("the baseline run failed");
    }
    let baseline = m.peak_rss;
    rows.push(Row {
        case: "idle baseline: rechunk of a 256-byte array".into(),
        seconds: m.seconds,
        peak: baseline,
        note: String::new(),
    });

    // Memory: >= 2 GiB under --max-mem 256MiB.
    let time = if quick { 130 } else { 520 };
    let src = dir.join(format!("tas-v2-{time}x721x1440.raw"));
    if !src.join("raw.json").exists() {
        util::step(&format!(
            "generating tas({time}, 721, 1440) float32 in time slices ({})",
            format_bytes(time * 721 * 1440 * 4)
        ));
        synth::write_tas(&src, time, 721, 1440)?;
    }
    let dst = dir.join("tas-timeseries.raw");
    let budget: u64 = 256 << 20;
    util::step(&format!(
        "rechunking {} to (T, 24, 24) with --max-mem 256MiB",
        format_bytes(time * 721 * 1440 * 4)
    ));
    let chunks = format!("time={time},lat=24,lon=24");
    let m = util::measure(&mut rechunk_cmd(
        &bin,
        &[
            src.to_str().unwrap_or_default(),
            dst.to_str().unwrap_or_default(),
            "--chunks",
            &chunks,
            "--max-mem",
            "256MiB",
            "--overwrite",
            "-q",
        ],
    ))?;
    if !m.success {
        bail!("the memory benchmark run failed");
    }
    let bytes = time * 721 * 1440 * 4;
    let within = m.peak_rss <= budget + baseline;
    if !within {
        failures.push(format!(
            "peak RSS {} exceeds 256 MiB + baseline {}",
            format_bytes(m.peak_rss),
            format_bytes(baseline)
        ));
    }
    rows.push(Row {
        case: format!("rechunk tas({time}, 721, 1440) f32 (1, 721, 1440) -> ({time}, 24, 24), --max-mem 256MiB, 2 threads"),
        seconds: m.seconds,
        peak: m.peak_rss,
        note: format!(
            "{}/s; peak = {:.2}x budget; <= budget + baseline: {}",
            format_bytes((bytes as f64 / m.seconds) as u64),
            m.peak_rss as f64 / budget as f64,
            if within { "yes" } else { "NO" }
        ),
    });
    util::step("verifying the result against the source");
    let v = util::measure(&mut rechunk_cmd(
        &bin,
        &[
            "verify",
            src.to_str().unwrap_or_default(),
            dst.to_str().unwrap_or_default(),
        ],
    ))?;
    if !v.success {
        bail!("the rechunked benchmark output differs from its source");
    }
    rows.push(Row {
        case: "rechunk verify of the same (reads both, compares)".into(),
        seconds: v.seconds,
        peak: v.peak_rss,
        note: "identical".into(),
    });
    let _ = std::fs::remove_dir_all(&dst);

    // Planning: instant and constant memory whatever the array size.
    let worked = dir.join("worked-87600x721x1440.raw");
    if !worked.join("raw.json").exists() {
        synth::write_tas_metadata(&worked, 87600, 721, 1440)?;
    }
    let huge = dir.join("huge-1e9-chunks.raw");
    if !huge.join("raw.json").exists() {
        // (10^6, 1000, 1000) float32 in (1, 1, 1000) chunks: 10^9 source chunks, 4 PB.
        let mut meta = synth::tas_meta(1_000_000, 1000, 1000);
        meta.grid = rechunker_core::ChunkGrid::regular(&[1_000_000, 1000, 1000], &[1, 1, 1000]);
        synth::write_metadata(&huge, meta)?;
    }
    for (path, chunks, mem, label) in [
        (
            &worked,
            "time=87600,lat=24,lon=24",
            "1GiB",
            "plan worked example (87600, 721, 1440) -> (87600, 24, 24), 1 GiB",
        ),
        (
            &worked,
            "time=87600,lat=24,lon=24",
            "8GiB",
            "plan worked example, 8 GiB",
        ),
        (
            &huge,
            "time=1000,lat=100,lon=100",
            "8GiB",
            "plan 10^9 source chunks (10^6, 1000, 1000) -> (1000, 100, 100)",
        ),
    ] {
        let out = dir.join("never-written.raw");
        let m = util::measure(&mut rechunk_cmd(
            &bin,
            &[
                "plan",
                path.to_str().unwrap_or_default(),
                out.to_str().unwrap_or_default(),
                "--chunks",
                chunks,
                "--max-mem",
                mem,
            ],
        ))?;
        if !m.success {
            bail!("{label}: rechunk plan failed");
        }
        rows.push(Row {
            case: label.into(),
            seconds: m.seconds,
            peak: m.peak_rss,
            note: String::new(),
        });
    }

    let mut table = String::from("| case | wall | peak RSS | notes |\n|---|---:|---:|---|\n");
    for r in &rows {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} |",
            r.case,
            format_seconds(r.seconds),
            format_bytes(r.peak),
            r.note
        );
    }
    util::step("results");
    println!("{table}");
    if !quick {
        write_doc(&table)?;
    }
    if !failures.is_empty() {
        bail!("benchmark targets missed: {}", failures.join("; "));
    }
    Ok(())
}

fn write_doc(table: &str) -> Result<()> {
    let path = util::root().join("docs/benchmarks.md");
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let text = format!(
        "# Benchmarks\n\nWritten by `cargo xtask bench` (do not edit by hand). Machine: {machine}, {threads} threads.\n\
         Peak RSS is the kernel's high-water mark of the whole `rechunk` process (`wait4` rusage).\n\n\
         ## Memory and planning (raw reference format, page cache warm)\n\n{table}\n"
    );
    std::fs::write(&path, text)?;
    util::step(&format!("wrote {}", path.display()));
    Ok(())
}
