//! How an HDF5 target is written.

use crate::error::Hdf5Error;
use rechunker_h5::{Filter, Pipeline};
use std::fmt;
use std::str::FromStr;

/// Compression of written chunks. Parsed from `gzip:L`, `deflate:L`, `zlib:L` (levels 0-9),
/// `zstd:L` (filter 32015, as hdf5plugin's `Zstd`; levels 1-22) or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hdf5Codec {
    None,
    Deflate { level: u32 },
    Zstd { level: i32 },
}

impl Default for Hdf5Codec {
    /// zlib level 1: fast, and readable by every HDF5 and NetCDF reader.
    fn default() -> Self {
        Hdf5Codec::Deflate { level: 1 }
    }
}

impl FromStr for Hdf5Codec {
    type Err = Hdf5Error;
    fn from_str(s: &str) -> Result<Self, Hdf5Error> {
        let text = s.trim().to_ascii_lowercase();
        let (name, level) = match text.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (text.as_str(), None),
        };
        let bad = || {
            Hdf5Error::Option(format!(
                "unknown HDF5 codec `{s}`; use gzip:LEVEL (0-9), zstd:LEVEL (1-22) or none"
            ))
        };
        match name {
            "none" if level.is_none() => Ok(Hdf5Codec::None),
            "gzip" | "deflate" | "zlib" => {
                let level = match level {
                    None => 4,
                    Some(l) => l.parse::<u32>().ok().filter(|l| *l <= 9).ok_or_else(bad)?,
                };
                Ok(Hdf5Codec::Deflate { level })
            }
            "zstd" => {
                let level = match level {
                    None => 3,
                    Some(l) => l
                        .parse::<i32>()
                        .ok()
                        .filter(|l| (1..=22).contains(l))
                        .ok_or_else(bad)?,
                };
                Ok(Hdf5Codec::Zstd { level })
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Hdf5Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hdf5Codec::None => f.write_str("none"),
            Hdf5Codec::Deflate { level } => write!(f, "gzip:{level}"),
            Hdf5Codec::Zstd { level } => write!(f, "zstd:{level}"),
        }
    }
}

/// Options of [`crate::Hdf5Target`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hdf5WriteOptions {
    /// Compression; `None`: each dataset of an HDF5 source keeps its own filters (shuffle,
    /// deflate, zstd, fletcher32), other sources get [`Hdf5Codec::default`].
    pub codec: Option<Hdf5Codec>,
    /// Byte shuffle before compression (ignored without a codec).
    pub shuffle: bool,
    /// Reopen an unfinished `PATH.partial` (a resumed run) instead of starting it anew.
    pub resume: bool,
}

impl Default for Hdf5WriteOptions {
    fn default() -> Self {
        Hdf5WriteOptions {
            codec: None,
            shuffle: true,
            resume: false,
        }
    }
}

impl Hdf5WriteOptions {
    /// The filter pipeline for elements of `item` bytes when no source filters are kept.
    pub fn pipeline(&self, item: usize) -> Pipeline {
        let mut filters = Vec::new();
        let compress = match self.codec.unwrap_or_default() {
            Hdf5Codec::None => None,
            Hdf5Codec::Deflate { level } => Some(Filter::Deflate(level)),
            Hdf5Codec::Zstd { level } => Some(Filter::Zstd(level)),
        };
        if let Some(c) = compress {
            if self.shuffle && item > 1 {
                filters.push(Filter::Shuffle(item));
            }
            filters.push(c);
        }
        Pipeline(filters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_parse() {
        assert_eq!(
            "gzip:1".parse::<Hdf5Codec>().unwrap(),
            Hdf5Codec::Deflate { level: 1 }
        );
        assert_eq!(
            "zlib:9".parse::<Hdf5Codec>().unwrap(),
            Hdf5Codec::Deflate { level: 9 }
        );
        assert_eq!(
            "ZSTD:3".parse::<Hdf5Codec>().unwrap(),
            Hdf5Codec::Zstd { level: 3 }
        );
        assert_eq!("none".parse::<Hdf5Codec>().unwrap(), Hdf5Codec::None);
        assert!("gzip:10".parse::<Hdf5Codec>().is_err());
        assert!("blosc".parse::<Hdf5Codec>().is_err());
        let o = Hdf5WriteOptions::default();
        assert_eq!(o.pipeline(4).describe(), ["shuffle", "zlib(1)"]);
        assert_eq!(o.pipeline(1).describe(), ["zlib(1)"]);
    }
}
