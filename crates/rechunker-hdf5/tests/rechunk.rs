//! Whole rechunks through the core's planner and executor (2 threads): an h5py file (gzip,
//! zstd, contiguous, big-endian, fletcher32, bool datasets) into HDF5 with zstd and gzip.

// Shared with the other libhdf5-based crate: one copy, beside the code both use.
#[path = "../../rechunker-h5/test-support/common.rs"]
mod common;

use common::{fixtures, read_all};
use rechunker_core::executor::{Executor, ExecutorOptions, NoProgress};
use rechunker_core::job::{plan_dataset, run_dataset, JobOptions};
use rechunker_core::scratch::LocalScratch;
use rechunker_core::{ChunkGrid, DatasetSource};
use rechunker_hdf5::{Hdf5Source, Hdf5Target, Hdf5WriteOptions};
use std::sync::Arc;

#[test]
fn h5py_file_to_hdf5() {
    let dir = tempfile::tempdir().unwrap();
    let src = Hdf5Source::open(fixtures("hdf5").join("h5py_types.h5")).unwrap();
    for codec in ["zstd:1", "gzip:1"] {
        let out = dir.path().join(format!("out-{codec}.h5"));
        let target = Hdf5Target::create(
            &out,
            Hdf5WriteOptions {
                codec: Some(codec.parse().unwrap()),
                ..Default::default()
            },
        )
        .unwrap();
        let options = JobOptions {
            chunks: "time=-1,y=2".parse().unwrap(),
            max_mem: 64 << 20,
            memory_reserve: 8 << 20,
            threads: 2,
            min_io: 1 << 10,
            cost: Default::default(),
        };
        let plan = plan_dataset(&src, &target, &options).unwrap();
        let executor = Executor::new(
            ExecutorOptions {
                threads: 2,
                task_memory: options.task_memory().unwrap(),
                codec: Default::default(),
                fail_task: None,
            },
            Arc::new(LocalScratch::open(dir.path().join(format!("scratch-{codec}"))).unwrap()),
            Arc::new(NoProgress),
        )
        .unwrap();
        run_dataset(&plan, &src, &target, &executor, false).unwrap();
        let back = Hdf5Source::open(&out).unwrap();
        // Named dimensions take the new chunks, the others keep the source's.
        let v = back.meta().array("gzip/v_f4").unwrap();
        assert_eq!(v.grid, ChunkGrid::regular(&[8, 6, 5], &[8, 2, 5]));
        assert_eq!(v.dims[..2], ["time", "y"]);
        let tas = back.meta().array("zstd/tas").unwrap();
        assert_eq!(tas.grid, ChunkGrid::regular(&[8, 6, 5], &[8, 3, 5]));
        assert_eq!(tas.dims[0], "time");
        for m in &src.meta().arrays {
            let a = read_all(src.open_array(&m.name).unwrap().as_ref());
            let b = read_all(back.open_array(&m.name).unwrap().as_ref());
            assert_eq!(a, b, "{}", m.name);
            assert_eq!(back.meta().array(&m.name).unwrap().dtype, m.dtype);
        }
    }
}
