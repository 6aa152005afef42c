//! The library's C enums as Rust enums, so that the adapter modules speak in types rather
//! than in `tiledb_sys` integer codes. Each converts to its code (`raw`) for the C calls and
//! back (`from_raw`); codes this layer does not name are kept (`Other`) or refused with a
//! [`LibError`], never guessed.

use super::{LibError, LibResult};
use tiledb_sys as sys;

/// `cell_val_num` of variable-length attributes and dimensions.
pub const VAR_NUM: u32 = sys::TILEDB_VAR_NUM;

/// Declares a C-like enum with its TileDB codes, `raw` and a fallible `from_raw`.
macro_rules! code_enum {
    ($(#[$doc:meta])* $name:ident : $raw:ty, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $code:path),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        // Not every enum is both passed to and returned by the library.
        #[allow(dead_code)]
        impl $name {
            /// The library's code.
            pub(crate) fn raw(self) -> $raw {
                match self {
                    $($name::$variant => $code),+
                }
            }

            /// The variant of a code the library returned.
            pub(crate) fn from_raw(code: $raw) -> LibResult<$name> {
                match code {
                    $(c if c == $code => Ok($name::$variant),)+
                    other => Err(LibError(format!(concat!("unknown TileDB ", $what, " {}"), other))),
                }
            }
        }
    };
}

code_enum!(
    /// Whether an array is opened (and queried) for reading or for writing.
    QueryType: sys::tiledb_query_type_t, "query type" {
        Read = sys::TILEDB_READ,
        Write = sys::TILEDB_WRITE,
    }
);

code_enum!(
    /// Cell and tile orders, and query layouts.
    Layout: sys::tiledb_layout_t, "layout" {
        RowMajor = sys::TILEDB_ROW_MAJOR,
        ColMajor = sys::TILEDB_COL_MAJOR,
        GlobalOrder = sys::TILEDB_GLOBAL_ORDER,
        Unordered = sys::TILEDB_UNORDERED,
        Hilbert = sys::TILEDB_HILBERT,
    }
);

code_enum!(
    /// Dense or sparse.
    ArrayType: sys::tiledb_array_type_t, "array type" {
        Dense = sys::TILEDB_DENSE,
        Sparse = sys::TILEDB_SPARSE,
    }
);

code_enum!(
    /// What is stored at a URI.
    ObjectType: sys::tiledb_object_t, "object type" {
        /// Nothing TileDB knows (no object, or not a TileDB one).
        Invalid = sys::TILEDB_INVALID,
        Group = sys::TILEDB_GROUP,
        Array = sys::TILEDB_ARRAY,
    }
);

code_enum!(
    /// Where a submitted query stands.
    QueryStatus: sys::tiledb_query_status_t, "query status" {
        Failed = sys::TILEDB_FAILED,
        Completed = sys::TILEDB_COMPLETED,
        InProgress = sys::TILEDB_INPROGRESS,
        /// A read whose buffers were too small for all results.
        Incomplete = sys::TILEDB_INCOMPLETE,
        Uninitialized = sys::TILEDB_UNINITIALIZED,
        Initialized = sys::TILEDB_INITIALIZED,
    }
);

/// Declares an enum of TileDB codes that may meet codes it does not name (stored data can
/// carry any of the library's types and filters): those are kept as `Other(code)`.
macro_rules! open_code_enum {
    ($(#[$doc:meta])* $name:ident : $raw:ty { $($variant:ident = $code:path),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A code not named above (only ever built by `from_raw`, so never one that is).
            Other($raw),
        }

        impl $name {
            /// The library's code.
            pub(crate) fn raw(self) -> $raw {
                match self {
                    $($name::$variant => $code,)+
                    $name::Other(code) => code,
                }
            }

            /// The variant of a code the library returned.
            pub(crate) fn from_raw(code: $raw) -> $name {
                match code {
                    $(c if c == $code => $name::$variant,)+
                    other => $name::Other(other),
                }
            }
        }
    };
}

open_code_enum!(
    /// A TileDB datatype.
    Datatype: sys::tiledb_datatype_t {
        Int8 = sys::TILEDB_INT8,
        Int16 = sys::TILEDB_INT16,
        Int32 = sys::TILEDB_INT32,
        Int64 = sys::TILEDB_INT64,
        UInt8 = sys::TILEDB_UINT8,
        UInt16 = sys::TILEDB_UINT16,
        UInt32 = sys::TILEDB_UINT32,
        UInt64 = sys::TILEDB_UINT64,
        Float32 = sys::TILEDB_FLOAT32,
        Float64 = sys::TILEDB_FLOAT64,
        Bool = sys::TILEDB_BOOL,
        Char = sys::TILEDB_CHAR,
        StringAscii = sys::TILEDB_STRING_ASCII,
        StringUtf8 = sys::TILEDB_STRING_UTF8,
        DatetimeNs = sys::TILEDB_DATETIME_NS,
        Blob = sys::TILEDB_BLOB,
    }
);

impl Datatype {
    /// Bytes of one value (0 for variable-sized types and codes the library does not know).
    pub fn size(self) -> usize {
        // SAFETY: a pure function of its integer argument; the library answers 0 for codes
        // it does not know.
        unsafe { sys::tiledb_datatype_size(self.raw()) as usize }
    }
}

impl std::fmt::Display for Datatype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Datatype::Other(code) => write!(f, "datatype {code}"),
            named => write!(f, "{named:?}"),
        }
    }
}

open_code_enum!(
    /// A filter of a filter pipeline.
    FilterType: sys::tiledb_filter_type_t {
        None = sys::TILEDB_FILTER_NONE,
        Gzip = sys::TILEDB_FILTER_GZIP,
        Zstd = sys::TILEDB_FILTER_ZSTD,
        Lz4 = sys::TILEDB_FILTER_LZ4,
        Rle = sys::TILEDB_FILTER_RLE,
        Bzip2 = sys::TILEDB_FILTER_BZIP2,
        DoubleDelta = sys::TILEDB_FILTER_DOUBLE_DELTA,
        BitWidthReduction = sys::TILEDB_FILTER_BIT_WIDTH_REDUCTION,
        BitShuffle = sys::TILEDB_FILTER_BITSHUFFLE,
        ByteShuffle = sys::TILEDB_FILTER_BYTESHUFFLE,
        PositiveDelta = sys::TILEDB_FILTER_POSITIVE_DELTA,
        ChecksumMd5 = sys::TILEDB_FILTER_CHECKSUM_MD5,
        ChecksumSha256 = sys::TILEDB_FILTER_CHECKSUM_SHA256,
        Dictionary = sys::TILEDB_FILTER_DICTIONARY,
        ScaleFloat = sys::TILEDB_FILTER_SCALE_FLOAT,
        Xor = sys::TILEDB_FILTER_XOR,
        Webp = sys::TILEDB_FILTER_WEBP,
        Delta = sys::TILEDB_FILTER_DELTA,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for layout in [
            Layout::RowMajor,
            Layout::ColMajor,
            Layout::GlobalOrder,
            Layout::Unordered,
            Layout::Hilbert,
        ] {
            assert_eq!(Layout::from_raw(layout.raw()), Ok(layout));
        }
        assert!(Layout::from_raw(99).is_err());
        assert_eq!(Datatype::from_raw(sys::TILEDB_UINT64), Datatype::UInt64);
        assert_eq!(Datatype::from_raw(33), Datatype::Other(33));
        assert_eq!(Datatype::Other(33).raw(), 33);
        assert_eq!(
            FilterType::from_raw(sys::TILEDB_FILTER_ZSTD),
            FilterType::Zstd
        );
        assert_eq!(
            ObjectType::from_raw(sys::TILEDB_GROUP),
            Ok(ObjectType::Group)
        );
    }

    #[test]
    fn sizes_come_from_the_library() {
        assert_eq!(Datatype::Int16.size(), 2);
        assert_eq!(Datatype::Float64.size(), 8);
        assert_eq!(Datatype::Bool.size(), 1);
        assert_eq!(Datatype::StringUtf8.size(), 1);
    }
}
