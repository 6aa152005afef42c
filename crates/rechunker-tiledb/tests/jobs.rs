//! Whole jobs through the core's planner and executor: TileDB (fixtures written by tiledb-py)
//! into TileDB with new tiles, with both fragment policies, and parallel reads of one array.

mod common;

use rechunker_core::executor::{Executor, ExecutorOptions, NoProgress};
use rechunker_core::job::{self, JobOptions};
use rechunker_core::planner::CostModel;
use rechunker_core::scratch::{LocalScratch, ScratchCodec};
use rechunker_core::{DatasetSource, Region};
use rechunker_tiledb::{fragment_count, Fragments, TileDbSource, TileDbTarget, TileDbWriteOptions};
use std::sync::Arc;

fn rechunk(src: &str, dst: &str, chunks: &str, fragments: Fragments, max_mem: u64) -> u64 {
    let source = TileDbSource::open(src).unwrap();
    let target = TileDbTarget::create(
        dst,
        TileDbWriteOptions {
            fragments,
            ..Default::default()
        },
    )
    .unwrap();
    let options = JobOptions {
        chunks: chunks.parse().unwrap(),
        max_mem,
        memory_reserve: 16 << 20,
        threads: 2,
        min_io: 1 << 20,
        cost: CostModel::default(),
    };
    let plan = job::plan_dataset(&source, &target, &options).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let executor = Executor::new(
        ExecutorOptions {
            threads: 2,
            task_memory: max_mem - (16 << 20),
            codec: ScratchCodec::Lz4,
            fail_task: None,
        },
        Arc::new(LocalScratch::open(scratch.path()).unwrap()),
        Arc::new(NoProgress),
    )
    .unwrap();
    let report = job::run_dataset(&plan, &source, &target, &executor, false).unwrap();
    report.tasks_run()
}

fn same_values(a: &TileDbSource, b: &TileDbSource) {
    for m in &a.meta().arrays {
        let n = b
            .meta()
            .array(&m.name)
            .unwrap_or_else(|| panic!("no {}", m.name));
        assert_eq!((&n.dims, n.dtype, n.shape()), (&m.dims, m.dtype, m.shape()));
        let mut x = vec![0u8; m.num_bytes() as usize];
        let mut y = vec![0u8; m.num_bytes() as usize];
        a.array(&m.name)
            .unwrap()
            .read(&Region::full(&m.shape()), &mut x)
            .unwrap();
        b.array(&m.name)
            .unwrap()
            .read(&Region::full(&m.shape()), &mut y)
            .unwrap();
        assert!(x == y, "{} differs", m.name);
    }
}

#[test]
fn tiledb_py_arrays_into_new_tiles() {
    let dir = tempfile::tempdir().unwrap();
    for (fixture, chunks) in [
        ("multi.tdb", "time=40,y=2"),
        ("group.tdb", "time=10,lat=2,lon=2"),
        ("from_numpy.tdb", "__dim_0=7,__dim_1=1"),
    ] {
        for fragments in [Fragments::Keep, Fragments::Consolidate] {
            let src = common::fixtures().join(fixture);
            let dst = dir.path().join(format!("{fixture}.{fragments:?}"));
            let dst = dst.to_str().unwrap();
            let tasks = rechunk(src.to_str().unwrap(), dst, chunks, fragments, 256 << 20);
            assert!(tasks >= 1);
            let a = TileDbSource::open(src.to_str().unwrap()).unwrap();
            let b = TileDbSource::open(dst).unwrap();
            same_values(&a, &b);
            assert_eq!(a.meta().attrs, b.meta().attrs, "{fixture}");
            for m in &b.meta().arrays {
                let old = a.meta().array(&m.name).unwrap();
                assert_eq!(m.attrs, old.attrs, "{fixture} {}", m.name);
                let expected = chunks
                    .parse::<rechunker_core::ChunkSpec>()
                    .unwrap()
                    .resolve(old, "x")
                    .unwrap();
                if !old.is_coordinate() {
                    assert_eq!(
                        m.grid.nominal_chunk_shape(),
                        expected,
                        "{fixture} {}",
                        m.name
                    );
                }
            }
            if fragments == Fragments::Consolidate && fixture == "multi.tdb" {
                // Several variables: a group of one array per variable, one fragment each.
                for v in ["temp", "qc", "count"] {
                    assert_eq!(fragment_count(&format!("{dst}/{v}")), 1);
                }
            }
        }
    }
}

#[test]
fn parallel_reads_of_one_array() {
    let src = common::fixtures().join("multi.tdb");
    let s = TileDbSource::open(src.to_str().unwrap()).unwrap();
    let temp = s.array("temp").unwrap();
    let mut whole = vec![0u8; 40 * 12 * 4];
    temp.read(&Region::full(&[40, 12]), &mut whole).unwrap();
    std::thread::scope(|scope| {
        for t in 0..8u64 {
            let (temp, whole) = (&temp, &whole);
            scope.spawn(move || {
                for k in 0..50u64 {
                    let start = [(t * 7 + k) % 35, (k * 3) % 10];
                    let region = Region::new(start.to_vec(), vec![5, 2]);
                    let mut out = vec![0u8; 40];
                    temp.read(&region, &mut out).unwrap();
                    assert_eq!(out, common::extract(whole, &[40, 12], &region, 4));
                }
            });
        }
    });
}
