//! Opening and creating HDF5 files the way both adapters need.
//!
//! - File access properties are the library defaults, like libnetcdf's: HDF5 refuses to open a
//!   file a second time in one process with other locking flags, and a NetCDF-4 file may be
//!   open through libnetcdf and through us at once. (`HDF5_USE_FILE_LOCKING=FALSE` turns
//!   locking off for both, e.g. on file systems without `flock`.)
//! - Every file the library has open is marked close-on-exec: libhdf5 opens files without
//!   `O_CLOEXEC`, so a child process (a reference reader started by a test, a tool the CLI
//!   runs) would inherit the descriptors, and with them libnetcdf's file locks, for its whole
//!   life.

use crate::hid::Hid;
use crate::locked;
use hdf5::globals::{H5FD_SEC2, H5P_DATASET_ACCESS, H5P_FILE_ACCESS};
use hdf5_sys::h5d::H5Dopen2;
use hdf5_sys::h5f::{
    H5Fcreate, H5Fget_access_plist, H5Fget_obj_count, H5Fget_obj_ids, H5Fget_vfd_handle, H5Fopen,
    H5F_ACC_RDONLY, H5F_ACC_RDWR, H5F_ACC_TRUNC, H5F_OBJ_FILE,
};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5l::H5Lexists;
use hdf5_sys::h5p::{H5Pcreate, H5Pget_driver, H5Pset_chunk_cache, H5P_DEFAULT};
use std::ffi::CString;
use std::os::raw::c_void;

/// The file access property list of our opens (lock held).
fn file_access() -> Result<Hid, String> {
    // SAFETY: callers hold the library lock (inside `locked`); the class id is passed by value.
    Hid::new(unsafe { H5Pcreate(*H5P_FILE_ACCESS) })
}

/// Opens `path` read-only or read-write.
pub fn open_file(path: &str, write: bool) -> Result<Hid, String> {
    let c = CString::new(path).map_err(|e| e.to_string())?;
    locked(|| {
        let fapl = file_access()?;
        let flags = if write { H5F_ACC_RDWR } else { H5F_ACC_RDONLY };
        // SAFETY: under the library lock; `c` is a NUL-terminated path that outlives the call
        // and `fapl` a live property list.
        let file = Hid::new(unsafe { H5Fopen(c.as_ptr(), flags, fapl.id()) })?;
        close_on_exec_all();
        Ok(file)
    })
}

/// Creates (truncates) `path` with the file creation property list `fcpl` (or the default).
pub fn create_file(path: &str, fcpl: Option<hid_t>) -> Result<Hid, String> {
    let c = CString::new(path).map_err(|e| e.to_string())?;
    locked(|| {
        let fapl = file_access()?;
        // SAFETY: under the library lock; `c` is a NUL-terminated path that outlives the call,
        // `fcpl` the caller's live property list (or the default) and `fapl` ours.
        let file = Hid::new(unsafe {
            H5Fcreate(
                c.as_ptr(),
                H5F_ACC_TRUNC,
                fcpl.unwrap_or(H5P_DEFAULT),
                fapl.id(),
            )
        })?;
        close_on_exec_all();
        Ok(file)
    })
}

/// Marks the descriptor of every file the library has open (ours and libnetcdf's) as
/// close-on-exec. Cheap; call after opening files.
pub fn close_on_exec_all() {
    // SAFETY: under the library lock, so no file opens or closes while we walk the list.
    // `H5Fget_obj_ids` writes at most `ids.len()` ids into `ids`. `H5Fget_vfd_handle` stores
    // into `handle`, a local; for the sec2 driver (checked first) it points to the driver's
    // `int` file descriptor, which stays valid while the file is open, i.e. during the lock.
    // `fcntl` on a descriptor only changes its flags.
    locked(|| unsafe {
        // H5F_OBJ_ALL as the "file" means: in every open file.
        let all: hid_t = hdf5_sys::h5f::H5F_OBJ_ALL as hid_t;
        let n = H5Fget_obj_count(all, H5F_OBJ_FILE);
        if n <= 0 {
            return;
        }
        let mut ids = vec![0 as hid_t; n as usize];
        let n = H5Fget_obj_ids(all, H5F_OBJ_FILE, ids.len(), ids.as_mut_ptr());
        for &id in ids.iter().take(n.max(0) as usize) {
            let Ok(fapl) = Hid::new(H5Fget_access_plist(id)) else {
                continue;
            };
            if H5Pget_driver(fapl.id()) != *H5FD_SEC2 {
                continue;
            }
            let mut handle: *mut c_void = std::ptr::null_mut();
            if H5Fget_vfd_handle(id, fapl.id(), &mut handle) < 0 || handle.is_null() {
                continue;
            }
            let fd = *handle.cast::<i32>();
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    });
}

/// Opens dataset `path` (relative to `loc`) without a raw-data chunk cache: chunks are read
/// and written whole, once, so a cache only costs memory (up to 1 MiB per open dataset by
/// default, which adds up over the files of an archive). Lock taken inside.
pub fn open_dataset(loc: hid_t, path: &str) -> Result<Hid, String> {
    let c = CString::new(path).map_err(|e| e.to_string())?;
    locked(|| {
        // SAFETY: under the library lock; ids by value.
        let dapl = Hid::new(unsafe { H5Pcreate(*H5P_DATASET_ACCESS) })?;
        // SAFETY: under the library lock; `dapl` is our live property list.
        crate::check(unsafe { H5Pset_chunk_cache(dapl.id(), 0, 0, 1.0) })?;
        // SAFETY: under the library lock; `c` is a NUL-terminated path that outlives the call.
        Hid::new(unsafe { H5Dopen2(loc, c.as_ptr(), dapl.id()) })
    })
}

/// True when `path` (relative to `loc`) names an existing link, checking each level so that
/// a missing group is not an error. Lock taken inside.
pub fn link_exists(loc: hid_t, path: &str) -> bool {
    let mut at = String::new();
    locked(|| {
        for part in path.trim_start_matches('/').split('/') {
            if !at.is_empty() || path.starts_with('/') {
                at.push('/');
            }
            at.push_str(part);
            let Ok(c) = CString::new(at.as_str()) else {
                return false;
            };
            // SAFETY: under the library lock; `c` is a NUL-terminated path that outlives the
            // call.
            if unsafe { H5Lexists(loc, c.as_ptr(), H5P_DEFAULT) } <= 0 {
                return false;
            }
        }
        true
    })
}
