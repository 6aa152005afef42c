//! rechunker's own thin FFI to libtiledb 2.30: the C functions rechunker uses, declared by hand
//! from the TileDB C API (there is no header or usable crate for it here), and nothing else.
//!
//! Conventions of the C API:
//! - every function returns a status ([`TILEDB_OK`] = 0, [`TILEDB_ERR`] = -1, [`TILEDB_OOM`] =
//!   -2, ...); on error, [`tiledb_ctx_get_last_error`] and [`tiledb_error_message`] say why. The
//!   last error is kept per context (not per thread) and never cleared;
//! - getters that return handles (schemas, domains, dimensions, attributes, filter lists,
//!   filters) return new handles the caller frees; strings and value pointers they return are
//!   borrowed from the handle they came from;
//! - enums are C enums, passed as `u32`.
//!
//! The library is found and linked by the build script (see `build.rs`): dependents that build
//! binaries get its folder as `DEP_TILEDB_LIB_DIR` for their own rpath.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};
use std::marker::{PhantomData, PhantomPinned};

macro_rules! opaque {
    ($($name:ident),* $(,)?) => {
        $(
            /// An opaque TileDB handle; only ever used behind a pointer.
            #[repr(C)]
            pub struct $name {
                _data: [u8; 0],
                _marker: PhantomData<(*mut u8, PhantomPinned)>,
            }
        )*
    };
}

opaque!(
    tiledb_config_t,
    tiledb_ctx_t,
    tiledb_error_t,
    tiledb_array_schema_t,
    tiledb_array_schema_evolution_t,
    tiledb_domain_t,
    tiledb_dimension_t,
    tiledb_attribute_t,
    tiledb_filter_t,
    tiledb_filter_list_t,
    tiledb_array_t,
    tiledb_query_t,
    tiledb_subarray_t,
    tiledb_group_t,
    tiledb_string_t,
);

/// Status returned by most functions.
pub type capi_return_t = i32;

pub const TILEDB_OK: capi_return_t = 0;
pub const TILEDB_ERR: capi_return_t = -1;
pub const TILEDB_OOM: capi_return_t = -2;
pub const TILEDB_INVALID_CONTEXT: capi_return_t = -3;
pub const TILEDB_INVALID_ERROR: capi_return_t = -4;
pub const TILEDB_BUDGET_UNAVAILABLE: capi_return_t = -5;

/// `cell_val_num` of variable-length attributes and dimensions.
pub const TILEDB_VAR_NUM: u32 = u32::MAX;

pub type tiledb_datatype_t = u32;
pub const TILEDB_INT32: tiledb_datatype_t = 0;
pub const TILEDB_INT64: tiledb_datatype_t = 1;
pub const TILEDB_FLOAT32: tiledb_datatype_t = 2;
pub const TILEDB_FLOAT64: tiledb_datatype_t = 3;
pub const TILEDB_CHAR: tiledb_datatype_t = 4;
pub const TILEDB_INT8: tiledb_datatype_t = 5;
pub const TILEDB_UINT8: tiledb_datatype_t = 6;
pub const TILEDB_INT16: tiledb_datatype_t = 7;
pub const TILEDB_UINT16: tiledb_datatype_t = 8;
pub const TILEDB_UINT32: tiledb_datatype_t = 9;
pub const TILEDB_UINT64: tiledb_datatype_t = 10;
pub const TILEDB_STRING_ASCII: tiledb_datatype_t = 11;
pub const TILEDB_STRING_UTF8: tiledb_datatype_t = 12;
pub const TILEDB_DATETIME_NS: tiledb_datatype_t = 27;
pub const TILEDB_BLOB: tiledb_datatype_t = 40;
pub const TILEDB_BOOL: tiledb_datatype_t = 41;

pub type tiledb_filter_type_t = u32;
pub const TILEDB_FILTER_NONE: tiledb_filter_type_t = 0;
pub const TILEDB_FILTER_GZIP: tiledb_filter_type_t = 1;
pub const TILEDB_FILTER_ZSTD: tiledb_filter_type_t = 2;
pub const TILEDB_FILTER_LZ4: tiledb_filter_type_t = 3;
pub const TILEDB_FILTER_RLE: tiledb_filter_type_t = 4;
pub const TILEDB_FILTER_BZIP2: tiledb_filter_type_t = 5;
pub const TILEDB_FILTER_DOUBLE_DELTA: tiledb_filter_type_t = 6;
pub const TILEDB_FILTER_BIT_WIDTH_REDUCTION: tiledb_filter_type_t = 7;
pub const TILEDB_FILTER_BITSHUFFLE: tiledb_filter_type_t = 8;
pub const TILEDB_FILTER_BYTESHUFFLE: tiledb_filter_type_t = 9;
pub const TILEDB_FILTER_POSITIVE_DELTA: tiledb_filter_type_t = 10;
pub const TILEDB_FILTER_CHECKSUM_MD5: tiledb_filter_type_t = 12;
pub const TILEDB_FILTER_CHECKSUM_SHA256: tiledb_filter_type_t = 13;
pub const TILEDB_FILTER_DICTIONARY: tiledb_filter_type_t = 14;
pub const TILEDB_FILTER_SCALE_FLOAT: tiledb_filter_type_t = 15;
pub const TILEDB_FILTER_XOR: tiledb_filter_type_t = 16;
pub const TILEDB_FILTER_WEBP: tiledb_filter_type_t = 18;
pub const TILEDB_FILTER_DELTA: tiledb_filter_type_t = 19;

pub type tiledb_filter_option_t = u32;
/// Value: `i32`.
pub const TILEDB_COMPRESSION_LEVEL: tiledb_filter_option_t = 0;

pub type tiledb_array_type_t = u32;
pub const TILEDB_DENSE: tiledb_array_type_t = 0;
pub const TILEDB_SPARSE: tiledb_array_type_t = 1;

pub type tiledb_layout_t = u32;
pub const TILEDB_ROW_MAJOR: tiledb_layout_t = 0;
pub const TILEDB_COL_MAJOR: tiledb_layout_t = 1;
pub const TILEDB_GLOBAL_ORDER: tiledb_layout_t = 2;
pub const TILEDB_UNORDERED: tiledb_layout_t = 3;
pub const TILEDB_HILBERT: tiledb_layout_t = 4;

pub type tiledb_query_type_t = u32;
pub const TILEDB_READ: tiledb_query_type_t = 0;
pub const TILEDB_WRITE: tiledb_query_type_t = 1;
pub const TILEDB_DELETE: tiledb_query_type_t = 2;
pub const TILEDB_UPDATE: tiledb_query_type_t = 3;
pub const TILEDB_MODIFY_EXCLUSIVE: tiledb_query_type_t = 4;

pub type tiledb_query_status_t = u32;
pub const TILEDB_FAILED: tiledb_query_status_t = 0;
pub const TILEDB_COMPLETED: tiledb_query_status_t = 1;
pub const TILEDB_INPROGRESS: tiledb_query_status_t = 2;
pub const TILEDB_INCOMPLETE: tiledb_query_status_t = 3;
pub const TILEDB_UNINITIALIZED: tiledb_query_status_t = 4;
pub const TILEDB_INITIALIZED: tiledb_query_status_t = 5;

pub type tiledb_object_t = u32;
pub const TILEDB_INVALID: tiledb_object_t = 0;
pub const TILEDB_GROUP: tiledb_object_t = 1;
pub const TILEDB_ARRAY: tiledb_object_t = 2;

extern "C" {
    pub fn tiledb_version(major: *mut i32, minor: *mut i32, rev: *mut i32);
    /// Bytes of one value of `type_` (0 for variable-sized types).
    pub fn tiledb_datatype_size(type_: tiledb_datatype_t) -> u64;

    // Config, context, errors.
    pub fn tiledb_config_alloc(
        config: *mut *mut tiledb_config_t,
        error: *mut *mut tiledb_error_t,
    ) -> capi_return_t;
    pub fn tiledb_config_set(
        config: *mut tiledb_config_t,
        param: *const c_char,
        value: *const c_char,
        error: *mut *mut tiledb_error_t,
    ) -> capi_return_t;
    pub fn tiledb_config_free(config: *mut *mut tiledb_config_t);
    pub fn tiledb_ctx_alloc(
        config: *mut tiledb_config_t,
        ctx: *mut *mut tiledb_ctx_t,
    ) -> capi_return_t;
    pub fn tiledb_ctx_free(ctx: *mut *mut tiledb_ctx_t);
    pub fn tiledb_ctx_get_last_error(
        ctx: *mut tiledb_ctx_t,
        err: *mut *mut tiledb_error_t,
    ) -> capi_return_t;
    pub fn tiledb_error_message(
        err: *mut tiledb_error_t,
        errmsg: *mut *const c_char,
    ) -> capi_return_t;
    pub fn tiledb_error_free(err: *mut *mut tiledb_error_t);

    // Array schemas.
    pub fn tiledb_array_schema_alloc(
        ctx: *mut tiledb_ctx_t,
        array_type: tiledb_array_type_t,
        array_schema: *mut *mut tiledb_array_schema_t,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_set_domain(
        ctx: *mut tiledb_ctx_t,
        array_schema: *mut tiledb_array_schema_t,
        domain: *mut tiledb_domain_t,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_add_attribute(
        ctx: *mut tiledb_ctx_t,
        array_schema: *mut tiledb_array_schema_t,
        attr: *mut tiledb_attribute_t,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_set_tile_order(
        ctx: *mut tiledb_ctx_t,
        array_schema: *mut tiledb_array_schema_t,
        tile_order: tiledb_layout_t,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_set_cell_order(
        ctx: *mut tiledb_ctx_t,
        array_schema: *mut tiledb_array_schema_t,
        cell_order: tiledb_layout_t,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_check(
        ctx: *mut tiledb_ctx_t,
        array_schema: *mut tiledb_array_schema_t,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_free(array_schema: *mut *mut tiledb_array_schema_t);
    pub fn tiledb_array_schema_load(
        ctx: *mut tiledb_ctx_t,
        array_uri: *const c_char,
        array_schema: *mut *mut tiledb_array_schema_t,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_get_domain(
        ctx: *mut tiledb_ctx_t,
        array_schema: *const tiledb_array_schema_t,
        domain: *mut *mut tiledb_domain_t,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_get_attribute_num(
        ctx: *mut tiledb_ctx_t,
        array_schema: *const tiledb_array_schema_t,
        attribute_num: *mut u32,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_get_attribute_from_index(
        ctx: *mut tiledb_ctx_t,
        array_schema: *const tiledb_array_schema_t,
        index: u32,
        attr: *mut *mut tiledb_attribute_t,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_get_array_type(
        ctx: *mut tiledb_ctx_t,
        array_schema: *const tiledb_array_schema_t,
        array_type: *mut tiledb_array_type_t,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_get_tile_order(
        ctx: *mut tiledb_ctx_t,
        array_schema: *const tiledb_array_schema_t,
        tile_order: *mut tiledb_layout_t,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_get_cell_order(
        ctx: *mut tiledb_ctx_t,
        array_schema: *const tiledb_array_schema_t,
        cell_order: *mut tiledb_layout_t,
    ) -> capi_return_t;

    // Schema evolution (adding attributes to an existing array).
    pub fn tiledb_array_schema_evolution_alloc(
        ctx: *mut tiledb_ctx_t,
        array_schema_evolution: *mut *mut tiledb_array_schema_evolution_t,
    ) -> capi_return_t;
    pub fn tiledb_array_schema_evolution_free(
        array_schema_evolution: *mut *mut tiledb_array_schema_evolution_t,
    );
    pub fn tiledb_array_schema_evolution_add_attribute(
        ctx: *mut tiledb_ctx_t,
        array_schema_evolution: *mut tiledb_array_schema_evolution_t,
        attribute: *mut tiledb_attribute_t,
    ) -> capi_return_t;
    pub fn tiledb_array_evolve(
        ctx: *mut tiledb_ctx_t,
        array_uri: *const c_char,
        array_schema_evolution: *mut tiledb_array_schema_evolution_t,
    ) -> capi_return_t;

    // Domains and dimensions.
    pub fn tiledb_domain_alloc(ctx: *mut tiledb_ctx_t, domain: *mut *mut tiledb_domain_t) -> i32;
    pub fn tiledb_domain_add_dimension(
        ctx: *mut tiledb_ctx_t,
        domain: *mut tiledb_domain_t,
        dim: *mut tiledb_dimension_t,
    ) -> i32;
    pub fn tiledb_domain_free(domain: *mut *mut tiledb_domain_t);
    pub fn tiledb_domain_get_ndim(
        ctx: *mut tiledb_ctx_t,
        domain: *const tiledb_domain_t,
        ndim: *mut u32,
    ) -> i32;
    pub fn tiledb_domain_get_dimension_from_index(
        ctx: *mut tiledb_ctx_t,
        domain: *const tiledb_domain_t,
        index: u32,
        dim: *mut *mut tiledb_dimension_t,
    ) -> i32;
    pub fn tiledb_dimension_alloc(
        ctx: *mut tiledb_ctx_t,
        name: *const c_char,
        type_: tiledb_datatype_t,
        dim_domain: *const c_void,
        tile_extent: *const c_void,
        dim: *mut *mut tiledb_dimension_t,
    ) -> i32;
    pub fn tiledb_dimension_free(dim: *mut *mut tiledb_dimension_t);
    pub fn tiledb_dimension_get_name(
        ctx: *mut tiledb_ctx_t,
        dim: *const tiledb_dimension_t,
        name: *mut *const c_char,
    ) -> i32;
    pub fn tiledb_dimension_get_type(
        ctx: *mut tiledb_ctx_t,
        dim: *const tiledb_dimension_t,
        type_: *mut tiledb_datatype_t,
    ) -> i32;
    pub fn tiledb_dimension_get_domain(
        ctx: *mut tiledb_ctx_t,
        dim: *const tiledb_dimension_t,
        domain: *mut *const c_void,
    ) -> i32;
    pub fn tiledb_dimension_get_tile_extent(
        ctx: *mut tiledb_ctx_t,
        dim: *const tiledb_dimension_t,
        tile_extent: *mut *const c_void,
    ) -> i32;
    pub fn tiledb_dimension_get_cell_val_num(
        ctx: *mut tiledb_ctx_t,
        dim: *const tiledb_dimension_t,
        cell_val_num: *mut u32,
    ) -> i32;

    // Attributes.
    pub fn tiledb_attribute_alloc(
        ctx: *mut tiledb_ctx_t,
        name: *const c_char,
        type_: tiledb_datatype_t,
        attr: *mut *mut tiledb_attribute_t,
    ) -> i32;
    pub fn tiledb_attribute_free(attr: *mut *mut tiledb_attribute_t);
    pub fn tiledb_attribute_set_filter_list(
        ctx: *mut tiledb_ctx_t,
        attr: *mut tiledb_attribute_t,
        filter_list: *mut tiledb_filter_list_t,
    ) -> i32;
    pub fn tiledb_attribute_set_fill_value(
        ctx: *mut tiledb_ctx_t,
        attr: *mut tiledb_attribute_t,
        value: *const c_void,
        size: u64,
    ) -> i32;
    pub fn tiledb_attribute_get_fill_value(
        ctx: *mut tiledb_ctx_t,
        attr: *mut tiledb_attribute_t,
        value: *mut *const c_void,
        size: *mut u64,
    ) -> i32;
    pub fn tiledb_attribute_get_name(
        ctx: *mut tiledb_ctx_t,
        attr: *const tiledb_attribute_t,
        name: *mut *const c_char,
    ) -> i32;
    pub fn tiledb_attribute_get_type(
        ctx: *mut tiledb_ctx_t,
        attr: *const tiledb_attribute_t,
        type_: *mut tiledb_datatype_t,
    ) -> i32;
    pub fn tiledb_attribute_get_filter_list(
        ctx: *mut tiledb_ctx_t,
        attr: *mut tiledb_attribute_t,
        filter_list: *mut *mut tiledb_filter_list_t,
    ) -> i32;
    pub fn tiledb_attribute_get_cell_val_num(
        ctx: *mut tiledb_ctx_t,
        attr: *const tiledb_attribute_t,
        cell_val_num: *mut u32,
    ) -> i32;
    pub fn tiledb_attribute_get_nullable(
        ctx: *mut tiledb_ctx_t,
        attr: *mut tiledb_attribute_t,
        nullable: *mut u8,
    ) -> i32;

    // Filters.
    pub fn tiledb_filter_alloc(
        ctx: *mut tiledb_ctx_t,
        type_: tiledb_filter_type_t,
        filter: *mut *mut tiledb_filter_t,
    ) -> capi_return_t;
    pub fn tiledb_filter_free(filter: *mut *mut tiledb_filter_t);
    pub fn tiledb_filter_set_option(
        ctx: *mut tiledb_ctx_t,
        filter: *mut tiledb_filter_t,
        option: tiledb_filter_option_t,
        value: *const c_void,
    ) -> capi_return_t;
    pub fn tiledb_filter_get_option(
        ctx: *mut tiledb_ctx_t,
        filter: *mut tiledb_filter_t,
        option: tiledb_filter_option_t,
        value: *mut c_void,
    ) -> capi_return_t;
    pub fn tiledb_filter_get_type(
        ctx: *mut tiledb_ctx_t,
        filter: *mut tiledb_filter_t,
        type_: *mut tiledb_filter_type_t,
    ) -> capi_return_t;
    pub fn tiledb_filter_list_alloc(
        ctx: *mut tiledb_ctx_t,
        filter_list: *mut *mut tiledb_filter_list_t,
    ) -> capi_return_t;
    pub fn tiledb_filter_list_free(filter_list: *mut *mut tiledb_filter_list_t);
    pub fn tiledb_filter_list_add_filter(
        ctx: *mut tiledb_ctx_t,
        filter_list: *mut tiledb_filter_list_t,
        filter: *mut tiledb_filter_t,
    ) -> capi_return_t;
    pub fn tiledb_filter_list_get_nfilters(
        ctx: *mut tiledb_ctx_t,
        filter_list: *const tiledb_filter_list_t,
        nfilters: *mut u32,
    ) -> capi_return_t;
    pub fn tiledb_filter_list_get_filter_from_index(
        ctx: *mut tiledb_ctx_t,
        filter_list: *const tiledb_filter_list_t,
        index: u32,
        filter: *mut *mut tiledb_filter_t,
    ) -> capi_return_t;

    // Arrays.
    pub fn tiledb_array_create(
        ctx: *mut tiledb_ctx_t,
        array_uri: *const c_char,
        array_schema: *const tiledb_array_schema_t,
    ) -> capi_return_t;
    pub fn tiledb_array_alloc(
        ctx: *mut tiledb_ctx_t,
        array_uri: *const c_char,
        array: *mut *mut tiledb_array_t,
    ) -> capi_return_t;
    pub fn tiledb_array_open(
        ctx: *mut tiledb_ctx_t,
        array: *mut tiledb_array_t,
        query_type: tiledb_query_type_t,
    ) -> capi_return_t;
    pub fn tiledb_array_close(ctx: *mut tiledb_ctx_t, array: *mut tiledb_array_t) -> capi_return_t;
    pub fn tiledb_array_free(array: *mut *mut tiledb_array_t);
    pub fn tiledb_array_get_schema(
        ctx: *mut tiledb_ctx_t,
        array: *mut tiledb_array_t,
        array_schema: *mut *mut tiledb_array_schema_t,
    ) -> capi_return_t;
    pub fn tiledb_array_put_metadata(
        ctx: *mut tiledb_ctx_t,
        array: *mut tiledb_array_t,
        key: *const c_char,
        value_type: tiledb_datatype_t,
        value_num: u32,
        value: *const c_void,
    ) -> capi_return_t;
    pub fn tiledb_array_get_metadata_num(
        ctx: *mut tiledb_ctx_t,
        array: *mut tiledb_array_t,
        num: *mut u64,
    ) -> capi_return_t;
    pub fn tiledb_array_get_metadata_from_index(
        ctx: *mut tiledb_ctx_t,
        array: *mut tiledb_array_t,
        index: u64,
        key: *mut *const c_char,
        key_len: *mut u32,
        value_type: *mut tiledb_datatype_t,
        value_num: *mut u32,
        value: *mut *const c_void,
    ) -> capi_return_t;
    pub fn tiledb_array_consolidate(
        ctx: *mut tiledb_ctx_t,
        array_uri: *const c_char,
        config: *mut tiledb_config_t,
    ) -> capi_return_t;
    pub fn tiledb_array_vacuum(
        ctx: *mut tiledb_ctx_t,
        array_uri: *const c_char,
        config: *mut tiledb_config_t,
    ) -> capi_return_t;

    // Queries and subarrays.
    pub fn tiledb_query_alloc(
        ctx: *mut tiledb_ctx_t,
        array: *mut tiledb_array_t,
        query_type: tiledb_query_type_t,
        query: *mut *mut tiledb_query_t,
    ) -> i32;
    pub fn tiledb_query_free(query: *mut *mut tiledb_query_t);
    pub fn tiledb_query_set_layout(
        ctx: *mut tiledb_ctx_t,
        query: *mut tiledb_query_t,
        layout: tiledb_layout_t,
    ) -> i32;
    pub fn tiledb_subarray_alloc(
        ctx: *mut tiledb_ctx_t,
        array: *const tiledb_array_t,
        subarray: *mut *mut tiledb_subarray_t,
    ) -> capi_return_t;
    pub fn tiledb_subarray_free(subarray: *mut *mut tiledb_subarray_t);
    pub fn tiledb_subarray_set_subarray(
        ctx: *mut tiledb_ctx_t,
        subarray: *mut tiledb_subarray_t,
        subarray_v: *const c_void,
    ) -> capi_return_t;
    pub fn tiledb_query_set_subarray_t(
        ctx: *mut tiledb_ctx_t,
        query: *mut tiledb_query_t,
        subarray: *const tiledb_subarray_t,
    ) -> i32;
    pub fn tiledb_query_set_data_buffer(
        ctx: *mut tiledb_ctx_t,
        query: *mut tiledb_query_t,
        name: *const c_char,
        buffer: *mut c_void,
        buffer_size: *mut u64,
    ) -> i32;
    pub fn tiledb_query_submit(ctx: *mut tiledb_ctx_t, query: *mut tiledb_query_t) -> i32;
    pub fn tiledb_query_submit_and_finalize(
        ctx: *mut tiledb_ctx_t,
        query: *mut tiledb_query_t,
    ) -> i32;
    pub fn tiledb_query_get_status(
        ctx: *mut tiledb_ctx_t,
        query: *mut tiledb_query_t,
        status: *mut tiledb_query_status_t,
    ) -> i32;

    // Objects.
    pub fn tiledb_object_type(
        ctx: *mut tiledb_ctx_t,
        path: *const c_char,
        type_: *mut tiledb_object_t,
    ) -> i32;
    pub fn tiledb_object_move(
        ctx: *mut tiledb_ctx_t,
        old_path: *const c_char,
        new_path: *const c_char,
    ) -> i32;

    // Groups.
    pub fn tiledb_group_create(ctx: *mut tiledb_ctx_t, group_uri: *const c_char) -> capi_return_t;
    pub fn tiledb_group_alloc(
        ctx: *mut tiledb_ctx_t,
        group_uri: *const c_char,
        group: *mut *mut tiledb_group_t,
    ) -> capi_return_t;
    pub fn tiledb_group_open(
        ctx: *mut tiledb_ctx_t,
        group: *mut tiledb_group_t,
        query_type: tiledb_query_type_t,
    ) -> capi_return_t;
    pub fn tiledb_group_close(ctx: *mut tiledb_ctx_t, group: *mut tiledb_group_t) -> capi_return_t;
    pub fn tiledb_group_free(group: *mut *mut tiledb_group_t);
    pub fn tiledb_group_add_member(
        ctx: *mut tiledb_ctx_t,
        group: *mut tiledb_group_t,
        uri: *const c_char,
        relative: u8,
        name: *const c_char,
    ) -> capi_return_t;
    pub fn tiledb_group_get_member_count(
        ctx: *mut tiledb_ctx_t,
        group: *mut tiledb_group_t,
        count: *mut u64,
    ) -> capi_return_t;
    pub fn tiledb_group_get_member_by_index_v2(
        ctx: *mut tiledb_ctx_t,
        group: *mut tiledb_group_t,
        index: u64,
        uri: *mut *mut tiledb_string_t,
        type_: *mut tiledb_object_t,
        name: *mut *mut tiledb_string_t,
    ) -> capi_return_t;
    pub fn tiledb_group_put_metadata(
        ctx: *mut tiledb_ctx_t,
        group: *mut tiledb_group_t,
        key: *const c_char,
        value_type: tiledb_datatype_t,
        value_num: u32,
        value: *const c_void,
    ) -> capi_return_t;
    pub fn tiledb_group_get_metadata_num(
        ctx: *mut tiledb_ctx_t,
        group: *mut tiledb_group_t,
        num: *mut u64,
    ) -> capi_return_t;
    pub fn tiledb_group_get_metadata_from_index(
        ctx: *mut tiledb_ctx_t,
        group: *mut tiledb_group_t,
        index: u64,
        key: *mut *const c_char,
        key_len: *mut u32,
        value_type: *mut tiledb_datatype_t,
        value_num: *mut u32,
        value: *mut *const c_void,
    ) -> capi_return_t;

    // Strings returned by the library.
    pub fn tiledb_string_view(
        s: *mut tiledb_string_t,
        data: *mut *const c_char,
        length: *mut usize,
    ) -> capi_return_t;
    pub fn tiledb_string_free(s: *mut *mut tiledb_string_t) -> capi_return_t;
}

/// The linked library's version, e.g. `(2, 30, 0)`.
pub fn version() -> (i32, i32, i32) {
    let (mut major, mut minor, mut rev) = (0, 0, 0);
    // SAFETY: the three pointers are valid for writes of one i32 each.
    unsafe { tiledb_version(&mut major, &mut minor, &mut rev) };
    (major, minor, rev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::ptr;

    #[test]
    fn links_the_expected_library() {
        assert_eq!(version(), (2, 30, 0));
    }

    #[test]
    fn context_reports_errors() {
        // SAFETY: each out-pointer is valid; every handle is freed once, by its own free.
        unsafe {
            let mut ctx = ptr::null_mut();
            assert_eq!(tiledb_ctx_alloc(ptr::null_mut(), &mut ctx), TILEDB_OK);
            let uri = CString::new("/nonexistent/no-such-array").unwrap();
            let mut schema = ptr::null_mut();
            assert_ne!(
                tiledb_array_schema_load(ctx, uri.as_ptr(), &mut schema),
                TILEDB_OK
            );
            let mut err = ptr::null_mut();
            assert_eq!(tiledb_ctx_get_last_error(ctx, &mut err), TILEDB_OK);
            assert!(!err.is_null());
            let mut msg = ptr::null();
            assert_eq!(tiledb_error_message(err, &mut msg), TILEDB_OK);
            let text = std::ffi::CStr::from_ptr(msg).to_string_lossy().into_owned();
            assert!(!text.is_empty());
            tiledb_error_free(&mut err);
            tiledb_ctx_free(&mut ctx);
            assert!(ctx.is_null());
        }
    }
}
