//! HDF5 attributes as rechunker attributes: numbers keep their type (`AttrValue::dtype`),
//! strings (fixed or variable length) become JSON strings, h5py booleans JSON booleans.
//! Attributes of other types (references, compounds) are skipped with a debug message.
//! The crate-visible functions take the (reentrant) library lock themselves; the private
//! ones run under it.

use hdf5::globals::H5T_C_S1;
use hdf5_sys::h5::{hsize_t, H5_index_t, H5_iter_order_t};
use hdf5_sys::h5a::{
    H5A_info_t, H5Acreate2, H5Adelete, H5Aexists, H5Aget_space, H5Aget_type, H5Aiterate2, H5Aopen,
    H5Aread, H5Awrite,
};
use hdf5_sys::h5d::H5Dvlen_reclaim;
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5s::{H5S_class_t, H5Screate, H5Screate_simple, H5Sget_simple_extent_npoints};
use hdf5_sys::h5t::{
    H5T_class_t, H5T_cset_t, H5T_str_t, H5Tcopy, H5Tget_class, H5Tget_cset, H5Tget_size,
    H5Tget_strpad, H5Tis_variable_str, H5Tset_cset, H5Tset_size, H5T_VARIABLE,
};
use rechunker_core::{AttrValue, Attributes, DataType};
use rechunker_h5::json::{elements_to_json, infer_dtype, json_to_scalars, scalars_to_bytes};
use rechunker_h5::{check, classify_type, file_type, locked, mem_type, Hid};
use serde_json::Value;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};

/// Attributes the dimension-scale API and libnetcdf keep for themselves.
pub(crate) const RESERVED: &[&str] = &[
    "DIMENSION_LIST",
    "REFERENCE_LIST",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_NCProperties",
    "_nc3_strict",
    "_IsNetcdf4",
    "_SuperblockVersion",
    "_ARRAY_DIMENSIONS",
];

unsafe extern "C" fn collect_name(
    _loc: hid_t,
    name: *const c_char,
    _info: *const H5A_info_t,
    data: *mut c_void,
) -> i32 {
    // SAFETY: `data` is the `&mut Vec<String>` that `attribute_names` passes, alive and not
    // otherwise borrowed while `H5Aiterate2` calls us synchronously.
    let names = unsafe { &mut *data.cast::<Vec<String>>() };
    names.push(
        // SAFETY: libhdf5 passes the attribute's NUL-terminated name, valid during the call;
        // we copy it.
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned(),
    );
    0
}

/// Attribute names of `obj` in creation order when it is tracked, else in name order (lock
/// held).
fn attribute_names(obj: hid_t) -> Result<Vec<String>, String> {
    for index in [H5_index_t::H5_INDEX_CRT_ORDER, H5_index_t::H5_INDEX_NAME] {
        let mut names: Vec<String> = Vec::new();
        let mut idx: hsize_t = 0;
        // SAFETY: lock held (`read_attributes`). `idx` and `names` are locals that outlive
        // the call; `collect_name` casts the visitor data back to exactly `Vec<String>`, and
        // libhdf5 calls it only during this call.
        let status = unsafe {
            H5Aiterate2(
                obj,
                index,
                H5_iter_order_t::H5_ITER_INC,
                &mut idx,
                Some(collect_name),
                (&mut names as *mut Vec<String>).cast(),
            )
        };
        if status >= 0 {
            return Ok(names);
        }
        if index == H5_index_t::H5_INDEX_NAME {
            check(status)?;
        }
    }
    Ok(Vec::new())
}

/// Reads the attributes of `obj`. `is_scale` drops the dimension-scale bookkeeping (`CLASS`,
/// `NAME`) too.
pub(crate) fn read_attributes(obj: hid_t, is_scale: bool) -> Result<Attributes, String> {
    locked(|| read_attributes_locked(obj, is_scale))
}

fn read_attributes_locked(obj: hid_t, is_scale: bool) -> Result<Attributes, String> {
    let mut out = Attributes::default();
    for name in attribute_names(obj)? {
        if RESERVED.contains(&name.as_str()) || (is_scale && (name == "CLASS" || name == "NAME")) {
            continue;
        }
        match read_attribute(obj, &name) {
            Ok(Some(value)) => out.insert(name, value),
            Ok(None) => {
                tracing::debug!(attribute = %name, "skipping an attribute of a type rechunker does not carry")
            }
            Err(e) => {
                tracing::debug!(attribute = %name, error = %e, "skipping an unreadable attribute")
            }
        }
    }
    Ok(out)
}

/// One attribute's value (lock held); `None` for types we do not carry.
fn read_attribute(obj: hid_t, name: &str) -> Result<Option<AttrValue>, String> {
    let cname = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: lock held by our callers; `cname` is a NUL-terminated name that outlives the call.
    let attr = Hid::new(unsafe { H5Aopen(obj, cname.as_ptr(), H5P_DEFAULT) })?;
    // SAFETY: lock held; `attr` is our live attribute, passed by value.
    let ftype = Hid::new(unsafe { H5Aget_type(attr.id()) })?;
    // SAFETY: as above.
    let space = Hid::new(unsafe { H5Aget_space(attr.id()) })?;
    // SAFETY: lock held; `space` is our live dataspace.
    let n = check(unsafe { H5Sget_simple_extent_npoints(space.id()) })? as usize;
    // SAFETY: lock held; `ftype` is our live datatype.
    if unsafe { H5Tget_class(ftype.id()) } == H5T_class_t::H5T_STRING {
        let strings = read_strings(attr.id(), ftype.id(), space.id(), n)?;
        // One string (also a 1-element array, as netCDF and many writers store text) reads
        // as a string; several as a list.
        let value = if strings.len() == 1 {
            Value::from(strings.into_iter().next().unwrap_or_default())
        } else {
            Value::from(strings)
        };
        return Ok(Some(AttrValue::json(value)));
    }
    let Ok(info) = classify_type(ftype.id()) else {
        return Ok(None);
    };
    let mtype = mem_type(info.dtype)?;
    let mut buf = vec![0u8; n * info.dtype.size()];
    if n > 0 {
        // SAFETY: lock held; libhdf5 writes the attribute's `n` elements as `mtype`, the
        // native type of `info.dtype` (`size()` bytes each), into `buf` of `n * size()` bytes.
        check(unsafe { H5Aread(attr.id(), mtype.id(), buf.as_mut_ptr().cast()) })?;
    }
    let value = elements_to_json(info.dtype, &buf, n != 1);
    Ok(Some(AttrValue {
        value,
        dtype: (info.dtype != DataType::Bool).then_some(info.dtype),
    }))
}

/// The `n` strings of attribute `attr` of string type `ftype` over `space` (lock held).
fn read_strings(attr: hid_t, ftype: hid_t, space: hid_t, n: usize) -> Result<Vec<String>, String> {
    // SAFETY: lock held by our callers; ids by value, plain values returned.
    let (cset, variable) = unsafe { (H5Tget_cset(ftype), H5Tis_variable_str(ftype) > 0) };
    if variable {
        // SAFETY: lock held; we copy a predefined type and set the size and character set of
        // our own copy, ids and values by value.
        let mtype = Hid::new(unsafe { H5Tcopy(*H5T_C_S1) })?;
        // SAFETY: as above.
        check(unsafe { H5Tset_size(mtype.id(), H5T_VARIABLE) })?;
        // SAFETY: as above.
        check(unsafe { H5Tset_cset(mtype.id(), cset) })?;
        let mut ptrs: Vec<*mut c_char> = vec![std::ptr::null_mut(); n];
        // SAFETY: lock held; the attribute has `n` elements (`space`'s point count) and a
        // variable-length string reads as one `char *` each, so libhdf5 writes `n` pointers
        // into `ptrs`, which holds `n`.
        check(unsafe { H5Aread(attr, mtype.id(), ptrs.as_mut_ptr().cast()) })?;
        let out = ptrs
            .iter()
            .map(|&p| {
                if p.is_null() {
                    String::new()
                } else {
                    // SAFETY: non-null pointers from `H5Aread` are NUL-terminated strings
                    // libhdf5 allocated, alive until the reclaim below; we copy them.
                    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
                }
            })
            .collect();
        // SAFETY: lock held; frees exactly the strings `H5Aread` allocated into `ptrs` (same
        // type and dataspace); the copies in `out` do not borrow them, and `ptrs` is not read
        // again.
        unsafe { H5Dvlen_reclaim(mtype.id(), space, H5P_DEFAULT, ptrs.as_mut_ptr().cast()) };
        return Ok(out);
    }
    // SAFETY: lock held; ids by value, a plain value returned.
    let size = unsafe { H5Tget_size(ftype) };
    // SAFETY: lock held; ids by value.
    let mtype = Hid::new(unsafe { H5Tcopy(ftype) })?;
    let mut buf = vec![0u8; n * size];
    if !buf.is_empty() {
        // SAFETY: lock held; `mtype` is a copy of the stored fixed-length type, `size` bytes
        // per element, and `buf` holds the attribute's `n` elements of it.
        check(unsafe { H5Aread(attr, mtype.id(), buf.as_mut_ptr().cast()) })?;
    }
    // SAFETY: lock held; ids by value, a plain value returned.
    let space_padded = unsafe { H5Tget_strpad(ftype) } == H5T_str_t::H5T_STR_SPACEPAD;
    Ok(buf
        .chunks(size.max(1))
        .take(n)
        .map(|s| {
            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            let text = String::from_utf8_lossy(&s[..end]).into_owned();
            if space_padded {
                text.trim_end_matches(' ').to_string()
            } else {
                text
            }
        })
        .collect())
}

/// Writes `attrs` on `obj`, replacing attributes of the same name. `_FillValue` takes the
/// array's type `fill_dtype` when given. Attributes reserved for dimension scales and
/// libnetcdf are not written.
pub(crate) fn write_attributes(
    obj: hid_t,
    attrs: &Attributes,
    fill_dtype: Option<DataType>,
) -> Result<(), String> {
    locked(|| write_attributes_locked(obj, attrs, fill_dtype))
}

fn write_attributes_locked(
    obj: hid_t,
    attrs: &Attributes,
    fill_dtype: Option<DataType>,
) -> Result<(), String> {
    for (name, value) in attrs.iter() {
        if RESERVED.contains(&name) || name == "CLASS" {
            continue;
        }
        let typed = if name == "_FillValue" {
            fill_dtype.or(value.dtype)
        } else {
            value.dtype
        };
        write_attribute(obj, name, &value.value, typed)
            .map_err(|e| format!("attribute `{name}`: {e}"))?;
    }
    Ok(())
}

enum Payload {
    Numbers(DataType, Vec<u8>, usize),
    Strings(Vec<String>),
}

fn payload(value: &Value, dtype: Option<DataType>) -> Option<(Payload, bool)> {
    let is_array = value.is_array();
    if let Some(scalars) = json_to_scalars(value) {
        if scalars.is_empty() {
            return None;
        }
        let dtype = dtype.unwrap_or_else(|| infer_dtype(&scalars));
        // Values that do not fit the wanted type are stored as doubles, labelled as such
        // (the byte count alone cannot tell an 8-byte integer from a double).
        let (dtype, bytes) = match scalars_to_bytes(&scalars, dtype) {
            Some(bytes) => (dtype, bytes),
            None => (
                DataType::Float64,
                scalars_to_bytes(&scalars, DataType::Float64)?,
            ),
        };
        if bytes.len() != scalars.len() * dtype.size() {
            return None;
        }
        return Some((Payload::Numbers(dtype, bytes, scalars.len()), is_array));
    }
    match value {
        Value::String(s) => Some((Payload::Strings(vec![s.clone()]), false)),
        Value::Array(items) if items.iter().all(Value::is_string) && !items.is_empty() => Some((
            Payload::Strings(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ),
            true,
        )),
        Value::Array(items) if items.is_empty() => None,
        // Nested objects, nulls, mixed arrays: keep them as JSON text.
        other => Some((Payload::Strings(vec![other.to_string()]), false)),
    }
}

/// Writes one attribute, replacing one of the same name (lock held).
fn write_attribute(
    obj: hid_t,
    name: &str,
    value: &Value,
    dtype: Option<DataType>,
) -> Result<(), String> {
    let Some((payload, is_array)) = payload(value, dtype) else {
        tracing::debug!(attribute = name, "skipping an empty attribute");
        return Ok(());
    };
    let cname = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: lock held by our callers; `cname` is a NUL-terminated name that outlives the
    // call.
    if unsafe { H5Aexists(obj, cname.as_ptr()) } > 0 {
        // SAFETY: as above.
        check(unsafe { H5Adelete(obj, cname.as_ptr()) })?;
    }
    let n = match &payload {
        Payload::Numbers(_, _, n) => *n,
        Payload::Strings(s) => s.len(),
    };
    let dims = [n as hsize_t];
    // SAFETY: lock held; `dims` holds the 1 dimension we declare; null means no maximum.
    let space = Hid::new(unsafe {
        if is_array || n != 1 {
            H5Screate_simple(1, dims.as_ptr(), std::ptr::null())
        } else {
            H5Screate(H5S_class_t::H5S_SCALAR)
        }
    })?;
    match payload {
        Payload::Numbers(dtype, bytes, _) => {
            let ftype = file_type(dtype)?;
            let mtype = mem_type(dtype)?;
            // SAFETY: lock held; `cname` outlives the call, the ids are our live objects.
            let attr = Hid::new(unsafe {
                H5Acreate2(
                    obj,
                    cname.as_ptr(),
                    ftype.id(),
                    space.id(),
                    H5P_DEFAULT,
                    H5P_DEFAULT,
                )
            })?;
            // SAFETY: lock held; libhdf5 reads the attribute's `n` elements of `mtype` (the
            // native type of `dtype`) from `bytes`, which `payload` built as exactly `n`
            // elements of `dtype`.
            check(unsafe { H5Awrite(attr.id(), mtype.id(), bytes.as_ptr().cast()) })?;
        }
        Payload::Strings(strings) => {
            // SAFETY: lock held; we copy a predefined type and set the size and character
            // set of our own copy.
            let stype = Hid::new(unsafe { H5Tcopy(*H5T_C_S1) })?;
            // SAFETY: as above.
            check(unsafe { H5Tset_size(stype.id(), H5T_VARIABLE) })?;
            // SAFETY: as above.
            check(unsafe { H5Tset_cset(stype.id(), H5T_cset_t::H5T_CSET_UTF8) })?;
            let owned: Vec<CString> = strings
                .iter()
                .map(|s| CString::new(s.replace('\0', "")).unwrap_or_default())
                .collect();
            let ptrs: Vec<*const c_char> = owned.iter().map(|s| s.as_ptr()).collect();
            // SAFETY: lock held; `cname` outlives the call, the ids are our live objects.
            let attr = Hid::new(unsafe {
                H5Acreate2(
                    obj,
                    cname.as_ptr(),
                    stype.id(),
                    space.id(),
                    H5P_DEFAULT,
                    H5P_DEFAULT,
                )
            })?;
            // SAFETY: lock held; the attribute has `n` = `ptrs.len()` elements, each a
            // `char *` to a NUL-terminated string in `owned`, which outlives the call
            // (libhdf5 copies the strings).
            check(unsafe { H5Awrite(attr.id(), stype.id(), ptrs.as_ptr().cast()) })?;
        }
    }
    Ok(())
}

/// Reads a string attribute, if `obj` has one called `name` (e.g. a scale's `NAME`).
pub(crate) fn string_attribute(obj: hid_t, name: &str) -> Option<String> {
    let cname = CString::new(name).ok()?;
    locked(|| {
        // SAFETY: under the library lock; `cname` is a NUL-terminated name that outlives the
        // call.
        if unsafe { H5Aexists(obj, cname.as_ptr()) } <= 0 {
            return None;
        }
        match read_attribute(obj, name) {
            Ok(Some(AttrValue {
                value: Value::String(s),
                ..
            })) => Some(s),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_do_not_fit_the_wanted_type_are_stored_as_labelled_doubles() {
        let Some((Payload::Numbers(dtype, bytes, n), false)) =
            payload(&serde_json::json!(1.5), Some(DataType::Int64))
        else {
            panic!("not a number payload");
        };
        assert_eq!((dtype, n), (DataType::Float64, 1));
        assert_eq!(bytes, 1.5f64.to_ne_bytes());
        let Some((Payload::Numbers(dtype, bytes, 2), true)) =
            payload(&serde_json::json!([1, 2]), Some(DataType::Int16))
        else {
            panic!("not a number payload");
        };
        assert_eq!(dtype, DataType::Int16);
        assert_eq!(bytes.len(), 4);
    }
}
