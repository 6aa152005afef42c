//! Cases about array data: types, edges, regions, threads, dimensions, lazy creation.

use super::helpers::*;
use super::{shared, sub, Capabilities, Factory};
use crate::region::Region;
use crate::{Attributes, ChunkGrid, DatasetMeta};

/// One array of every claimed type, with edge chunks, written and read back bit for bit.
pub fn round_trip_every_dtype(factory: &dyn Factory, caps: &Capabilities) {
    let _guard = shared();
    let arrays = (caps.dtypes.iter().enumerate())
        .map(|(i, &dt)| {
            let mut m = array(&format!("v_{}", dt.name()), dt, &[7, 13], &[3, 4]);
            m.dims = vec!["y".into(), "x".into()];
            // Different chunkings, so no adapter gets by on one layout.
            m.grid = ChunkGrid::regular(&[7, 13], &[3, 4 + i as u64 % 3]);
            m
        })
        .collect();
    round_trip(factory, "dtypes", arrays, 1);
}

/// Shapes that are no multiple of their chunks, and a chunk larger than its array; every write
/// unit read back on its own.
pub fn partial_edge_chunks(factory: &dyn Factory, caps: &Capabilities) {
    let _guard = shared();
    let dt = pick_dtype(caps);
    let mut arrays = vec![
        array("line", dt, &[11], &[4]),
        array("short", dt, &[3], &[8]),
    ];
    if caps.max_dims >= 3 {
        arrays.push(array("cube", dt, &[7, 10, 9], &[2, 4, 5]));
    } else if caps.max_dims >= 2 {
        arrays.push(array("plane", dt, &[10, 9], &[4, 5]));
    }
    let (source, dataset, data) = round_trip(factory, "edges", arrays, 1);
    let target = factory
        .create("edges-grid")
        .expect("a target for write grids");
    for (meta, bytes) in dataset.arrays.iter().zip(&data) {
        let array = open_array(source.as_ref(), &meta.name);
        for unit in units(target.as_ref(), meta) {
            let got = read(array.as_ref(), &unit);
            let want = sub(bytes, &meta.shape(), &unit, meta.item_size());
            assert_same(
                &format!("`{}` {unit}", meta.name),
                meta.item_size(),
                &got,
                &want,
            );
        }
    }
}

/// Boxes that start and end inside chunks, single elements, whole rows and columns.
pub fn regions_crossing_chunks(factory: &dyn Factory, caps: &Capabilities) {
    let _guard = shared();
    let dt = pick_dtype(caps);
    let meta = array("grid", dt, &[13, 17], &[4, 5]);
    let (source, _, data) = round_trip(factory, "regions", vec![meta.clone()], 1);
    let array = open_array(source.as_ref(), "grid");
    let shape = meta.shape();
    let mut regions = vec![
        Region::new(vec![3, 4], vec![2, 2]),
        Region::new(vec![1, 2], vec![11, 14]),
        Region::new(vec![12, 16], vec![1, 1]),
        Region::new(vec![0, 0], vec![1, 1]),
        Region::new(vec![5, 0], vec![1, 17]),
        Region::new(vec![0, 9], vec![13, 1]),
        Region::new(vec![4, 5], vec![4, 5]),
    ];
    for seed in 0..16u64 {
        let start: Vec<u64> = shape.iter().map(|&n| (seed * 7 + 1) % n).collect();
        let size = (shape.iter().zip(&start))
            .map(|(&n, &s)| ((seed * 5 + 2) % (n - s)).max(1))
            .collect();
        regions.push(Region::new(start, size));
    }
    for r in regions {
        let want = sub(&data[0], &shape, &r, meta.item_size());
        assert_same(
            &format!("`grid` {r}"),
            meta.item_size(),
            &read(array.as_ref(), &r),
            &want,
        );
    }
}

/// Eight threads read overlapping boxes of one array at once, through one handle.
pub fn concurrent_reads(factory: &dyn Factory, caps: &Capabilities) {
    let _guard = shared();
    let dt = pick_dtype(caps);
    let meta = array("shared", dt, &[40, 30], &[7, 6]);
    let (source, _, data) = round_trip(factory, "reads", vec![meta.clone()], 1);
    let array = open_array(source.as_ref(), "shared");
    let blocks = ChunkGrid::regular(&[40, 30], &[9, 11]);
    let regions: Vec<Region> = (0..blocks.num_chunks())
        .map(|i| blocks.chunk_region_linear(i))
        .chain([
            Region::full(&[40, 30]),
            Region::new(vec![3, 2], vec![30, 25]),
        ])
        .collect();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (array, regions, data, meta) = (&array, &regions, &data[0], &meta);
            s.spawn(move || {
                for r in regions.iter().cycle().skip(t).take(regions.len() * 3) {
                    let want = sub(data, &meta.shape(), r, meta.item_size());
                    let got = read(array.as_ref(), r);
                    assert_same(&format!("thread {t}: {r}"), meta.item_size(), &got, &want);
                }
            });
        }
    });
}

/// Every write unit of two arrays written from eight threads at once.
pub fn concurrent_writes(factory: &dyn Factory, caps: &Capabilities) {
    if !caps.concurrent_writers {
        return skipped("concurrent_writes", "concurrent writers");
    }
    let _guard = shared();
    let dt = pick_dtype(caps);
    let arrays = vec![
        array("first", dt, &[41, 30], &[5, 4]),
        array("second", caps.dtypes[0], &[23, 9], &[2, 3]),
    ];
    round_trip(factory, "writers", arrays, 8);
}

/// The most dimensions claimed, and a scalar when claimed.
pub fn most_dimensions(factory: &dyn Factory, caps: &Capabilities) {
    let _guard = shared();
    let dt = pick_dtype(caps);
    let n = caps.max_dims;
    let shape: Vec<u64> = (0..n as u64).map(|d| 2 + d % 2).collect();
    let mut arrays = vec![array("many", dt, &shape, &vec![2; n])];
    if caps.scalars {
        arrays.push(array("scalar", dt, &[], &[]));
    }
    round_trip(factory, "ndim", arrays, 1);
}

/// One dimension name with two lengths in one dataset: kept when claimed, else refused with an
/// error (never a file that disagrees with itself).
pub fn dims_of_different_lengths(factory: &dyn Factory, caps: &Capabilities) {
    let _guard = shared();
    let dt = pick_dtype(caps);
    let mut a = array("a", dt, &[5], &[2]);
    let mut b = array("b", dt, &[8], &[3]);
    a.dims = vec!["x".into()];
    b.dims = vec!["x".into()];
    if caps.dims_of_different_lengths {
        round_trip(factory, "dimlen", vec![a, b], 1);
        return;
    }
    let dataset = DatasetMeta {
        arrays: vec![a, b],
        attrs: Attributes::default(),
    };
    let target = factory.create("dimlen").expect("a target");
    // Refused at whichever step the format finds out (NetCDF: defining the dimensions).
    let refusal = target
        .prepare(&dataset)
        .err()
        .or_else(|| (dataset.arrays.iter()).find_map(|m| target.create_array(m).err()))
        .or_else(|| target.finalize(&dataset).err());
    if let Some(e) = &refusal {
        eprintln!("conformance: refused as expected: {e}");
    }
    let refused = refusal.is_some();
    assert!(
        refused,
        "{}: a dimension `x` of lengths 5 and 8 was accepted",
        target.location()
    );
}

/// Making a target, and asking it for write grids and overheads, stores nothing: only
/// creating an array may.
pub fn nothing_stored_before_first_array(factory: &dyn Factory, caps: &Capabilities) {
    if !caps.lazy_create {
        return skipped("nothing_stored_before_first_array", "lazy creation");
    }
    let _guard = shared();
    let meta = array("lazy", pick_dtype(caps), &[10], &[4]);
    let before = factory
        .stored("lazy")
        .expect("the factory can list what is stored");
    let target = factory.create("lazy").expect("a target");
    let _ = target.write_grid(&meta).expect("a write grid");
    let _ = target.write_overhead(&meta);
    let after = factory.stored("lazy").expect("a listing");
    assert_eq!(
        after,
        before,
        "{}: stored before any array",
        target.location()
    );
    // And creating one does store something (else the listing proves nothing).
    drop(target.create_array(&meta).expect("the array"));
    target
        .finalize(&DatasetMeta {
            arrays: vec![meta],
            attrs: Attributes::default(),
        })
        .expect("finalize");
    let done = factory.stored("lazy").expect("a listing");
    assert_ne!(
        done, before,
        "the listing shows nothing even after finalize"
    );
}

/// A task's chunks spread over threads: the whole array written by one
/// `write_region_parallel` and read back by `read_region_parallel`, three threads each, inside
/// a rayon pool as the executor calls them; the bytes equal one-thread reads.
pub fn spread_over_threads(factory: &dyn Factory, caps: &Capabilities) {
    let _guard = shared();
    let dt = pick_dtype(caps);
    let meta = if caps.max_dims >= 3 {
        array("spread", dt, &[11, 13, 6], &[2, 3, 4])
    } else {
        array("spread", dt, &[29, 18], &[3, 4])
    };
    let shape = meta.shape();
    let data = super::data_for(&meta, 7);
    let dataset = DatasetMeta {
        arrays: vec![meta.clone()],
        attrs: Attributes::default(),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("a pool of three threads");
    let target = factory.create("spread").expect("a target");
    let at = target.location().to_string();
    target
        .prepare(&dataset)
        .unwrap_or_else(|e| panic!("{at}: prepare: {e}"));
    let written = target
        .create_array(&meta)
        .unwrap_or_else(|e| panic!("{at}: create `spread`: {e}"));
    pool.install(|| written.write_region_parallel(&Region::full(&shape), &data, 3))
        .unwrap_or_else(|e| panic!("{at}: write `spread` on 3 threads: {e}"));
    drop(written);
    target
        .finalize(&dataset)
        .unwrap_or_else(|e| panic!("{at}: finalize: {e}"));
    let source = open(factory, "spread");
    check_meta(source.as_ref(), &meta);
    let array = open_array(source.as_ref(), "spread");
    let mut regions = vec![Region::full(&shape)];
    // Boxes that start and end inside chunks, in every dimension.
    regions.push(Region::new(
        shape.iter().map(|&n| n / 5).collect(),
        shape.iter().map(|&n| n - n / 5 - n / 7).collect(),
    ));
    for r in regions {
        let want = sub(&data, &shape, &r, meta.item_size());
        let mut got = vec![0xA5; want.len()];
        pool.install(|| array.read_region_parallel(&r, &mut got, 3))
            .unwrap_or_else(|e| panic!("read `spread` {r} on 3 threads: {e}"));
        assert_same(
            &format!("`spread` {r} on 3 threads"),
            meta.item_size(),
            &got,
            &want,
        );
        assert_same(
            &format!("`spread` {r} on 1 thread"),
            meta.item_size(),
            &read(array.as_ref(), &r),
            &want,
        );
    }
}
