//! Whole rechunks through the core's planner and executor (2 threads): a multi-file NetCDF
//! archive into NetCDF-4 and NetCDF-3 targets, with and without the define-first hook, and a
//! run that dies half-way and is resumed.

// Shared with the other libhdf5-based crate: one copy, beside the code both use.
#[path = "../../rechunker-h5/test-support/common.rs"]
mod common;

use common::{fixtures, read_all};
use rechunker_core::executor::{Executor, ExecutorOptions, NoProgress};
use rechunker_core::job::{plan_dataset, run_dataset, JobOptions};
use rechunker_core::scratch::LocalScratch;
use rechunker_core::{ChunkGrid, DatasetSource};
use rechunker_netcdf::{NcCodec, NetcdfFormat, NetcdfSource, NetcdfTarget, NetcdfWriteOptions};
use std::path::Path;
use std::sync::Arc;

fn source() -> NetcdfSource {
    let dir = fixtures("netcdf").join("archive");
    let paths = ["part_a.nc", "part_b.nc", "part_c.nc"].map(|f| dir.join(f));
    NetcdfSource::open_many(&paths, "time").unwrap()
}

fn options(max_mem: u64) -> JobOptions {
    JobOptions {
        chunks: "time=-1,lat=2,lon=3".parse().unwrap(),
        max_mem,
        memory_reserve: 8 << 20,
        threads: 2,
        min_io: 1 << 10,
        cost: Default::default(),
    }
}

fn executor(scratch: &Path, options: &JobOptions, fail: Option<(usize, u64)>) -> Executor {
    Executor::new(
        ExecutorOptions {
            threads: 2,
            task_memory: options.task_memory().unwrap(),
            codec: Default::default(),
            fail_task: fail,
        },
        Arc::new(LocalScratch::open(scratch).unwrap()),
        Arc::new(NoProgress),
    )
    .unwrap()
}

fn same_data(a: &dyn DatasetSource, b: &dyn DatasetSource) {
    for m in &a.meta().arrays {
        let x = read_all(a.open_array(&m.name).unwrap().as_ref());
        let y = read_all(b.open_array(&m.name).unwrap().as_ref());
        assert_eq!(x, y, "{}", m.name);
    }
}

#[test]
fn archive_to_netcdf() {
    let dir = tempfile::tempdir().unwrap();
    let src = source();
    for (format, prepare) in [
        (NetcdfFormat::Netcdf4, true),
        (NetcdfFormat::Netcdf4, false),
        (NetcdfFormat::Offset64, true),
    ] {
        let out = dir.path().join(format!("out-{format}-{prepare}.nc"));
        let target = NetcdfTarget::create(
            &out,
            NetcdfWriteOptions {
                format: Some(format),
                codec: Some(if format.is_hdf5() {
                    NcCodec::Deflate { level: 1 }
                } else {
                    NcCodec::None
                }),
                // No unlimited dimensions in the options: the arrays' metadata carry them.
                ..Default::default()
            },
        )
        .unwrap();
        let opts = options(64 << 20);
        let plan = plan_dataset(&src, &target, &opts).unwrap();
        assert_eq!(
            plan.target_meta().array("tas").unwrap().unlimited_dims,
            ["time"]
        );
        if prepare {
            target.prepare(&plan.target_meta()).unwrap();
        }
        let scratch = dir.path().join(format!("scratch-{format}-{prepare}"));
        run_dataset(
            &plan,
            &src,
            &target,
            &executor(&scratch, &opts, None),
            false,
        )
        .unwrap();
        let back = NetcdfSource::open(&out).unwrap();
        assert_eq!(back.unlimited_dims(), ["time"]);
        let tas = back.meta().array("tas").unwrap();
        if format.is_hdf5() {
            assert_eq!(tas.grid, ChunkGrid::regular(&[12, 3, 4], &[12, 2, 3]));
            assert_eq!(tas.codecs, ["shuffle", "zlib(1)"]);
        }
        assert_eq!(tas.attrs.get("units").unwrap().value, "K");
        same_data(&src, &back);
    }
}

#[test]
fn interrupted_rechunk_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let src = source();
    let out = dir.path().join("resumed.nc");
    let scratch = dir.path().join("scratch");
    let write_options = |resume| NetcdfWriteOptions {
        resume,
        unlimited_dims: vec!["time".into()],
        ..Default::default()
    };
    let opts = options(64 << 20);
    let target = NetcdfTarget::create(&out, write_options(false)).unwrap();
    let plan = plan_dataset(&src, &target, &opts).unwrap();
    target.prepare(&plan.target_meta()).unwrap();
    let failed = run_dataset(
        &plan,
        &src,
        &target,
        &executor(&scratch, &opts, Some((0, 0))),
        false,
    );
    assert!(failed.is_err());
    drop(target);
    assert!(
        !out.exists(),
        "a failed run leaves nothing that looks complete"
    );
    let target = NetcdfTarget::create(&out, write_options(true)).unwrap();
    target.prepare(&plan.target_meta()).unwrap();
    run_dataset(&plan, &src, &target, &executor(&scratch, &opts, None), true).unwrap();
    same_data(&src, &NetcdfSource::open(&out).unwrap());
}
