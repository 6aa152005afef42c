//! TileDB metadata as rechunker attributes, and back.
//!
//! Metadata values are typed arrays. Reading: strings (`STRING_UTF8`, `STRING_ASCII`, `CHAR`)
//! become JSON strings; one number becomes a typed JSON number, several a typed JSON array
//! (tiledb-py's numpy arrays, stored under `__np_flat_KEY`, come back flat under `KEY`);
//! blobs and other types are skipped with a log line. Writing: strings as `STRING_UTF8`, typed
//! numbers in their type (untyped: `INT64` or `FLOAT64`, as tiledb-py writes Python numbers),
//! booleans as `BOOL`, homogeneous arrays as one multi-value entry; anything else (objects,
//! null, mixed arrays) as its JSON text in a string.
//!
//! Which metadata belongs to which variable follows TileDB-CF: a key `__tiledb_attr.A.KEY` is
//! attribute `KEY` of the variable stored in TileDB attribute `A`; see [`split_keys`].

use crate::ffi::Datatype;
use crate::ffi::MetaValue;
use crate::types;
use rechunker_core::{AttrValue, Attributes, DataType, Scalar};
use serde_json::{json, Value};

/// Prefix of per-attribute metadata keys (TileDB-CF's convention).
pub(crate) const ATTR_PREFIX: &str = "__tiledb_attr.";
const NP_FLAT: &str = "__np_flat_";
const NP_SHAPE: &str = "__np_shape_";

fn number_json(s: Scalar) -> Value {
    match s {
        Scalar::Bool(b) => json!(b),
        Scalar::Int(v) => json!(v),
        Scalar::UInt(v) => json!(v),
        Scalar::Float(v) if v.is_nan() => json!("NaN"),
        Scalar::Float(v) if v.is_infinite() => {
            json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Scalar::Float(v) => json!(v),
    }
}

/// A metadata value as an attribute value, or `None` for types we do not carry.
pub(crate) fn to_attr(value: &MetaValue) -> Option<AttrValue> {
    match value.dtype {
        Datatype::StringUtf8 | Datatype::StringAscii | Datatype::Char => {
            let text = String::from_utf8_lossy(&value.bytes);
            Some(AttrValue::json(json!(text.trim_end_matches('\0'))))
        }
        t => {
            let dtype = types::data_type(t)?;
            let items: Vec<Value> = value
                .bytes
                .chunks_exact(dtype.size())
                .map(|b| Scalar::from_bytes(dtype, b).map_or(Value::Null, number_json))
                .collect();
            let value = match items.len() {
                1 => items.into_iter().next().unwrap_or(Value::Null),
                _ => Value::Array(items),
            };
            Some(AttrValue {
                value,
                dtype: Some(dtype),
            })
        }
    }
}

/// A JSON number (or NaN / Infinity spelling) as a scalar.
fn scalar(v: &Value) -> Option<Scalar> {
    match v {
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(Scalar::Int)
            .or_else(|| n.as_u64().map(Scalar::UInt))
            .or_else(|| n.as_f64().map(Scalar::Float)),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(Scalar::Float(f64::NAN)),
            "Infinity" => Some(Scalar::Float(f64::INFINITY)),
            "-Infinity" => Some(Scalar::Float(f64::NEG_INFINITY)),
            _ => None,
        },
        _ => None,
    }
}

/// The TileDB type for untyped JSON numbers: int64 (also for booleans, as tiledb-py stores
/// them; it cannot read `BOOL` metadata), uint64 beyond it, else float64.
fn inferred(items: &[Scalar]) -> DataType {
    if items
        .iter()
        .all(|s| matches!(s, Scalar::Int(_) | Scalar::Bool(_)))
    {
        DataType::Int64
    } else if items
        .iter()
        .all(|s| matches!(s, Scalar::Int(_) | Scalar::UInt(_)))
        && items.iter().all(|s| !matches!(s, Scalar::Int(v) if *v < 0))
    {
        DataType::UInt64
    } else {
        DataType::Float64
    }
}

fn encode(items: &[Scalar], dtype: DataType) -> Option<MetaValue> {
    let mut bytes = Vec::with_capacity(items.len() * dtype.size());
    for s in items {
        bytes.extend(s.to_bytes(dtype)?);
    }
    Some(MetaValue {
        dtype: types::tiledb_type(dtype),
        num: items.len() as u32,
        bytes,
    })
}

fn text(s: &str) -> MetaValue {
    MetaValue {
        dtype: Datatype::StringUtf8,
        num: s.len() as u32,
        bytes: s.as_bytes().to_vec(),
    }
}

/// An attribute value as a metadata value.
pub(crate) fn from_attr(value: &AttrValue) -> MetaValue {
    let items: Option<Vec<Scalar>> = match &value.value {
        Value::Array(a) if !a.is_empty() => a.iter().map(scalar).collect(),
        Value::String(_) if !value.dtype.is_some_and(DataType::is_float) => None,
        v => scalar(v).map(|s| vec![s]),
    };
    if let Some(items) = items {
        // The attribute's own type when every value fits it, else one inferred from the values.
        let declared = value.dtype.filter(|&d| d != DataType::Bool);
        if let Some(m) = declared.and_then(|d| encode(&items, d)) {
            return m;
        }
        if let Some(m) = encode(&items, inferred(&items)) {
            return m;
        }
    }
    match &value.value {
        Value::String(s) => text(s),
        other => text(&other.to_string()),
    }
}

/// Metadata entries as attributes, in the library's order: tiledb-py's numpy entries under
/// their own names, unreadable types skipped.
pub(crate) fn to_attributes(entries: &[(String, MetaValue)], uri: &str) -> Attributes {
    let mut out = Attributes::default();
    for (key, value) in entries {
        if key.starts_with(NP_SHAPE) {
            continue;
        }
        let name = key.strip_prefix(NP_FLAT).unwrap_or(key);
        match to_attr(value) {
            Some(v) => out.insert(name, v),
            None => tracing::info!(
                uri,
                key,
                "skipping metadata of type {}",
                types::type_name(value.dtype)
            ),
        }
    }
    out
}

/// Splits array metadata into attributes of its TileDB attributes (`__tiledb_attr.A.KEY`, for
/// each name in `attrs`; the longest matching name wins) and the rest.
pub(crate) fn split_keys(all: Attributes, attrs: &[String]) -> (Vec<Attributes>, Attributes) {
    let mut per_attr = vec![Attributes::default(); attrs.len()];
    let mut rest = Attributes::default();
    for (key, value) in all.0 {
        let owner = key.strip_prefix(ATTR_PREFIX).and_then(|tail| {
            attrs
                .iter()
                .enumerate()
                .filter(|(_, a)| {
                    tail.len() > a.len() + 1
                        && tail.starts_with(a.as_str())
                        && tail.as_bytes()[a.len()] == b'.'
                })
                .max_by_key(|(_, a)| a.len())
                .map(|(i, a)| (i, tail[a.len() + 1..].to_string()))
        });
        match owner {
            Some((i, name)) => per_attr[i].insert(name, value),
            None => rest.insert(key, value),
        }
    }
    (per_attr, rest)
}

/// The metadata key of attribute `key` of TileDB attribute `attr`.
pub(crate) fn attr_key(attr: &str, key: &str) -> String {
    format!("{ATTR_PREFIX}{attr}.{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(v: AttrValue) -> AttrValue {
        to_attr(&from_attr(&v)).unwrap()
    }

    #[test]
    fn values_round_trip() {
        let typed = AttrValue {
            value: json!(-3),
            dtype: Some(DataType::Int16),
        };
        assert_eq!(round(typed.clone()), typed);
        let nan = AttrValue {
            value: json!("NaN"),
            dtype: Some(DataType::Float32),
        };
        assert_eq!(round(nan.clone()), nan);
        let range = AttrValue {
            value: json!([1.5, 2.5]),
            dtype: Some(DataType::Float64),
        };
        assert_eq!(round(range.clone()), range);
        assert_eq!(
            round(AttrValue::json(json!("K"))),
            AttrValue::json(json!("K"))
        );
        assert_eq!(
            round(AttrValue::json(json!(7))),
            AttrValue {
                value: json!(7),
                dtype: Some(DataType::Int64)
            }
        );
        assert_eq!(
            round(AttrValue::json(json!([1, 2.5]))).value,
            json!([1.0, 2.5])
        );
        assert_eq!(
            round(AttrValue::json(json!({"a": 1}))),
            AttrValue::json(json!("{\"a\":1}"))
        );
        assert_eq!(
            from_attr(&AttrValue::json(json!(true))).dtype,
            Datatype::Int64
        );
        assert_eq!(from_attr(&AttrValue::json(json!(""))).num, 0);
        // A value that does not fit its declared type keeps its value in a wider one.
        let wide = from_attr(&AttrValue {
            value: json!(300),
            dtype: Some(DataType::Int8),
        });
        assert_eq!(wide.dtype, Datatype::Int64);
    }

    #[test]
    fn keys_split_by_attribute() {
        let mut all = Attributes::default();
        for k in [
            "title",
            "__tiledb_attr.a.units",
            "__tiledb_attr.a.b.units",
            "__tiledb_attr..x",
            "__tiledb_attr.zz.q",
        ] {
            all.insert(k, AttrValue::json(json!(k)));
        }
        let names = vec!["a".to_string(), "a.b".to_string(), String::new()];
        let (per, rest) = split_keys(all, &names);
        assert_eq!(per[0].get("units").unwrap().value, "__tiledb_attr.a.units");
        assert_eq!(
            per[1].get("units").unwrap().value,
            "__tiledb_attr.a.b.units"
        );
        assert_eq!(per[2].get("x").unwrap().value, "__tiledb_attr..x");
        let rest: Vec<_> = rest.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(rest, ["title", "__tiledb_attr.zz.q"]);
    }
}
