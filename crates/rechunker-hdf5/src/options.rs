//! How an HDF5 target is written.

use rechunker_h5::{Filter, H5Codec, Pipeline};

/// Compression of written chunks: the codec type HDF5 and NetCDF-4 share (`gzip:L`,
/// `zlib:L`, `zstd:L`, `none`; see [`H5Codec`]).
pub type Hdf5Codec = H5Codec;

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
        if let Some(c) = self.codec.unwrap_or_default().filter() {
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
