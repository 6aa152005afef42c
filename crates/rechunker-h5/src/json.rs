//! Attribute values as JSON in rechunker's model: numbers, with non-finite floats spelled
//! "NaN", "Infinity" and "-Infinity".

use rechunker_core::{DataType, Scalar};
use serde_json::Value;

/// One element as model JSON.
pub fn scalar_to_json(value: Scalar) -> Value {
    match value {
        Scalar::Float(v) if v.is_nan() => Value::from("NaN"),
        Scalar::Float(v) if v.is_infinite() => {
            Value::from(if v > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Scalar::Float(v) => Value::from(v),
        Scalar::Int(v) => Value::from(v),
        Scalar::UInt(v) => Value::from(v),
        Scalar::Bool(v) => Value::from(v),
    }
}

/// Elements of `dtype` from native-endian `bytes` as JSON: one value for a single element,
/// else an array.
pub fn elements_to_json(dtype: DataType, bytes: &[u8], force_array: bool) -> Value {
    let items: Vec<Value> = bytes
        .chunks_exact(dtype.size())
        .filter_map(|b| Scalar::from_bytes(dtype, b))
        .map(scalar_to_json)
        .collect();
    if items.len() == 1 && !force_array {
        items.into_iter().next().unwrap_or(Value::Null)
    } else {
        Value::Array(items)
    }
}

/// One JSON element as a scalar: numbers, booleans and the non-finite spellings.
pub fn json_to_scalar(value: &Value) -> Option<Scalar> {
    match value {
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(Scalar::Int)
            .or_else(|| n.as_u64().map(Scalar::UInt))
            .or_else(|| n.as_f64().map(Scalar::Float)),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(Scalar::Float(f64::NAN)),
            "Infinity" | "inf" => Some(Scalar::Float(f64::INFINITY)),
            "-Infinity" | "-inf" => Some(Scalar::Float(f64::NEG_INFINITY)),
            _ => None,
        },
        _ => None,
    }
}

/// A JSON value (one element or an array of them) as scalars, if every element is numeric.
pub fn json_to_scalars(value: &Value) -> Option<Vec<Scalar>> {
    match value {
        Value::Array(items) => items.iter().map(json_to_scalar).collect(),
        other => json_to_scalar(other).map(|s| vec![s]),
    }
}

/// Native-endian bytes of `values` as elements of `dtype`, if all fit.
pub fn scalars_to_bytes(values: &[Scalar], dtype: DataType) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(values.len() * dtype.size());
    for v in values {
        out.extend(v.to_bytes(dtype)?);
    }
    Some(out)
}

/// The type to store untyped JSON numbers as: int64 when all are integers that fit, uint64
/// for larger ones, else float64; bool when all are booleans.
pub fn infer_dtype(values: &[Scalar]) -> DataType {
    if values.iter().all(|v| matches!(v, Scalar::Bool(_))) && !values.is_empty() {
        DataType::Bool
    } else if values.iter().all(|v| matches!(v, Scalar::Int(_))) {
        DataType::Int64
    } else if values
        .iter()
        .all(|v| matches!(v, Scalar::Int(_) | Scalar::UInt(_)))
    {
        if values.iter().all(|v| match v {
            Scalar::Int(i) => *i >= 0,
            _ => true,
        }) {
            DataType::UInt64
        } else {
            DataType::Float64
        }
    } else {
        DataType::Float64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_scalars() {
        let v = json_to_scalars(&json!([1, "NaN", 2.5])).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(infer_dtype(&v), DataType::Float64);
        assert_eq!(
            infer_dtype(&[Scalar::Int(-1), Scalar::Int(3)]),
            DataType::Int64
        );
        assert_eq!(
            elements_to_json(DataType::Int16, &[1, 0, 2, 0], false),
            json!([1, 2])
        );
        assert_eq!(
            elements_to_json(DataType::Float32, &f32::NAN.to_ne_bytes(), false),
            json!("NaN")
        );
        assert!(json_to_scalars(&json!(["a"])).is_none());
    }
}
