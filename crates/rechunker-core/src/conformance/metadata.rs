//! Cases about metadata: fill values and attributes.

use super::helpers::*;
use super::{data_for, shared, sub, AttrKinds, Capabilities, Factory};
use crate::{ArrayMeta, AttrValue, Attributes, DataType, DatasetMeta, Scalar};

/// Fill values survive, and units never written read as them.
pub fn fill_values(factory: &dyn Factory, caps: &Capabilities) {
    if !caps.fill_values {
        return skipped("fill_values", "fill values");
    }
    let _guard = shared();
    let mut arrays: Vec<ArrayMeta> = (caps.dtypes.iter())
        .filter(|dt| !caps.no_fill_for.contains(dt))
        .map(|&dt| ArrayMeta {
            fill_value: Some(fill_for(dt)),
            ..array(&format!("f_{}", dt.name()), dt, &[9, 10], &[4, 3])
        })
        .collect();
    if caps.dtypes.contains(&DataType::Float32) {
        arrays.push(ArrayMeta {
            fill_value: Some(Scalar::Float(f64::NAN)),
            ..array("f_nan", DataType::Float32, &[5, 6], &[2, 4])
        });
    }
    if caps.fill_needs_marker {
        for a in &mut arrays {
            let fill = a.fill_value.expect("set above");
            // As NetCDF writes it: a char marker is text, a bool one untyped.
            let marker = match (a.dtype, fill) {
                (DataType::Char, Scalar::UInt(byte)) => {
                    AttrValue::json(String::from(byte as u8 as char).into())
                }
                (DataType::Bool, _) => AttrValue::json(serde_json::to_value(fill).expect("JSON")),
                (dtype, _) => AttrValue {
                    value: serde_json::to_value(fill).expect("a scalar is JSON"),
                    dtype: Some(dtype),
                },
            };
            a.attrs.insert("_FillValue", marker);
        }
    }
    let dataset = DatasetMeta {
        arrays,
        attrs: Attributes::default(),
    };
    let data: Vec<Vec<u8>> = (dataset.arrays.iter().enumerate())
        .map(|(i, m)| data_for(m, i as u64 + 11))
        .collect();
    // Every other unit stays unwritten (the first is written, the last is not when even).
    write_dataset(factory, "fill", &dataset, &data, 1, &|i| i % 2 == 1);
    let source = open(factory, "fill");
    let target = factory
        .create("fill-grid")
        .expect("a target for write grids");
    for (meta, bytes) in dataset.arrays.iter().zip(&data) {
        check_meta(source.as_ref(), meta);
        let got = source.meta().array(&meta.name).expect("checked above");
        let (want_fill, got_fill) = (meta.fill_value.unwrap(), got.fill_value);
        match (want_fill, got_fill) {
            (Scalar::Float(w), Some(Scalar::Float(g))) if w.is_nan() => {
                assert!(g.is_nan(), "fill of `{}`: {g}, expected NaN", meta.name)
            }
            (w, g) => assert_eq!(
                g.and_then(|g| g.to_bytes(meta.dtype)),
                w.to_bytes(meta.dtype),
                "fill of `{}`: {g:?}, expected {w:?}",
                meta.name
            ),
        }
        let item = meta.item_size();
        let array = open_array(source.as_ref(), &meta.name);
        let fill = meta.fill_bytes();
        for (i, unit) in units(target.as_ref(), meta).iter().enumerate() {
            let got = read(array.as_ref(), unit);
            let what = format!("`{}` {unit}", meta.name);
            if i % 2 == 0 {
                assert_same(&what, item, &got, &sub(bytes, &meta.shape(), unit, item));
            } else if meta.fill_value.is_some_and(is_nan) {
                assert!(
                    all_nan(&got, item),
                    "{what}: unwritten elements are not NaN"
                );
            } else {
                assert_same(
                    &format!("{what} (unwritten)"),
                    item,
                    &got,
                    &fill.repeat(got.len() / item),
                );
            }
        }
    }
}

/// Arrays written with no fill value at all: their unwritten units read as the fill value the
/// source then reports (zeros when it reports none), as valid elements of their type.
pub fn unwritten_reads_as_reported_fill(factory: &dyn Factory, caps: &Capabilities) {
    let _guard = shared();
    let arrays: Vec<ArrayMeta> = (caps.dtypes.iter())
        .filter(|dt| !caps.unwritten_differs_for.contains(dt))
        .map(|&dt| array(&format!("n_{}", dt.name()), dt, &[6, 8], &[4, 3]))
        .collect();
    let dataset = DatasetMeta {
        arrays,
        attrs: Attributes::default(),
    };
    let data: Vec<Vec<u8>> = (dataset.arrays.iter().enumerate())
        .map(|(i, m)| data_for(m, i as u64 + 21))
        .collect();
    write_dataset(factory, "nofill", &dataset, &data, 1, &|i| i % 2 == 1);
    let source = open(factory, "nofill");
    let target = factory
        .create("nofill-grid")
        .expect("a target for write grids");
    for (meta, bytes) in dataset.arrays.iter().zip(&data) {
        check_meta(source.as_ref(), meta);
        let reported = source.meta().array(&meta.name).expect("checked above");
        let fill = reported.fill_bytes();
        let item = meta.item_size();
        let array = open_array(source.as_ref(), &meta.name);
        for (i, unit) in units(target.as_ref(), meta).iter().enumerate() {
            let got = read(array.as_ref(), unit);
            let what = format!("`{}` {unit}", meta.name);
            if i % 2 == 0 {
                assert_same(&what, item, &got, &sub(bytes, &meta.shape(), unit, item));
                continue;
            }
            let what = format!(
                "{what} (unwritten; reported fill {:?})",
                reported.fill_value
            );
            if meta.dtype == DataType::Bool {
                assert!(got.iter().all(|b| *b <= 1), "{what}: not a bool: {got:?}");
            }
            if meta.dtype.is_float() && reported.fill_value.is_some_and(is_nan) {
                assert!(all_nan(&got, item), "{what}: not NaN");
            } else {
                assert_same(&what, item, &got, &fill.repeat(got.len() / item));
            }
        }
    }
}

/// The attributes of `kinds`, each named after its kind.
fn sample_attrs(kinds: &AttrKinds) -> Attributes {
    use serde_json::json;
    let mut a = Attributes::default();
    let mut put = |on: bool, name: &str, value: serde_json::Value| {
        if on {
            a.insert(name, AttrValue::json(value));
        }
    };
    put(kinds.text, "title", json!("conformance: ünïcode & spaces"));
    put(kinds.integers, "count", json!(-42));
    put(kinds.floats, "ratio", json!(0.25));
    put(kinds.number_lists, "range", json!([1.5, 2.5, -3.0]));
    put(kinds.bools, "flag", json!(true));
    put(kinds.text_lists, "names", json!(["a", "bc"]));
    if kinds.typed {
        a.insert(
            "valid_range",
            AttrValue {
                value: json!([-5, 5]),
                dtype: Some(DataType::Int16),
            },
        );
        a.insert(
            "scale_factor",
            AttrValue {
                value: json!(0.5),
                dtype: Some(DataType::Float32),
            },
        );
    }
    a
}

/// Every attribute written is read back with its value (and its type, when typed); a format
/// may add attributes of its own.
fn check_attrs(what: &str, written: &Attributes, got: &Attributes, typed: bool) {
    for (name, value) in written.iter() {
        let back = got
            .get(name)
            .unwrap_or_else(|| panic!("{what}: attribute `{name}` is lost; got {got:?}"));
        assert_eq!(back.value, value.value, "{what}: attribute `{name}`");
        if typed && value.dtype.is_some() {
            assert_eq!(
                back.dtype, value.dtype,
                "{what}: type of attribute `{name}`"
            );
        }
    }
}

/// Dataset and array attributes of every claimed kind survive.
pub fn attributes(factory: &dyn Factory, caps: &Capabilities) {
    let _guard = shared();
    let dt = pick_dtype(caps);
    let meta = ArrayMeta {
        attrs: sample_attrs(&caps.array_attrs),
        ..array("described", dt, &[6], &[4])
    };
    let dataset = DatasetMeta {
        attrs: sample_attrs(&caps.dataset_attrs),
        arrays: vec![meta.clone()],
    };
    let data = vec![data_for(&meta, 5)];
    write_dataset(factory, "attrs", &dataset, &data, 1, &|_| false);
    let source = open(factory, "attrs");
    check_attrs(
        "dataset",
        &dataset.attrs,
        &source.meta().attrs,
        caps.dataset_attrs.typed,
    );
    let got = source.meta().array("described").expect("array `described`");
    check_attrs(
        "`described`",
        &meta.attrs,
        &got.attrs,
        caps.array_attrs.typed,
    );
    // The array's own view agrees with the dataset's.
    let array = open_array(source.as_ref(), "described");
    check_attrs(
        "opened `described`",
        &meta.attrs,
        &array.meta().attrs,
        caps.array_attrs.typed,
    );
}
