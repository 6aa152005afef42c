//! One HDF5 dataset read and written by region, with raw chunk I/O under the lock and the
//! codecs outside it.

use crate::codec::Pipeline;
use crate::dtype::{classify_type, file_type, mem_type, read_type, TypeInfo};
use crate::error::H5Error;
use crate::hid::{check, Hid};
use crate::{encoded_bound, locked, LIBRARY_BUFFERS};
use hdf5::globals::{H5P_DATASET_CREATE, H5P_LINK_CREATE};
use hdf5_sys::h5::{haddr_t, hsize_t, HADDR_UNDEF};
use hdf5_sys::h5d::{
    H5D_fill_value_t, H5D_layout_t, H5Dcreate2, H5Dget_chunk_info_by_coord, H5Dget_create_plist,
    H5Dget_space, H5Dget_type, H5Dread, H5Dread_chunk, H5Dset_extent, H5Dwrite, H5Dwrite_chunk,
};
use hdf5_sys::h5f::{H5F_scope_t, H5Fflush};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::{
    H5Pcreate, H5Pfill_value_defined, H5Pget_chunk, H5Pget_fill_value, H5Pget_layout,
    H5Pset_attr_creation_order, H5Pset_chunk, H5Pset_create_intermediate_group, H5Pset_fill_value,
    H5Pset_obj_track_times, H5P_CRT_ORDER_INDEXED, H5P_CRT_ORDER_TRACKED, H5P_DEFAULT,
};
use hdf5_sys::h5s::{
    H5S_class_t, H5S_seloper_t, H5Screate, H5Screate_simple, H5Sget_simple_extent_dims,
    H5Sget_simple_extent_ndims, H5Sget_simple_extent_type, H5Sselect_hyperslab, H5S_ALL,
    H5S_UNLIMITED,
};
use rechunker_core::layout::{buffer_len, copy_box, fill_elements};
use rechunker_core::region::ravel;
use rechunker_core::{ChunkGrid, DataType, Region, Scalar};
use std::ffi::CString;

/// An open HDF5 dataset of a numeric type, read by region and written by whole chunks.
///
/// Chunked datasets whose filters are shuffle and at most one of deflate / zstd take the
/// direct path: raw chunks are fetched (`H5Dread_chunk`) or stored (`H5Dwrite_chunk`) under
/// the lock and decoded / encoded on the calling thread outside it. Other datasets go through
/// `H5Dread` / `H5Dwrite` under the lock.
#[derive(Debug)]
pub struct ChunkedDataset {
    path: String,
    variable: String,
    dset: Hid,
    info: TypeInfo,
    mem_type: Hid,
    shape: Vec<u64>,
    /// Maximum extent per dimension (`None` = unlimited).
    max_shape: Vec<Option<u64>>,
    /// The stored chunk shape (full, not clipped at the edges); `None` when not chunked.
    chunk: Option<Vec<u64>>,
    pipeline: Pipeline,
    /// One element: what unwritten chunks read as.
    fill: Vec<u8>,
    user_fill: Option<Scalar>,
}

/// What a new dataset looks like.
#[derive(Clone, Debug)]
pub struct DatasetSpec<'a> {
    pub dtype: DataType,
    pub shape: &'a [u64],
    /// Chunk shape; each length is clamped to `1..=len` (zero-length dimensions become
    /// extendible so that they can be chunked at all).
    pub chunk: &'a [u64],
    /// Dimensions that may grow later (unlimited).
    pub unlimited: &'a [bool],
    pub pipeline: &'a Pipeline,
    /// The storage fill value, one native element.
    pub fill: Option<&'a [u8]>,
}

/// Creates dataset `name` (a path relative to `loc`, intermediate groups created) and
/// returns it. Attribute creation order is tracked so that attributes keep their order.
pub fn create_dataset(
    loc: hid_t,
    name: &str,
    spec: &DatasetSpec<'_>,
    path: &str,
) -> Result<Hid, H5Error> {
    let err = |m: String| H5Error::variable(path, name, m);
    let cname = CString::new(name).map_err(|e| err(e.to_string()))?;
    if let Some(fill) = spec.fill.filter(|f| f.len() != spec.dtype.size()) {
        return Err(err(format!(
            "a fill value of {} bytes is not one {:?} element",
            fill.len(),
            spec.dtype
        )));
    }
    locked(|| {
        let ndim = spec.shape.len();
        let dims: Vec<hsize_t> = spec.shape.to_vec();
        let maxdims: Vec<hsize_t> = (0..ndim)
            .map(|d| {
                if spec.unlimited.get(d).copied().unwrap_or(false) || dims[d] == 0 {
                    H5S_UNLIMITED
                } else {
                    dims[d]
                }
            })
            .collect();
        // SAFETY: under the library lock (as is every call below, inside this `locked`).
        // `dims` and `maxdims` both hold `ndim` values, the rank we pass.
        let space = Hid::new(unsafe {
            if ndim == 0 {
                H5Screate(H5S_class_t::H5S_SCALAR)
            } else {
                H5Screate_simple(ndim as i32, dims.as_ptr(), maxdims.as_ptr())
            }
        })
        .map_err(err)?;
        // SAFETY: lock held; ids by value.
        let dcpl = Hid::new(unsafe { H5Pcreate(*H5P_DATASET_CREATE) }).map_err(err)?;
        // SAFETY: lock held; `dcpl` is our live property list, flags by value.
        check(unsafe { H5Pset_obj_track_times(dcpl.id(), 0) }).map_err(err)?;
        // SAFETY: as above.
        check(unsafe {
            H5Pset_attr_creation_order(dcpl.id(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED)
        })
        .map_err(err)?;
        if ndim > 0 {
            let chunk: Vec<hsize_t> = (0..ndim)
                .map(|d| {
                    let c = spec.chunk.get(d).copied().unwrap_or(1).max(1);
                    if dims[d] == 0 {
                        c
                    } else {
                        c.min(dims[d])
                    }
                })
                .collect();
            // SAFETY: lock held; `chunk` holds `ndim` values, the rank we pass.
            check(unsafe { H5Pset_chunk(dcpl.id(), ndim as i32, chunk.as_ptr()) }).map_err(err)?;
            spec.pipeline.apply_to_dcpl(dcpl.id()).map_err(err)?;
        } else if !spec.pipeline.is_empty() {
            return Err(err("a scalar cannot be compressed".into()));
        }
        let ftype = file_type(spec.dtype).map_err(err)?;
        if let Some(fill) = spec.fill {
            let mtype = mem_type(spec.dtype).map_err(err)?;
            // SAFETY: lock held; libhdf5 copies one element of `mtype` from `fill`, which
            // holds exactly one `dtype` element (checked before taking the lock), the size
            // of `mtype`.
            check(unsafe { H5Pset_fill_value(dcpl.id(), mtype.id(), fill.as_ptr().cast()) })
                .map_err(err)?;
        }
        // SAFETY: lock held; ids by value.
        let lcpl = Hid::new(unsafe { H5Pcreate(*H5P_LINK_CREATE) }).map_err(err)?;
        // SAFETY: lock held; `lcpl` is our live property list.
        check(unsafe { H5Pset_create_intermediate_group(lcpl.id(), 1) }).map_err(err)?;
        // SAFETY: lock held; `cname` is a NUL-terminated name that outlives the call and the
        // ids are live objects of ours (or the caller's `loc`).
        Hid::new(unsafe {
            H5Dcreate2(
                loc,
                cname.as_ptr(),
                ftype.id(),
                space.id(),
                lcpl.id(),
                dcpl.id(),
                H5P_DEFAULT,
            )
        })
        .map_err(|m| err(format!("cannot create the dataset: {m}")))
    })
}

/// True when the box `shape` at `offset` of a C-order buffer of `outer` is one contiguous
/// run of elements.
fn is_contiguous(outer: &[u64], shape: &[u64]) -> bool {
    match shape.iter().position(|&s| s != 1) {
        None => true,
        Some(k) => (k + 1..shape.len()).all(|j| shape[j] == outer[j]),
    }
}

/// Reverses the bytes of every `item`-byte element.
fn swap_bytes(buf: &mut [u8], item: usize) {
    if item > 1 {
        for e in buf.chunks_exact_mut(item) {
            e.reverse();
        }
    }
}

impl ChunkedDataset {
    /// Takes over the open dataset `dset` of file `path`, called `variable` in messages.
    /// `Err` names what is not supported (its type, a null dataspace, ...).
    pub fn open(dset: Hid, path: &str, variable: &str) -> Result<ChunkedDataset, H5Error> {
        let err = |m: String| H5Error::variable(path, variable, m);
        locked(|| {
            // SAFETY: under the library lock (as is every call below, inside this `locked`);
            // `dset` is the live dataset we were given.
            let space = Hid::new(unsafe { H5Dget_space(dset.id()) }).map_err(err)?;
            // SAFETY: lock held; `space` is our live dataspace.
            let class = unsafe { H5Sget_simple_extent_type(space.id()) };
            if class == H5S_class_t::H5S_NULL {
                return Err(err("an empty (null) dataspace is not supported".into()));
            }
            // SAFETY: as above.
            let ndim = check(unsafe { H5Sget_simple_extent_ndims(space.id()) }).map_err(err)?;
            let mut shape = vec![0 as hsize_t; ndim as usize];
            let mut max = vec![0 as hsize_t; ndim as usize];
            if ndim > 0 {
                // SAFETY: lock held; `shape` and `max` hold `ndim` values each, the rank of
                // `space`, which is all libhdf5 writes.
                check(unsafe {
                    H5Sget_simple_extent_dims(space.id(), shape.as_mut_ptr(), max.as_mut_ptr())
                })
                .map_err(err)?;
            }
            // SAFETY: lock held; ids by value.
            let ftype = Hid::new(unsafe { H5Dget_type(dset.id()) }).map_err(err)?;
            let info = classify_type(ftype.id())
                .map_err(|what| err(format!("{what} are not supported")))?;
            let mem = read_type(ftype.id(), info.dtype).map_err(err)?;
            // SAFETY: lock held; ids by value.
            let dcpl = Hid::new(unsafe { H5Dget_create_plist(dset.id()) }).map_err(err)?;
            let item = info.dtype.size();
            // SAFETY: lock held; `dcpl` is our live property list.
            let (chunk, pipeline) = if unsafe { H5Pget_layout(dcpl.id()) }
                == H5D_layout_t::H5D_CHUNKED
            {
                let mut chunk = vec![0 as hsize_t; ndim as usize];
                // SAFETY: lock held; `chunk` holds `ndim` values, the most libhdf5 writes.
                check(unsafe { H5Pget_chunk(dcpl.id(), ndim, chunk.as_mut_ptr()) }).map_err(err)?;
                let pipeline = Pipeline::from_dcpl(dcpl.id(), item).map_err(err)?;
                (Some(chunk), pipeline)
            } else {
                (None, Pipeline::default())
            };
            let mut status = H5D_fill_value_t::H5D_FILL_VALUE_UNDEFINED;
            // SAFETY: lock held; `status` is a local the call writes one enum value into.
            check(unsafe { H5Pfill_value_defined(dcpl.id(), &mut status) }).map_err(err)?;
            let mut fill = vec![0u8; item];
            let user_fill = if status == H5D_fill_value_t::H5D_FILL_VALUE_USER_DEFINED {
                // SAFETY: lock held; libhdf5 converts the fill value to `mem` and writes one
                // element of it, `item` bytes (`mem` is the native type of `dtype`, or for
                // `Char` the one-byte stored string type), into `fill` of `item` bytes.
                check(unsafe { H5Pget_fill_value(dcpl.id(), mem.id(), fill.as_mut_ptr().cast()) })
                    .map_err(err)?;
                Scalar::from_bytes(info.dtype, &fill)
            } else {
                None
            };
            Ok(ChunkedDataset {
                path: path.into(),
                variable: variable.into(),
                dset,
                info,
                mem_type: mem,
                max_shape: max
                    .iter()
                    .map(|&m| (m != H5S_UNLIMITED).then_some(m))
                    .collect(),
                shape,
                chunk,
                pipeline,
                fill,
                user_fill,
            })
        })
    }

    fn err(&self, message: impl Into<String>) -> H5Error {
        H5Error::variable(&self.path, &self.variable, message)
    }

    pub fn id(&self) -> hid_t {
        self.dset.id()
    }

    pub fn dtype(&self) -> DataType {
        self.info.dtype
    }

    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Per dimension, `None` where the dataset may grow without bound.
    pub fn max_shape(&self) -> &[Option<u64>] {
        &self.max_shape
    }

    /// The stored chunk shape, `None` for contiguous or compact datasets.
    pub fn chunk_shape(&self) -> Option<&[u64]> {
        self.chunk.as_deref()
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The fill value set when the dataset was created, if any.
    pub fn user_fill(&self) -> Option<Scalar> {
        self.user_fill
    }

    /// Sets what unwritten chunks read as (one native element), e.g. netCDF's default fill.
    pub fn set_fill(&mut self, fill: Vec<u8>) {
        if fill.len() == self.info.dtype.size() {
            self.fill = fill;
        }
    }

    /// True when chunks are fetched raw and decoded outside the library lock.
    pub fn is_direct(&self) -> bool {
        self.chunk.is_some() && self.pipeline.is_native() && !self.shape.is_empty()
    }

    fn item(&self) -> usize {
        self.info.dtype.size()
    }

    /// Bytes of one stored (full) chunk, decoded.
    pub fn chunk_bytes(&self) -> u64 {
        self.chunk
            .as_ref()
            .map_or(0, |c| c.iter().product::<u64>() * self.item() as u64)
    }

    /// Extra bytes one [`read_box`](Self::read_box) call allocates: the raw chunk, the decoded
    /// chunk and one intermediate stage, plus codec state; for library reads, what libhdf5's
    /// filters and conversion buffers take.
    pub fn read_overhead(&self) -> u64 {
        let c = self.chunk_bytes();
        if self.chunk.is_none() {
            return LIBRARY_BUFFERS;
        }
        let codec = if self.is_direct() {
            1 << 20
        } else {
            LIBRARY_BUFFERS
        };
        encoded_bound(c) + 2 * c + codec
    }

    /// Extra bytes one [`write_region`](Self::write_region) call allocates: a padded chunk
    /// copy, a shuffled copy and the encoded chunk, plus codec state.
    pub fn write_overhead(&self) -> u64 {
        let c = self.chunk_bytes();
        if self.chunk.is_none() {
            return LIBRARY_BUFFERS;
        }
        let codec = if self.is_direct() {
            self.pipeline.codec_state_bytes()
        } else {
            LIBRARY_BUFFERS
        };
        encoded_bound(c) + 2 * c + codec
    }

    fn check_region(&self, region: &Region) -> Result<(), H5Error> {
        if region.ndim() != self.shape.len()
            || (0..region.ndim()).any(|d| region.end(d) > self.shape[d])
        {
            return Err(self.err(format!(
                "region {region} is outside its shape {:?}",
                self.shape
            )));
        }
        Ok(())
    }

    /// Reads `region` of the dataset into the box at `out_offset` of `out`, a C-order buffer
    /// of shape `out_shape` (native endian). Called from several threads at once.
    pub fn read_box(
        &self,
        region: &Region,
        out: &mut [u8],
        out_shape: &[u64],
        out_offset: &[u64],
    ) -> Result<(), H5Error> {
        self.check_region(region)?;
        let item = self.item();
        if out_shape.len() != region.ndim() || out_offset.len() != region.ndim() {
            return Err(self.err(format!(
                "output box at {out_offset:?} of {out_shape:?} does not have the rank of {region}"
            )));
        }
        if buffer_len(out_shape, item) != Some(out.len()) {
            return Err(self.err(format!(
                "output buffer of {} bytes does not hold shape {out_shape:?}",
                out.len()
            )));
        }
        if region.is_empty() {
            return Ok(());
        }
        if self.is_direct() {
            self.read_direct(region, out, out_shape, out_offset)
        } else {
            self.read_library(region, out, out_shape, out_offset)
        }
    }

    fn read_library(
        &self,
        region: &Region,
        out: &mut [u8],
        out_shape: &[u64],
        out_offset: &[u64],
    ) -> Result<(), H5Error> {
        let err = |m: String| self.err(format!("cannot read {region}: {m}"));
        locked(|| {
            if region.ndim() == 0 {
                // SAFETY: under the library lock; a scalar dataset reads one element of
                // `mem_type` (`item` bytes), and `out` holds exactly one (`read_box` checked
                // its length against the empty shape).
                return check(unsafe {
                    H5Dread(
                        self.dset.id(),
                        self.mem_type.id(),
                        H5S_ALL,
                        H5S_ALL,
                        H5P_DEFAULT,
                        out.as_mut_ptr().cast(),
                    )
                })
                .map(|_| ())
                .map_err(err);
            }
            let (file_space, mem_space) = self.selections(region, out_shape, out_offset)?;
            // SAFETY: under the library lock. `out` holds exactly the elements of
            // `out_shape` (checked by `read_box`), the extent of `mem_space`, at `item` bytes
            // each, the size of `mem_type`; libhdf5 refuses a memory selection that leaves
            // that extent, so it writes only inside `out`.
            check(unsafe {
                H5Dread(
                    self.dset.id(),
                    self.mem_type.id(),
                    mem_space.id(),
                    file_space.id(),
                    H5P_DEFAULT,
                    out.as_mut_ptr().cast(),
                )
            })
            .map(|_| ())
            .map_err(err)
        })
    }

    /// The file selection of `region` and the memory selection of the box at `offset` of a
    /// buffer of `buffer_shape` (lock held). `region`, `buffer_shape` and `offset` have the
    /// dataset's rank (callers check it).
    fn selections(
        &self,
        region: &Region,
        buffer_shape: &[u64],
        offset: &[u64],
    ) -> Result<(Hid, Hid), H5Error> {
        let err = |m: String| self.err(m);
        // SAFETY: callers hold the library lock; ids by value.
        let file_space = Hid::new(unsafe { H5Dget_space(self.dset.id()) }).map_err(err)?;
        // SAFETY: lock held; `region.start` and `region.shape` hold one value per dimension
        // of the dataset (`check_region`), the rank of `file_space`; null stride and block
        // mean 1.
        check(unsafe {
            H5Sselect_hyperslab(
                file_space.id(),
                H5S_seloper_t::H5S_SELECT_SET,
                region.start.as_ptr(),
                std::ptr::null(),
                region.shape.as_ptr(),
                std::ptr::null(),
            )
        })
        .map_err(err)?;
        // SAFETY: lock held; `buffer_shape` holds the rank we pass; null means no maximum.
        let mem_space = Hid::new(unsafe {
            H5Screate_simple(
                buffer_shape.len() as i32,
                buffer_shape.as_ptr(),
                std::ptr::null(),
            )
        })
        .map_err(err)?;
        // SAFETY: lock held; `offset` and `region.shape` hold one value per dimension of
        // `mem_space` (callers check the ranks agree).
        check(unsafe {
            H5Sselect_hyperslab(
                mem_space.id(),
                H5S_seloper_t::H5S_SELECT_SET,
                offset.as_ptr(),
                std::ptr::null(),
                region.shape.as_ptr(),
                std::ptr::null(),
            )
        })
        .map_err(err)?;
        Ok((file_space, mem_space))
    }

    /// Fetches the raw chunk at element `offset` into `raw` under the lock; `None` when the
    /// chunk was never written. Returns the chunk's filter mask.
    fn fetch_chunk(&self, offset: &[u64], raw: &mut Vec<u8>) -> Result<Option<u32>, H5Error> {
        locked(|| {
            let mut mask: u32 = 0;
            let mut addr: haddr_t = 0;
            let mut size: hsize_t = 0;
            // SAFETY: under the library lock; `offset` holds one coordinate per dimension
            // (a chunk region's start) and the out-pointers are locals.
            check(unsafe {
                H5Dget_chunk_info_by_coord(
                    self.dset.id(),
                    offset.as_ptr(),
                    &mut mask,
                    &mut addr,
                    &mut size,
                )
            })
            .map_err(|m| self.err(format!("chunk at {offset:?}: {m}")))?;
            if addr == HADDR_UNDEF || size == 0 {
                return Ok(None);
            }
            raw.clear();
            raw.resize(size as usize, 0);
            // SAFETY: still under the same lock, so the chunk cannot change between the two
            // calls: libhdf5 writes the stored chunk, `size` bytes, into `raw`, which now
            // holds exactly `size` bytes. `offset` and `mask` as above.
            check(unsafe {
                H5Dread_chunk(
                    self.dset.id(),
                    H5P_DEFAULT,
                    offset.as_ptr(),
                    &mut mask,
                    raw.as_mut_ptr().cast(),
                )
            })
            .map_err(|m| self.err(format!("cannot read the chunk at {offset:?}: {m}")))?;
            Ok(Some(mask))
        })
    }

    fn read_direct(
        &self,
        region: &Region,
        out: &mut [u8],
        out_shape: &[u64],
        out_offset: &[u64],
    ) -> Result<(), H5Error> {
        let item = self.item();
        let chunk = self.chunk.as_deref().unwrap_or_default();
        let chunk_len = self.chunk_bytes() as usize;
        let grid = ChunkGrid::regular(&self.shape, chunk);
        let mut raw = Vec::new();
        let mut decoded: Vec<u8> = Vec::new();
        let mut tmp = Vec::new();
        for chunk_region in grid.chunk_regions_overlapping(region) {
            let Some(overlap) = chunk_region.intersect(region) else {
                continue;
            };
            let dst_offset: Vec<u64> = overlap
                .offset_in(region)
                .iter()
                .zip(out_offset)
                .map(|(a, b)| a + b)
                .collect();
            let in_chunk = overlap.offset_in(&chunk_region);
            let mask = self.fetch_chunk(&chunk_region.start, &mut raw)?;
            let Some(mask) = mask else {
                decoded.resize(chunk_len, 0);
                fill_elements(&mut decoded, &self.fill);
                copy_box(
                    &decoded,
                    chunk,
                    &in_chunk,
                    out,
                    out_shape,
                    &dst_offset,
                    &overlap.shape,
                    item,
                );
                continue;
            };
            let decode_err = |m: String| {
                self.err(format!(
                    "chunk at {:?} cannot be decoded: {m}",
                    chunk_region.start
                ))
            };
            // A whole chunk landing on one contiguous run of `out` is decoded in place.
            if overlap.shape == chunk && is_contiguous(out_shape, chunk) {
                let at = ravel(&dst_offset, out_shape) as usize * item;
                let dst = &mut out[at..at + chunk_len];
                self.pipeline
                    .decode(mask, &raw, dst, &mut tmp)
                    .map_err(decode_err)?;
                if self.info.swap {
                    swap_bytes(dst, item);
                }
                continue;
            }
            decoded.resize(chunk_len, 0);
            self.pipeline
                .decode(mask, &raw, &mut decoded, &mut tmp)
                .map_err(decode_err)?;
            if self.info.swap {
                swap_bytes(&mut decoded, item);
            }
            copy_box(
                &decoded,
                chunk,
                &in_chunk,
                out,
                out_shape,
                &dst_offset,
                &overlap.shape,
                item,
            );
        }
        Ok(())
    }

    /// Writes `data` (C order, native endian, shaped like `region`). On the direct path
    /// `region` must be a union of whole chunks; each is padded to the full chunk shape with
    /// the fill value at the edges, encoded on this thread and stored with one
    /// `H5Dwrite_chunk` under the lock.
    pub fn write_region(&self, region: &Region, data: &[u8]) -> Result<(), H5Error> {
        self.check_region(region)?;
        let item = self.item();
        if buffer_len(&region.shape, item) != Some(data.len()) {
            return Err(self.err(format!(
                "region {region} needs {} bytes, the buffer has {}",
                region.num_elements() * item as u64,
                data.len()
            )));
        }
        if region.is_empty() {
            return Ok(());
        }
        if !self.is_direct() {
            return self.write_library(region, data);
        }
        let chunk = self.chunk.as_deref().unwrap_or_default();
        let grid = ChunkGrid::regular(&self.shape, chunk);
        if !grid.is_aligned(region) {
            return Err(self.err(format!(
                "write {region} is not aligned to whole chunks {chunk:?}"
            )));
        }
        let chunk_len = self.chunk_bytes() as usize;
        let zeros = vec![0u64; chunk.len()];
        let (mut buf, mut tmp, mut enc) = (Vec::new(), Vec::new(), Vec::new());
        for chunk_region in grid.chunk_regions_overlapping(region) {
            let whole = chunk_region.shape == chunk;
            let src: &[u8] = if whole && is_contiguous(&region.shape, chunk) && !self.info.swap {
                let at = ravel(&chunk_region.offset_in(region), &region.shape) as usize * item;
                &data[at..at + chunk_len]
            } else {
                buf.resize(chunk_len, 0);
                if !whole {
                    fill_elements(&mut buf, &self.fill);
                }
                copy_box(
                    data,
                    &region.shape,
                    &chunk_region.offset_in(region),
                    &mut buf,
                    chunk,
                    &zeros,
                    &chunk_region.shape,
                    item,
                );
                if self.info.swap {
                    swap_bytes(&mut buf, item);
                }
                &buf
            };
            let stored = self.pipeline.encode(src, &mut tmp, &mut enc).map_err(|m| {
                self.err(format!(
                    "chunk at {:?} cannot be encoded: {m}",
                    chunk_region.start
                ))
            })?;
            locked(|| {
                // SAFETY: under the library lock; libhdf5 reads `stored.len()` bytes from
                // `stored`, which outlives the call, and one coordinate per dimension from
                // the chunk region's start.
                check(unsafe {
                    H5Dwrite_chunk(
                        self.dset.id(),
                        H5P_DEFAULT,
                        0,
                        chunk_region.start.as_ptr(),
                        stored.len(),
                        stored.as_ptr().cast(),
                    )
                })
            })
            .map_err(|m| {
                self.err(format!(
                    "cannot write the chunk at {:?}: {m}",
                    chunk_region.start
                ))
            })?;
        }
        Ok(())
    }

    fn write_library(&self, region: &Region, data: &[u8]) -> Result<(), H5Error> {
        let err = |m: String| self.err(format!("cannot write {region}: {m}"));
        locked(|| {
            if region.ndim() == 0 {
                // SAFETY: under the library lock; a scalar dataset reads one element of
                // `mem_type`, and `data` holds one (`write_region` checked its length).
                return check(unsafe {
                    H5Dwrite(
                        self.dset.id(),
                        self.mem_type.id(),
                        H5S_ALL,
                        H5S_ALL,
                        H5P_DEFAULT,
                        data.as_ptr().cast(),
                    )
                })
                .map(|_| ())
                .map_err(err);
            }
            let zeros = vec![0u64; region.ndim()];
            let (file_space, mem_space) = self.selections(region, &region.shape, &zeros)?;
            // SAFETY: under the library lock. `data` holds exactly the elements of
            // `region.shape` (checked by `write_region`), the extent of `mem_space`, whose
            // whole extent is selected; libhdf5 reads nothing else and does not keep it.
            check(unsafe {
                H5Dwrite(
                    self.dset.id(),
                    self.mem_type.id(),
                    mem_space.id(),
                    file_space.id(),
                    H5P_DEFAULT,
                    data.as_ptr().cast(),
                )
            })
            .map(|_| ())
            .map_err(err)
        })
    }

    /// Grows (or shrinks) the dataset to `shape`; only unlimited dimensions may change.
    pub fn set_extent(&mut self, shape: &[u64]) -> Result<(), H5Error> {
        if shape == self.shape.as_slice() {
            return Ok(());
        }
        if shape.len() != self.shape.len() {
            return Err(self.err(format!(
                "cannot resize to {shape:?}: the dataset has {} dimensions",
                self.shape.len()
            )));
        }
        // SAFETY: under the library lock; libhdf5 reads one length per dimension of the
        // dataset from `shape`, which holds exactly that many (checked above).
        locked(|| check(unsafe { H5Dset_extent(self.dset.id(), shape.as_ptr()) }))
            .map_err(|m| self.err(format!("cannot resize to {shape:?}: {m}")))?;
        self.shape = shape.to_vec();
        Ok(())
    }

    /// Writes the library's cached metadata of this dataset's file to disk.
    pub fn flush(&self) -> Result<(), H5Error> {
        // SAFETY: under the library lock; the id by value.
        locked(|| check(unsafe { H5Fflush(self.dset.id(), H5F_scope_t::H5F_SCOPE_LOCAL) }))
            .map(|_| ())
            .map_err(|m| self.err(format!("cannot flush: {m}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::create_file;

    /// A 4 x 6 `int32` dataset in chunks of 2 x 3, deflated (the direct path) or not, in a
    /// new file under `dir`.
    fn dataset(dir: &std::path::Path, name: &str, pipeline: &Pipeline) -> ChunkedDataset {
        let path = dir.join(format!("{name}.h5")).display().to_string();
        let file = create_file(&path, None).unwrap();
        let fill = 7i32.to_ne_bytes();
        let spec = DatasetSpec {
            dtype: DataType::Int32,
            shape: &[4, 6],
            chunk: &[2, 3],
            unlimited: &[true, false],
            pipeline,
            fill: Some(&fill),
        };
        let dset = create_dataset(file.id(), "v", &spec, &path).unwrap();
        ChunkedDataset::open(dset, &path, "v").unwrap()
    }

    #[test]
    fn buffers_of_the_wrong_rank_or_size_are_refused_before_the_library_sees_them() {
        let dir = tempfile::tempdir().unwrap();
        for (name, pipeline) in [
            ("plain", Pipeline::default()),
            ("deflate", Pipeline(vec![crate::Filter::Deflate(1)])),
        ] {
            let mut ds = dataset(dir.path(), name, &pipeline);
            let region = Region::new(vec![0, 0], vec![2, 3]);
            // Same number of bytes, but a 1-d box: its offset and shape would be read as 2-d.
            let mut out = vec![0u8; 6 * 4];
            assert!(
                ds.read_box(&region, &mut out, &[6], &[0]).is_err(),
                "{name}"
            );
            assert!(
                ds.read_box(&region, &mut out, &[2, 3], &[0]).is_err(),
                "{name}"
            );
            ds.read_box(&region, &mut out, &[2, 3], &[0, 0]).unwrap();
            assert_eq!(&out[..4], &7i32.to_ne_bytes(), "{name}: the fill value");
            // One length for a 2-d dataset.
            assert!(ds.set_extent(&[8]).is_err(), "{name}");
            ds.set_extent(&[6, 6]).unwrap();
            assert_eq!(ds.shape(), [6, 6]);
        }
    }

    #[test]
    fn a_fill_value_of_the_wrong_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.h5").display().to_string();
        let file = create_file(&path, None).unwrap();
        let spec = DatasetSpec {
            dtype: DataType::Float64,
            shape: &[4],
            chunk: &[2],
            unlimited: &[false],
            pipeline: &Pipeline::default(),
            fill: Some(&[0u8; 4]),
        };
        assert!(create_dataset(file.id(), "v", &spec, &path).is_err());
    }
}
