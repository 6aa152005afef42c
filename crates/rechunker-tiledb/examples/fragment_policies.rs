//! Measures the fragment policies behind the adapter's default: writes a 190 MiB array in N
//! tasks (one fragment each), then leaves the fragments, consolidates only commits and fragment
//! metadata, or consolidates everything; prints write, tidy and read times, the tidy's peak
//! memory, fragment count and size as a Markdown table. Timings, not a test: run it alone with
//! `cargo run -p rechunker-tiledb --release --example fragment_policies`.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/memory.rs"]
mod memory;

use rechunker_core::{ArrayMeta, ChunkGrid, DataType, DatasetMeta, DatasetTarget, Region};
use rechunker_tiledb::{fragment_count, Fragments, TileDbSource, TileDbTarget, TileDbWriteOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

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

/// Runs `work(block)` for every block of `blocks` on two threads.
fn on_two_threads(blocks: &ChunkGrid, work: impl Fn(Region) + Sync) {
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= blocks.num_chunks() {
                    break;
                }
                work(blocks.chunk_region_linear(b));
            });
        }
    });
}

/// Writes `data` in blocks of `block` (whole tiles) on two threads; returns seconds.
fn write(target: &TileDbTarget, meta: &ArrayMeta, data: &[u8], block: &[u64]) -> f64 {
    let array = target.create_array(meta).unwrap();
    let started = Instant::now();
    on_two_threads(&ChunkGrid::regular(&meta.shape(), block), |region| {
        let bytes = common::extract(data, &meta.shape(), &region, 4);
        array.write_region(&region, &bytes).unwrap();
    });
    started.elapsed().as_secs_f64()
}

/// Reads the whole array in time-series blocks on two threads; returns seconds.
fn read_all(uri: &str, shape: &[u64]) -> f64 {
    let started = Instant::now();
    let source = TileDbSource::open(uri).unwrap();
    let array = source.array("tas").unwrap();
    on_two_threads(&ChunkGrid::regular(shape, &[shape[0], 96, 96]), |region| {
        let mut out = vec![0u8; region.num_elements() as usize * 4];
        array.read(&region, &mut out).unwrap();
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

fn main() {
    memory::tune_allocator();
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
            let tidy_mem = memory::peak_beyond_start(|| {
                if policy.is_some() {
                    target
                        .finalize(&DatasetMeta {
                            arrays: vec![m.clone()],
                            attrs: Default::default(),
                        })
                        .unwrap();
                }
            }) >> 20;
            let tidy = started.elapsed().as_secs_f64();
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
