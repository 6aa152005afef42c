//! Helpers shared by the executor tests that run plans through a local scratch.

// Each test crate uses some of these.
#![allow(dead_code)]

use rechunker_core::grid::ChunkGrid;
use rechunker_core::meta::ArrayMeta;
use rechunker_core::planner::{self, CostModel, Plan, PlanRequest};
use rechunker_core::DataType;
use std::path::{Path, PathBuf};

/// Every file below `dir`, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A request to copy `source` chunks to `target` chunks, `budget` bytes a task, two tasks at
/// once on a thread each, adapters with no overheads and the default costs.
pub fn request(item_size: u64, source: ChunkGrid, target: ChunkGrid, budget: u64) -> PlanRequest {
    PlanRequest {
        item_size,
        source,
        target,
        task_budget: budget,
        source_read_overhead: 0,
        target_write_overhead: 0,
        source_prefetch: 0,
        min_io: 0,
        parallelism: 2,
        task_threads: 1,
        cost: CostModel::default(),
    }
}

/// A two-stage plan of float32 `shape` from `source` chunks to `target` chunks.
pub fn two_stage(shape: &[u64], source: &[u64], target: &[u64], budget: u64) -> Plan {
    let plan = planner::plan(&request(
        4,
        ChunkGrid::regular(shape, source),
        ChunkGrid::regular(shape, target),
        budget,
    ))
    .unwrap();
    assert_eq!(plan.stages.len(), 2, "{:#?}", plan.summary());
    plan
}

/// A float32 array `v(t, y, x)` laid out as `grid`.
pub fn float_meta(grid: &ChunkGrid) -> ArrayMeta {
    ArrayMeta::regular(
        "v",
        &["t", "y", "x"],
        DataType::Float32,
        &grid.shape(),
        &grid.nominal_chunk_shape(),
    )
}

/// Deterministic pseudo-random bytes (xorshift), so a failing case is reproduced from its seed.
pub fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    seed |= 1;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}
