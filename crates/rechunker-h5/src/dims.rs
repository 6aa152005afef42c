//! Dimension scales (HDF5's `DIMENSION_LIST` / `REFERENCE_LIST` convention, as netCDF-4, h5py
//! and xarray use it), through libhdf5_hl's H5DS API. Every function takes the (reentrant)
//! library lock itself.

use crate::hid::{check, last_error};
use crate::locked;
use hdf5_sys::h5::herr_t;
use hdf5_sys::h5i::{hid_t, H5Iget_name};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_uint, c_void};

type H5DsIterate = Option<unsafe extern "C" fn(hid_t, c_uint, hid_t, *mut c_void) -> herr_t>;

unsafe extern "C" {
    fn H5DSset_scale(dsid: hid_t, dimname: *const c_char) -> herr_t;
    fn H5DSattach_scale(did: hid_t, dsid: hid_t, idx: c_uint) -> herr_t;
    fn H5DSis_attached(did: hid_t, dsid: hid_t, idx: c_uint) -> c_int;
    fn H5DSis_scale(did: hid_t) -> c_int;
    fn H5DSget_num_scales(did: hid_t, dim: c_uint) -> c_int;
    fn H5DSiterate_scales(
        did: hid_t,
        dim: c_uint,
        idx: *mut c_int,
        visitor: H5DsIterate,
        visitor_data: *mut c_void,
    ) -> herr_t;
}

/// True when `dataset` is a dimension scale.
pub fn is_scale(dataset: hid_t) -> bool {
    // SAFETY: under the library lock; the id is passed by value and an invalid one makes the
    // call fail (negative), not misbehave.
    locked(|| unsafe { H5DSis_scale(dataset) > 0 })
}

/// Makes `dataset` a dimension scale called `name` (unless it already is one).
pub fn set_scale(dataset: hid_t, name: &str) -> Result<(), String> {
    if is_scale(dataset) {
        return Ok(());
    }
    let name = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: under the library lock; `name` is a NUL-terminated string that outlives the
    // call (libhdf5 copies it into an attribute).
    locked(|| check(unsafe { H5DSset_scale(dataset, name.as_ptr()) }).map(|_| ()))
}

/// Attaches the scale `scale` to dimension `dim` of `dataset` (unless it already is).
pub fn attach_scale(dataset: hid_t, scale: hid_t, dim: usize) -> Result<(), String> {
    locked(|| {
        // SAFETY: under the library lock; ids and the dimension index by value (libhdf5
        // checks the index against the dataset's rank).
        if unsafe { H5DSis_attached(dataset, scale, dim as c_uint) } > 0 {
            return Ok(());
        }
        // SAFETY: as above.
        check(unsafe { H5DSattach_scale(dataset, scale, dim as c_uint) }).map(|_| ())
    })
}

unsafe extern "C" fn first_scale_path(
    _dataset: hid_t,
    _dim: c_uint,
    scale: hid_t,
    data: *mut c_void,
) -> herr_t {
    // SAFETY: `data` is the `&mut Option<String>` that `scale_names` passes, alive and not
    // otherwise borrowed during `H5DSiterate_scales`, which calls us synchronously.
    let out = unsafe { &mut *data.cast::<Option<String>>() };
    let mut buf = vec![0 as c_char; 1024];
    // SAFETY: called by libhdf5 inside `scale_names`, so the lock is held; libhdf5 writes at
    // most `buf.len()` bytes, NUL included, into `buf`.
    let n = unsafe { H5Iget_name(scale, buf.as_mut_ptr(), buf.len()) };
    if n > 0 {
        *out = Some(
            // SAFETY: `H5Iget_name` NUL-terminated `buf` (truncating if need be), which
            // outlives this borrow.
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_string_lossy()
                .into_owned(),
        );
    }
    1 // stop after the first scale
}

/// Per dimension of `dataset`, the path (e.g. `/grp/time`) of the first dimension scale
/// attached to it, if any.
pub fn scale_names(dataset: hid_t, ndim: usize) -> Result<Vec<Option<String>>, String> {
    locked(|| scale_names_locked(dataset, ndim))
}

fn scale_names_locked(dataset: hid_t, ndim: usize) -> Result<Vec<Option<String>>, String> {
    let mut out = Vec::with_capacity(ndim);
    for d in 0..ndim {
        // SAFETY: under the library lock (`scale_names`); arguments by value.
        let n = unsafe { H5DSget_num_scales(dataset, d as c_uint) };
        if n <= 0 {
            out.push(None);
            continue;
        }
        let mut found: Option<String> = None;
        let mut idx: c_int = 0;
        // SAFETY: under the library lock. `idx` and `found` are locals that outlive the call;
        // `first_scale_path` casts the visitor data back to exactly `Option<String>`, and
        // libhdf5 calls it only during this call.
        let status = unsafe {
            H5DSiterate_scales(
                dataset,
                d as c_uint,
                &mut idx,
                Some(first_scale_path),
                (&mut found as *mut Option<String>).cast(),
            )
        };
        if status < 0 {
            return Err(last_error());
        }
        out.push(found);
    }
    Ok(out)
}
