//! What the cases share: making arrays, writing and reopening datasets, comparing bytes.

use super::{data_for, sub, Capabilities, Factory};
use crate::region::Region;
use crate::{
    ArrayMeta, Attributes, ChunkedArray, DataType, DatasetMeta, DatasetSource, DatasetTarget,
    Scalar,
};
use std::sync::Arc;

/// An array with dimensions `NAME_dK` (so arrays never disagree on a dimension by accident).
pub(super) fn array(name: &str, dtype: DataType, shape: &[u64], chunks: &[u64]) -> ArrayMeta {
    let dims: Vec<String> = (0..shape.len()).map(|d| format!("{name}_d{d}")).collect();
    let dims: Vec<&str> = dims.iter().map(String::as_str).collect();
    ArrayMeta::regular(name, &dims, dtype, shape, chunks)
}

/// A fill value every type can hold and no [`data_for`] pattern makes by chance often.
pub(super) fn fill_for(dtype: DataType) -> Scalar {
    match dtype {
        DataType::Bool => Scalar::Bool(true),
        DataType::Float32 | DataType::Float64 => Scalar::Float(-9.5),
        DataType::Char => Scalar::UInt(b'*' as u64),
        _ => Scalar::Int(7),
    }
}

/// Write units of `meta` in the target (its write grid), in C order.
pub(super) fn units(target: &dyn DatasetTarget, meta: &ArrayMeta) -> Vec<Region> {
    let grid = target
        .write_grid(meta)
        .unwrap_or_else(|e| panic!("{}: write grid of `{}`: {e}", target.location(), meta.name));
    (0..grid.num_chunks())
        .map(|i| grid.chunk_region_linear(i))
        .collect()
}

/// Creates every array of `dataset` in a fresh target `name`, writes it with `data` (every
/// write unit but those whose index `skip` holds for), and finalizes. Writes happen from
/// `threads` threads when that is more than one.
pub(super) fn write_dataset(
    factory: &dyn Factory,
    name: &str,
    dataset: &DatasetMeta,
    data: &[Vec<u8>],
    threads: usize,
    skip: &dyn Fn(usize) -> bool,
) {
    let target = factory
        .create(name)
        .unwrap_or_else(|e| panic!("{name}: cannot create the target: {e}"));
    let at = target.location().to_string();
    target
        .prepare(dataset)
        .unwrap_or_else(|e| panic!("{at}: prepare: {e}"));
    for (meta, data) in dataset.arrays.iter().zip(data) {
        let array = target
            .create_array(meta)
            .unwrap_or_else(|e| panic!("{at}: create `{}`: {e}", meta.name));
        let todo: Vec<Region> = units(target.as_ref(), meta)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !skip(*i))
            .map(|(_, r)| r)
            .collect();
        let write = |r: &Region| {
            let bytes = sub(data, &meta.shape(), r, meta.item_size());
            array
                .write_region(r, &bytes)
                .unwrap_or_else(|e| panic!("{at}: write `{}` {r}: {e}", meta.name));
        };
        if threads <= 1 {
            // Last unit first: adapters must not assume writes arrive in order.
            todo.iter().rev().for_each(write);
        } else {
            std::thread::scope(|s| {
                for t in 0..threads {
                    let todo = &todo;
                    let write = &write;
                    s.spawn(move || todo.iter().skip(t).step_by(threads).for_each(write));
                }
            });
        }
    }
    target
        .finalize(dataset)
        .unwrap_or_else(|e| panic!("{at}: finalize: {e}"));
}

pub(super) fn open(factory: &dyn Factory, name: &str) -> Box<dyn DatasetSource> {
    factory
        .open(name)
        .unwrap_or_else(|e| panic!("{name}: cannot open what was written: {e}"))
}

pub(super) fn open_array(source: &dyn DatasetSource, name: &str) -> Arc<dyn ChunkedArray> {
    source
        .open_array(name)
        .unwrap_or_else(|e| panic!("{}: open `{name}`: {e}", source.location()))
}

pub(super) fn read(array: &dyn ChunkedArray, r: &Region) -> Vec<u8> {
    // Not zero: a read that leaves bytes out must not pass by luck.
    let mut out = vec![0xA5; r.num_elements() as usize * array.meta().item_size()];
    array
        .read_region(r, &mut out)
        .unwrap_or_else(|e| panic!("read `{}` {r}: {e}", array.meta().name));
    out
}

/// Panics naming the first differing element when `got` is not `want`.
pub(super) fn assert_same(what: &str, item: usize, got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got
        .chunks(item)
        .zip(want.chunks(item))
        .position(|(a, b)| a != b)
    {
        panic!(
            "{what}: element {i} is {:?}, expected {:?}",
            &got[i * item..(i + 1) * item],
            &want[i * item..(i + 1) * item]
        );
    }
}

/// The source's metadata of `written` agrees with it: name, type, shape, dimensions.
pub(super) fn check_meta(source: &dyn DatasetSource, written: &ArrayMeta) {
    let got = source.meta().array(&written.name).unwrap_or_else(|| {
        panic!(
            "{}: no array `{}` among {:?}",
            source.location(),
            written.name,
            source
                .meta()
                .arrays
                .iter()
                .map(|a| &a.name)
                .collect::<Vec<_>>()
        )
    });
    assert_eq!(got.dtype, written.dtype, "dtype of `{}`", written.name);
    assert_eq!(got.shape(), written.shape(), "shape of `{}`", written.name);
    assert_eq!(got.dims, written.dims, "dims of `{}`", written.name);
}

/// Writes `arrays` (whole) as dataset `name`, reopens it and returns it with the data written.
pub(super) fn round_trip(
    factory: &dyn Factory,
    name: &str,
    arrays: Vec<ArrayMeta>,
    threads: usize,
) -> (Box<dyn DatasetSource>, DatasetMeta, Vec<Vec<u8>>) {
    let dataset = DatasetMeta {
        arrays,
        attrs: Attributes::default(),
    };
    let data: Vec<Vec<u8>> = (dataset.arrays.iter().enumerate())
        .map(|(i, m)| data_for(m, i as u64 + 1))
        .collect();
    write_dataset(factory, name, &dataset, &data, threads, &|_| false);
    let source = open(factory, name);
    for (meta, bytes) in dataset.arrays.iter().zip(&data) {
        check_meta(source.as_ref(), meta);
        let array = open_array(source.as_ref(), &meta.name);
        let all = read(array.as_ref(), &Region::full(&meta.shape()));
        assert_same(&meta.name, meta.item_size(), &all, bytes);
    }
    (source, dataset, data)
}

pub(super) fn skipped(case: &str, why: &str) {
    eprintln!("conformance: {case} not run: the adapter does not claim {why}");
}

/// The claimed type with the widest elements: misplaced bytes show most there.
pub(super) fn pick_dtype(caps: &Capabilities) -> DataType {
    *caps
        .dtypes
        .iter()
        .filter(|d| **d != DataType::Bool)
        .max_by_key(|d| (d.size(), d.is_float()))
        .expect("an adapter claims at least one numeric type")
}

pub(super) fn is_nan(s: Scalar) -> bool {
    matches!(s, Scalar::Float(v) if v.is_nan())
}

pub(super) fn all_nan(bytes: &[u8], item: usize) -> bool {
    bytes.chunks(item).all(|e| match item {
        4 => f32::from_ne_bytes(e.try_into().expect("4 bytes")).is_nan(),
        _ => f64::from_ne_bytes(e.try_into().expect("8 bytes")).is_nan(),
    })
}
