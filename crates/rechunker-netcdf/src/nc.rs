//! A thin safe layer over libnetcdf (netcdf-sys, the FFI crate of georust/netcdf). Every call
//! runs under the process-wide HDF5/NetCDF lock ([`rechunker_h5::locked`]), which is the
//! `netcdf_sys::libnetcdf_lock` the `netcdf` crate uses too. The lock is reentrant, so each
//! function here takes it itself (a query that is two calls, a count and then the list, runs
//! under one hold), and callers that need several calls to be atomic wrap them in `locked`.
//!
//! We use the FFI layer rather than the `netcdf` crate's high-level API because raw chunk
//! access needs group and variable ids it does not expose, and its lookups panic on some
//! library errors (`unwrap` in `Group::variable`, `expect` in `Variable::vartype`), which a
//! tool reading damaged files must turn into messages instead.

use netcdf_sys as sys;
use rechunker_core::DataType;
use rechunker_h5::locked;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};

/// libnetcdf's message for a status code.
pub(crate) fn strerror(code: c_int) -> String {
    locked(|| {
        // SAFETY: under the library lock (for system errors libnetcdf returns libc's
        // `strerror`, which may share a buffer); the code is passed by value.
        let p = unsafe { sys::nc_strerror(code) };
        if p.is_null() {
            return format!("NetCDF error {code}");
        }
        // SAFETY: a non-null result is a NUL-terminated message that stays valid at least
        // until the next call, which the lock holds off while we copy it.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    })
}

/// `Ok` for `NC_NOERR`, else libnetcdf's message.
pub(crate) fn nc(code: c_int) -> Result<(), String> {
    if code == sys::NC_NOERR {
        Ok(())
    } else {
        Err(strerror(code))
    }
}

pub(crate) fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("name `{s}` contains a NUL byte"))
}

fn name_buf() -> Vec<c_char> {
    vec![0 as c_char; sys::NC_MAX_NAME as usize + 1]
}

/// The text of a [`name_buf`] that libnetcdf has filled.
fn buf_to_string(buf: &[c_char]) -> String {
    // Only `name_buf`s reach here, and a defensive terminator keeps the read inside `buf`
    // even if libnetcdf wrote a name of the full NC_MAX_NAME bytes without one.
    let Some(&0) = buf.last() else {
        return String::new();
    };
    // SAFETY: `buf` ends with a NUL (checked above), so the string ends inside it; it
    // outlives this borrow.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// An open NetCDF file, closed (under the lock) when dropped.
#[derive(Debug)]
pub(crate) struct NcFile {
    pub ncid: c_int,
}

impl NcFile {
    pub fn open(path: &str, write: bool) -> Result<NcFile, (c_int, String)> {
        let c = cstring(path).map_err(|m| (0, m))?;
        let mut ncid = 0;
        let mode = if write {
            sys::NC_WRITE
        } else {
            sys::NC_NOWRITE
        };
        // Marked close-on-exec before the lock is released (see rechunker_h5::close_on_exec_all).
        let code = locked(|| {
            // SAFETY: under the library lock; `c` is a NUL-terminated path that outlives the
            // call and `ncid` a local the call writes.
            let code = unsafe { sys::nc_open(c.as_ptr(), mode, &mut ncid) };
            rechunker_h5::close_on_exec_all();
            code
        });
        if code != sys::NC_NOERR {
            return Err((code, strerror(code)));
        }
        Ok(NcFile { ncid })
    }

    pub fn create(path: &str, cmode: c_int) -> Result<NcFile, String> {
        let c = cstring(path)?;
        let mut ncid = 0;
        locked(|| {
            // SAFETY: under the library lock; `c` is a NUL-terminated path that outlives the
            // call and `ncid` a local the call writes.
            let code = unsafe { sys::nc_create(c.as_ptr(), cmode | sys::NC_CLOBBER, &mut ncid) };
            rechunker_h5::close_on_exec_all();
            nc(code)
        })?;
        Ok(NcFile { ncid })
    }

    /// Closes the file, reporting what closing (and so flushing) reported.
    pub fn close(self) -> Result<(), String> {
        let ncid = self.ncid;
        std::mem::forget(self);
        // SAFETY: under the library lock; `ncid` is ours and closed once (`forget` skips
        // `Drop`).
        locked(|| nc(unsafe { sys::nc_close(ncid) }))
    }

    pub fn format(&self) -> Result<c_int, String> {
        let mut f = 0;
        // SAFETY: under the library lock; `f` is a local the call writes.
        locked(|| nc(unsafe { sys::nc_inq_format(self.ncid, &mut f) }))?;
        Ok(f)
    }
}

impl Drop for NcFile {
    fn drop(&mut self) {
        let ncid = self.ncid;
        // SAFETY: under the library lock; `ncid` is ours and this is its only close (`close`
        // forgets `self`).
        locked(|| unsafe {
            sys::nc_close(ncid);
        });
    }
}

/// Child groups of `grp`.
pub(crate) fn groups(grp: c_int) -> Result<Vec<(c_int, String)>, String> {
    locked(|| {
        let mut n = 0;
        // SAFETY: under the library lock; a null list asks for the count only.
        let code = unsafe { sys::nc_inq_grps(grp, &mut n, std::ptr::null_mut()) };
        if code == sys::NC_ENOTNC4 || code == sys::NC_ENOTBUILT {
            return Ok(Vec::new());
        }
        nc(code)?;
        let mut ids = vec![0; n as usize];
        if n > 0 {
            // SAFETY: same lock hold, so the group count is still `n`, the length of `ids`.
            nc(unsafe { sys::nc_inq_grps(grp, &mut n, ids.as_mut_ptr()) })?;
        }
        ids.into_iter()
            .map(|id| {
                let mut name = name_buf();
                // SAFETY: under the lock; `name` holds NC_MAX_NAME + 1 bytes, the most a
                // name takes with its NUL.
                nc(unsafe { sys::nc_inq_grpname(id, name.as_mut_ptr()) })?;
                Ok((id, buf_to_string(&name)))
            })
            .collect()
    })
}

/// Variable ids of `grp` in definition order.
pub(crate) fn varids(grp: c_int) -> Result<Vec<c_int>, String> {
    locked(|| {
        let mut n = 0;
        // SAFETY: under the library lock; `n` is a local the call writes.
        nc(unsafe { sys::nc_inq_nvars(grp, &mut n) })?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut ids = vec![0; n as usize];
        // SAFETY: same lock hold, so the group still has `n` variables, the length of `ids`.
        let code = unsafe { sys::nc_inq_varids(grp, &mut n, ids.as_mut_ptr()) };
        if code == sys::NC_NOERR {
            ids.truncate(n as usize);
            Ok(ids)
        } else {
            // Classic files number their variables 0..n.
            Ok((0..n).collect())
        }
    })
}

/// A variable's name, type and dimension ids.
pub(crate) fn inq_var(
    grp: c_int,
    varid: c_int,
) -> Result<(String, sys::nc_type, Vec<c_int>), String> {
    locked(|| {
        let mut name = name_buf();
        let mut xtype = 0;
        let mut ndims = 0;
        // SAFETY: under the library lock; `name` holds NC_MAX_NAME + 1 bytes, the most a
        // name takes with its NUL; the other out-pointers are locals or null (not asked).
        nc(unsafe {
            sys::nc_inq_var(
                grp,
                varid,
                name.as_mut_ptr(),
                &mut xtype,
                &mut ndims,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        })?;
        let mut dims = vec![0; ndims as usize];
        if ndims > 0 {
            // SAFETY: same lock hold; the variable has `ndims` dimensions, the length of
            // `dims`.
            nc(unsafe { sys::nc_inq_vardimid(grp, varid, dims.as_mut_ptr()) })?;
        }
        Ok((buf_to_string(&name), xtype, dims))
    })
}

/// A dimension's name and current length.
pub(crate) fn inq_dim(grp: c_int, dimid: c_int) -> Result<(String, u64), String> {
    let mut name = name_buf();
    let mut len = 0usize;
    // SAFETY: under the library lock; `name` holds NC_MAX_NAME + 1 bytes, the most a name
    // takes with its NUL, and `len` is a local.
    locked(|| nc(unsafe { sys::nc_inq_dim(grp, dimid, name.as_mut_ptr(), &mut len) }))?;
    Ok((buf_to_string(&name), len as u64))
}

/// Ids of the unlimited dimensions visible in `grp`.
pub(crate) fn unlimited_dimids(grp: c_int) -> Result<Vec<c_int>, String> {
    locked(|| {
        let mut n = 0;
        // SAFETY: under the library lock; a null list asks for the count only.
        let code = unsafe { sys::nc_inq_unlimdims(grp, &mut n, std::ptr::null_mut()) };
        if code != sys::NC_NOERR {
            // Classic files: at most one.
            let mut id = -1;
            // SAFETY: under the lock; `id` is a local the call writes.
            nc(unsafe { sys::nc_inq_unlimdim(grp, &mut id) })?;
            return Ok(if id >= 0 { vec![id] } else { vec![] });
        }
        let mut ids = vec![0; n as usize];
        if n > 0 {
            // SAFETY: same lock hold, so there are still `n` ids, the length of `ids`.
            nc(unsafe { sys::nc_inq_unlimdims(grp, &mut n, ids.as_mut_ptr()) })?;
        }
        Ok(ids)
    })
}

/// Chunk shape of a NetCDF-4 variable of `ndim` dimensions, `None` when contiguous, compact
/// or classic (or when the variable does not have `ndim` dimensions).
pub(crate) fn chunking(grp: c_int, varid: c_int, ndim: usize) -> Option<Vec<u64>> {
    if ndim == 0 {
        return None;
    }
    locked(|| {
        let mut rank = 0;
        // SAFETY: under the library lock; `rank` is a local the call writes.
        let code = unsafe { sys::nc_inq_varndims(grp, varid, &mut rank) };
        if code != sys::NC_NOERR || rank as usize != ndim {
            return None;
        }
        let mut storage = 0;
        let mut sizes = vec![0usize; ndim];
        // SAFETY: same lock hold; libnetcdf writes one size per dimension of the variable,
        // `ndim` (checked above), the length of `sizes`.
        let code =
            unsafe { sys::nc_inq_var_chunking(grp, varid, &mut storage, sizes.as_mut_ptr()) };
        (code == sys::NC_NOERR && storage == sys::NC_CHUNKED)
            .then(|| sizes.into_iter().map(|s| s as u64).collect())
    })
}

/// The storage fill value of a variable as one native element of `dtype`, `None` with
/// NOFILL (or when the variable's type is not `dtype`'s size).
pub(crate) fn fill_value(grp: c_int, varid: c_int, dtype: DataType) -> Option<Vec<u8>> {
    locked(|| {
        let mut xtype = 0;
        let mut size = 0usize;
        // SAFETY: under the library lock; `xtype` and `size` are locals the calls write, and
        // a null name pointer asks for no name.
        let code = unsafe {
            match sys::nc_inq_vartype(grp, varid, &mut xtype) {
                sys::NC_NOERR => sys::nc_inq_type(grp, xtype, std::ptr::null_mut(), &mut size),
                error => error,
            }
        };
        if code != sys::NC_NOERR || size != dtype.size() {
            return None;
        }
        let mut no_fill = 0;
        let mut buf = vec![0u8; size];
        // SAFETY: same lock hold; libnetcdf writes one element of the variable's type,
        // `size` bytes (queried above), into `buf` of `size` bytes.
        let code =
            unsafe { sys::nc_inq_var_fill(grp, varid, &mut no_fill, buf.as_mut_ptr().cast()) };
        (code == sys::NC_NOERR && no_fill == 0).then_some(buf)
    })
}

/// The NetCDF type of our data type (`None` for bool, which NetCDF does not have).
pub(crate) fn nc_type_of(dtype: DataType) -> sys::nc_type {
    match dtype {
        DataType::Bool | DataType::Int8 => sys::NC_BYTE,
        DataType::UInt8 => sys::NC_UBYTE,
        DataType::Int16 => sys::NC_SHORT,
        DataType::UInt16 => sys::NC_USHORT,
        DataType::Int32 => sys::NC_INT,
        DataType::UInt32 => sys::NC_UINT,
        DataType::Int64 => sys::NC_INT64,
        DataType::UInt64 => sys::NC_UINT64,
        DataType::Float32 => sys::NC_FLOAT,
        DataType::Float64 => sys::NC_DOUBLE,
        DataType::Char => sys::NC_CHAR,
    }
}

/// Our data type of a NetCDF atomic numeric type or `char`.
pub(crate) fn dtype_of(xtype: sys::nc_type) -> Option<DataType> {
    Some(match xtype {
        sys::NC_BYTE => DataType::Int8,
        sys::NC_UBYTE => DataType::UInt8,
        sys::NC_SHORT => DataType::Int16,
        sys::NC_USHORT => DataType::UInt16,
        sys::NC_INT => DataType::Int32,
        sys::NC_UINT => DataType::UInt32,
        sys::NC_INT64 => DataType::Int64,
        sys::NC_UINT64 => DataType::UInt64,
        sys::NC_FLOAT => DataType::Float32,
        sys::NC_DOUBLE => DataType::Float64,
        sys::NC_CHAR => DataType::Char,
        _ => return None,
    })
}

/// What a non-numeric NetCDF type is called in messages.
pub(crate) fn type_description(grp: c_int, xtype: sys::nc_type) -> String {
    match xtype {
        sys::NC_CHAR => "character (char) data".into(),
        sys::NC_STRING => "string data".into(),
        _ => {
            let mut name = name_buf();
            let mut size = 0usize;
            let mut base = 0;
            let mut nfields = 0usize;
            let mut class = 0;
            // SAFETY: under the library lock; `name` holds NC_MAX_NAME + 1 bytes, the most a
            // name takes with its NUL, and the other out-pointers are locals.
            let code = locked(|| unsafe {
                sys::nc_inq_user_type(
                    grp,
                    xtype,
                    name.as_mut_ptr(),
                    &mut size,
                    &mut base,
                    &mut nfields,
                    &mut class,
                )
            });
            let kind = match class {
                sys::NC_VLEN => "variable-length",
                sys::NC_OPAQUE => "opaque",
                sys::NC_ENUM => "enum",
                sys::NC_COMPOUND => "compound",
                _ => "user-defined",
            };
            if code == sys::NC_NOERR {
                format!("{kind} type `{}`", buf_to_string(&name))
            } else {
                format!("type {xtype}")
            }
        }
    }
}
