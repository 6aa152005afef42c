//! An in-memory array, for tests of the planner and executor without any file format.

use crate::array::{ChunkedArray, ChunkedArrayMut};
use crate::error::{Error, Result};
use crate::layout::{buffer_len, copy_box};
use crate::meta::ArrayMeta;
use crate::region::Region;
use std::sync::{Mutex, RwLock};

/// A whole array in one C-order buffer that records every region written to it.
pub struct MemArray {
    meta: ArrayMeta,
    data: RwLock<Vec<u8>>,
    writes: Mutex<Vec<Region>>,
}

impl MemArray {
    /// An array of `meta` holding `data` (C order); `None` fills it with the fill value.
    pub fn new(meta: ArrayMeta, data: Option<Vec<u8>>) -> Self {
        let len = buffer_len(&meta.shape(), meta.item_size()).unwrap_or(0);
        let data = data.unwrap_or_else(|| {
            let mut d = vec![0; len];
            crate::layout::fill_elements(&mut d, &meta.fill_bytes());
            d
        });
        assert_eq!(data.len(), len, "data does not match the array's shape");
        MemArray {
            meta,
            data: RwLock::new(data),
            writes: Mutex::new(Vec::new()),
        }
    }

    pub fn data(&self) -> Vec<u8> {
        self.data.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every region written so far, in order.
    pub fn writes(&self) -> Vec<Region> {
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ChunkedArray for MemArray {
    fn meta(&self) -> &ArrayMeta {
        &self.meta
    }

    fn read_region(&self, region: &Region, out: &mut [u8]) -> Result<()> {
        let data = self.data.read().unwrap_or_else(|p| p.into_inner());
        let zero = vec![0; region.ndim()];
        copy_box(
            &data,
            &self.meta.shape(),
            &region.start,
            out,
            &region.shape,
            &zero,
            &region.shape,
            self.meta.item_size(),
        );
        Ok(())
    }

    fn read_overhead(&self) -> u64 {
        0
    }
}

impl ChunkedArrayMut for MemArray {
    fn write_region(&self, region: &Region, data: &[u8]) -> Result<()> {
        if !self.meta.grid.is_aligned(region) {
            return Err(Error::Invalid(format!(
                "write {region} is not aligned to whole chunks"
            )));
        }
        let mut buf = self.data.write().unwrap_or_else(|p| p.into_inner());
        let zero = vec![0; region.ndim()];
        copy_box(
            data,
            &region.shape,
            &zero,
            &mut buf,
            &self.meta.shape(),
            &region.start,
            &region.shape,
            self.meta.item_size(),
        );
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(region.clone());
        Ok(())
    }

    fn write_overhead(&self) -> u64 {
        0
    }
}
