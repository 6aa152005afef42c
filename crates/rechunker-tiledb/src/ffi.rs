//! A safe layer over `tiledb-sys`: RAII handles that free themselves, `Result`s carrying the
//! library's own error message, and owned copies of whatever the library lends.
//!
//! Every handle keeps an `Arc` of its context, so a context outlives everything made from it.
//! A context may be shared by threads (each with its own query); opened arrays and queries are
//! `Send` but not `Sync`: one thread at a time.
//!
//! Errors here carry only the library's message; the adapter adds the URI and the attribute
//! (see [`crate::TileDbError`]). The library keeps the last error per context, not per
//! thread, so with several threads failing at once a message may belong to another thread's
//! failure.

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::Arc;
use tiledb_sys as sys;

mod kinds;

pub use kinds::{
    ArrayType, Datatype, FilterType, Layout, ObjectType, QueryStatus, QueryType, VAR_NUM,
};

/// The linked libtiledb's version, e.g. `(2, 30, 0)`.
pub fn library_version() -> (i32, i32, i32) {
    sys::version()
}

/// What libtiledb said went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibError(pub String);

impl std::fmt::Display for LibError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type LibResult<T> = Result<T, LibError>;

/// A Rust string as a C string (TileDB names and URIs cannot hold NUL bytes).
pub fn cstring(s: &str) -> LibResult<CString> {
    CString::new(s).map_err(|_| LibError(format!("`{}` contains a NUL byte", s.escape_debug())))
}

/// Copies a borrowed C string.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string valid for the duration of the call.
unsafe fn owned_string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: the caller guarantees a valid NUL-terminated string.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Takes the message out of a `tiledb_error_t` and frees it.
fn take_error(mut err: *mut sys::tiledb_error_t, fallback: &str) -> LibError {
    if err.is_null() {
        return LibError(fallback.to_string());
    }
    let mut msg: *const c_char = ptr::null();
    // SAFETY: err is a live error handle; msg is borrowed from it and copied before the free.
    let text = unsafe {
        let text = if sys::tiledb_error_message(err, &mut msg) == sys::TILEDB_OK {
            owned_string(msg)
        } else {
            String::new()
        };
        sys::tiledb_error_free(&mut err);
        text
    };
    LibError(if text.is_empty() {
        fallback.to_string()
    } else {
        text
    })
}

/// A configuration: `sm.*`, `vfs.*` parameters.
pub struct Config {
    raw: *mut sys::tiledb_config_t,
}

// SAFETY: a config is plain data inside the library; it is only mutated through &mut self.
unsafe impl Send for Config {}
// SAFETY: shared references only read it (the library copies configs it is given).
unsafe impl Sync for Config {}

impl Config {
    pub fn new() -> LibResult<Config> {
        let mut raw = ptr::null_mut();
        let mut err = ptr::null_mut();
        // SAFETY: out-pointers are valid.
        let rc = unsafe { sys::tiledb_config_alloc(&mut raw, &mut err) };
        if rc != sys::TILEDB_OK || raw.is_null() {
            return Err(take_error(err, "cannot allocate a TileDB config"));
        }
        Ok(Config { raw })
    }

    /// A config with `params` set.
    pub fn with(params: &[(&str, &str)]) -> LibResult<Config> {
        let mut config = Config::new()?;
        for (k, v) in params {
            config.set(k, v)?;
        }
        Ok(config)
    }

    pub fn set(&mut self, param: &str, value: &str) -> LibResult<()> {
        let (p, v) = (cstring(param)?, cstring(value)?);
        let mut err = ptr::null_mut();
        // SAFETY: the config is live; the strings outlive the call.
        let rc = unsafe { sys::tiledb_config_set(self.raw, p.as_ptr(), v.as_ptr(), &mut err) };
        if rc != sys::TILEDB_OK {
            return Err(take_error(
                err,
                &format!("cannot set TileDB config {param}={value}"),
            ));
        }
        Ok(())
    }

    fn ptr(&self) -> *mut sys::tiledb_config_t {
        self.raw
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        // SAFETY: freed once; the library nulls the pointer.
        unsafe { sys::tiledb_config_free(&mut self.raw) }
    }
}

/// A TileDB context: thread pools, caches, VFS and the last error.
pub struct Context {
    raw: *mut sys::tiledb_ctx_t,
}

// SAFETY: TileDB contexts are thread-safe; concurrent queries on one context are supported.
unsafe impl Send for Context {}
// SAFETY: as above.
unsafe impl Sync for Context {}

impl Context {
    pub fn new(config: Option<&Config>) -> LibResult<Arc<Context>> {
        let mut raw = ptr::null_mut();
        let cfg = config.map_or(ptr::null_mut(), Config::ptr);
        // SAFETY: cfg is null or a live config; the out-pointer is valid.
        let rc = unsafe { sys::tiledb_ctx_alloc(cfg, &mut raw) };
        if rc != sys::TILEDB_OK || raw.is_null() {
            return Err(LibError(format!(
                "cannot create a TileDB context (status {rc})"
            )));
        }
        Ok(Arc::new(Context { raw }))
    }

    fn ptr(&self) -> *mut sys::tiledb_ctx_t {
        self.raw
    }

    /// Turns a status into a result, fetching the message on error.
    fn check(&self, rc: i32) -> LibResult<()> {
        if rc == sys::TILEDB_OK {
            return Ok(());
        }
        let mut err = ptr::null_mut();
        // SAFETY: the context is live; err receives a new handle or stays null.
        unsafe { sys::tiledb_ctx_get_last_error(self.raw, &mut err) };
        let fallback = match rc {
            sys::TILEDB_OOM => "out of memory".to_string(),
            sys::TILEDB_BUDGET_UNAVAILABLE => "memory budget unavailable".to_string(),
            other => format!("TileDB call failed with status {other}"),
        };
        Err(take_error(err, &fallback))
    }

    /// What is at `uri`: an array, a group or nothing TileDB knows ([`ObjectType::Invalid`]).
    pub fn object_type(&self, uri: &str) -> LibResult<ObjectType> {
        let c = cstring(uri)?;
        let mut t = sys::TILEDB_INVALID;
        // SAFETY: live context, valid string and out-pointer.
        self.check(unsafe { sys::tiledb_object_type(self.raw, c.as_ptr(), &mut t) })?;
        ObjectType::from_raw(t)
    }

    /// Renames an array or group; fails if `to` exists.
    pub fn object_move(&self, from: &str, to: &str) -> LibResult<()> {
        let (a, b) = (cstring(from)?, cstring(to)?);
        // SAFETY: live context, valid strings.
        self.check(unsafe { sys::tiledb_object_move(self.raw, a.as_ptr(), b.as_ptr()) })
    }

    pub fn consolidate(&self, uri: &str, config: &Config) -> LibResult<()> {
        let c = cstring(uri)?;
        // SAFETY: live context and config, valid string.
        self.check(unsafe { sys::tiledb_array_consolidate(self.raw, c.as_ptr(), config.ptr()) })
    }

    pub fn vacuum(&self, uri: &str, config: &Config) -> LibResult<()> {
        let c = cstring(uri)?;
        // SAFETY: live context and config, valid string.
        self.check(unsafe { sys::tiledb_array_vacuum(self.raw, c.as_ptr(), config.ptr()) })
    }

    /// Adds `attribute` to the schema of the array at `uri` (a new schema version).
    pub fn add_attribute(&self, uri: &str, attribute: &Attribute) -> LibResult<()> {
        let c = cstring(uri)?;
        let mut evo = ptr::null_mut();
        // SAFETY: live context; the evolution handle is freed below on every path.
        unsafe {
            self.check(sys::tiledb_array_schema_evolution_alloc(self.raw, &mut evo))?;
            let result = self
                .check(sys::tiledb_array_schema_evolution_add_attribute(
                    self.raw,
                    evo,
                    attribute.raw,
                ))
                .and_then(|()| self.check(sys::tiledb_array_evolve(self.raw, c.as_ptr(), evo)));
            sys::tiledb_array_schema_evolution_free(&mut evo);
            result
        }
    }

    pub fn create_group(&self, uri: &str) -> LibResult<()> {
        let c = cstring(uri)?;
        // SAFETY: live context, valid string.
        self.check(unsafe { sys::tiledb_group_create(self.raw, c.as_ptr()) })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the last Arc is gone, so no handle made from this context is alive.
        unsafe { sys::tiledb_ctx_free(&mut self.raw) }
    }
}

/// Declares a handle type that owns a TileDB object and frees it on drop.
macro_rules! handle {
    ($name:ident, $raw:ty, $free:path) => {
        pub struct $name {
            ctx: Arc<Context>,
            raw: *mut $raw,
        }

        // SAFETY: the handle is owned; TileDB objects are not tied to a thread.
        unsafe impl Send for $name {}

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: owned handle, freed once.
                unsafe { $free(&mut self.raw) }
            }
        }
    };
}

handle!(
    Schema,
    sys::tiledb_array_schema_t,
    sys::tiledb_array_schema_free
);
handle!(Domain, sys::tiledb_domain_t, sys::tiledb_domain_free);
handle!(
    Dimension,
    sys::tiledb_dimension_t,
    sys::tiledb_dimension_free
);
handle!(
    Attribute,
    sys::tiledb_attribute_t,
    sys::tiledb_attribute_free
);
handle!(
    FilterList,
    sys::tiledb_filter_list_t,
    sys::tiledb_filter_list_free
);
handle!(Filter, sys::tiledb_filter_t, sys::tiledb_filter_free);

impl Schema {
    /// A new, empty schema of `array_type`.
    pub fn new(ctx: &Arc<Context>, array_type: ArrayType) -> LibResult<Schema> {
        let mut raw = ptr::null_mut();
        // SAFETY: live context, valid out-pointer.
        ctx.check(unsafe {
            sys::tiledb_array_schema_alloc(ctx.ptr(), array_type.raw(), &mut raw)
        })?;
        Ok(Schema {
            ctx: ctx.clone(),
            raw,
        })
    }

    /// The schema of the array at `uri`.
    pub fn load(ctx: &Arc<Context>, uri: &str) -> LibResult<Schema> {
        let c = cstring(uri)?;
        let mut raw = ptr::null_mut();
        // SAFETY: live context, valid string and out-pointer.
        ctx.check(unsafe { sys::tiledb_array_schema_load(ctx.ptr(), c.as_ptr(), &mut raw) })?;
        Ok(Schema {
            ctx: ctx.clone(),
            raw,
        })
    }

    pub fn array_type(&self) -> LibResult<ArrayType> {
        let mut t = 0;
        // SAFETY: live handles, valid out-pointer.
        self.ctx.check(unsafe {
            sys::tiledb_array_schema_get_array_type(self.ctx.ptr(), self.raw, &mut t)
        })?;
        ArrayType::from_raw(t)
    }

    pub fn cell_order(&self) -> LibResult<Layout> {
        let mut t = 0;
        // SAFETY: live handles, valid out-pointer.
        self.ctx.check(unsafe {
            sys::tiledb_array_schema_get_cell_order(self.ctx.ptr(), self.raw, &mut t)
        })?;
        Layout::from_raw(t)
    }

    pub fn tile_order(&self) -> LibResult<Layout> {
        let mut t = 0;
        // SAFETY: live handles, valid out-pointer.
        self.ctx.check(unsafe {
            sys::tiledb_array_schema_get_tile_order(self.ctx.ptr(), self.raw, &mut t)
        })?;
        Layout::from_raw(t)
    }

    pub fn set_cell_order(&mut self, order: Layout) -> LibResult<()> {
        // SAFETY: live handles.
        self.ctx.check(unsafe {
            sys::tiledb_array_schema_set_cell_order(self.ctx.ptr(), self.raw, order.raw())
        })
    }

    pub fn set_tile_order(&mut self, order: Layout) -> LibResult<()> {
        // SAFETY: live handles.
        self.ctx.check(unsafe {
            sys::tiledb_array_schema_set_tile_order(self.ctx.ptr(), self.raw, order.raw())
        })
    }

    pub fn domain(&self) -> LibResult<Domain> {
        let mut raw = ptr::null_mut();
        // SAFETY: live handles; the returned domain is a new handle we own.
        self.ctx.check(unsafe {
            sys::tiledb_array_schema_get_domain(self.ctx.ptr(), self.raw, &mut raw)
        })?;
        Ok(Domain {
            ctx: self.ctx.clone(),
            raw,
        })
    }

    /// Sets the domain (the schema keeps its own copy).
    pub fn set_domain(&mut self, domain: &Domain) -> LibResult<()> {
        // SAFETY: live handles.
        self.ctx.check(unsafe {
            sys::tiledb_array_schema_set_domain(self.ctx.ptr(), self.raw, domain.raw)
        })
    }

    pub fn attributes(&self) -> LibResult<Vec<Attribute>> {
        let mut n = 0u32;
        // SAFETY: live handles, valid out-pointer.
        self.ctx.check(unsafe {
            sys::tiledb_array_schema_get_attribute_num(self.ctx.ptr(), self.raw, &mut n)
        })?;
        (0..n)
            .map(|i| {
                let mut raw = ptr::null_mut();
                // SAFETY: index in range; the attribute is a new handle we own.
                self.ctx.check(unsafe {
                    sys::tiledb_array_schema_get_attribute_from_index(
                        self.ctx.ptr(),
                        self.raw,
                        i,
                        &mut raw,
                    )
                })?;
                Ok(Attribute {
                    ctx: self.ctx.clone(),
                    raw,
                })
            })
            .collect()
    }

    /// Adds a copy of `attribute`.
    pub fn add_attribute(&mut self, attribute: &Attribute) -> LibResult<()> {
        // SAFETY: live handles.
        self.ctx.check(unsafe {
            sys::tiledb_array_schema_add_attribute(self.ctx.ptr(), self.raw, attribute.raw)
        })
    }

    pub fn check(&self) -> LibResult<()> {
        // SAFETY: live handles.
        self.ctx
            .check(unsafe { sys::tiledb_array_schema_check(self.ctx.ptr(), self.raw) })
    }

    /// Creates an array with this schema at `uri`.
    pub fn create_array(&self, uri: &str) -> LibResult<()> {
        let c = cstring(uri)?;
        // SAFETY: live handles, valid string.
        self.ctx
            .check(unsafe { sys::tiledb_array_create(self.ctx.ptr(), c.as_ptr(), self.raw) })
    }
}

impl Domain {
    pub fn new(ctx: &Arc<Context>) -> LibResult<Domain> {
        let mut raw = ptr::null_mut();
        // SAFETY: live context, valid out-pointer.
        ctx.check(unsafe { sys::tiledb_domain_alloc(ctx.ptr(), &mut raw) })?;
        Ok(Domain {
            ctx: ctx.clone(),
            raw,
        })
    }

    pub fn dimensions(&self) -> LibResult<Vec<Dimension>> {
        let mut n = 0u32;
        // SAFETY: live handles, valid out-pointer.
        let rc = unsafe { sys::tiledb_domain_get_ndim(self.ctx.ptr(), self.raw, &mut n) };
        self.ctx.check(rc)?;
        (0..n)
            .map(|i| {
                let mut raw = ptr::null_mut();
                // SAFETY: index in range; the dimension is a new handle we own.
                self.ctx.check(unsafe {
                    sys::tiledb_domain_get_dimension_from_index(
                        self.ctx.ptr(),
                        self.raw,
                        i,
                        &mut raw,
                    )
                })?;
                Ok(Dimension {
                    ctx: self.ctx.clone(),
                    raw,
                })
            })
            .collect()
    }

    /// Adds a copy of `dim`.
    pub fn add_dimension(&mut self, dim: &Dimension) -> LibResult<()> {
        // SAFETY: live handles.
        self.ctx
            .check(unsafe { sys::tiledb_domain_add_dimension(self.ctx.ptr(), self.raw, dim.raw) })
    }
}

impl Dimension {
    /// A dimension of `dtype` over `[lo, hi]` (`domain` holds both, native endian) with tiles of
    /// `extent` (one value).
    pub fn new(
        ctx: &Arc<Context>,
        name: &str,
        dtype: Datatype,
        domain: &[u8],
        extent: &[u8],
    ) -> LibResult<Dimension> {
        let size = dtype.size();
        if size == 0 || domain.len() != 2 * size || extent.len() != size {
            return Err(LibError(format!(
                "dimension `{name}`: domain or tile extent does not match its type"
            )));
        }
        let c = cstring(name)?;
        let mut raw = ptr::null_mut();
        // SAFETY: the domain and extent buffers hold values of `dtype` (checked above).
        ctx.check(unsafe {
            sys::tiledb_dimension_alloc(
                ctx.ptr(),
                c.as_ptr(),
                dtype.raw(),
                domain.as_ptr().cast(),
                extent.as_ptr().cast(),
                &mut raw,
            )
        })?;
        Ok(Dimension {
            ctx: ctx.clone(),
            raw,
        })
    }

    pub fn name(&self) -> LibResult<String> {
        let mut p = ptr::null();
        // SAFETY: live handles; the name is borrowed from the dimension and copied at once.
        unsafe {
            self.ctx.check(sys::tiledb_dimension_get_name(
                self.ctx.ptr(),
                self.raw,
                &mut p,
            ))?;
            Ok(owned_string(p))
        }
    }

    pub fn dtype(&self) -> LibResult<Datatype> {
        let mut t = 0;
        // SAFETY: live handles, valid out-pointer.
        let rc = unsafe { sys::tiledb_dimension_get_type(self.ctx.ptr(), self.raw, &mut t) };
        self.ctx.check(rc)?;
        Ok(Datatype::from_raw(t))
    }

    pub fn cell_val_num(&self) -> LibResult<u32> {
        let mut n = 0;
        // SAFETY: live handles, valid out-pointer.
        self.ctx.check(unsafe {
            sys::tiledb_dimension_get_cell_val_num(self.ctx.ptr(), self.raw, &mut n)
        })?;
        Ok(n)
    }

    /// The domain `[lo, hi]` as two native-endian values of the dimension's type (empty for
    /// variable-sized dimensions).
    pub fn domain(&self) -> LibResult<Vec<u8>> {
        let size = self.dtype()?.size();
        let mut p: *const c_void = ptr::null();
        // SAFETY: live handles; the domain is borrowed from the dimension and copied at once.
        unsafe {
            self.ctx.check(sys::tiledb_dimension_get_domain(
                self.ctx.ptr(),
                self.raw,
                &mut p,
            ))?;
            if p.is_null() || size == 0 {
                return Ok(Vec::new());
            }
            Ok(std::slice::from_raw_parts(p.cast::<u8>(), 2 * size).to_vec())
        }
    }

    /// The tile extent as one native-endian value (empty if the dimension has none).
    pub fn tile_extent(&self) -> LibResult<Vec<u8>> {
        let size = self.dtype()?.size();
        let mut p: *const c_void = ptr::null();
        // SAFETY: live handles; the extent is borrowed from the dimension and copied at once.
        unsafe {
            self.ctx.check(sys::tiledb_dimension_get_tile_extent(
                self.ctx.ptr(),
                self.raw,
                &mut p,
            ))?;
            if p.is_null() || size == 0 {
                return Ok(Vec::new());
            }
            Ok(std::slice::from_raw_parts(p.cast::<u8>(), size).to_vec())
        }
    }
}

impl Attribute {
    pub fn new(ctx: &Arc<Context>, name: &str, dtype: Datatype) -> LibResult<Self> {
        let c = cstring(name)?;
        let mut raw = ptr::null_mut();
        // SAFETY: live context, valid string and out-pointer.
        ctx.check(unsafe {
            sys::tiledb_attribute_alloc(ctx.ptr(), c.as_ptr(), dtype.raw(), &mut raw)
        })?;
        Ok(Attribute {
            ctx: ctx.clone(),
            raw,
        })
    }

    pub fn name(&self) -> LibResult<String> {
        let mut p = ptr::null();
        // SAFETY: live handles; the name is borrowed from the attribute and copied at once.
        unsafe {
            self.ctx.check(sys::tiledb_attribute_get_name(
                self.ctx.ptr(),
                self.raw,
                &mut p,
            ))?;
            Ok(owned_string(p))
        }
    }

    pub fn dtype(&self) -> LibResult<Datatype> {
        let mut t = 0;
        // SAFETY: live handles, valid out-pointer.
        let rc = unsafe { sys::tiledb_attribute_get_type(self.ctx.ptr(), self.raw, &mut t) };
        self.ctx.check(rc)?;
        Ok(Datatype::from_raw(t))
    }

    /// Values per cell ([`VAR_NUM`] for variable-length attributes).
    pub fn cell_val_num(&self) -> LibResult<u32> {
        let mut n = 0;
        // SAFETY: live handles, valid out-pointer.
        self.ctx.check(unsafe {
            sys::tiledb_attribute_get_cell_val_num(self.ctx.ptr(), self.raw, &mut n)
        })?;
        Ok(n)
    }

    pub fn nullable(&self) -> LibResult<bool> {
        let mut n = 0u8;
        // SAFETY: live handles, valid out-pointer.
        self.ctx.check(unsafe {
            sys::tiledb_attribute_get_nullable(self.ctx.ptr(), self.raw, &mut n)
        })?;
        Ok(n != 0)
    }

    /// The fill value's bytes (one cell).
    pub fn fill_value(&self) -> LibResult<Vec<u8>> {
        let mut p: *const c_void = ptr::null();
        let mut size = 0u64;
        // SAFETY: live handles; the value is borrowed from the attribute and copied at once.
        unsafe {
            self.ctx.check(sys::tiledb_attribute_get_fill_value(
                self.ctx.ptr(),
                self.raw,
                &mut p,
                &mut size,
            ))?;
            if p.is_null() {
                return Ok(Vec::new());
            }
            Ok(std::slice::from_raw_parts(p.cast::<u8>(), size as usize).to_vec())
        }
    }

    pub fn set_fill_value(&mut self, value: &[u8]) -> LibResult<()> {
        // SAFETY: the value buffer is valid for `len` bytes; the library copies it.
        self.ctx.check(unsafe {
            sys::tiledb_attribute_set_fill_value(
                self.ctx.ptr(),
                self.raw,
                value.as_ptr().cast(),
                value.len() as u64,
            )
        })
    }

    pub fn filters(&self) -> LibResult<FilterList> {
        let mut raw = ptr::null_mut();
        // SAFETY: live handles; the list is a new handle we own.
        self.ctx.check(unsafe {
            sys::tiledb_attribute_get_filter_list(self.ctx.ptr(), self.raw, &mut raw)
        })?;
        Ok(FilterList {
            ctx: self.ctx.clone(),
            raw,
        })
    }

    /// Sets the filter pipeline (the attribute keeps its own copy).
    pub fn set_filters(&mut self, list: &FilterList) -> LibResult<()> {
        // SAFETY: live handles.
        self.ctx.check(unsafe {
            sys::tiledb_attribute_set_filter_list(self.ctx.ptr(), self.raw, list.raw)
        })
    }
}

impl FilterList {
    pub fn new(ctx: &Arc<Context>) -> LibResult<FilterList> {
        let mut raw = ptr::null_mut();
        // SAFETY: live context, valid out-pointer.
        ctx.check(unsafe { sys::tiledb_filter_list_alloc(ctx.ptr(), &mut raw) })?;
        Ok(FilterList {
            ctx: ctx.clone(),
            raw,
        })
    }

    pub fn filters(&self) -> LibResult<Vec<Filter>> {
        let mut n = 0u32;
        // SAFETY: live handles, valid out-pointer.
        self.ctx.check(unsafe {
            sys::tiledb_filter_list_get_nfilters(self.ctx.ptr(), self.raw, &mut n)
        })?;
        (0..n)
            .map(|i| {
                let mut raw = ptr::null_mut();
                // SAFETY: index in range; the filter is a new handle we own.
                self.ctx.check(unsafe {
                    sys::tiledb_filter_list_get_filter_from_index(
                        self.ctx.ptr(),
                        self.raw,
                        i,
                        &mut raw,
                    )
                })?;
                Ok(Filter {
                    ctx: self.ctx.clone(),
                    raw,
                })
            })
            .collect()
    }

    /// Appends a copy of `filter`.
    pub fn add(&mut self, filter: &Filter) -> LibResult<()> {
        // SAFETY: live handles.
        self.ctx.check(unsafe {
            sys::tiledb_filter_list_add_filter(self.ctx.ptr(), self.raw, filter.raw)
        })
    }
}

impl Filter {
    pub fn new(ctx: &Arc<Context>, kind: FilterType) -> LibResult<Filter> {
        let mut raw = ptr::null_mut();
        // SAFETY: live context, valid out-pointer.
        ctx.check(unsafe { sys::tiledb_filter_alloc(ctx.ptr(), kind.raw(), &mut raw) })?;
        Ok(Filter {
            ctx: ctx.clone(),
            raw,
        })
    }

    pub fn kind(&self) -> LibResult<FilterType> {
        let mut t = 0;
        // SAFETY: live handles, valid out-pointer.
        let rc = unsafe { sys::tiledb_filter_get_type(self.ctx.ptr(), self.raw, &mut t) };
        self.ctx.check(rc)?;
        Ok(FilterType::from_raw(t))
    }

    /// The compression level (compressors only).
    pub fn level(&self) -> LibResult<i32> {
        let mut level = 0i32;
        // SAFETY: COMPRESSION_LEVEL is an i32 option; the out-pointer holds one.
        self.ctx.check(unsafe {
            sys::tiledb_filter_get_option(
                self.ctx.ptr(),
                self.raw,
                sys::TILEDB_COMPRESSION_LEVEL,
                (&mut level as *mut i32).cast(),
            )
        })?;
        Ok(level)
    }

    pub fn set_level(&mut self, level: i32) -> LibResult<()> {
        // SAFETY: COMPRESSION_LEVEL is an i32 option.
        self.ctx.check(unsafe {
            sys::tiledb_filter_set_option(
                self.ctx.ptr(),
                self.raw,
                sys::TILEDB_COMPRESSION_LEVEL,
                (&level as *const i32).cast(),
            )
        })
    }
}

/// One metadata value: `num` values of TileDB type `dtype`, native endian.
#[derive(Clone, Debug, PartialEq)]
pub struct MetaValue {
    pub dtype: Datatype,
    pub num: u32,
    pub bytes: Vec<u8>,
}

/// Copies a metadata value the library lends.
///
/// # Safety
/// `value` points to `num` values of `dtype` (or is null), valid for the call.
unsafe fn copy_meta(dtype: Datatype, num: u32, value: *const c_void) -> MetaValue {
    let len = dtype.size() * num as usize;
    let bytes = if value.is_null() || len == 0 {
        Vec::new()
    } else {
        // SAFETY: the caller guarantees `len` readable bytes.
        unsafe { std::slice::from_raw_parts(value.cast::<u8>(), len) }.to_vec()
    };
    MetaValue { dtype, num, bytes }
}

/// The out-parameters of `tiledb_{array,group}_get_metadata_from_index`.
struct MetaSlot {
    key: *const c_char,
    key_len: u32,
    dtype: sys::tiledb_datatype_t,
    num: u32,
    value: *const c_void,
}

/// Reads all `count` metadata entries of an array or group through `at`, which calls the
/// object's `get_metadata_from_index` for one index, filling the slot.
fn read_metadata(
    ctx: &Context,
    count: u64,
    at: impl Fn(u64, &mut MetaSlot) -> i32,
) -> LibResult<Vec<(String, MetaValue)>> {
    (0..count)
        .map(|i| {
            let mut slot = MetaSlot {
                key: ptr::null(),
                key_len: 0,
                dtype: 0,
                num: 0,
                value: ptr::null(),
            };
            ctx.check(at(i, &mut slot))?;
            // SAFETY: the library lent `key_len` key bytes and `num` values of `dtype`, valid
            // until the next call on the object; both are copied at once.
            unsafe {
                let key = if slot.key.is_null() {
                    String::new()
                } else {
                    let bytes =
                        std::slice::from_raw_parts(slot.key.cast::<u8>(), slot.key_len as usize);
                    String::from_utf8_lossy(bytes).into_owned()
                };
                Ok((
                    key,
                    copy_meta(Datatype::from_raw(slot.dtype), slot.num, slot.value),
                ))
            }
        })
        .collect()
}

/// The key of a metadata value to store, checked to hold `num` values of its type.
fn metadata_key(key: &str, value: &MetaValue) -> LibResult<CString> {
    let size = value.dtype.size();
    if size == 0 || value.bytes.len() != size * value.num as usize {
        return Err(LibError(format!(
            "metadata `{key}`: {} bytes do not hold {} values of type {}",
            value.bytes.len(),
            value.num,
            value.dtype
        )));
    }
    cstring(key)
}

/// An opened array (for reads or for writes). Closed and freed on drop.
pub struct Array {
    ctx: Arc<Context>,
    raw: *mut sys::tiledb_array_t,
    query_type: QueryType,
    /// Bytes of a subarray of this array (`[lo, hi]` per dimension), `None` when a dimension
    /// is variable-sized: what [`Query::new`] checks its subarray against.
    subarray_bytes: Option<usize>,
}

// SAFETY: the handle is owned and used by one thread at a time (not Sync).
unsafe impl Send for Array {}

impl Array {
    pub fn open(ctx: &Arc<Context>, uri: &str, query_type: QueryType) -> LibResult<Array> {
        let c = cstring(uri)?;
        let mut raw = ptr::null_mut();
        // SAFETY: live context, valid string and out-pointer.
        ctx.check(unsafe { sys::tiledb_array_alloc(ctx.ptr(), c.as_ptr(), &mut raw) })?;
        // SAFETY: raw is a live array handle; on failure it is freed here.
        let rc = unsafe { sys::tiledb_array_open(ctx.ptr(), raw, query_type.raw()) };
        if let Err(e) = ctx.check(rc) {
            // SAFETY: freed once.
            unsafe { sys::tiledb_array_free(&mut raw) };
            return Err(e);
        }
        let mut array = Array {
            ctx: ctx.clone(),
            raw,
            query_type,
            subarray_bytes: None,
        };
        array.subarray_bytes = array.subarray_bytes()?;
        Ok(array)
    }

    /// Bytes of a subarray: two values of each dimension's type; `None` if one is
    /// variable-sized.
    fn subarray_bytes(&self) -> LibResult<Option<usize>> {
        let mut total = 0;
        for dim in self.schema()?.domain()?.dimensions()? {
            match dim.dtype()?.size() {
                0 => return Ok(None),
                size => total += 2 * size,
            }
        }
        Ok(Some(total))
    }

    /// Closes the array, reporting errors (for writes, closing saves the metadata).
    pub fn close(mut self) -> LibResult<()> {
        // SAFETY: the array is open; after closing it is only freed (by drop).
        let result = self
            .ctx
            .check(unsafe { sys::tiledb_array_close(self.ctx.ptr(), self.raw) });
        // SAFETY: freed once; drop then sees null and does nothing.
        unsafe { sys::tiledb_array_free(&mut self.raw) };
        result
    }

    pub fn schema(&self) -> LibResult<Schema> {
        let mut raw = ptr::null_mut();
        // SAFETY: live handles; the schema is a new handle we own.
        let rc = unsafe { sys::tiledb_array_get_schema(self.ctx.ptr(), self.raw, &mut raw) };
        self.ctx.check(rc)?;
        Ok(Schema {
            ctx: self.ctx.clone(),
            raw,
        })
    }

    /// All metadata, in the library's (key) order. Needs the array open for reads.
    pub fn metadata(&self) -> LibResult<Vec<(String, MetaValue)>> {
        let mut n = 0u64;
        // SAFETY: live handles, valid out-pointer.
        self.ctx.check(unsafe {
            sys::tiledb_array_get_metadata_num(self.ctx.ptr(), self.raw, &mut n)
        })?;
        read_metadata(&self.ctx, n, |i, m| {
            // SAFETY: live handles, index in range, valid out-pointers.
            unsafe {
                sys::tiledb_array_get_metadata_from_index(
                    self.ctx.ptr(),
                    self.raw,
                    i,
                    &mut m.key,
                    &mut m.key_len,
                    &mut m.dtype,
                    &mut m.num,
                    &mut m.value,
                )
            }
        })
    }

    /// Stores one metadata value (saved when the array is closed). Needs the array open for
    /// writes.
    pub fn put_metadata(&self, key: &str, value: &MetaValue) -> LibResult<()> {
        let c = metadata_key(key, value)?;
        // SAFETY: the value buffer holds `num` values of `dtype` (checked above).
        self.ctx.check(unsafe {
            sys::tiledb_array_put_metadata(
                self.ctx.ptr(),
                self.raw,
                c.as_ptr(),
                value.dtype.raw(),
                value.num,
                value.bytes.as_ptr().cast(),
            )
        })
    }
}

impl Drop for Array {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: the array is open and owned; closed and freed once.
            unsafe {
                sys::tiledb_array_close(self.ctx.ptr(), self.raw);
                sys::tiledb_array_free(&mut self.raw);
            }
        }
    }
}

/// A query on an opened array, with a subarray. Buffers are handed over per call, so no
/// buffer outlives the borrow it came from.
pub struct Query<'a> {
    array: &'a Array,
    raw: *mut sys::tiledb_query_t,
    subarray: *mut sys::tiledb_subarray_t,
    /// The in/out sizes the library reads at submit (and writes back, for reads); boxed so
    /// their addresses stay fixed while the query holds them.
    // Boxes, not plain u64s: the library keeps the addresses it was given, which must not
    // move when another size is added.
    #[allow(clippy::vec_box)]
    sizes: Vec<Box<u64>>,
}

impl<'a> Query<'a> {
    /// A query of the array's own type over `subarray` (`[lo, hi]` per dimension, inclusive,
    /// as native-endian values of the dimensions' type), with `layout`.
    pub fn new(array: &'a Array, layout: Layout, subarray: &[u8]) -> LibResult<Query<'a>> {
        if array.subarray_bytes != Some(subarray.len()) {
            return Err(LibError(format!(
                "a subarray of {} bytes does not hold [lo, hi] for every dimension ({:?} bytes)",
                subarray.len(),
                array.subarray_bytes
            )));
        }
        let ctx = array.ctx.clone();
        let mut query = Query {
            array,
            raw: ptr::null_mut(),
            subarray: ptr::null_mut(),
            sizes: Vec::new(),
        };
        // SAFETY: live handles; every allocated handle is stored in `query`, whose drop frees
        // it. The library reads 2 values per dimension of the dimensions' types from the
        // subarray buffer, which holds exactly that many bytes (checked above against the
        // array's schema).
        unsafe {
            ctx.check(sys::tiledb_query_alloc(
                ctx.ptr(),
                array.raw,
                array.query_type.raw(),
                &mut query.raw,
            ))?;
            ctx.check(sys::tiledb_query_set_layout(
                ctx.ptr(),
                query.raw,
                layout.raw(),
            ))?;
            ctx.check(sys::tiledb_subarray_alloc(
                ctx.ptr(),
                array.raw,
                &mut query.subarray,
            ))?;
            ctx.check(sys::tiledb_subarray_set_subarray(
                ctx.ptr(),
                query.subarray,
                subarray.as_ptr().cast(),
            ))?;
            ctx.check(sys::tiledb_query_set_subarray_t(
                ctx.ptr(),
                query.raw,
                query.subarray,
            ))?;
        }
        Ok(query)
    }

    pub fn status(&self) -> LibResult<QueryStatus> {
        let mut s = 0;
        let ctx = &self.array.ctx;
        // SAFETY: live handles, valid out-pointer.
        ctx.check(unsafe { sys::tiledb_query_get_status(ctx.ptr(), self.raw, &mut s) })?;
        QueryStatus::from_raw(s)
    }

    /// Reads attribute `attribute` of the subarray into `out` (exactly its size in bytes),
    /// resubmitting while the library reports the result incomplete.
    pub fn read_into(&mut self, attribute: &str, out: &mut [u8]) -> LibResult<()> {
        let ctx = self.array.ctx.clone();
        let name = cstring(attribute)?;
        self.sizes.push(Box::new(0));
        let size = self.sizes.len() - 1;
        let mut filled = 0usize;
        loop {
            let rest = &mut out[filled..];
            *self.sizes[size] = rest.len() as u64;
            // SAFETY: `rest` and the boxed size stay valid and unaliased through the submit;
            // the library writes at most `size` bytes into `rest` and the count into `size`.
            unsafe {
                ctx.check(sys::tiledb_query_set_data_buffer(
                    ctx.ptr(),
                    self.raw,
                    name.as_ptr(),
                    rest.as_mut_ptr().cast(),
                    &mut *self.sizes[size],
                ))?;
                ctx.check(sys::tiledb_query_submit(ctx.ptr(), self.raw))?;
            }
            let got = (*self.sizes[size] as usize).min(rest.len());
            filled += got;
            match self.status()? {
                QueryStatus::Completed => break,
                QueryStatus::Incomplete if got > 0 && filled < out.len() => continue,
                QueryStatus::Incomplete => {
                    return Err(LibError(format!(
                        "read stopped incomplete after {filled} of {} bytes (no progress)",
                        out.len()
                    )))
                }
                other => {
                    return Err(LibError(format!(
                        "read ended in status {other:?} after {filled} of {} bytes",
                        out.len()
                    )))
                }
            }
        }
        if filled != out.len() {
            return Err(LibError(format!(
                "read returned {filled} bytes, expected {}",
                out.len()
            )));
        }
        Ok(())
    }

    /// Writes one buffer per attribute (every attribute of the array, each exactly the
    /// subarray's cells) in one submit: one fragment.
    pub fn write(&mut self, buffers: &[(&str, &[u8])]) -> LibResult<()> {
        self.submit_buffers(buffers, false)?;
        match self.status()? {
            QueryStatus::Completed => Ok(()),
            other => Err(LibError(format!("write ended in status {other:?}"))),
        }
    }

    /// One part of a global-order write: whole tiles in global order per attribute. The last
    /// part (`last`) finalizes the query, which commits its one fragment.
    pub fn write_global(&mut self, buffers: &[(&str, &[u8])], last: bool) -> LibResult<()> {
        self.submit_buffers(buffers, last)
    }

    fn submit_buffers(&mut self, buffers: &[(&str, &[u8])], finalize: bool) -> LibResult<()> {
        let ctx = self.array.ctx.clone();
        let names = buffers
            .iter()
            .map(|(n, _)| cstring(n))
            .collect::<LibResult<Vec<_>>>()?;
        self.sizes = buffers
            .iter()
            .map(|(_, d)| Box::new(d.len() as u64))
            .collect();
        // SAFETY: the library only reads `size` bytes of each buffer during the submit (the
        // pointer is declared mutable for reads); buffers and sizes stay valid through it.
        unsafe {
            for ((name, (_, data)), size) in names.iter().zip(buffers).zip(self.sizes.iter_mut()) {
                ctx.check(sys::tiledb_query_set_data_buffer(
                    ctx.ptr(),
                    self.raw,
                    name.as_ptr(),
                    data.as_ptr().cast_mut().cast(),
                    &mut **size,
                ))?;
            }
            if finalize {
                ctx.check(sys::tiledb_query_submit_and_finalize(ctx.ptr(), self.raw))
            } else {
                ctx.check(sys::tiledb_query_submit(ctx.ptr(), self.raw))
            }
        }
    }
}

impl Drop for Query<'_> {
    fn drop(&mut self) {
        // SAFETY: owned handles, freed once (the free functions accept null).
        unsafe {
            if !self.subarray.is_null() {
                sys::tiledb_subarray_free(&mut self.subarray);
            }
            if !self.raw.is_null() {
                sys::tiledb_query_free(&mut self.raw);
            }
        }
    }
}

/// A member of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub uri: String,
    pub kind: ObjectType,
    pub name: Option<String>,
}

/// Takes a library string and frees it.
fn take_string(mut s: *mut sys::tiledb_string_t) -> Option<String> {
    if s.is_null() {
        return None;
    }
    let (mut data, mut len) = (ptr::null(), 0usize);
    // SAFETY: s is a live string handle; its data is copied before the free.
    unsafe {
        let text = if sys::tiledb_string_view(s, &mut data, &mut len) == sys::TILEDB_OK
            && !data.is_null()
        {
            Some(
                String::from_utf8_lossy(std::slice::from_raw_parts(data.cast::<u8>(), len))
                    .into_owned(),
            )
        } else {
            None
        };
        sys::tiledb_string_free(&mut s);
        text
    }
}

/// An opened group. Closed and freed on drop.
pub struct Group {
    ctx: Arc<Context>,
    raw: *mut sys::tiledb_group_t,
}

// SAFETY: the handle is owned and used by one thread at a time (not Sync).
unsafe impl Send for Group {}

impl Group {
    pub fn open(ctx: &Arc<Context>, uri: &str, query_type: QueryType) -> LibResult<Group> {
        let c = cstring(uri)?;
        let mut raw = ptr::null_mut();
        // SAFETY: live context, valid string and out-pointer.
        ctx.check(unsafe { sys::tiledb_group_alloc(ctx.ptr(), c.as_ptr(), &mut raw) })?;
        // SAFETY: raw is a live group handle; on failure it is freed here.
        let rc = unsafe { sys::tiledb_group_open(ctx.ptr(), raw, query_type.raw()) };
        if let Err(e) = ctx.check(rc) {
            // SAFETY: freed once.
            unsafe { sys::tiledb_group_free(&mut raw) };
            return Err(e);
        }
        Ok(Group {
            ctx: ctx.clone(),
            raw,
        })
    }

    /// Closes the group, reporting errors (for writes, closing saves members and metadata).
    pub fn close(mut self) -> LibResult<()> {
        // SAFETY: the group is open; after closing it is only freed.
        let result = self
            .ctx
            .check(unsafe { sys::tiledb_group_close(self.ctx.ptr(), self.raw) });
        // SAFETY: freed once; drop then sees null.
        unsafe { sys::tiledb_group_free(&mut self.raw) };
        result
    }

    pub fn members(&self) -> LibResult<Vec<Member>> {
        let mut n = 0u64;
        // SAFETY: live handles, valid out-pointer.
        self.ctx.check(unsafe {
            sys::tiledb_group_get_member_count(self.ctx.ptr(), self.raw, &mut n)
        })?;
        (0..n)
            .map(|i| {
                let (mut uri, mut name) = (ptr::null_mut(), ptr::null_mut());
                let mut kind = sys::TILEDB_INVALID;
                // SAFETY: index in range; both strings are new handles taken (and freed) below.
                let rc = unsafe {
                    sys::tiledb_group_get_member_by_index_v2(
                        self.ctx.ptr(),
                        self.raw,
                        i,
                        &mut uri,
                        &mut kind,
                        &mut name,
                    )
                };
                let (uri, name) = (take_string(uri), take_string(name));
                self.ctx.check(rc)?;
                Ok(Member {
                    uri: uri.unwrap_or_default(),
                    kind: ObjectType::from_raw(kind)?,
                    name,
                })
            })
            .collect()
    }

    pub fn add_member(&self, uri: &str, relative: bool, name: &str) -> LibResult<()> {
        let (u, n) = (cstring(uri)?, cstring(name)?);
        // SAFETY: live handles, valid strings.
        self.ctx.check(unsafe {
            sys::tiledb_group_add_member(
                self.ctx.ptr(),
                self.raw,
                u.as_ptr(),
                relative as u8,
                n.as_ptr(),
            )
        })
    }

    pub fn metadata(&self) -> LibResult<Vec<(String, MetaValue)>> {
        let mut n = 0u64;
        // SAFETY: live handles, valid out-pointer.
        self.ctx.check(unsafe {
            sys::tiledb_group_get_metadata_num(self.ctx.ptr(), self.raw, &mut n)
        })?;
        read_metadata(&self.ctx, n, |i, m| {
            // SAFETY: live handles, index in range, valid out-pointers.
            unsafe {
                sys::tiledb_group_get_metadata_from_index(
                    self.ctx.ptr(),
                    self.raw,
                    i,
                    &mut m.key,
                    &mut m.key_len,
                    &mut m.dtype,
                    &mut m.num,
                    &mut m.value,
                )
            }
        })
    }

    pub fn put_metadata(&self, key: &str, value: &MetaValue) -> LibResult<()> {
        let c = metadata_key(key, value)?;
        // SAFETY: the value buffer holds `num` values of `dtype` (checked above).
        self.ctx.check(unsafe {
            sys::tiledb_group_put_metadata(
                self.ctx.ptr(),
                self.raw,
                c.as_ptr(),
                value.dtype.raw(),
                value.num,
                value.bytes.as_ptr().cast(),
            )
        })
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: the group is open and owned; closed and freed once.
            unsafe {
                sys::tiledb_group_close(self.ctx.ptr(), self.raw);
                sys::tiledb_group_free(&mut self.raw);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dense 1-d array of `uint64` over `[0, 9]`, tiles of 5, with one `int32` attribute.
    fn small_array(ctx: &Arc<Context>, uri: &str) {
        let mut dim_domain = 0u64.to_ne_bytes().to_vec();
        dim_domain.extend(9u64.to_ne_bytes());
        let dim =
            Dimension::new(ctx, "x", Datatype::UInt64, &dim_domain, &5u64.to_ne_bytes()).unwrap();
        let mut domain = Domain::new(ctx).unwrap();
        domain.add_dimension(&dim).unwrap();
        let mut schema = Schema::new(ctx, ArrayType::Dense).unwrap();
        schema.set_domain(&domain).unwrap();
        schema.set_cell_order(Layout::RowMajor).unwrap();
        schema.set_tile_order(Layout::RowMajor).unwrap();
        schema
            .add_attribute(&Attribute::new(ctx, "a", Datatype::Int32).unwrap())
            .unwrap();
        schema.create_array(uri).unwrap();
    }

    #[test]
    fn a_query_refuses_a_subarray_that_does_not_fit_the_dimensions() {
        let dir = tempfile::tempdir().unwrap();
        let uri = dir.path().join("a").display().to_string();
        let ctx = Context::new(None).unwrap();
        small_array(&ctx, &uri);
        assert_eq!(ctx.object_type(&uri), Ok(ObjectType::Array));
        let array = Array::open(&ctx, &uri, QueryType::Read).unwrap();
        let schema = array.schema().unwrap();
        assert_eq!(schema.array_type(), Ok(ArrayType::Dense));
        assert_eq!(schema.cell_order(), Ok(Layout::RowMajor));
        // One uint64 dimension: [lo, hi] is 16 bytes. Fewer would make the library read past
        // the buffer.
        let mut subarray = 2u64.to_ne_bytes().to_vec();
        let short = Query::new(&array, Layout::RowMajor, &subarray);
        assert!(short.is_err(), "a half subarray was accepted");
        subarray.extend(3u64.to_ne_bytes());
        let mut query = Query::new(&array, Layout::RowMajor, &subarray).unwrap();
        let mut out = [0u8; 8];
        query.read_into("a", &mut out).unwrap();
    }
}
