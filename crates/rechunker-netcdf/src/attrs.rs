//! NetCDF attributes as rechunker attributes and back. Numeric attributes keep their type
//! (`AttrValue::dtype`); text (`char`) and `string` attributes become JSON strings (several
//! `string` values a JSON array). The crate-visible functions take the (reentrant) library
//! lock themselves, so that a count and the reads it sizes happen under one hold.

use crate::nc::{cstring, dtype_of, nc, nc_type_of};
use crate::options::NetcdfFormat;
use netcdf_sys as sys;
use rechunker_core::{AttrValue, Attributes, DataType, Scalar};
use rechunker_h5::json::{elements_to_json, infer_dtype, json_to_scalars, scalars_to_bytes};
use rechunker_h5::locked;
use serde_json::Value;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

/// Attributes libnetcdf manages itself, or that describe storage rather than data: never
/// written as user attributes.
pub(crate) const RESERVED: &[&str] = &[
    "_NCProperties",
    "_IsNetcdf4",
    "_SuperblockVersion",
    "_Format",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_nc3_strict",
    "_Endianness",
    "_ChunkSizes",
    "_Storage",
    "_DeflateLevel",
    "_Shuffle",
    "_Fletcher32",
    "_NoFill",
    "_Filter",
    "_Codecs",
    "_ARRAY_DIMENSIONS",
    "DIMENSION_LIST",
    "REFERENCE_LIST",
    "CLASS",
    "NAME",
];

/// Reads every attribute of variable `varid` (or `NC_GLOBAL`) of group `grp`, in order.
pub(crate) fn read_attributes(grp: c_int, varid: c_int) -> Result<Attributes, String> {
    locked(|| read_attributes_locked(grp, varid))
}

fn read_attributes_locked(grp: c_int, varid: c_int) -> Result<Attributes, String> {
    let mut n = 0;
    // SAFETY: under the library lock (`read_attributes`); `n` is a local the call writes.
    nc(unsafe { sys::nc_inq_varnatts(grp, varid, &mut n) })?;
    let mut out = Attributes::default();
    for i in 0..n {
        // One byte more than NC_MAX_NAME, zeroed: the name always ends in a NUL inside it.
        let mut name = vec![0 as c_char; sys::NC_MAX_NAME as usize + 1];
        // SAFETY: under the lock; libnetcdf writes at most NC_MAX_NAME bytes and a NUL into
        // `name`, which holds NC_MAX_NAME + 1.
        nc(unsafe { sys::nc_inq_attname(grp, varid, i, name.as_mut_ptr()) })?;
        // SAFETY: `name` is NUL-terminated within its length (see above) and outlives this
        // borrow.
        let name = unsafe { CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        match read_attribute(grp, varid, &name) {
            Ok(Some(v)) => out.insert(name, v),
            Ok(None) => {
                tracing::debug!(attribute = %name, "skipping an attribute of a user-defined type")
            }
            Err(e) => return Err(format!("attribute `{name}`: {e}")),
        }
    }
    Ok(out)
}

/// One attribute's value (lock held); `None` for user-defined types.
fn read_attribute(grp: c_int, varid: c_int, name: &str) -> Result<Option<AttrValue>, String> {
    let c = cstring(name)?;
    let mut xtype = 0;
    let mut len = 0usize;
    // SAFETY: under the lock (`read_attributes`); `c` is a NUL-terminated name that outlives
    // the call and `xtype`, `len` are locals it writes.
    nc(unsafe { sys::nc_inq_att(grp, varid, c.as_ptr(), &mut xtype, &mut len) })?;
    match xtype {
        sys::NC_CHAR => {
            let mut buf = vec![0u8; len];
            if len > 0 {
                // SAFETY: under the lock; the attribute holds `len` chars (queried above in
                // the same hold), the length of `buf`.
                nc(unsafe {
                    sys::nc_get_att_text(grp, varid, c.as_ptr(), buf.as_mut_ptr().cast())
                })?;
            }
            let end = buf.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            Ok(Some(AttrValue::json(Value::from(
                String::from_utf8_lossy(&buf[..end]).into_owned(),
            ))))
        }
        sys::NC_STRING => {
            let mut ptrs: Vec<*mut c_char> = vec![std::ptr::null_mut(); len];
            if len > 0 {
                // SAFETY: under the lock; the attribute holds `len` strings (queried above),
                // and libnetcdf writes one pointer for each into `ptrs`, which holds `len`.
                nc(unsafe { sys::nc_get_att_string(grp, varid, c.as_ptr(), ptrs.as_mut_ptr()) })?;
            }
            let strings: Vec<String> = ptrs
                .iter()
                .map(|&p| {
                    if p.is_null() {
                        String::new()
                    } else {
                        // SAFETY: a non-null pointer from `nc_get_att_string` is a
                        // NUL-terminated string libnetcdf allocated, alive until the
                        // `nc_free_string` below; we copy it.
                        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
                    }
                })
                .collect();
            if len > 0 {
                // SAFETY: under the lock; frees exactly the `len` strings libnetcdf allocated
                // into `ptrs`, once; `strings` holds copies, and `ptrs` is not read again.
                unsafe { sys::nc_free_string(len, ptrs.as_mut_ptr()) };
            }
            let value = if strings.len() == 1 {
                Value::from(strings.into_iter().next().unwrap_or_default())
            } else {
                Value::from(strings)
            };
            Ok(Some(AttrValue::json(value)))
        }
        other => {
            let Some(dtype) = dtype_of(other) else {
                return Ok(None);
            };
            let mut buf = vec![0u8; len * dtype.size()];
            if len > 0 {
                // SAFETY: under the lock; `nc_get_att` writes the attribute's `len` values in
                // its own type `other`, `dtype.size()` bytes each, into `buf` of
                // `len * dtype.size()` bytes.
                nc(unsafe { sys::nc_get_att(grp, varid, c.as_ptr(), buf.as_mut_ptr().cast()) })?;
            }
            Ok(Some(AttrValue {
                value: elements_to_json(dtype, &buf, len != 1),
                dtype: Some(dtype),
            }))
        }
    }
}

/// The closest type `format` can store `dtype` in, widening where the format lacks it.
pub(crate) fn storable(dtype: DataType, format: NetcdfFormat) -> DataType {
    if format.has_extended_types() {
        return if dtype == DataType::Bool {
            DataType::Int8
        } else {
            dtype
        };
    }
    match dtype {
        DataType::Bool | DataType::Int8 => DataType::Int8,
        DataType::UInt8 | DataType::Int16 => DataType::Int16,
        DataType::UInt16 | DataType::Int32 => DataType::Int32,
        DataType::Float32 => DataType::Float32,
        DataType::Char => DataType::Char,
        _ => DataType::Float64,
    }
}

/// Writes one attribute on variable `varid` (or `NC_GLOBAL`), replacing one of the same name.
/// `dtype` overrides the value's own type (the variable's type for `_FillValue`).
pub(crate) fn put_attribute(
    grp: c_int,
    varid: c_int,
    name: &str,
    value: &AttrValue,
    dtype: Option<DataType>,
    format: NetcdfFormat,
) -> Result<(), String> {
    locked(|| put_attribute_locked(grp, varid, name, value, dtype, format))
}

fn put_attribute_locked(
    grp: c_int,
    varid: c_int,
    name: &str,
    value: &AttrValue,
    dtype: Option<DataType>,
    format: NetcdfFormat,
) -> Result<(), String> {
    let c = cstring(name)?;
    if let Some(scalars) = json_to_scalars(&value.value) {
        if scalars.is_empty() {
            tracing::debug!(attribute = name, "skipping an empty attribute");
            return Ok(());
        }
        let wanted = dtype
            .or(value.dtype)
            .unwrap_or_else(|| infer_dtype(&scalars));
        let wanted = match (wanted, dtype.or(value.dtype)) {
            // Untyped integers: int when they fit (what every NetCDF reader expects).
            (DataType::Int64, None) if fits_i32(&scalars) => DataType::Int32,
            (w, _) => w,
        };
        let stored = storable(wanted, format);
        let (stored, bytes) = match scalars_to_bytes(&scalars, stored) {
            Some(b) => (stored, b),
            None => (
                DataType::Float64,
                scalars_to_bytes(&scalars, DataType::Float64)
                    .ok_or_else(|| "values do not fit any NetCDF type".to_string())?,
            ),
        };
        if bytes.len() != scalars.len() * stored.size() {
            return Err(format!(
                "{} values encoded as {} bytes of {stored:?}",
                scalars.len(),
                bytes.len()
            ));
        }
        // SAFETY: under the library lock (`put_attribute`); libnetcdf reads `scalars.len()`
        // values of `stored`'s NetCDF type from `bytes`, which holds exactly that many
        // (checked above), and copies them. `c` outlives the call.
        return nc(unsafe {
            sys::nc_put_att(
                grp,
                varid,
                c.as_ptr(),
                nc_type_of(stored),
                scalars.len(),
                bytes.as_ptr().cast(),
            )
        });
    }
    let put_text = |text: &str| {
        // SAFETY: under the library lock; libnetcdf copies `text.len()` bytes from `text`;
        // `c` outlives the call.
        nc(unsafe {
            sys::nc_put_att_text(grp, varid, c.as_ptr(), text.len(), text.as_ptr().cast())
        })
    };
    match &value.value {
        Value::String(s) => put_text(s),
        Value::Array(items) if items.is_empty() => Ok(()),
        Value::Array(items) if items.iter().all(Value::is_string) && format.has_strings() => {
            let owned: Vec<std::ffi::CString> = items
                .iter()
                .map(|v| cstring(&v.as_str().unwrap_or_default().replace('\0', "")))
                .collect::<Result<_, _>>()?;
            let mut ptrs: Vec<*const c_char> = owned.iter().map(|s| s.as_ptr()).collect();
            // SAFETY: under the library lock; `ptrs` holds `ptrs.len()` pointers to
            // NUL-terminated strings in `owned`, which outlives the call (libnetcdf copies
            // them and does not write through the pointers).
            nc(unsafe {
                sys::nc_put_att_string(grp, varid, c.as_ptr(), ptrs.len(), ptrs.as_mut_ptr())
            })
        }
        // Objects, nulls, mixed lists (and string lists in classic files): JSON text.
        other => put_text(&other.to_string()),
    }
}

fn fits_i32(values: &[Scalar]) -> bool {
    values.iter().all(|v| match v {
        Scalar::Int(i) => i32::try_from(*i).is_ok(),
        _ => false,
    })
}

/// Writes `attrs` (skipping reserved names and `_FillValue`, which is set with the variable's
/// fill value).
pub(crate) fn put_attributes(
    grp: c_int,
    varid: c_int,
    attrs: &Attributes,
    format: NetcdfFormat,
) -> Result<(), String> {
    for (name, value) in attrs.iter() {
        if RESERVED.contains(&name) || name == "_FillValue" {
            continue;
        }
        put_attribute(grp, varid, name, value, None, format)
            .map_err(|e| format!("attribute `{name}`: {e}"))?;
    }
    Ok(())
}
