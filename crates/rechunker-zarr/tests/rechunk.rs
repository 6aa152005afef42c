//! End to end through the core: plan and run a rechunk from Zarr v2 into Zarr v3 (and back)
//! with the two-stage executor, then compare every value.

use rechunker_core::executor::{Executor, ExecutorOptions, NoProgress};
use rechunker_core::job::{plan_dataset, run_dataset, JobOptions};
use rechunker_core::scratch::LocalScratch;
use rechunker_core::{
    ArrayMeta, AttrValue, Attributes, ChunkGrid, DataType, DatasetMeta, DatasetSource,
    DatasetTarget, Region, Scalar,
};
use rechunker_zarr::{ZarrFormat, ZarrSource, ZarrTarget, ZarrWriteOptions};
use serde_json::json;
use std::sync::Arc;

fn write_source(uri: &str) -> Vec<f32> {
    let target = ZarrTarget::create(
        uri,
        ZarrWriteOptions {
            zarr_format: Some(ZarrFormat::V2),
            codec: Some("blosc:lz4:5:shuffle".parse().unwrap()),
            shards: None,
        },
    )
    .unwrap();
    let mut attrs = Attributes::default();
    attrs.insert("units", AttrValue::json(json!("K")));
    let tas = ArrayMeta {
        fill_value: Some(Scalar::Float(f64::NAN)),
        attrs,
        ..ArrayMeta::regular(
            "tas",
            &["time", "lat", "lon"],
            DataType::Float32,
            &[30, 17, 23],
            &[1, 17, 23],
        )
    };
    let time = ArrayMeta::regular("time", &["time"], DataType::Int64, &[30], &[30]);
    let values: Vec<f32> = (0..30 * 17 * 23).map(|i| i as f32 * 0.25).collect();
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let a = target.create_array(&tas).unwrap();
    for t in 0..30u64 {
        let n = 17 * 23 * 4;
        a.write_region(
            &Region::new(vec![t, 0, 0], vec![1, 17, 23]),
            &bytes[t as usize * n..(t as usize + 1) * n],
        )
        .unwrap();
    }
    let times: Vec<u8> = (0..30i64).flat_map(|v| (v * 3600).to_ne_bytes()).collect();
    target
        .create_array(&time)
        .unwrap()
        .write_region(&Region::full(&[30]), &times)
        .unwrap();
    let mut dataset_attrs = Attributes::default();
    dataset_attrs.insert("title", AttrValue::json(json!("era")));
    target
        .finalize(&DatasetMeta {
            arrays: vec![tas, time],
            attrs: dataset_attrs,
        })
        .unwrap();
    values
}

fn rechunk(src: &str, dst: &str, scratch: &std::path::Path, format: ZarrFormat) {
    let source = ZarrSource::open(src).unwrap();
    let target = ZarrTarget::create(
        dst,
        ZarrWriteOptions {
            zarr_format: Some(format),
            codec: Some("zstd:1".parse().unwrap()),
            shards: None,
        },
    )
    .unwrap();
    let options = JobOptions {
        chunks: "time=30,lat=5,lon=6".parse().unwrap(),
        max_mem: 64 << 20,
        memory_reserve: 16 << 20,
        threads: 2,
        min_io: 1 << 10,
        cost: Default::default(),
    };
    let plan = plan_dataset(&source, &target, &options).unwrap();
    let executor = Executor::new(
        ExecutorOptions {
            threads: 2,
            task_memory: options.task_memory().unwrap(),
            codec: Default::default(),
            fail_task: None,
        },
        Arc::new(LocalScratch::open(scratch).unwrap()),
        Arc::new(NoProgress),
    )
    .unwrap();
    run_dataset(&plan, &source, &target, &executor, false).unwrap();
}

#[test]
fn rechunk_v2_to_v3_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("src.zarr").display().to_string();
    let v3 = dir.path().join("dst.zarr").display().to_string();
    let back = dir.path().join("back.zarr").display().to_string();
    let values = write_source(&v2);
    rechunk(&v2, &v3, &dir.path().join("scratch1"), ZarrFormat::V3);
    rechunk(&v3, &back, &dir.path().join("scratch2"), ZarrFormat::V2);
    for uri in [&v3, &back] {
        let out = ZarrSource::open(uri).unwrap();
        assert_eq!(out.meta().attrs.get("title").unwrap().value, json!("era"));
        let tas = out.meta().array("tas").unwrap();
        assert_eq!(tas.grid, ChunkGrid::regular(&[30, 17, 23], &[30, 5, 6]));
        assert_eq!(tas.dims, ["time", "lat", "lon"]);
        assert_eq!(tas.attrs.get("units").unwrap().value, json!("K"));
        let mut bytes = vec![0u8; values.len() * 4];
        out.open_array("tas")
            .unwrap()
            .read_region(&Region::full(&[30, 17, 23]), &mut bytes)
            .unwrap();
        let got: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, values, "{uri}");
        let mut times = vec![0u8; 30 * 8];
        out.open_array("time")
            .unwrap()
            .read_region(&Region::full(&[30]), &mut times)
            .unwrap();
        assert_eq!(i64::from_ne_bytes(times[8..16].try_into().unwrap()), 3600);
    }
}
