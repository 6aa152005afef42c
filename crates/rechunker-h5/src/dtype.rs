//! HDF5 datatypes and rechunker's [`DataType`]s.
//!
//! Integers and IEEE floats of any byte order map to our numeric types; h5py's boolean (an
//! enum of int8 with members FALSE = 0 and TRUE = 1) maps to `Bool`, a fixed-length string of
//! one byte (NetCDF-4 `char`, h5py `S1`) to `Char`. Everything else (longer strings,
//! compounds, references, variable-length data) is not an array we rechunk.

use crate::hid::{check, Hid};
use crate::locked;
use hdf5::globals::*;
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5t::{
    H5T_class_t, H5T_order_t, H5T_sign_t, H5T_str_t, H5Tcopy, H5Tenum_create, H5Tenum_insert,
    H5Tget_class, H5Tget_member_name, H5Tget_member_value, H5Tget_nmembers, H5Tget_order,
    H5Tget_sign, H5Tget_size, H5Tget_super, H5Tis_variable_str, H5Tset_strpad,
};
use rechunker_core::DataType;
use std::ffi::CStr;

/// What a stored datatype is in our terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeInfo {
    pub dtype: DataType,
    /// True when the stored bytes are big-endian on a little-endian host (or the reverse):
    /// raw chunks must be byte-swapped after decoding.
    pub swap: bool,
}

fn is_native_order(order: H5T_order_t) -> bool {
    match order {
        H5T_order_t::H5T_ORDER_LE => cfg!(target_endian = "little"),
        H5T_order_t::H5T_ORDER_BE => cfg!(target_endian = "big"),
        _ => true,
    }
}

/// Classifies the datatype `type_id`; `Err` describes a type we do not support. Lock taken
/// inside.
pub fn classify_type(type_id: hid_t) -> Result<TypeInfo, String> {
    locked(|| classify_locked(type_id))
}

fn classify_locked(type_id: hid_t) -> Result<TypeInfo, String> {
    // SAFETY: called from `classify_type` under the library lock. These queries take a
    // datatype id by value and return plain values; an invalid id makes them fail (a negative
    // or error value), not misbehave.
    let (class, size, order) = unsafe {
        (
            H5Tget_class(type_id),
            H5Tget_size(type_id),
            H5Tget_order(type_id),
        )
    };
    match class {
        H5T_class_t::H5T_INTEGER => {
            // SAFETY: as above: lock held, id passed by value, a plain value returned.
            let signed = unsafe { H5Tget_sign(type_id) } == H5T_sign_t::H5T_SGN_2;
            let dtype = match (signed, size) {
                (true, 1) => DataType::Int8,
                (true, 2) => DataType::Int16,
                (true, 4) => DataType::Int32,
                (true, 8) => DataType::Int64,
                (false, 1) => DataType::UInt8,
                (false, 2) => DataType::UInt16,
                (false, 4) => DataType::UInt32,
                (false, 8) => DataType::UInt64,
                _ => return Err(format!("{size}-byte integers")),
            };
            Ok(TypeInfo {
                dtype,
                swap: size > 1 && !is_native_order(order),
            })
        }
        H5T_class_t::H5T_FLOAT => {
            let dtype = match size {
                4 => DataType::Float32,
                8 => DataType::Float64,
                _ => return Err(format!("{size}-byte floats")),
            };
            Ok(TypeInfo {
                dtype,
                swap: !is_native_order(order),
            })
        }
        H5T_class_t::H5T_ENUM if is_bool_enum(type_id) => Ok(TypeInfo {
            dtype: DataType::Bool,
            swap: false,
        }),
        H5T_class_t::H5T_ENUM => Err("enumerations".into()),
        // A fixed-length string of one byte is a character (NetCDF-4 `char`, numpy `S1`).
        // SAFETY: as above: lock held, id passed by value, a plain value returned.
        H5T_class_t::H5T_STRING if size == 1 && unsafe { H5Tis_variable_str(type_id) } == 0 => {
            Ok(TypeInfo {
                dtype: DataType::Char,
                swap: false,
            })
        }
        H5T_class_t::H5T_STRING => Err("strings".into()),
        H5T_class_t::H5T_COMPOUND => Err("compound types".into()),
        H5T_class_t::H5T_VLEN => Err("variable-length data".into()),
        H5T_class_t::H5T_REFERENCE => Err("references".into()),
        H5T_class_t::H5T_OPAQUE => Err("opaque data".into()),
        H5T_class_t::H5T_ARRAY => Err("array types".into()),
        H5T_class_t::H5T_BITFIELD => Err("bitfields".into()),
        other => Err(format!("datatype class {other:?}")),
    }
}

/// h5py's bool: a 1-byte enum with exactly FALSE = 0 and TRUE = 1 (lock held, by
/// `classify_type`).
fn is_bool_enum(type_id: hid_t) -> bool {
    // SAFETY: the library lock is held (only `classify_locked` calls this). Each member name
    // libhdf5 returns is a NUL-terminated string it allocated: we copy it before freeing it
    // with `H5free_memory`, its allocator's free, and never touch it afterwards. The member
    // value is written into `value`, one byte, which is the size of this enum (checked first).
    unsafe {
        if H5Tget_size(type_id) != 1 || H5Tget_nmembers(type_id) != 2 {
            return false;
        }
        let Ok(base) = Hid::new(H5Tget_super(type_id)) else {
            return false;
        };
        if H5Tget_size(base.id()) != 1 {
            return false;
        }
        let mut ok = true;
        for (i, (want_name, want_value)) in [("FALSE", 0u8), ("TRUE", 1u8)].iter().enumerate() {
            let name = H5Tget_member_name(type_id, i as u32);
            if name.is_null() {
                return false;
            }
            let text = CStr::from_ptr(name).to_string_lossy().into_owned();
            hdf5_sys::h5::H5free_memory(name.cast());
            let mut value = 0u8;
            if H5Tget_member_value(type_id, i as u32, (&mut value as *mut u8).cast()) < 0 {
                return false;
            }
            ok &= text == *want_name && value == *want_value;
        }
        ok
    }
}

/// h5py's boolean type: enum over `base` with FALSE = 0 and TRUE = 1 (lock held).
fn bool_enum(base: hid_t) -> Result<Hid, String> {
    // SAFETY: lock held (callers run inside `locked`); `base` is a predefined 1-byte integer
    // type id.
    let t = Hid::new(unsafe { H5Tenum_create(base) })?;
    for (name, value) in [(c"FALSE", 0i8), (c"TRUE", 1i8)] {
        // SAFETY: lock held; `name` is a static C string and `value` a live i8, the size of
        // the enum's base type, both only read during the call (libhdf5 copies them).
        check(unsafe { H5Tenum_insert(t.id(), name.as_ptr(), (&value as *const i8).cast()) })?;
    }
    Ok(t)
}

/// h5py's type of numpy `S1`: a one-byte null-padded string (lock held).
fn char_type() -> Result<Hid, String> {
    // SAFETY: lock held (callers run inside `locked`); copying a predefined type and setting
    // the padding of our own copy pass ids by value only.
    let t = Hid::new(unsafe { H5Tcopy(*H5T_C_S1) })?;
    // SAFETY: as above; `t` is our live copy.
    check(unsafe { H5Tset_strpad(t.id(), H5T_str_t::H5T_STR_NULLPAD) })?;
    Ok(t)
}

/// The in-memory type to read data of stored type `ftype` (our `dtype`) as: [`mem_type`], but
/// for characters the stored string type itself, so that HDF5 converts nothing (between string
/// paddings it may drop the one byte). Lock taken inside.
pub fn read_type(ftype: hid_t, dtype: DataType) -> Result<Hid, String> {
    match dtype {
        // SAFETY: under the library lock; `H5Tcopy` takes the id by value and fails cleanly
        // on an invalid one.
        DataType::Char => locked(|| Hid::new(unsafe { H5Tcopy(ftype) })),
        other => mem_type(other),
    }
}

/// The in-memory (native) type of `dtype`. Lock taken inside.
pub fn mem_type(dtype: DataType) -> Result<Hid, String> {
    locked(|| mem_type_locked(dtype))
}

fn mem_type_locked(dtype: DataType) -> Result<Hid, String> {
    let base = match dtype {
        DataType::Char => return char_type(),
        DataType::Bool => return bool_enum(*H5T_NATIVE_INT8),
        DataType::Int8 => *H5T_NATIVE_INT8,
        DataType::Int16 => *H5T_NATIVE_INT16,
        DataType::Int32 => *H5T_NATIVE_INT32,
        DataType::Int64 => *H5T_NATIVE_INT64,
        DataType::UInt8 => *H5T_NATIVE_UINT8,
        DataType::UInt16 => *H5T_NATIVE_UINT16,
        DataType::UInt32 => *H5T_NATIVE_UINT32,
        DataType::UInt64 => *H5T_NATIVE_UINT64,
        DataType::Float32 => *H5T_NATIVE_FLOAT,
        DataType::Float64 => *H5T_NATIVE_DOUBLE,
    };
    // SAFETY: lock held (`mem_type`); `base` is a predefined type id, passed by value.
    Hid::new(unsafe { H5Tcopy(base) })
}

/// The type we store `dtype` as: little-endian standard types, h5py's bool. Lock taken inside.
pub fn file_type(dtype: DataType) -> Result<Hid, String> {
    locked(|| file_type_locked(dtype))
}

fn file_type_locked(dtype: DataType) -> Result<Hid, String> {
    let base = match dtype {
        DataType::Char => return char_type(),
        DataType::Bool => return bool_enum(*H5T_STD_I8LE),
        DataType::Int8 => *H5T_STD_I8LE,
        DataType::Int16 => *H5T_STD_I16LE,
        DataType::Int32 => *H5T_STD_I32LE,
        DataType::Int64 => *H5T_STD_I64LE,
        DataType::UInt8 => *H5T_STD_U8LE,
        DataType::UInt16 => *H5T_STD_U16LE,
        DataType::UInt32 => *H5T_STD_U32LE,
        DataType::UInt64 => *H5T_STD_U64LE,
        DataType::Float32 => *H5T_IEEE_F32LE,
        DataType::Float64 => *H5T_IEEE_F64LE,
    };
    // SAFETY: lock held (`file_type`); `base` is a predefined type id, passed by value.
    Hid::new(unsafe { H5Tcopy(base) })
}
