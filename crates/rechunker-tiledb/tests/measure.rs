//! Measurements behind the adapter's choices (ignored by default; run with
//! `cargo test -p rechunker-tiledb --test measure -- --ignored --nocapture`):
//! - fragments: writes in N tasks (one fragment each), then leaving them, consolidating only
//!   commits and fragment metadata, or consolidating everything; write, tidy and read times;
//! - memory: peak resident memory of one write_region / read_region beyond the buffers,
//!   against the overheads the adapter reports to the planner.

mod common;

use rechunker_core::{ArrayMeta, ChunkGrid, DataType, DatasetMeta, DatasetTarget, Region};
use rechunker_tiledb::{fragment_count, Fragments, TileDbSource, TileDbTarget, TileDbWriteOptions};
use std::time::Instant;

fn status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = s.lines().find(|l| l.starts_with(field)).unwrap();
    l[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .unwrap()
        << 10
}

/// The allocator settings of the `rechunk` binary (src/memory.rs): big buffers go back to the
/// kernel when freed, so resident memory tracks what is live.
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// Smooth field plus noise, compressing about like climate data.
fn field(shape: &[u64]) -> Vec<u8> {
    let mut x = 88172645463325252u64;
    let mut out = Vec::with_capacity(shape.iter().product::<u64>() as usize * 4);
    for t in 0..shape[0] {
        for y in 0..shape[1] {
            for z in 0..shape[2] {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = 250.0
                    + (t as f32 * 0.1).sin() * 10.0
                    + (y as f32 * 0.05).cos() * 20.0
                    + (z as f32 * 0.02).sin() * 5.0
                    + ((x >> 40) as f32 / 16777216.0 - 0.5) * 0.5;
                out.extend_from_slice(&v.to_ne_bytes());
            }
        }
    }
    out
}

fn meta(shape: &[u64], tiles: &[u64]) -> ArrayMeta {
    ArrayMeta::regular(
        "tas",
        &["time", "lat", "lon"],
        DataType::Float32,
        shape,
        tiles,
    )
}

/// Writes `data` in blocks of `block` (whole tiles) on two threads; returns seconds.
fn write(target: &TileDbTarget, meta: &ArrayMeta, data: &[u8], block: &[u64]) -> f64 {
    let array = target.create_array(meta).unwrap();
    let blocks = ChunkGrid::regular(&meta.shape(), block);
    let next = std::sync::atomic::AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if b >= blocks.num_chunks() {
                    break;
                }
                let region = blocks.chunk_region_linear(b);
                let bytes = common::extract(data, &meta.shape(), &region, 4);
                array.write_region(&region, &bytes).unwrap();
            });
        }
    });
    started.elapsed().as_secs_f64()
}

/// Reads the whole array in time-series blocks on two threads; returns seconds.
fn read_all(uri: &str, shape: &[u64]) -> f64 {
    let started = Instant::now();
    let source = TileDbSource::open(uri).unwrap();
    let array = source.array("tas").unwrap();
    let blocks = ChunkGrid::regular(shape, &[shape[0], 96, 96]);
    let next = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if b >= blocks.num_chunks() {
                    break;
                }
                let region = blocks.chunk_region_linear(b);
                let mut out = vec![0u8; region.num_elements() as usize * 4];
                array.read(&region, &mut out).unwrap();
            });
        }
    });
    started.elapsed().as_secs_f64()
}

/// Opening the array and reading one small box (what a reader of a point time series pays).
fn open_and_probe(uri: &str) -> f64 {
    let started = Instant::now();
    let source = TileDbSource::open(uri).unwrap();
    let array = source.array("tas").unwrap();
    let region = Region::new(vec![0, 100, 100], vec![48, 1, 1]);
    let mut out = vec![0u8; 48 * 4];
    array.read(&region, &mut out).unwrap();
    started.elapsed().as_secs_f64()
}

fn du(path: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(path).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        total += if m.is_dir() { du(&e.path()) } else { m.len() };
    }
    total
}

#[test]
#[ignore]
fn fragments_and_consolidation() {
    tune_allocator();
    let shape = [48u64, 721, 1440];
    let tiles = [48u64, 24, 24];
    let data = field(&shape);
    println!(
        "array {shape:?} float32 ({} MiB), tiles {tiles:?}, zstd:3, 2 threads",
        data.len() >> 20
    );
    println!("| tasks | policy | write s | tidy s | tidy peak MiB | fragments | size MiB | open+probe s | read all s |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for block in [[48u64, 384, 720], [48, 96, 192], [48, 24, 96], [48, 24, 24]] {
        for policy in [None, Some(Fragments::Keep), Some(Fragments::Consolidate)] {
            let dir = tempfile::tempdir().unwrap();
            let uri = dir.path().join("tas.tdb");
            let uri = uri.to_str().unwrap();
            let m = meta(&shape, &tiles);
            let target = TileDbTarget::create(
                uri,
                TileDbWriteOptions {
                    fragments: policy.unwrap_or_default(),
                    ..Default::default()
                },
            )
            .unwrap();
            let w = write(&target, &m, &data, &block);
            let tasks = ChunkGrid::regular(&shape, &block).num_chunks();
            let started = Instant::now();
            let base = status("VmRSS:");
            reset_peak();
            if policy.is_some() {
                target
                    .finalize(&DatasetMeta {
                        arrays: vec![m.clone()],
                        attrs: Default::default(),
                    })
                    .unwrap();
            }
            let tidy = started.elapsed().as_secs_f64();
            let tidy_mem = status("VmHWM:").saturating_sub(base) >> 20;
            let uri = if policy.is_some() {
                uri.to_string()
            } else {
                target.staging().join("tas").display().to_string()
            };
            let probe = open_and_probe(&uri);
            let read = read_all(&uri, &shape);
            println!(
                "| {tasks} | {} | {w:.2} | {tidy:.2} | {tidy_mem} | {} | {} | {probe:.3} | {read:.2} |",
                policy.map_or("none".to_string(), |p| format!("{p:?}")),
                fragment_count(&uri),
                du(std::path::Path::new(&uri)) >> 20
            );
        }
    }
}

#[test]
#[ignore]
fn memory_of_one_call() {
    tune_allocator();
    println!(
        "| shape | tiles | write peak MiB | write model MiB | read peak MiB | read model MiB |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for (shape, tiles) in [
        ([48u64, 720, 1440], [48u64, 24, 24]),
        ([48, 721, 1440], [48, 24, 24]),
        ([48, 720, 1440], [1, 720, 1440]),
        ([48, 721, 1441], [8, 720, 1440]),
        ([4, 24, 48], [4, 24, 24]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let uri = dir.path().join("a.tdb");
        let m = meta(&shape, &tiles);
        let target = TileDbTarget::create(uri.to_str().unwrap(), Default::default()).unwrap();
        let array = target.create_array(&m).unwrap();
        // Random data: incompressible, the worst case for filtered copies.
        let data = common::random_bytes(m.num_bytes() as usize, 3);
        let full = Region::full(&shape);
        let base = status("VmRSS:");
        reset_peak();
        array.write_region(&full, &data).unwrap();
        let w = status("VmHWM:").saturating_sub(base);
        drop(data);
        let mut out = vec![1u8; m.num_bytes() as usize];
        let base = status("VmRSS:");
        reset_peak();
        array.read_region(&full, &mut out).unwrap();
        let r = status("VmHWM:").saturating_sub(base);
        println!(
            "| {shape:?} | {tiles:?} | {} | {} | {} | {} |",
            w >> 20,
            array.write_overhead() >> 20,
            r >> 20,
            array.read_overhead() >> 20
        );
    }
}
