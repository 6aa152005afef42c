//! One HDF5 dataset as a rechunker array.

use crate::error::Result;
use rechunker_core::{ArrayMeta, ChunkedArray, ChunkedArrayMut, Region};
use rechunker_h5::ChunkedDataset;

/// A dataset of an [`crate::Hdf5Source`] or [`crate::Hdf5Target`]. Reads and writes may run
/// from several threads at once: raw chunks move under the library lock, codecs run outside.
#[derive(Debug)]
pub struct Hdf5Array {
    pub(crate) meta: ArrayMeta,
    pub(crate) dataset: ChunkedDataset,
}

impl Hdf5Array {
    /// Reads `region` into `out` (C order, native endian).
    pub fn read(&self, region: &Region, out: &mut [u8]) -> Result<()> {
        let zeros = vec![0u64; region.ndim()];
        Ok(self.dataset.read_box(region, out, &region.shape, &zeros)?)
    }

    /// Writes `data` to `region`, a union of whole chunks, and flushes the file's metadata so
    /// that what a finished task wrote survives a crash of a later one.
    pub fn write(&self, region: &Region, data: &[u8]) -> Result<()> {
        self.dataset.write_region(region, data)?;
        self.dataset.flush()?;
        Ok(())
    }

    /// The underlying dataset (chunk layout, filters, raw I/O).
    pub fn dataset(&self) -> &ChunkedDataset {
        &self.dataset
    }
}

impl ChunkedArray for Hdf5Array {
    fn meta(&self) -> &ArrayMeta {
        &self.meta
    }

    fn read_region(&self, region: &Region, out: &mut [u8]) -> rechunker_core::Result<()> {
        Ok(self.read(region, out)?)
    }

    fn read_overhead(&self) -> u64 {
        self.dataset.read_overhead()
    }
}

impl ChunkedArrayMut for Hdf5Array {
    fn write_region(&self, region: &Region, data: &[u8]) -> rechunker_core::Result<()> {
        Ok(self.write(region, data)?)
    }

    fn write_overhead(&self) -> u64 {
        self.dataset.write_overhead()
    }
}
