//! The `_FillValue` attribute as xarray uses it with Zarr, mapped to and from our model.
//!
//! In our model `_FillValue` is a typed numeric attribute (the CF "missing value" marker, as in
//! NetCDF) and `ArrayMeta::fill_value` is the storage fill. xarray spells the marker differently
//! per Zarr version:
//! - v2: the array's `fill_value` in `.zarray` *is* the marker; there is no attribute;
//! - v3: the array's `fill_value` is only the storage default; the marker is an attribute
//!   `_FillValue`, base64 of the little-endian bytes for floats, a plain number otherwise.
//!
//! Converting between the two without this mapping turns every 0 of an integer v3 variable into
//! a missing value in v2, and loses the marker going the other way.

use rechunker_core::{AttrValue, Attributes, DataType, Scalar};
use serde_json::{json, Value};

pub(crate) const FILL_VALUE: &str = "_FillValue";

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u32> = text
        .trim_end_matches('=')
        .bytes()
        .map(|c| ALPHABET.iter().position(|&a| a == c).map(|p| p as u32))
        .collect::<Option<_>>()?;
    let mut out = Vec::new();
    for group in digits.chunks(4) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, d)| acc | d << (18 - 6 * i));
        for i in 0..group.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// The marker as a JSON value of our model: a number, or "NaN" / "Infinity" / "-Infinity".
fn model_json(value: Scalar) -> Value {
    match value {
        Scalar::Float(v) if v.is_nan() => json!("NaN"),
        Scalar::Float(v) if v.is_infinite() => {
            json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Scalar::Float(v) => json!(v),
        Scalar::Int(v) => json!(v),
        Scalar::UInt(v) => json!(v),
        Scalar::Bool(v) => json!(v),
    }
}

/// Reads the marker from a JSON attribute value in any of the spellings we meet.
pub(crate) fn parse(value: &Value, dtype: DataType) -> Option<Scalar> {
    match value {
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
            encoded => {
                // xarray writes float markers as 8 little-endian bytes whatever the float width.
                let mut bytes = base64_decode(encoded)?;
                if cfg!(target_endian = "big") {
                    bytes.reverse();
                }
                match (dtype.is_float(), bytes.len()) {
                    (true, 8) => Scalar::from_bytes(DataType::Float64, &bytes),
                    (true, 4) => Scalar::from_bytes(DataType::Float32, &bytes),
                    (_, n) if n == dtype.size() => Scalar::from_bytes(dtype, &bytes),
                    _ => None,
                }
            }
        },
        Value::Array(items) if items.len() == 1 => parse(&items[0], dtype),
        _ => None,
    }
}

/// On reading v2: the array's fill value becomes the marker attribute (xarray's meaning).
pub(crate) fn from_v2(attrs: &mut Attributes, fill: Option<Scalar>, dtype: DataType) {
    // A char `_FillValue` is text, one character: the fill byte.
    if dtype == DataType::Char {
        let byte = match fill {
            Some(Scalar::UInt(b)) => u8::try_from(b).ok(),
            Some(Scalar::Int(b)) => u8::try_from(b).ok(),
            _ => None,
        };
        if let (Some(b), None) = (byte, attrs.get(FILL_VALUE)) {
            attrs.insert(
                FILL_VALUE,
                AttrValue::json(Value::String(char::from(b).to_string())),
            );
        }
        return;
    }
    if let Some(fill) = fill {
        if attrs.get(FILL_VALUE).is_none() {
            attrs.insert(
                FILL_VALUE,
                AttrValue {
                    value: model_json(fill),
                    dtype: Some(dtype),
                },
            );
        }
    }
}

/// On reading v3: a base64 marker becomes a typed number.
pub(crate) fn from_v3(attrs: &mut Attributes, dtype: DataType) {
    if dtype == DataType::Char {
        return;
    }
    if let Some(value) = attrs.get(FILL_VALUE).and_then(|a| parse(&a.value, dtype)) {
        attrs.insert(
            FILL_VALUE,
            AttrValue {
                value: model_json(value),
                dtype: Some(dtype),
            },
        );
    }
}

/// The marker of `attrs`, if there is one we can read.
pub(crate) fn marker(attrs: &Attributes, dtype: DataType) -> Option<Scalar> {
    if dtype == DataType::Char {
        return None;
    }
    attrs.get(FILL_VALUE).and_then(|a| parse(&a.value, dtype))
}

/// The marker of a char array: text of one character (code point below 256) is that byte.
/// (Not in [`marker`]: v3 keeps a char array's fill value apart from its attributes.)
pub(crate) fn char_marker(attrs: &Attributes, dtype: DataType) -> Option<Scalar> {
    if dtype != DataType::Char {
        return None;
    }
    let text = attrs.get(FILL_VALUE)?.value.as_str()?;
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => u8::try_from(u32::from(c))
            .ok()
            .map(|b| Scalar::UInt(b.into())),
        _ => None,
    }
}

/// On writing v3: the marker attribute in xarray's spelling (floats as 8 bytes, as it decodes
/// them with `struct.unpack("d")`).
pub(crate) fn v3_attribute(value: Scalar, dtype: DataType) -> Option<Value> {
    if dtype.is_float() {
        let narrowed = Scalar::from_bytes(dtype, &value.to_bytes(dtype)?)?;
        let mut bytes = narrowed.to_bytes(DataType::Float64)?;
        if cfg!(target_endian = "big") {
            bytes.reverse();
        }
        Some(json!(base64_encode(&bytes)))
    } else {
        Scalar::from_bytes(dtype, &value.to_bytes(dtype)?).map(model_json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_xarray() {
        // xarray writes NaN (float64) as this string.
        assert_eq!(base64_encode(&f64::NAN.to_le_bytes()), "AAAAAAAA+H8=");
        assert_eq!(
            v3_attribute(Scalar::Float(f64::NAN), DataType::Float32),
            Some(json!("AAAAAAAA+H8="))
        );
        assert_eq!(
            base64_decode("AAAAAAAA+H8=").unwrap(),
            f64::NAN.to_le_bytes()
        );
        for n in 0..10 {
            let bytes: Vec<u8> = (0..n).map(|i: u8| i.wrapping_mul(37) ^ 0xa5).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)).unwrap(), bytes);
        }
    }

    #[test]
    fn markers_round_trip() {
        match parse(&json!("AAAAAAAA+H8="), DataType::Float64) {
            Some(Scalar::Float(v)) => assert!(v.is_nan()),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse(&json!(-9999), DataType::Int16),
            Some(Scalar::Int(-9999))
        );
        assert_eq!(
            v3_attribute(Scalar::Int(-1), DataType::Int32),
            Some(json!(-1))
        );
        let f = v3_attribute(Scalar::Float(1.5), DataType::Float32).unwrap();
        assert_eq!(parse(&f, DataType::Float32), Some(Scalar::Float(1.5)));
    }
}
