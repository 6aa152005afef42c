//! Element data types and scalar values (fill values) of arrays.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The element types every adapter agrees on: numbers, and `Char`, one byte of text (NetCDF
/// `char`, numpy `S1`; CF stores strings as char arrays with a last `strlen` dimension). Data moves
/// through the executor as native-endian bytes in C order, so the type only decides the item size
/// and how scalars encode; a `Char` scalar is its byte as an unsigned number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    Char,
}

impl DataType {
    pub const ALL: [DataType; 12] = [
        DataType::Bool,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Float32,
        DataType::Float64,
        DataType::Char,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DataType::Bool | DataType::Int8 | DataType::UInt8 | DataType::Char => 1,
            DataType::Int16 | DataType::UInt16 => 2,
            DataType::Int32 | DataType::UInt32 | DataType::Float32 => 4,
            DataType::Int64 | DataType::UInt64 | DataType::Float64 => 8,
        }
    }

    /// The numpy-style name (`float32`, `uint8`, ...), also used in our JSON.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::Int8 => "int8",
            DataType::Int16 => "int16",
            DataType::Int32 => "int32",
            DataType::Int64 => "int64",
            DataType::UInt8 => "uint8",
            DataType::UInt16 => "uint16",
            DataType::UInt32 => "uint32",
            DataType::UInt64 => "uint64",
            DataType::Float32 => "float32",
            DataType::Float64 => "float64",
            DataType::Char => "char",
        }
    }

    pub fn from_name(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|d| d.name() == name)
    }

    pub fn is_float(self) -> bool {
        matches!(self, DataType::Float32 | DataType::Float64)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A single value of some [`DataType`], e.g. a fill value. Kept in the widest type of its kind so
/// that it survives JSON; [`Scalar::to_bytes`] narrows it to the array's type.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    UInt(u64),
    #[serde(with = "float_json")]
    Float(f64),
}

impl Scalar {
    /// Native-endian bytes of this value as an element of `dtype`, or `None` if it does not fit.
    pub fn to_bytes(self, dtype: DataType) -> Option<Vec<u8>> {
        fn int(s: Scalar) -> Option<i128> {
            match s {
                Scalar::Bool(b) => Some(b as i128),
                Scalar::Int(v) => Some(v as i128),
                Scalar::UInt(v) => Some(v as i128),
                Scalar::Float(v) if v.fract() == 0.0 && v.is_finite() => Some(v as i128),
                Scalar::Float(_) => None,
            }
        }
        fn float(s: Scalar) -> f64 {
            match s {
                Scalar::Bool(b) => b as u8 as f64,
                Scalar::Int(v) => v as f64,
                Scalar::UInt(v) => v as f64,
                Scalar::Float(v) => v,
            }
        }
        Some(match dtype {
            DataType::Bool => vec![u8::from(int(self)? != 0)],
            DataType::Int8 => i8::try_from(int(self)?).ok()?.to_ne_bytes().to_vec(),
            DataType::Int16 => i16::try_from(int(self)?).ok()?.to_ne_bytes().to_vec(),
            DataType::Int32 => i32::try_from(int(self)?).ok()?.to_ne_bytes().to_vec(),
            DataType::Int64 => i64::try_from(int(self)?).ok()?.to_ne_bytes().to_vec(),
            DataType::UInt8 | DataType::Char => {
                u8::try_from(int(self)?).ok()?.to_ne_bytes().to_vec()
            }
            DataType::UInt16 => u16::try_from(int(self)?).ok()?.to_ne_bytes().to_vec(),
            DataType::UInt32 => u32::try_from(int(self)?).ok()?.to_ne_bytes().to_vec(),
            DataType::UInt64 => u64::try_from(int(self)?).ok()?.to_ne_bytes().to_vec(),
            DataType::Float32 => (float(self) as f32).to_ne_bytes().to_vec(),
            DataType::Float64 => float(self).to_ne_bytes().to_vec(),
        })
    }

    /// Reads one native-endian element of `dtype`.
    pub fn from_bytes(dtype: DataType, bytes: &[u8]) -> Option<Scalar> {
        macro_rules! get {
            ($t:ty) => {
                <$t>::from_ne_bytes(bytes.get(..std::mem::size_of::<$t>())?.try_into().ok()?)
            };
        }
        Some(match dtype {
            DataType::Bool => Scalar::Bool(*bytes.first()? != 0),
            DataType::Int8 => Scalar::Int(get!(i8) as i64),
            DataType::Int16 => Scalar::Int(get!(i16) as i64),
            DataType::Int32 => Scalar::Int(get!(i32) as i64),
            DataType::Int64 => Scalar::Int(get!(i64)),
            DataType::UInt8 | DataType::Char => Scalar::UInt(get!(u8) as u64),
            DataType::UInt16 => Scalar::UInt(get!(u16) as u64),
            DataType::UInt32 => Scalar::UInt(get!(u32) as u64),
            DataType::UInt64 => Scalar::UInt(get!(u64)),
            DataType::Float32 => Scalar::Float(get!(f32) as f64),
            DataType::Float64 => Scalar::Float(get!(f64)),
        })
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(v) => write!(f, "{v}"),
            Scalar::Int(v) => write!(f, "{v}"),
            Scalar::UInt(v) => write!(f, "{v}"),
            Scalar::Float(v) => write!(f, "{v:?}"),
        }
    }
}

/// JSON has no NaN or infinities: write them as the strings Zarr uses ("NaN", "Infinity").
mod float_json {
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v.is_infinite() {
            s.serialize_str(if *v > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Num(f64),
            Str(String),
        }
        match Repr::deserialize(d)? {
            Repr::Num(v) => Ok(v),
            Repr::Str(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                other => Err(de::Error::custom(format!("not a float: {other}"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_narrows_and_round_trips() {
        assert_eq!(
            Scalar::Int(-1).to_bytes(DataType::Int16),
            Some((-1i16).to_ne_bytes().to_vec())
        );
        assert_eq!(Scalar::Int(-1).to_bytes(DataType::UInt8), None);
        assert_eq!(Scalar::Int(300).to_bytes(DataType::Int8), None);
        let nan = Scalar::Float(f64::NAN).to_bytes(DataType::Float32).unwrap();
        assert!(f32::from_ne_bytes(nan.try_into().unwrap()).is_nan());
        for dt in DataType::ALL {
            let b = Scalar::UInt(1).to_bytes(dt).unwrap();
            assert_eq!(b.len(), dt.size());
            let back = Scalar::from_bytes(dt, &b).unwrap();
            assert_eq!(back.to_bytes(dt).unwrap(), b);
        }
    }

    #[test]
    fn scalar_json_keeps_nan() {
        let j = serde_json::to_string(&Scalar::Float(f64::NAN)).unwrap();
        assert_eq!(j, "\"NaN\"");
        match serde_json::from_str::<Scalar>(&j).unwrap() {
            Scalar::Float(v) => assert!(v.is_nan()),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            serde_json::from_str::<Scalar>("-3").unwrap(),
            Scalar::Int(-3)
        );
        assert_eq!(serde_json::from_str::<Scalar>("3").unwrap(), Scalar::Int(3));
    }
}
