//! The memory the adapter tells the planner one call needs beyond its buffers
//! ([`ChunkedArray::read_overhead`](rechunker_core::ChunkedArray::read_overhead) and
//! `write_overhead`) bounds what a call really holds: the peak resident memory of one whole-array
//! write_region / read_region is measured and compared with it. This file holds one test only,
//! so that nothing else moves this process's memory meanwhile. The time and size of the fragment
//! policies are measured by `cargo run -p rechunker-tiledb --example fragment_policies`.

#[path = "common/memory.rs"]
mod memory;

use rechunker_core::{ArrayMeta, DataType, DatasetTarget, Region};
use rechunker_tiledb::TileDbTarget;

/// Measurement noise the bound allows for: a quarter of the model (the allocator's and
/// libtiledb's thread caches vary from run to run; the worst seen here was 101% of the model,
/// on a busy machine).
fn with_noise(model: u64) -> u64 {
    model + model / 4
}

/// `n` incompressible bytes (xorshift, eight at a time: quick in a debug build).
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = vec![0u8; n];
    for word in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        word.copy_from_slice(&x.to_ne_bytes()[..word.len()]);
    }
    out
}

#[test]
fn one_call_holds_no_more_than_its_reported_overhead() {
    memory::tune_allocator();
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
        let m = ArrayMeta::regular(
            "tas",
            &["time", "lat", "lon"],
            DataType::Float32,
            &shape,
            &tiles,
        );
        let target = TileDbTarget::create(uri.to_str().unwrap(), Default::default()).unwrap();
        let array = target.create_array(&m).unwrap();
        // Random data: incompressible, the worst case for filtered copies.
        let data = random_bytes(m.num_bytes() as usize);
        let full = Region::full(&shape);
        let written = memory::peak_beyond_start(|| array.write_region(&full, &data).unwrap());
        drop(data);
        let mut out = vec![1u8; m.num_bytes() as usize];
        let read = memory::peak_beyond_start(|| array.read_region(&full, &mut out).unwrap());
        let (write_model, read_model) = (array.write_overhead(), array.read_overhead());
        println!(
            "| {shape:?} | {tiles:?} | {} | {} | {} | {} |",
            written >> 20,
            write_model >> 20,
            read >> 20,
            read_model >> 20
        );
        assert!(
            written <= with_noise(write_model),
            "{shape:?} in tiles {tiles:?}: a write held {} MiB beyond its buffer; the planner is told {} MiB",
            written >> 20,
            write_model >> 20
        );
        assert!(
            read <= with_noise(read_model),
            "{shape:?} in tiles {tiles:?}: a read held {} MiB beyond its buffer; the planner is told {} MiB",
            read >> 20,
            read_model >> 20
        );
    }
}
