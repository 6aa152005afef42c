//! TileDB data types, dimension values and filters in rechunker's terms.

use crate::ffi::{Datatype, FilterType};
use rechunker_core::DataType;

/// The TileDB type of a rechunker data type.
pub(crate) fn tiledb_type(dtype: DataType) -> Datatype {
    match dtype {
        DataType::Bool => Datatype::Bool,
        DataType::Int8 => Datatype::Int8,
        DataType::Int16 => Datatype::Int16,
        DataType::Int32 => Datatype::Int32,
        DataType::Int64 => Datatype::Int64,
        DataType::UInt8 => Datatype::UInt8,
        DataType::UInt16 => Datatype::UInt16,
        DataType::UInt32 => Datatype::UInt32,
        DataType::UInt64 => Datatype::UInt64,
        DataType::Float32 => Datatype::Float32,
        DataType::Float64 => Datatype::Float64,
        DataType::Char => Datatype::Char,
    }
}

/// The rechunker data type of a TileDB type, if it is a plain number or a character.
pub(crate) fn data_type(t: Datatype) -> Option<DataType> {
    Some(match t {
        Datatype::Bool => DataType::Bool,
        Datatype::Int8 => DataType::Int8,
        Datatype::Int16 => DataType::Int16,
        Datatype::Int32 => DataType::Int32,
        Datatype::Int64 => DataType::Int64,
        Datatype::UInt8 => DataType::UInt8,
        Datatype::UInt16 => DataType::UInt16,
        Datatype::UInt32 => DataType::UInt32,
        Datatype::UInt64 => DataType::UInt64,
        Datatype::Float32 => DataType::Float32,
        Datatype::Float64 => DataType::Float64,
        // One character per cell (numpy `S1` in tiledb-py).
        Datatype::Char => DataType::Char,
        _ => return None,
    })
}

/// A TileDB type's name, for messages.
pub(crate) fn type_name(t: Datatype) -> String {
    match t {
        Datatype::Char => "char".into(),
        Datatype::StringAscii => "string_ascii".into(),
        Datatype::StringUtf8 => "string_utf8".into(),
        Datatype::Blob => "blob".into(),
        Datatype::DatetimeNs => format!("datetime/time type {}", t.raw()),
        Datatype::Other(code @ 13..=35) => format!("datetime/time type {code}"),
        other => match data_type(other) {
            Some(d) => d.name().into(),
            None => format!("TileDB type {}", other.raw()),
        },
    }
}

/// Size and signedness of an integer TileDB type (the types dense dimensions may have).
pub(crate) fn int_type(t: Datatype) -> Option<(usize, bool)> {
    Some(match t {
        Datatype::Int8 => (1, true),
        Datatype::UInt8 => (1, false),
        Datatype::Int16 => (2, true),
        Datatype::UInt16 => (2, false),
        Datatype::Int32 => (4, true),
        Datatype::UInt32 => (4, false),
        Datatype::Int64 => (8, true),
        Datatype::UInt64 => (8, false),
        _ => return None,
    })
}

/// Reads one native-endian integer of type `t`.
pub(crate) fn decode_int(t: Datatype, bytes: &[u8]) -> Option<i128> {
    let (size, signed) = int_type(t)?;
    let b = bytes.get(..size)?;
    let mut buf = [0u8; 16];
    if cfg!(target_endian = "little") {
        buf[..size].copy_from_slice(b);
        let negative = signed && b[size - 1] & 0x80 != 0;
        if negative {
            buf[size..].fill(0xff);
        }
        Some(i128::from_le_bytes(buf))
    } else {
        buf[16 - size..].copy_from_slice(b);
        let negative = signed && b[0] & 0x80 != 0;
        if negative {
            buf[..16 - size].fill(0xff);
        }
        Some(i128::from_be_bytes(buf))
    }
}

/// Writes `v` as one native-endian integer of type `t` (None if it does not fit).
pub(crate) fn encode_int(t: Datatype, v: i128) -> Option<Vec<u8>> {
    let (size, signed) = int_type(t)?;
    let bits = 8 * size as u32;
    let (lo, hi) = if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if v < lo || v > hi {
        return None;
    }
    let all = v.to_ne_bytes();
    Some(if cfg!(target_endian = "little") {
        all[..size].to_vec()
    } else {
        all[16 - size..].to_vec()
    })
}

/// The compressor of a [`Codec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compressor {
    None,
    Zstd(i32),
    Gzip(i32),
    Lz4(i32),
}

/// A shuffle applied before compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shuffle {
    None,
    Byte,
    Bit,
}

/// The filter pipeline written on every attribute: an optional shuffle, then a compressor.
///
/// Syntax (`--codec`): a compressor `zstd[:LEVEL]` (1-22, default 3), `gzip[:LEVEL]` (1-9,
/// default 6), `lz4[:LEVEL]` (1-12, default 1; TileDB's lz4 ignores levels) or `none`,
/// optionally joined by `+` with `byteshuffle` or `bitshuffle`, in either order:
/// `zstd:5+byteshuffle`, `bitshuffle+lz4`, `none`. The shuffle always runs before the
/// compressor, the only order in which it helps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codec {
    pub compressor: Compressor,
    pub shuffle: Shuffle,
}

impl Default for Codec {
    /// `zstd:3`, as the Zarr adapter writes by default.
    fn default() -> Self {
        Codec {
            compressor: Compressor::Zstd(3),
            shuffle: Shuffle::None,
        }
    }
}

fn level(
    codec: &str,
    text: Option<&str>,
    default: i32,
    range: (i32, i32),
    whole: &str,
) -> Result<i32, String> {
    let Some(text) = text else { return Ok(default) };
    match text.trim().parse::<i32>() {
        Ok(l) if (range.0..=range.1).contains(&l) => Ok(l),
        _ => Err(format!(
            "`{text}` in --codec {whole} is not a {codec} level: use {} to {}",
            range.0, range.1
        )),
    }
}

impl std::str::FromStr for Codec {
    type Err = String;

    fn from_str(text: &str) -> Result<Codec, String> {
        let help = "write a compressor (zstd:LEVEL, gzip:LEVEL, lz4 or none), optionally with +byteshuffle or +bitshuffle, e.g. zstd:3+byteshuffle";
        let mut compressor = None;
        let mut shuffle = None;
        for part in text.split('+') {
            let part = part.trim().to_ascii_lowercase();
            let (name, arg) = match part.split_once(':') {
                Some((n, a)) => (n.trim().to_string(), Some(a.to_string())),
                None => (part.clone(), None),
            };
            let (c, s) = match name.as_str() {
                "zstd" => (
                    Some(Compressor::Zstd(level(
                        "zstd",
                        arg.as_deref(),
                        3,
                        (1, 22),
                        text,
                    )?)),
                    None,
                ),
                "gzip" | "zlib" | "deflate" => (
                    Some(Compressor::Gzip(level(
                        "gzip",
                        arg.as_deref(),
                        6,
                        (1, 9),
                        text,
                    )?)),
                    None,
                ),
                "lz4" => (
                    Some(Compressor::Lz4(level(
                        "lz4",
                        arg.as_deref(),
                        1,
                        (1, 12),
                        text,
                    )?)),
                    None,
                ),
                "none" if arg.is_none() => (Some(Compressor::None), None),
                "byteshuffle" | "shuffle" if arg.is_none() => (None, Some(Shuffle::Byte)),
                "bitshuffle" if arg.is_none() => (None, Some(Shuffle::Bit)),
                "" => return Err(format!("--codec `{text}` has an empty part; {help}")),
                _ => {
                    return Err(format!(
                        "--codec `{text}`: `{part}` is not a TileDB codec; {help}"
                    ))
                }
            };
            if c.is_some() && compressor.replace(c).is_some() {
                return Err(format!("--codec `{text}` names two compressors; {help}"));
            }
            if s.is_some() && shuffle.replace(s).is_some() {
                return Err(format!("--codec `{text}` names two shuffles; {help}"));
            }
        }
        Ok(Codec {
            compressor: compressor.flatten().unwrap_or(Compressor::None),
            shuffle: shuffle.flatten().unwrap_or(Shuffle::None),
        })
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.compressor {
            Compressor::None => f.write_str("none")?,
            Compressor::Zstd(l) => write!(f, "zstd:{l}")?,
            Compressor::Gzip(l) => write!(f, "gzip:{l}")?,
            Compressor::Lz4(l) => write!(f, "lz4:{l}")?,
        }
        match self.shuffle {
            Shuffle::None => Ok(()),
            Shuffle::Byte => f.write_str("+byteshuffle"),
            Shuffle::Bit => f.write_str("+bitshuffle"),
        }
    }
}

impl Codec {
    /// The filters in pipeline order, as (type, level) pairs.
    pub(crate) fn filters(&self) -> Vec<(FilterType, Option<i32>)> {
        let mut out = Vec::new();
        match self.shuffle {
            Shuffle::None => {}
            Shuffle::Byte => out.push((FilterType::ByteShuffle, None)),
            Shuffle::Bit => out.push((FilterType::BitShuffle, None)),
        }
        match self.compressor {
            Compressor::None => {}
            Compressor::Zstd(l) => out.push((FilterType::Zstd, Some(l))),
            Compressor::Gzip(l) => out.push((FilterType::Gzip, Some(l))),
            Compressor::Lz4(l) => out.push((FilterType::Lz4, Some(l))),
        }
        out
    }
}

/// True for the filters that take a compression level.
pub(crate) fn is_compressor(kind: FilterType) -> bool {
    matches!(
        kind,
        FilterType::Gzip
            | FilterType::Zstd
            | FilterType::Lz4
            | FilterType::Rle
            | FilterType::Bzip2
            | FilterType::DoubleDelta
            | FilterType::Delta
            | FilterType::Dictionary
    )
}

/// A filter's name as `ArrayMeta::codecs` lists it, e.g. `zstd(level=3)`, `byteshuffle`.
pub(crate) fn describe_filter(kind: FilterType, level: Option<i32>) -> String {
    let name = match kind {
        FilterType::None => "none",
        FilterType::Gzip => "gzip",
        FilterType::Zstd => "zstd",
        FilterType::Lz4 => "lz4",
        FilterType::Rle => "rle",
        FilterType::Bzip2 => "bzip2",
        FilterType::DoubleDelta => "double_delta",
        FilterType::BitWidthReduction => "bit_width_reduction",
        FilterType::BitShuffle => "bitshuffle",
        FilterType::ByteShuffle => "byteshuffle",
        FilterType::PositiveDelta => "positive_delta",
        FilterType::ChecksumMd5 => "checksum_md5",
        FilterType::ChecksumSha256 => "checksum_sha256",
        FilterType::Dictionary => "dictionary",
        FilterType::ScaleFloat => "scale_float",
        FilterType::Xor => "xor",
        FilterType::Webp => "webp",
        FilterType::Delta => "delta",
        FilterType::Other(code) => return format!("filter {code}"),
    };
    match level {
        Some(l) => format!("{name}(level={l})"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_round_trip() {
        for t in [
            Datatype::Int8,
            Datatype::UInt8,
            Datatype::Int16,
            Datatype::UInt16,
            Datatype::Int32,
            Datatype::UInt32,
            Datatype::Int64,
            Datatype::UInt64,
        ] {
            let (size, signed) = int_type(t).unwrap();
            for v in [0i128, 1, 100, if signed { -5 } else { 7 }] {
                let b = encode_int(t, v).unwrap();
                assert_eq!(b.len(), size);
                assert_eq!(decode_int(t, &b), Some(v));
            }
        }
        assert_eq!(encode_int(Datatype::UInt8, 256), None);
        assert_eq!(encode_int(Datatype::UInt64, -1), None);
        let max = encode_int(Datatype::UInt64, u64::MAX as i128).unwrap();
        assert_eq!(decode_int(Datatype::UInt64, &max), Some(u64::MAX as i128));
        let min = encode_int(Datatype::Int64, i64::MIN as i128).unwrap();
        assert_eq!(decode_int(Datatype::Int64, &min), Some(i64::MIN as i128));
    }

    #[test]
    fn codecs_parse_and_print() {
        let c: Codec = "zstd:5+byteshuffle".parse().unwrap();
        assert_eq!(
            c,
            Codec {
                compressor: Compressor::Zstd(5),
                shuffle: Shuffle::Byte
            }
        );
        assert_eq!(c.to_string(), "zstd:5+byteshuffle");
        assert_eq!(
            "bitshuffle+lz4".parse::<Codec>().unwrap().to_string(),
            "lz4:1+bitshuffle"
        );
        assert_eq!("GZIP".parse::<Codec>().unwrap().to_string(), "gzip:6");
        assert_eq!("none".parse::<Codec>().unwrap().filters(), vec![]);
        assert_eq!(
            "zstd+bitshuffle".parse::<Codec>().unwrap().filters(),
            vec![(FilterType::BitShuffle, None), (FilterType::Zstd, Some(3))]
        );
        for bad in [
            "",
            "zstd:0",
            "zstd:x",
            "gzip:10",
            "zstd+gzip",
            "byteshuffle+bitshuffle",
            "blosc",
            "zstd+",
            "none:3",
        ] {
            let e = bad.parse::<Codec>().unwrap_err();
            assert!(e.contains("--codec"), "{bad}: {e}");
        }
    }
}
