//! How a Zarr target is written: format version, codec and sharding.

use crate::error::ZarrError;
use std::fmt;
use std::str::FromStr;

/// The Zarr format version to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ZarrFormat {
    V2,
    #[default]
    V3,
}

impl FromStr for ZarrFormat {
    type Err = ZarrError;
    fn from_str(s: &str) -> Result<Self, ZarrError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "2" | "v2" => Ok(ZarrFormat::V2),
            "3" | "v3" => Ok(ZarrFormat::V3),
            other => Err(ZarrError::Option(format!(
                "unknown Zarr format `{other}`; use 2 or 3"
            ))),
        }
    }
}

impl TryFrom<u8> for ZarrFormat {
    type Error = ZarrError;
    fn try_from(v: u8) -> Result<Self, ZarrError> {
        v.to_string().parse()
    }
}

impl fmt::Display for ZarrFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ZarrFormat::V2 => "2",
            ZarrFormat::V3 => "3",
        })
    }
}

/// The compressor inside blosc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BloscCompressor {
    BloscLz,
    Lz4,
    Lz4Hc,
    Zlib,
    Zstd,
}

impl BloscCompressor {
    const ALL: [BloscCompressor; 5] = [
        BloscCompressor::BloscLz,
        BloscCompressor::Lz4,
        BloscCompressor::Lz4Hc,
        BloscCompressor::Zlib,
        BloscCompressor::Zstd,
    ];

    /// The name Zarr metadata uses (`cname`).
    pub fn name(self) -> &'static str {
        match self {
            BloscCompressor::BloscLz => "blosclz",
            BloscCompressor::Lz4 => "lz4",
            BloscCompressor::Lz4Hc => "lz4hc",
            BloscCompressor::Zlib => "zlib",
            BloscCompressor::Zstd => "zstd",
        }
    }
}

/// The shuffle filter inside blosc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BloscShuffle {
    NoShuffle,
    Shuffle,
    BitShuffle,
}

impl BloscShuffle {
    /// The name Zarr v3 metadata uses.
    pub fn name(self) -> &'static str {
        match self {
            BloscShuffle::NoShuffle => "noshuffle",
            BloscShuffle::Shuffle => "shuffle",
            BloscShuffle::BitShuffle => "bitshuffle",
        }
    }

    /// The number numcodecs (Zarr v2) uses.
    pub fn v2_id(self) -> u8 {
        match self {
            BloscShuffle::NoShuffle => 0,
            BloscShuffle::Shuffle => 1,
            BloscShuffle::BitShuffle => 2,
        }
    }
}

/// The compression of written chunks. Parsed from `zstd:3`, `blosc:lz4:5:shuffle`
/// (`blosc:CNAME:CLEVEL:shuffle|bitshuffle|noshuffle`), `gzip:1` or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    None,
    Zstd {
        level: i32,
    },
    Gzip {
        level: u32,
    },
    Blosc {
        cname: BloscCompressor,
        clevel: u8,
        shuffle: BloscShuffle,
    },
}

/// The codec of arrays whose source is not Zarr: blosc lz4 level 5 with byte shuffle, which is
/// zarr-python 2's default and, on float data, smaller and faster to write and read than
/// zarr-python 3's (zstd level 0 without shuffle). Chosen by `cargo xtask bench codec`; the
/// figures are in docs/design.md.
impl Default for Codec {
    fn default() -> Self {
        Codec::Blosc {
            cname: BloscCompressor::Lz4,
            clevel: 5,
            shuffle: BloscShuffle::Shuffle,
        }
    }
}

const CODEC_HELP: &str =
    "use zstd:LEVEL, gzip:LEVEL, blosc:CNAME:CLEVEL:SHUFFLE (e.g. blosc:lz4:5:shuffle) or none";

impl FromStr for Codec {
    type Err = ZarrError;
    fn from_str(s: &str) -> Result<Self, ZarrError> {
        let bad = |why: String| ZarrError::Option(format!("codec `{s}`: {why}; {CODEC_HELP}"));
        let parts: Vec<&str> = s.trim().split(':').collect();
        let name = parts[0].to_ascii_lowercase();
        let arity = |n: usize| -> Result<(), ZarrError> {
            if parts.len() == n {
                Ok(())
            } else {
                Err(bad(format!(
                    "`{name}` takes {} parameter(s)",
                    n.saturating_sub(1)
                )))
            }
        };
        match name.as_str() {
            "none" | "raw" => {
                arity(1)?;
                Ok(Codec::None)
            }
            "zstd" => {
                if parts.len() == 1 {
                    return Ok(Codec::Zstd { level: 3 });
                }
                arity(2)?;
                let level: i32 = parts[1]
                    .parse()
                    .map_err(|_| bad(format!("level `{}` is not a number", parts[1])))?;
                if !(-131072..=22).contains(&level) {
                    return Err(bad(format!("zstd level {level} is outside -131072..=22")));
                }
                Ok(Codec::Zstd { level })
            }
            "gzip" => {
                if parts.len() == 1 {
                    return Ok(Codec::Gzip { level: 1 });
                }
                arity(2)?;
                let level: u32 = parts[1]
                    .parse()
                    .map_err(|_| bad(format!("level `{}` is not a number", parts[1])))?;
                if level > 9 {
                    return Err(bad(format!("gzip level {level} is outside 0..=9")));
                }
                Ok(Codec::Gzip { level })
            }
            "blosc" => {
                arity(4)?;
                let cname = BloscCompressor::ALL
                    .into_iter()
                    .find(|c| c.name().eq_ignore_ascii_case(parts[1]))
                    .ok_or_else(|| {
                        bad(format!(
                            "unknown blosc compressor `{}` (blosclz, lz4, lz4hc, zlib or zstd)",
                            parts[1]
                        ))
                    })?;
                let clevel: u8 =
                    parts[2].parse().ok().filter(|l| *l <= 9).ok_or_else(|| {
                        bad(format!("blosc level `{}` is not in 0..=9", parts[2]))
                    })?;
                let shuffle = match parts[3].to_ascii_lowercase().as_str() {
                    "shuffle" | "byteshuffle" => BloscShuffle::Shuffle,
                    "bitshuffle" => BloscShuffle::BitShuffle,
                    "noshuffle" => BloscShuffle::NoShuffle,
                    other => {
                        return Err(bad(format!(
                            "blosc shuffle `{other}` is not shuffle, bitshuffle or noshuffle"
                        )))
                    }
                };
                Ok(Codec::Blosc {
                    cname,
                    clevel,
                    shuffle,
                })
            }
            other => Err(bad(format!("unknown codec `{other}`"))),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Codec::None => f.write_str("none"),
            Codec::Zstd { level } => write!(f, "zstd:{level}"),
            Codec::Gzip { level } => write!(f, "gzip:{level}"),
            Codec::Blosc {
                cname,
                clevel,
                shuffle,
            } => write!(f, "blosc:{}:{clevel}:{}", cname.name(), shuffle.name()),
        }
    }
}

/// Shard shape of sharded Zarr v3 output, in elements. Each shard length must be a multiple of
/// the chunk length along its dimension (one shorter than a chunk is refused, not rounded); a
/// length at least as long as the dimension (or -1) means one shard along it. Dimensions the
/// spec does not name hold one chunk per shard, and so do coordinate variables, which are
/// stored in one chunk.
///
/// Parsed from `time=8760,lat=48` (by dimension name) or `8760,48,48` (by position, for
/// arrays with that many dimensions; arrays of other rank are not sharded along any dimension).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardSpec {
    ByName(Vec<(String, u64)>),
    Shape(Vec<u64>),
}

impl FromStr for ShardSpec {
    type Err = ZarrError;
    fn from_str(s: &str) -> Result<Self, ZarrError> {
        let bad = |why: String| {
            ZarrError::Option(format!(
                "shards `{s}`: {why}; give NAME=LENGTH,... or LENGTH,LENGTH,... in elements"
            ))
        };
        // -1, as in --chunks, is the whole dimension: longer than any dimension.
        let number = |t: &str| -> Result<u64, ZarrError> {
            if t.trim() == "-1" {
                return Ok(u64::MAX);
            }
            t.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(format!("`{t}` is not a positive whole number or -1")))
        };
        let items: Vec<&str> = s.split(',').map(str::trim).collect();
        if items.iter().any(|i| i.is_empty()) {
            return Err(bad("empty entry".into()));
        }
        if items.iter().all(|i| i.contains('=')) {
            let mut dims = Vec::new();
            for item in items {
                let (name, len) = item.split_once('=').unwrap_or((item, ""));
                let name = name.trim();
                if name.is_empty() {
                    return Err(bad(format!("`{item}` has no dimension name")));
                }
                if dims.iter().any(|(n, _)| n == name) {
                    return Err(bad(format!("dimension `{name}` is given twice")));
                }
                dims.push((name.to_string(), number(len)?));
            }
            Ok(ShardSpec::ByName(dims))
        } else if items.iter().any(|i| i.contains('=')) {
            Err(bad("mixes NAME=LENGTH and plain lengths".into()))
        } else {
            Ok(ShardSpec::Shape(
                items.into_iter().map(number).collect::<Result<_, _>>()?,
            ))
        }
    }
}

impl ShardSpec {
    /// The requested shard length along each dimension of an array with `dims`, or `None`
    /// where the spec does not shard that dimension.
    pub(crate) fn lengths(&self, dims: &[String]) -> Vec<Option<u64>> {
        match self {
            ShardSpec::ByName(named) => dims
                .iter()
                .map(|d| {
                    // As --chunks: a dimension's own name (or path) before a local name.
                    let path = d.strip_prefix('/');
                    named
                        .iter()
                        .find(|(n, _)| n == d || path == Some(n.as_str()))
                        .or_else(|| {
                            named.iter().find(|(n, _)| {
                                !n.contains('/') && rechunker_core::meta::dim_local_name(d) == n
                            })
                        })
                        .map(|(_, l)| *l)
                })
                .collect(),
            ShardSpec::Shape(shape) if shape.len() == dims.len() => {
                shape.iter().map(|&l| Some(l)).collect()
            }
            ShardSpec::Shape(_) => vec![None; dims.len()],
        }
    }
}

/// How a [`ZarrTarget`](crate::ZarrTarget) writes. Settings left `None` keep what a Zarr source
/// array had: its format version and, unless a codec is given, its whole encoding (codecs with
/// their settings, filters, fill value, order, key encoding, attributes), with only the chunks
/// changed. Arrays from other formats get Zarr v3 and `zstd:3` then.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZarrWriteOptions {
    /// Zarr format version (`None`: the source's when it is Zarr, else 3).
    pub zarr_format: Option<ZarrFormat>,
    /// Chunk compression (`None`: the source's encoding when it is Zarr of the format written,
    /// else `zstd:3`).
    pub codec: Option<Codec>,
    /// Sharding (Zarr v3 only). Each shard is then the unit that is encoded and written whole.
    pub shards: Option<ShardSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_parse_and_print() {
        for s in [
            "zstd:3",
            "gzip:1",
            "none",
            "blosc:lz4:5:shuffle",
            "blosc:zstd:3:bitshuffle",
            "blosc:blosclz:9:noshuffle",
            "zstd:-5",
        ] {
            let c: Codec = s.parse().unwrap();
            assert_eq!(c.to_string(), s);
        }
        assert_eq!("ZSTD".parse::<Codec>().unwrap(), Codec::Zstd { level: 3 });
        for (s, why) in [
            ("lzma:3", "unknown codec `lzma`"),
            ("zstd:x", "not a number"),
            ("zstd:99", "outside"),
            ("gzip:10", "outside"),
            ("blosc:lz4:5", "takes 3 parameter(s)"),
            ("blosc:snappy:5:shuffle", "unknown blosc compressor"),
            ("blosc:lz4:12:shuffle", "not in 0..=9"),
            ("blosc:lz4:5:twist", "not shuffle"),
            ("none:1", "takes 0 parameter(s)"),
        ] {
            let e = s.parse::<Codec>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(s), "{s}: {e}");
        }
    }

    #[test]
    fn shard_specs_parse() {
        assert_eq!(
            "time=100, lat=48".parse::<ShardSpec>().unwrap(),
            ShardSpec::ByName(vec![("time".into(), 100), ("lat".into(), 48)])
        );
        assert_eq!(
            "10,20".parse::<ShardSpec>().unwrap(),
            ShardSpec::Shape(vec![10, 20])
        );
        for bad in ["time=0", "a=1,2", "a=1,a=2", "", "=4", "x"] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
        let dims = ["time".to_string(), "lat".to_string()];
        assert_eq!(
            ShardSpec::ByName(vec![("lat".into(), 4)]).lengths(&dims),
            [None, Some(4)]
        );
        assert_eq!(ShardSpec::Shape(vec![4]).lengths(&dims), [None, None]);
        assert_eq!("3".parse::<ZarrFormat>().unwrap(), ZarrFormat::V3);
        assert!(ZarrFormat::try_from(4).is_err());
    }
}

/// How a Zarr dataset is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZarrReadOptions {
    /// Leave out (with a warning line each) arrays of types or codecs the adapter cannot read,
    /// such as strings, instead of refusing the whole dataset.
    pub skip_unsupported: bool,
}
