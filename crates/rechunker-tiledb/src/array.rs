//! One TileDB array as a rechunker [`ChunkedArray`]: either one attribute as a variable, or all
//! attributes at once as "slots" along a leading dimension (how in-place rechunking moves
//! multi-attribute arrays, whose writes must carry every attribute).
//!
//! Reads are one query per call on a pooled read handle, ROW_MAJOR over the region's subarray
//! (0-based offsets from each domain's start), straight into the caller's buffer; the context's
//! `sm.mem.tile_upper_memory_limit` bounds the tiles the library holds meanwhile.
//!
//! Writes take a union of whole tiles and make one fragment of its full tiles with one
//! GLOBAL_ORDER query, fed a few MiB of tiles at a time (we copy each tile into global order);
//! a ROW_MAJOR write instead would hold the filtered tiles of the whole region in memory until
//! it commits (measured: about the region's compressed size). Partial tiles at the domain's
//! end, which global-order writes refuse, go in small ROW_MAJOR writes of their own.

use crate::error::{Context as _, Result, TileDbError};
use crate::ffi::{self, Context, Query};
use crate::ffi::{Layout, QueryType};
use crate::schema::ArrayInfo;
use rechunker_core::layout::{buffer_len, copy_box};
use rechunker_core::region::unravel;
use rechunker_core::{
    ArrayMeta, ChunkGrid, ChunkedArray, ChunkedArrayMut, DataType, DimGrid, Region,
};
use std::sync::{Arc, Mutex};

/// `sm.mem.tile_upper_memory_limit` of the contexts this crate makes: the dense reader loads
/// at most this much tile data at once (beyond a single larger tile). The library's default
/// (1 GiB) would let one read of a large region hold all of its tiles.
pub(crate) const READ_TILE_LIMIT: u64 = 4 << 20;

/// Tiles a write submits at once (bytes; at least one tile).
const WRITE_BATCH: u64 = 4 << 20;

/// Largest temporary copy (bytes) the slot view makes per call when attribute sizes differ.
const SLOT_COPY_LIMIT: u64 = 16 << 20;

/// Name of the leading dimension of the slot view.
pub(crate) const SLOT_DIM: &str = "__attribute";

/// The config of every context this crate makes.
pub(crate) fn context() -> ffi::LibResult<Arc<Context>> {
    let config = ffi::Config::with(&[(
        "sm.mem.tile_upper_memory_limit",
        &READ_TILE_LIMIT.to_string(),
    )])?;
    Context::new(Some(&config))
}

/// Which part of the TileDB array a [`TileDbArray`] shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    /// One attribute (by index), as a variable of its own type and the array's dimensions.
    Attribute(usize),
    /// Every attribute: a leading dimension of one slot per attribute, each slot `item` bytes
    /// (the largest attribute's size; smaller values sit in a slot's first bytes, the rest is
    /// zero), so a region over all slots holds each attribute's data contiguously.
    Slots { item: usize },
}

/// A dense TileDB array (or one attribute of it).
pub struct TileDbArray {
    ctx: Arc<Context>,
    info: Arc<ArrayInfo>,
    meta: ArrayMeta,
    view: View,
    readers: Mutex<Vec<ffi::Array>>,
}

impl std::fmt::Debug for TileDbArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileDbArray")
            .field("uri", &self.info.uri)
            .field("meta", &self.meta)
            .field("view", &self.view)
            .finish_non_exhaustive()
    }
}

/// The unsigned type of `size` bytes, for slot views.
fn slot_type(size: usize) -> DataType {
    match size {
        1 => DataType::UInt8,
        2 => DataType::UInt16,
        4 => DataType::UInt32,
        _ => DataType::UInt64,
    }
}

impl TileDbArray {
    /// Attribute `index` of the array `info` describes, as a variable described by `meta`.
    pub(crate) fn attribute(
        ctx: Arc<Context>,
        info: Arc<ArrayInfo>,
        index: usize,
        meta: ArrayMeta,
    ) -> TileDbArray {
        TileDbArray {
            ctx,
            info,
            meta,
            view: View::Attribute(index),
            readers: Mutex::new(Vec::new()),
        }
    }

    /// All attributes of `info`'s array as one slot variable named `name`.
    pub(crate) fn slots(ctx: Arc<Context>, info: Arc<ArrayInfo>, name: &str) -> TileDbArray {
        let item = info.attrs.iter().map(|a| a.dtype.size()).max().unwrap_or(1);
        let n = info.attrs.len() as u64;
        let mut dims = vec![SLOT_DIM.to_string()];
        dims.extend(info.dim_names());
        let mut grid = vec![DimGrid::regular(n, n)];
        grid.extend(info.grid().dims);
        let meta = ArrayMeta {
            name: name.into(),
            dims,
            dtype: slot_type(item),
            grid: ChunkGrid::new(grid),
            fill_value: None,
            attrs: Default::default(),
            codecs: Vec::new(),
            encoding: None,
            unlimited_dims: Vec::new(),
        };
        TileDbArray {
            ctx,
            info,
            meta,
            view: View::Slots { item },
            readers: Mutex::new(Vec::new()),
        }
    }

    pub fn uri(&self) -> &str {
        &self.info.uri
    }

    fn variable(&self) -> &str {
        &self.meta.name
    }

    /// The array's own region (without the slot dimension) and the slot range of `region`.
    fn split(&self, region: &Region) -> (Region, std::ops::Range<usize>) {
        match self.view {
            View::Attribute(i) => (region.clone(), i..i + 1),
            View::Slots { .. } => (
                Region::new(region.start[1..].to_vec(), region.shape[1..].to_vec()),
                region.start[0] as usize..region.end(0) as usize,
            ),
        }
    }

    fn check(&self, region: &Region, len: usize) -> Result<()> {
        let shape = self.meta.shape();
        if region.ndim() != shape.len() || (0..region.ndim()).any(|d| region.end(d) > shape[d]) {
            return Err(TileDbError::OutOfBounds {
                uri: self.uri().into(),
                variable: self.variable().into(),
                region: region.clone(),
                shape,
            });
        }
        let expected = buffer_len(&region.shape, self.meta.item_size()).map(|n| n as u64);
        if expected != Some(len as u64) {
            return Err(TileDbError::BufferSize {
                uri: self.uri().into(),
                variable: self.variable().into(),
                region: region.clone(),
                expected: expected.unwrap_or(u64::MAX),
                found: len as u64,
            });
        }
        Ok(())
    }

    fn take_reader(&self) -> Result<ffi::Array> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match pooled {
            Some(a) => Ok(a),
            None => ffi::Array::open(&self.ctx, self.uri(), QueryType::Read)
                .at(self.uri(), "cannot open the array for reading"),
        }
    }

    fn give_reader(&self, array: ffi::Array) {
        self.readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(array);
    }

    /// Reads attribute `attr` over `inner` (the array's own region) into `out`.
    fn read_attr(
        &self,
        array: &ffi::Array,
        attr: usize,
        inner: &Region,
        out: &mut [u8],
    ) -> Result<()> {
        let name = &self.info.attrs[attr].name;
        let label = || {
            if name.is_empty() {
                self.variable().to_string()
            } else {
                name.clone()
            }
        };
        let mut query = Query::new(array, Layout::RowMajor, &self.info.subarray(inner))
            .map_err(|e| lib(self.uri(), &format!("cannot read {inner}"), &label(), e))?;
        query
            .read_into(name, out)
            .map_err(|e| lib(self.uri(), &format!("cannot read {inner}"), &label(), e))
    }

    /// Reads `region` into `out` (C order, native endian).
    pub fn read(&self, region: &Region, out: &mut [u8]) -> Result<()> {
        self.check(region, out.len())?;
        if region.is_empty() {
            return Ok(());
        }
        let array = self.take_reader()?;
        let result = self.read_with(&array, region, out);
        self.give_reader(array);
        result
    }

    fn read_with(&self, array: &ffi::Array, region: &Region, out: &mut [u8]) -> Result<()> {
        let (inner, slots) = self.split(region);
        let View::Slots { item } = self.view else {
            return self.read_attr(array, slots.start, &inner, out);
        };
        let cells = inner.num_elements() as usize;
        let per_slot = cells * item;
        if self.info.attrs.iter().all(|a| a.dtype.size() == item) {
            for (k, attr) in slots.clone().enumerate() {
                self.read_attr(
                    array,
                    attr,
                    &inner,
                    &mut out[k * per_slot..(k + 1) * per_slot],
                )?;
            }
            return Ok(());
        }
        // Mixed sizes: read tile-aligned sub-boxes into a temporary and spread them into slots.
        out.fill(0);
        let mut temp = Vec::new();
        for sub in self.sub_boxes(&inner, SLOT_COPY_LIMIT) {
            for (k, attr) in slots.clone().enumerate() {
                let size = self.info.attrs[attr].dtype.size();
                temp.clear();
                temp.resize(sub.num_elements() as usize * size, 0);
                self.read_attr(array, attr, &sub, &mut temp)?;
                let slot = &mut out[k * per_slot..(k + 1) * per_slot];
                spread(&temp, size, slot, item, &inner, &sub);
            }
        }
        Ok(())
    }

    /// Tile-aligned pieces of `inner` (clipped to it) of at most `limit` bytes of all the
    /// view's attributes (or one tile, if larger), in C order.
    fn sub_boxes(&self, inner: &Region, limit: u64) -> Vec<Region> {
        let tiles = self.info.grid();
        let item = self.cell_bytes();
        let local = ChunkGrid::new(
            (0..inner.ndim())
                .map(|d| {
                    let g = &tiles.dims[d];
                    let (a, b) = (inner.start[d], inner.end(d));
                    let mut bounds = vec![0];
                    for c in g.chunks_overlapping(a..b) {
                        let end = g.chunk_range(c).end.min(b);
                        bounds.push(end - a);
                    }
                    bounds.dedup();
                    DimGrid::from_lengths(bounds.windows(2).map(|w| w[1] - w[0]))
                })
                .collect(),
        );
        let blocks = local.blocks_within(item, limit);
        (0..blocks.num_chunks())
            .map(|i| {
                let r = blocks.chunk_region_linear(i);
                let start = r
                    .start
                    .iter()
                    .zip(&inner.start)
                    .map(|(a, b)| a + b)
                    .collect();
                Region::new(start, r.shape)
            })
            .collect()
    }

    /// Bytes of one cell of the attributes this view shows (as TileDB stores them).
    fn cell_bytes(&self) -> u64 {
        match self.view {
            View::Attribute(i) => self.info.attrs[i].dtype.size() as u64,
            View::Slots { .. } => self.info.attrs.iter().map(|a| a.dtype.size() as u64).sum(),
        }
    }

    /// The tiles a write batch holds: [`WRITE_BATCH`] bytes, or one tile if larger.
    fn batch_bytes(&self) -> u64 {
        write_batch(self.tile_bytes(), self.array_bytes())
    }

    /// Splits `inner` (a union of whole tiles) into the box of full tiles and the boxes that
    /// hold the partial tiles at the domain's end (at most 2^ndim boxes in all); the flag says
    /// which box is the full one.
    fn full_and_edges(&self, inner: &Region) -> Vec<(Region, bool)> {
        let mut boxes: Vec<(Vec<u64>, Vec<u64>, bool)> = vec![(Vec::new(), Vec::new(), true)];
        for (d, dim) in self.info.dims.iter().enumerate() {
            let (s, e) = (inner.start[d], inner.end(d));
            let full_end = (dim.len() / dim.extent) * dim.extent;
            let mut parts = Vec::new();
            if s < full_end.min(e) {
                parts.push((s, full_end.min(e), true));
            }
            if e > full_end.max(s) {
                parts.push((full_end.max(s), e, false));
            }
            boxes = boxes
                .into_iter()
                .flat_map(|(start, shape, full)| {
                    parts.iter().map(move |&(a, b, f)| {
                        let (mut start, mut shape) = (start.clone(), shape.clone());
                        start.push(a);
                        shape.push(b - a);
                        (start, shape, full && f)
                    })
                })
                .collect();
        }
        boxes
            .into_iter()
            .map(|(start, shape, full)| (Region::new(start, shape), full))
            .collect()
    }

    /// Writes `data` to `region`, a union of whole tiles. The full tiles go in one global-order
    /// query, in batches of whole tiles (one fragment, memory bounded by the batch); partial
    /// tiles at the domain's end, which global-order writes cannot take, go in ROW_MAJOR
    /// queries of at most a batch each (usually one small fragment per edge).
    pub fn write(&self, region: &Region, data: &[u8]) -> Result<()> {
        self.check(region, data.len())?;
        if !self.meta.grid.is_aligned(region) {
            return Err(TileDbError::Unaligned {
                uri: self.uri().into(),
                variable: self.variable().into(),
                region: region.clone(),
            });
        }
        if region.is_empty() {
            return Ok(());
        }
        let (inner, slots) = self.split(region);
        let sources: Vec<Source<'_>> = match self.view {
            View::Attribute(i) => vec![Source {
                name: &self.info.attrs[i].name,
                data,
                item: self.info.attrs[i].dtype.size(),
                size: self.info.attrs[i].dtype.size(),
            }],
            View::Slots { item } => {
                if slots.len() != self.info.attrs.len() {
                    return Err(TileDbError::Unaligned {
                        uri: self.uri().into(),
                        variable: self.variable().into(),
                        region: region.clone(),
                    });
                }
                let per_slot = inner.num_elements() as usize * item;
                self.info
                    .attrs
                    .iter()
                    .enumerate()
                    .map(|(k, a)| Source {
                        name: &a.name,
                        data: &data[k * per_slot..(k + 1) * per_slot],
                        item,
                        size: a.dtype.size(),
                    })
                    .collect()
            }
        };
        let array = ffi::Array::open(&self.ctx, self.uri(), QueryType::Write).at_var(
            self.uri(),
            "cannot open the array for writing",
            self.variable(),
        )?;
        for (part, full) in self.full_and_edges(&inner) {
            let fail = |e: ffi::LibError| {
                lib(
                    self.uri(),
                    &format!("cannot write {part}"),
                    self.variable(),
                    e,
                )
            };
            if full {
                self.write_global(&array, &inner, &part, &sources)
                    .map_err(fail)?;
            } else {
                for sub in self.sub_boxes(&part, self.batch_bytes()) {
                    let packed: Vec<Vec<u8>> = sources
                        .iter()
                        .map(|src| {
                            let mut out = Vec::new();
                            src.gather_into(&mut out, &inner, &sub, false);
                            out
                        })
                        .collect();
                    let buffers: Vec<(&str, &[u8])> = sources
                        .iter()
                        .zip(&packed)
                        .map(|(src, p)| (src.name, p.as_slice()))
                        .collect();
                    let mut query = Query::new(&array, Layout::RowMajor, &self.info.subarray(&sub))
                        .map_err(fail)?;
                    query.write(&buffers).map_err(fail)?;
                }
            }
        }
        array.close().at_var(
            self.uri(),
            &format!("cannot commit the write of {inner}"),
            self.variable(),
        )
    }

    /// One global-order query over `part` (full tiles only): tiles in the array's tile order,
    /// cells in its cell order, submitted a batch of whole tiles at a time.
    fn write_global(
        &self,
        array: &ffi::Array,
        inner: &Region,
        part: &Region,
        sources: &[Source<'_>],
    ) -> ffi::LibResult<()> {
        let extents: Vec<u64> = self.info.dims.iter().map(|d| d.extent).collect();
        let counts: Vec<u64> = (0..part.ndim())
            .map(|d| part.shape[d] / extents[d])
            .collect();
        let total: u64 = counts.iter().product();
        let tile_cells: u64 = extents.iter().product();
        let per_batch = (self.batch_bytes() / (tile_cells * self.cell_bytes()).max(1)).max(1);
        let col_cells = self.info.cell_order == Layout::ColMajor;
        let col_tiles = self.info.tile_order == Layout::ColMajor;
        let mut query = Query::new(array, Layout::GlobalOrder, &self.info.subarray(part))?;
        let mut batches: Vec<Vec<u8>> = vec![Vec::new(); sources.len()];
        let mut in_batch = 0;
        for t in 0..total {
            // The t-th tile in tile order.
            let index = if col_tiles {
                let mut rev: Vec<u64> = counts.clone();
                rev.reverse();
                let mut i = unravel(t, &rev);
                i.reverse();
                i
            } else {
                unravel(t, &counts)
            };
            let tile = Region::new(
                (0..part.ndim())
                    .map(|d| part.start[d] + index[d] * extents[d])
                    .collect(),
                extents.clone(),
            );
            for (src, batch) in sources.iter().zip(batches.iter_mut()) {
                src.gather_into(batch, inner, &tile, col_cells);
            }
            in_batch += 1;
            let last = t + 1 == total;
            if in_batch == per_batch || last {
                let buffers: Vec<(&str, &[u8])> = sources
                    .iter()
                    .zip(&batches)
                    .map(|(src, b)| (src.name, b.as_slice()))
                    .collect();
                query.write_global(&buffers, last)?;
                batches.iter_mut().for_each(Vec::clear);
                in_batch = 0;
            }
        }
        Ok(())
    }

    /// Bytes beyond the caller's buffer one read holds. Measured with libtiledb 2.30: the dense
    /// reader keeps up to about three times its tile batch ([`READ_TILE_LIMIT`], or one tile
    /// if larger; never more than the array) plus the tile being copied out.
    fn read_cost(&self) -> u64 {
        let tile = self.tile_bytes();
        let batch = READ_TILE_LIMIT.min(self.array_bytes()).max(tile);
        3 * batch + tile + (4 << 20) + self.slot_copy()
    }

    /// Bytes beyond the caller's buffer one write holds (see [`write_overhead_for`]).
    fn write_cost(&self) -> u64 {
        write_overhead_for(self.tile_bytes(), self.array_bytes())
    }

    /// Bytes of the whole array (all the view's attributes).
    fn array_bytes(&self) -> u64 {
        self.info.shape().iter().product::<u64>() * self.cell_bytes()
    }

    fn tile_bytes(&self) -> u64 {
        self.info.dims.iter().map(|d| d.extent).product::<u64>() * self.cell_bytes()
    }

    fn slot_copy(&self) -> u64 {
        match self.view {
            View::Slots { item } if self.info.attrs.iter().any(|a| a.dtype.size() != item) => {
                SLOT_COPY_LIMIT.max(self.tile_bytes())
            }
            _ => 0,
        }
    }
}

/// Where one attribute's data is in a write's buffer: a box of the region in C order, `item`
/// bytes per cell of which the first `size` are the value.
struct Source<'a> {
    name: &'a str,
    data: &'a [u8],
    item: usize,
    size: usize,
}

impl Source<'_> {
    /// Appends the values of `sub` (inside `inner`, the buffer's box), `size` bytes each, in
    /// C order or (`col_major`) Fortran order.
    fn gather_into(&self, out: &mut Vec<u8>, inner: &Region, sub: &Region, col_major: bool) {
        let start = out.len();
        out.resize(start + sub.num_elements() as usize * self.size, 0);
        let dst = &mut out[start..];
        if self.size == self.item && !col_major {
            let zero = vec![0; sub.ndim()];
            copy_box(
                self.data,
                &inner.shape,
                &sub.offset_in(inner),
                dst,
                &sub.shape,
                &zero,
                &sub.shape,
                self.item,
            );
            return;
        }
        let offset = sub.offset_in(inner);
        let mut shape = sub.shape.clone();
        if col_major {
            shape.reverse();
        }
        for (i, mut idx) in rechunker_core::region::indices(&shape).enumerate() {
            if col_major {
                idx.reverse();
            }
            let at: Vec<u64> = idx.iter().zip(&offset).map(|(a, b)| a + b).collect();
            let p = rechunker_core::region::ravel(&at, &inner.shape) as usize * self.item;
            dst[i * self.size..(i + 1) * self.size].copy_from_slice(&self.data[p..p + self.size]);
        }
    }
}

fn lib(uri: &str, action: &str, variable: &str, e: ffi::LibError) -> TileDbError {
    TileDbError::Library {
        uri: uri.into(),
        variable: Some(variable.into()),
        action: action.into(),
        message: e.0,
    }
}

/// Copies the packed values of `sub` (`size` bytes each) into their `item`-byte slots in
/// `slot`, which holds `inner` (C order).
fn spread(packed: &[u8], size: usize, slot: &mut [u8], item: usize, inner: &Region, sub: &Region) {
    if size == item {
        let zero = vec![0; sub.ndim()];
        copy_box(
            packed,
            &sub.shape,
            &zero,
            slot,
            &inner.shape,
            &sub.offset_in(inner),
            &sub.shape,
            item,
        );
        return;
    }
    let offset = sub.offset_in(inner);
    for (i, idx) in rechunker_core::region::indices(&sub.shape).enumerate() {
        let at: Vec<u64> = idx.iter().zip(&offset).map(|(a, b)| a + b).collect();
        let p = rechunker_core::region::ravel(&at, &inner.shape) as usize * item;
        slot[p..p + size].copy_from_slice(&packed[i * size..(i + 1) * size]);
    }
}

impl ChunkedArray for TileDbArray {
    fn meta(&self) -> &ArrayMeta {
        &self.meta
    }

    fn read_region(&self, region: &Region, out: &mut [u8]) -> rechunker_core::Result<()> {
        Ok(self.read(region, out)?)
    }

    fn read_overhead(&self) -> u64 {
        self.read_cost()
    }
}

impl ChunkedArrayMut for TileDbArray {
    fn write_region(&self, region: &Region, data: &[u8]) -> rechunker_core::Result<()> {
        Ok(self.write(region, data)?)
    }

    fn write_overhead(&self) -> u64 {
        self.write_cost()
    }
}

/// Bytes of the tiles one write submits at once: [`WRITE_BATCH`], but at least one tile and
/// at most the whole array.
fn write_batch(tile_bytes: u64, array_bytes: u64) -> u64 {
    WRITE_BATCH.min(array_bytes).max(tile_bytes)
}

/// [`TileDbArray::write_overhead`] of an array with tiles of `tile_bytes` and `array_bytes` in
/// all (every attribute it writes). Measured with libtiledb 2.30 on incompressible data (the
/// worst case) under the `rechunk` binary's allocator settings: a write holds up to about 4.4
/// batches plus up to ~12 MiB beyond the caller's buffer (our global-order copy of the batch,
/// the library's tiles, their filtered copies and the compressor's state); partial edge tiles,
/// written ROW_MAJOR a batch at a time, stay within the same bound.
pub(crate) fn write_overhead_for(tile_bytes: u64, array_bytes: u64) -> u64 {
    5 * write_batch(tile_bytes, array_bytes) + (16 << 20)
}
