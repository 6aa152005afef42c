//! Registers zstd as HDF5 filter 32015 inside this process, with the data layout of
//! HDF5Plugin-Zstandard (what h5py + hdf5plugin read and write): each chunk is one zstd frame
//! that records its decompressed size; `cd_values[0]` is the compression level.
//!
//! Chunks are normally encoded and decoded by [`crate::Pipeline`] outside the library; the
//! registration lets libhdf5 (and libnetcdf) create datasets with this filter and read or write
//! them itself on the fallback paths, without a plugin directory.

use crate::codec::ZSTD_FILTER_ID;
use hdf5_sys::h5::{H5allocate_memory, H5free_memory};
use hdf5_sys::h5z::{H5Z_class2_t, H5Zregister, H5Z_CLASS_T_VERS, H5Z_FLAG_REVERSE};
use std::os::raw::{c_uint, c_void};
use std::sync::Once;

static REGISTER: Once = Once::new();

/// Registers the filter once per process. Called with the library lock held.
pub(crate) fn register_once() {
    REGISTER.call_once(|| {
        let class = H5Z_class2_t {
            version: H5Z_CLASS_T_VERS as i32,
            id: ZSTD_FILTER_ID,
            encoder_present: 1,
            decoder_present: 1,
            name: c"zstd (rechunker)".as_ptr(),
            can_apply: None,
            set_local: None,
            filter: Some(zstd_filter),
        };
        // SAFETY: called inside `locked` (the library lock is held). HDF5 copies the class
        // struct during the call, and the name it keeps pointing to is a static string.
        let status = unsafe { H5Zregister((&class as *const H5Z_class2_t).cast()) };
        if status < 0 {
            tracing::warn!("could not register the zstd HDF5 filter (32015); zstd datasets will be read and written only through rechunker's own codec");
        }
    });
}

/// The filter callback: returns the new data size, or 0 on failure (HDF5's convention).
unsafe extern "C" fn zstd_filter(
    flags: c_uint,
    cd_nelmts: usize,
    cd_values: *const c_uint,
    nbytes: usize,
    buf_size: *mut usize,
    buf: *mut *mut c_void,
) -> usize {
    std::panic::catch_unwind(|| {
        // SAFETY: HDF5 calls filters with `*buf` pointing to its buffer of `*buf_size` bytes,
        // of which the first `nbytes` hold the data; it is not touched by anyone else while
        // the filter runs, and `input` is dropped before we free it below.
        let input = unsafe { std::slice::from_raw_parts((*buf).cast::<u8>(), nbytes) };
        let (output, len, allocated) = if flags & H5Z_FLAG_REVERSE != 0 {
            let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(input) else {
                return 0;
            };
            let size = size as usize;
            // SAFETY: a plain allocation from HDF5's allocator (the one it frees filter
            // buffers with); we run inside the library's call, so its lock is held.
            let out = unsafe { H5allocate_memory(size.max(1), 0) }.cast::<u8>();
            if out.is_null() {
                return 0;
            }
            // SAFETY: `out` is a fresh, non-null allocation of at least `size` bytes that
            // nothing else refers to; u8 has no invalid bit patterns (zstd writes before any
            // read).
            let dst = unsafe { std::slice::from_raw_parts_mut(out, size) };
            match zstd::bulk::decompress_to_buffer(input, dst) {
                Ok(n) if n == size => (out, n, size.max(1)),
                _ => {
                    // SAFETY: `out` came from `H5allocate_memory` above and is freed once.
                    unsafe { H5free_memory(out.cast()) };
                    return 0;
                }
            }
        } else {
            let level = if cd_nelmts > 0 && !cd_values.is_null() {
                // SAFETY: HDF5 passes `cd_nelmts` readable values at `cd_values`; we read
                // the first only when there is one and the pointer is non-null.
                (unsafe { *cd_values }) as i32
            } else {
                zstd::DEFAULT_COMPRESSION_LEVEL
            };
            let bound = zstd::zstd_safe::compress_bound(nbytes);
            // SAFETY: as for decoding: HDF5's own allocator, inside the library's call.
            let out = unsafe { H5allocate_memory(bound.max(1), 0) }.cast::<u8>();
            if out.is_null() {
                return 0;
            }
            // SAFETY: `out` is a fresh, non-null allocation of at least `bound` bytes that
            // nothing else refers to.
            let dst = unsafe { std::slice::from_raw_parts_mut(out, bound) };
            match zstd::bulk::compress_to_buffer(input, dst, level) {
                Ok(n) => (out, n, bound.max(1)),
                Err(_) => {
                    // SAFETY: `out` came from `H5allocate_memory` above and is freed once.
                    unsafe { H5free_memory(out.cast()) };
                    return 0;
                }
            }
        };
        // SAFETY: `*buf` was allocated by HDF5's allocator and the filter protocol hands its
        // ownership to us (`input`, borrowing it, is no longer used); we free it once and
        // replace it with `output`, also HDF5-allocated, of `allocated` bytes, which is what
        // `buf` and `buf_size` (valid for writes by the same protocol) must then describe.
        unsafe {
            H5free_memory(*buf);
            *buf = output.cast();
            *buf_size = allocated;
        }
        len
    })
    .unwrap_or(0)
}
