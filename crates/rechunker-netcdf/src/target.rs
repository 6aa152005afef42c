//! Writing a NetCDF file.
//!
//! libnetcdf defines the file (dimensions, variables with their chunking, filters and fill
//! values, attributes); the data of NetCDF-4 files is then written as raw chunks through HDF5
//! (`H5Dwrite_chunk`, encoded outside the library lock), NetCDF-3 data through libnetcdf. The
//! two never have the file open at once: a definition session closes the HDF5 handles (and
//! every array's datasets) first, and reopens them lazily afterwards.
//!
//! Everything goes to `PATH.partial`, renamed to `PATH` by `finalize`.

use crate::attrs::{put_attribute, put_attributes};
use crate::error::{NetcdfError, Result};
use crate::nc::{self, cstring, inq_dim, nc, nc_type_of, NcFile};
use crate::options::{NcCodec, NetcdfFormat, NetcdfWriteOptions};
use crate::scan::{h5_paths, own_dimids, scan};
use crate::source::{kept_filters, kept_flavour};
use netcdf_sys as sys;
use rechunker_core::meta::qualified_dim;
use rechunker_core::{
    ArrayMeta, AttrValue, Attributes, ChunkGrid, ChunkedArray, ChunkedArrayMut, DataType,
    DatasetMeta, DatasetTarget, DimGrid, Region,
};
use rechunker_h5::json::json_to_scalar;
use rechunker_h5::{encoded_bound, locked, ChunkedDataset, Hid, KeptFilters, LIBRARY_BUFFERS};
use serde_json::json;
use std::collections::HashSet;
use std::os::raw::c_int;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Where a target is written until it is finalized: `PATH.partial`.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Header space reserved in NetCDF-3 files so that variables and attributes added later do
/// not force libnetcdf to move all data.
const CLASSIC_HEADER_RESERVE: usize = 64 << 10;

/// What writes go through for one variable.
enum Backend {
    Hdf5(ChunkedDataset),
    Classic { file: Arc<NcFile>, varid: c_int },
}

struct State {
    /// The partial file exists (created, or reopened for a resumed run).
    started: bool,
    /// NetCDF-4 data phase: the file opened through HDF5.
    hdf5: Option<Arc<Hid>>,
    /// NetCDF-3: the file, open through libnetcdf, and whether it is in define mode.
    classic: Option<(Arc<NcFile>, bool)>,
    /// Arrays handed out, whose handles a definition session must close.
    arrays: Vec<Weak<NetcdfTargetArray>>,
    /// Global attributes already written.
    globals: Option<Attributes>,
    /// For NetCDF-3 formats, the one unlimited dimension once chosen.
    classic_unlimited: Option<String>,
    /// Dimensions to make unlimited, decided by `prepare` (else the options' list).
    unlimited_plan: Option<Vec<String>>,
    /// Variables defined in the file.
    defined: HashSet<String>,
}

struct Inner {
    path: PathBuf,
    display: String,
    options: NetcdfWriteOptions,
    /// The format written, decided on first use: the options', else (see
    /// [`NetcdfWriteOptions::keeps_source`]) the NetCDF source's flavour, else netcdf4.
    format: OnceLock<NetcdfFormat>,
    state: Mutex<State>,
}

/// A NetCDF file being written (see the module documentation). Nothing touches the disk
/// until [`NetcdfTarget::prepare`] or the first [`DatasetTarget::create_array`].
pub struct NetcdfTarget {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NetcdfTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetcdfTarget")
            .field("path", &self.inner.display)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// One variable of a [`NetcdfTarget`].
pub struct NetcdfTargetArray {
    inner: Arc<Inner>,
    meta: ArrayMeta,
    slot: Mutex<Option<Arc<Backend>>>,
}

impl std::fmt::Debug for NetcdfTargetArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetcdfTargetArray")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// The regular chunk shape of `meta`'s grid, clamped to `1..=len`.
fn chunk_shape(meta: &ArrayMeta, format: NetcdfFormat) -> std::result::Result<Vec<u64>, String> {
    let chunk = regular_chunks(meta)?;
    match rechunker_h5::chunk_too_large(&chunk, meta.item_size()) {
        Some(why) if format.is_hdf5() => Err(why),
        _ => Ok(chunk),
    }
}

fn regular_chunks(meta: &ArrayMeta) -> std::result::Result<Vec<u64>, String> {
    meta.grid
        .dims
        .iter()
        .enumerate()
        .map(|(d, g)| match g.clone().simplified() {
            DimGrid::Regular { len, chunk } => Ok(if len == 0 {
                chunk.max(1)
            } else {
                chunk.clamp(1, len)
            }),
            DimGrid::Explicit { .. } => Err(format!(
                "an irregular chunk grid along `{}` cannot be stored",
                meta.dims.get(d).map_or("?", String::as_str)
            )),
        })
        .collect()
}

/// The `_FillValue` marker of `meta` as one element of the stored type.
fn marker_bytes(meta: &ArrayMeta) -> Option<Vec<u8>> {
    let value = &meta.attrs.get("_FillValue")?.value;
    if let (DataType::Char, serde_json::Value::String(text)) = (meta.dtype, value) {
        // A char variable's `_FillValue` as the source reports it: text, one character.
        let mut chars = text.chars();
        return match (chars.next(), chars.next()) {
            (Some(c), None) => u8::try_from(u32::from(c)).ok().map(|b| vec![b]),
            _ => None,
        };
    }
    let scalar = match value {
        serde_json::Value::Array(items) if items.len() == 1 => json_to_scalar(&items[0]),
        other => json_to_scalar(other),
    }?;
    let stored = if meta.dtype == DataType::Bool {
        DataType::Int8
    } else {
        meta.dtype
    };
    scalar.to_bytes(stored)
}

impl Inner {
    fn partial(&self) -> PathBuf {
        partial_path(&self.path)
    }

    fn partial_display(&self) -> String {
        self.partial().display().to_string()
    }

    fn format(&self) -> NetcdfFormat {
        *self
            .format
            .get_or_init(|| self.options.format.unwrap_or_default())
    }

    /// The format written, deciding it from `meta` (an array of the dataset) if not yet done.
    fn format_for(&self, meta: Option<&ArrayMeta>) -> NetcdfFormat {
        *self.format.get_or_init(|| {
            self.options
                .format
                .or_else(|| {
                    meta.filter(|_| self.options.keeps_source())
                        .and_then(kept_flavour)
                })
                .unwrap_or_default()
        })
    }

    /// The filters `meta` is written with: with no codec or format given, its NetCDF source
    /// variable's own; else the options' codec (zlib:1 by default) with their shuffle.
    fn filters(&self, meta: &ArrayMeta) -> KeptFilters {
        if self.options.keeps_source() {
            if let Some(kept) = kept_filters(meta) {
                return kept;
            }
        }
        let codec = self.options.codec.unwrap_or_default();
        KeptFilters {
            shuffle: self.options.shuffle && codec != NcCodec::None,
            deflate: match codec {
                NcCodec::Deflate { level } => Some(level),
                _ => None,
            },
            zstd: match codec {
                NcCodec::Zstd { level } => Some(level),
                _ => None,
            },
            ..Default::default()
        }
    }

    fn lib_error(&self, variable: Option<&str>, message: String) -> NetcdfError {
        NetcdfError::Library {
            path: self.partial_display(),
            variable: variable.map(str::to_string),
            message,
        }
    }

    fn format_error(&self, variable: &str, what: String) -> NetcdfError {
        NetcdfError::Format {
            path: self.display.clone(),
            variable: variable.into(),
            what,
        }
    }

    /// Closes every data handle: the arrays' datasets and the HDF5 file.
    fn close_data(&self, state: &mut State) {
        state.arrays.retain(|w| w.strong_count() > 0);
        for a in state.arrays.iter().filter_map(Weak::upgrade) {
            a.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
        state.hdf5 = None;
    }

    /// Runs `f` with the file open through libnetcdf in define mode, creating it first when
    /// needed. NetCDF-4 files are closed again afterwards; NetCDF-3 files stay open in data
    /// mode, with room reserved in the header.
    fn define<T>(
        &self,
        state: &mut State,
        existing: bool,
        f: impl FnOnce(&NcFile, &mut State) -> Result<T>,
    ) -> Result<T> {
        self.close_data(state);
        let partial = self.partial_display();
        let format = self.format();
        if existing && !state.started && !self.partial().is_file() {
            return Err(self.lib_error(
                None,
                "it does not exist: nothing was written yet, so there is nothing to finalize"
                    .into(),
            ));
        }
        if !state.started && !self.options.resume && !existing {
            // A fresh run: an unfinished file of an earlier run is replaced.
            let _ = std::fs::remove_file(self.partial());
        }
        let open_or_create = |started: bool| -> Result<(NcFile, bool)> {
            if started || ((self.options.resume || existing) && self.partial().is_file()) {
                let file = NcFile::open(&partial, true).map_err(|(_, m)| {
                    self.lib_error(None, format!("{m}; the unfinished file cannot be resumed: remove it and run again without --resume"))
                })?;
                Ok((file, false))
            } else {
                let file = NcFile::create(&partial, format.cmode())
                    .map_err(|m| self.lib_error(None, format!("cannot create: {m}")))?;
                Ok((file, true))
            }
        };
        if format.is_hdf5() {
            let (file, _) = open_or_create(state.started)?;
            state.started = true;
            let out = f(&file, state);
            let closed = file.close().map_err(|m| self.lib_error(None, m));
            let out = out?;
            closed?;
            return Ok(out);
        }
        let (file, in_define) = match state.classic.take() {
            Some((file, in_define)) => (file, in_define),
            None => {
                let (file, created) = open_or_create(state.started)?;
                (Arc::new(file), created)
            }
        };
        state.started = true;
        if !in_define {
            // SAFETY: under the library lock; the ncid of our open file, by value.
            locked(|| nc(unsafe { sys::nc_redef(file.ncid) }))
                .map_err(|m| self.lib_error(None, m))?;
        }
        let out = f(&file, state);
        let ended =
            // SAFETY: under the library lock; the ncid and sizes by value.
            locked(|| nc(unsafe { sys::nc__enddef(file.ncid, CLASSIC_HEADER_RESERVE, 4, 0, 4) }))
                .map_err(|m| self.lib_error(None, m));
        state.classic = Some((file, false));
        let out = out?;
        ended?;
        Ok(out)
    }

    /// Defines `meta` in `file` unless it exists (then it must match). Lock taken inside.
    fn define_var(&self, file: &NcFile, state: &mut State, meta: &ArrayMeta) -> Result<()> {
        let format = self.format();
        let name = meta.name.trim_matches('/');
        let (group, base) = name.rsplit_once('/').unwrap_or(("", name));
        if !group.is_empty() && !format.has_groups() {
            return Err(self.format_error(
                name,
                format!("groups need the netcdf4 format, not {format}"),
            ));
        }
        let xtype = nc_type_of(meta.dtype);
        if !format.has_extended_types()
            && !matches!(
                meta.dtype,
                DataType::Bool
                    | DataType::Int8
                    | DataType::Int16
                    | DataType::Int32
                    | DataType::Float32
                    | DataType::Float64
                    | DataType::Char
            )
        {
            return Err(self.format_error(
                name,
                format!(
                    "the {format} format has no {} type; write netcdf4 or cdf5",
                    meta.dtype
                ),
            ));
        }
        let chunk = chunk_shape(meta, format).map_err(|w| self.format_error(name, w))?;
        let shape = meta.shape();
        let lib = |m: String| self.lib_error(Some(name), m);
        locked(|| -> Result<()> {
            // The group, created along the path.
            let mut grp = file.ncid;
            if !group.is_empty() {
                for part in group.split('/') {
                    let c = cstring(part).map_err(lib)?;
                    let mut child = 0;
                    // SAFETY: under the library lock (this whole closure runs in `locked`);
                    // `c` is a NUL-terminated name that outlives the call and `child` a local.
                    let code = unsafe { sys::nc_inq_grp_ncid(grp, c.as_ptr(), &mut child) };
                    if code != sys::NC_NOERR {
                        // SAFETY: as above.
                        nc(unsafe { sys::nc_def_grp(grp, c.as_ptr(), &mut child) }).map_err(lib)?;
                    }
                    grp = child;
                }
            }
            let cbase = cstring(base).map_err(lib)?;
            let mut varid = 0;
            // SAFETY: lock held; `cbase` outlives the call and `varid` is a local.
            if unsafe { sys::nc_inq_varid(grp, cbase.as_ptr(), &mut varid) } == sys::NC_NOERR {
                self.check_existing(grp, varid, meta, xtype, &chunk)?;
                state.defined.insert(name.to_string());
                return Ok(());
            }
            // Dimensions, defined on first use: a dimension qualified with this group
            // (`/g2/dim` in `g2`) in the group itself, every other one in the root group, under
            // the name the group gives it (`dim@root` for `/dim` here: see
            // `ArrayMeta::group_dims`).
            let stored = meta.group_dims();
            let mut dimids = Vec::with_capacity(meta.ndim());
            for (d, dim) in stored.iter().enumerate() {
                let own = qualified_dim(&meta.dims[d]).is_some_and(|(g, _)| g == group);
                let home = if own { grp } else { file.ncid };
                let cdim = cstring(dim).map_err(lib)?;
                let mut id = 0;
                // SAFETY: lock held; `cdim` outlives the call and `id` is a local.
                let found = unsafe { sys::nc_inq_dimid(grp, cdim.as_ptr(), &mut id) }
                    == sys::NC_NOERR
                    && (!own || own_dimids(grp).map_err(lib)?.contains(&id));
                if found {
                    let (_, len) = inq_dim(grp, id).map_err(lib)?;
                    let unlimited = nc::unlimited_dimids(home).map_err(lib)?.contains(&id);
                    if len != shape[d] && !(unlimited && len <= shape[d]) {
                        return Err(self.format_error(
                            name,
                            format!(
                                "dimension `{dim}` has length {len} in the file but {} here",
                                shape[d]
                            ),
                        ));
                    }
                    if unlimited && !format.has_free_unlimited() && d != 0 {
                        return Err(self.format_error(
                            name,
                            format!("the {format} format needs the unlimited dimension `{dim}` first; write netcdf4, or do not keep `{dim}` unlimited"),
                        ));
                    }
                } else {
                    let dim_name = &meta.dims[d];
                    let want = match &state.unlimited_plan {
                        Some(plan) => plan.contains(dim_name),
                        None => {
                            meta.unlimited_dims.contains(dim_name)
                                || self.options.unlimited_dims.contains(dim_name)
                        }
                    };
                    let unlimited = want
                        && (format.has_free_unlimited()
                            || (d == 0 && state.classic_unlimited.is_none()));
                    if want && !unlimited {
                        tracing::warn!(dimension = %dim, "the {format} format cannot keep this dimension unlimited here; writing it with a fixed length");
                    }
                    let len = if unlimited {
                        sys::NC_UNLIMITED
                    } else {
                        shape[d] as usize
                    };
                    // SAFETY: lock held; `cdim` outlives the call and `id` is a local.
                    nc(unsafe { sys::nc_def_dim(home, cdim.as_ptr(), len, &mut id) })
                        .map_err(|m| lib(format!("dimension `{dim}`: {m}")))?;
                    if unlimited && !format.has_free_unlimited() {
                        state.classic_unlimited = Some(dim.clone());
                    }
                }
                dimids.push(id);
            }
            // SAFETY: lock held; libnetcdf reads `dimids.len()` ids from `dimids`; `cbase`
            // outlives the call and `varid` is a local.
            nc(unsafe {
                sys::nc_def_var(
                    grp,
                    cbase.as_ptr(),
                    xtype,
                    dimids.len() as c_int,
                    dimids.as_ptr(),
                    &mut varid,
                )
            })
            .map_err(lib)?;
            if format.is_hdf5() && meta.ndim() > 0 {
                let sizes: Vec<usize> = chunk.iter().map(|&c| c as usize).collect();
                if sizes.len() != dimids.len() {
                    return Err(self.format_error(
                        name,
                        format!("chunks {chunk:?} do not have {} dimensions", dimids.len()),
                    ));
                }
                // SAFETY: lock held; libnetcdf reads one size per dimension of the variable,
                // `dimids.len()`, from `sizes`, which holds that many (checked above).
                nc(unsafe {
                    sys::nc_def_var_chunking(grp, varid, sys::NC_CHUNKED, sizes.as_ptr())
                })
                .map_err(|m| lib(format!("chunks {chunk:?}: {m}")))?;
                let filters = self.filters(meta);
                let shuffle = c_int::from(filters.shuffle && meta.item_size() > 1);
                if shuffle != 0 || filters.deflate.is_some() {
                    let (deflate, level) = filters.deflate.map_or((0, 0), |l| (1, l as c_int));
                    // SAFETY: lock held; everything by value.
                    nc(unsafe { sys::nc_def_var_deflate(grp, varid, shuffle, deflate, level) })
                        .map_err(lib)?;
                }
                if let Some(level) = filters.zstd {
                    let params = [level as u32];
                    // SAFETY: lock held; `params` holds the 1 parameter we declare, which
                    // libnetcdf copies.
                    nc(unsafe {
                        sys::nc_def_var_filter(
                            grp,
                            varid,
                            rechunker_h5::ZSTD_FILTER_ID_U32,
                            1,
                            params.as_ptr(),
                        )
                    })
                    .map_err(|m| lib(format!("zstd filter: {m}")))?;
                }
                if filters.fletcher32 {
                    // SAFETY: lock held; everything by value.
                    nc(unsafe { sys::nc_def_var_fletcher32(grp, varid, 1) })
                        .map_err(|m| lib(format!("fletcher32: {m}")))?;
                }
            }
            if let Some(fill) = marker_bytes(meta) {
                if fill.len() != meta.item_size() {
                    return Err(self.format_error(
                        name,
                        format!("a _FillValue of {} bytes is not one element", fill.len()),
                    ));
                }
                // SAFETY: lock held; libnetcdf copies one element of the variable's type
                // (`xtype`, `item_size()` bytes) from `fill`, which holds exactly one (checked
                // above).
                nc(unsafe { sys::nc_def_var_fill(grp, varid, sys::NC_FILL, fill.as_ptr().cast()) })
                    .map_err(|m| lib(format!("_FillValue: {m}")))?;
            }
            put_attributes(grp, varid, &meta.attrs, format).map_err(lib)?;
            if meta.dtype == DataType::Bool {
                // xarray's encoding of booleans, which our source decodes back.
                put_attribute(
                    grp,
                    varid,
                    "dtype",
                    &AttrValue::json(json!("bool")),
                    None,
                    format,
                )
                .map_err(lib)?;
            }
            state.defined.insert(name.to_string());
            Ok(())
        })
    }

    /// An existing variable (resumed run, or a second `create_array`) must match (lock held).
    fn check_existing(
        &self,
        grp: c_int,
        varid: c_int,
        meta: &ArrayMeta,
        xtype: sys::nc_type,
        chunk: &[u64],
    ) -> Result<()> {
        let name = meta.name.trim_matches('/');
        let differ = |message: String| NetcdfError::Exists {
            path: self.partial_display(),
            variable: name.into(),
            message,
        };
        let (_, existing_type, dimids) =
            nc::inq_var(grp, varid).map_err(|m| self.lib_error(Some(name), m))?;
        if existing_type != xtype || dimids.len() != meta.ndim() {
            return Err(differ("its type or number of dimensions differs".into()));
        }
        let stored = meta.group_dims();
        for (d, &id) in dimids.iter().enumerate() {
            let (dim, _) = inq_dim(grp, id).map_err(|m| self.lib_error(Some(name), m))?;
            if dim != stored[d] {
                return Err(differ(format!(
                    "dimension {d} is `{dim}`, not `{}`",
                    stored[d]
                )));
            }
        }
        if self.format().is_hdf5() {
            if let Some(existing) = nc::chunking(grp, varid, meta.ndim()) {
                if existing != chunk {
                    return Err(differ(format!("chunks {existing:?}, not {chunk:?}")));
                }
            }
        }
        Ok(())
    }

    fn put_globals(&self, file: &NcFile, attrs: &Attributes) -> Result<()> {
        locked(|| {
            // Replace what an earlier session wrote.
            let old = crate::attrs::read_attributes(file.ncid, sys::NC_GLOBAL).unwrap_or_default();
            for (name, _) in old.iter() {
                if attrs.get(name).is_none() {
                    if let Ok(c) = cstring(name) {
                        // SAFETY: under the library lock; `c` is a NUL-terminated name that
                        // outlives the call.
                        unsafe { sys::nc_del_att(file.ncid, sys::NC_GLOBAL, c.as_ptr()) };
                    }
                }
            }
            put_attributes(file.ncid, sys::NC_GLOBAL, attrs, self.format())
        })
        .map_err(|m| self.lib_error(None, format!("global {m}")))
    }

    /// Opens what writes of `meta` go through (lock taken inside).
    fn backend(&self, state: &mut State, meta: &ArrayMeta) -> Result<Backend> {
        let name = meta.name.trim_matches('/');
        if !self.format().is_hdf5() {
            let (file, _) = state
                .classic
                .clone()
                .ok_or_else(|| self.lib_error(Some(name), "the file is not open".into()))?;
            let c = cstring(name).map_err(|m| self.lib_error(Some(name), m))?;
            let mut varid = 0;
            // SAFETY: under the library lock; `c` outlives the call and `varid` is a local.
            locked(|| nc(unsafe { sys::nc_inq_varid(file.ncid, c.as_ptr(), &mut varid) }))
                .map_err(|m| self.lib_error(Some(name), m))?;
            return Ok(Backend::Classic { file, varid });
        }
        let file = match &state.hdf5 {
            Some(f) => f.clone(),
            None => {
                let f = rechunker_h5::open_file(&self.partial_display(), true)
                    .map_err(|m| self.lib_error(None, format!("cannot open through HDF5: {m}")))?;
                let f = Arc::new(f);
                state.hdf5 = Some(f.clone());
                f
            }
        };
        let mut ds = None;
        for path in h5_paths(name) {
            let found = if rechunker_h5::link_exists(file.id(), &path) {
                rechunker_h5::open_dataset(file.id(), &path).ok()
            } else {
                None
            };
            if let Some(d) = found {
                let opened = ChunkedDataset::open(d, &self.partial_display(), name)?;
                if opened.shape().len() == meta.ndim() {
                    ds = Some(opened);
                    break;
                }
            }
        }
        let mut ds = ds.ok_or_else(|| {
            self.lib_error(
                Some(name),
                "its HDF5 dataset was not found after defining it".into(),
            )
        })?;
        let shape = meta.shape();
        if ds.shape() != shape.as_slice() {
            ds.set_extent(&shape)?;
        }
        Ok(Backend::Hdf5(ds))
    }
}

impl NetcdfTarget {
    /// A target at `path`, written as `PATH.partial` until finalized.
    pub fn create(path: impl AsRef<Path>, options: NetcdfWriteOptions) -> Result<NetcdfTarget> {
        let path = path.as_ref().to_path_buf();
        if let (Some(format), Some(codec)) = (options.format, options.codec) {
            if !format.is_hdf5() && codec != NcCodec::None && codec != NcCodec::default() {
                return Err(NetcdfError::Option(format!(
                    "the {format} format stores data uncompressed: drop --codec {codec} or write netcdf4"
                )));
            }
        }
        Ok(NetcdfTarget {
            inner: Arc::new(Inner {
                display: path.display().to_string(),
                path,
                options,
                format: OnceLock::new(),
                state: Mutex::new(State {
                    started: false,
                    hdf5: None,
                    classic: None,
                    arrays: Vec::new(),
                    globals: None,
                    classic_unlimited: None,
                    unlimited_plan: None,
                    defined: HashSet::new(),
                }),
            }),
        })
    }

    pub fn options(&self) -> &NetcdfWriteOptions {
        &self.inner.options
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Defines every variable of `meta` and the global attributes in one pass, before any
    /// data is written.
    ///
    /// This is the hook the executor should call once before the first `create_array`
    /// (proposed `DatasetTarget::prepare`): without it, variables are defined one by one as
    /// they are created, which works but reopens the file each time (and, for NetCDF-3 files
    /// with record variables, may make libnetcdf move data to grow the header).
    pub fn prepare(&self, meta: &DatasetMeta) -> Result<()> {
        let mut state = self.state();
        let format = self.inner.format_for(meta.arrays.first());
        // The dimensions the arrays' metadata mark unlimited (normally the source's), and
        // those the options add.
        let mut plan = meta.unlimited_dims();
        for u in &self.inner.options.unlimited_dims {
            if !plan.contains(u) {
                plan.push(u.clone());
            }
        }
        if !format.has_free_unlimited() {
            // NetCDF-3 (and the classic model): one unlimited dimension, first in every
            // variable that uses it.
            plan = plan
                .into_iter()
                .filter(|u| {
                    meta.arrays
                        .iter()
                        .all(|a| a.dims.iter().position(|d| d == u).is_none_or(|p| p == 0))
                })
                .take(1)
                .collect();
        }
        state.unlimited_plan = Some(plan);
        // Coordinate variables first, so that dimensions are defined by their coordinates.
        let mut order: Vec<&ArrayMeta> = meta.arrays.iter().filter(|a| a.is_coordinate()).collect();
        order.extend(meta.arrays.iter().filter(|a| !a.is_coordinate()));
        let inner = &self.inner;
        inner.define(&mut state, false, |file, state| {
            for a in &order {
                inner.define_var(file, state, a)?;
            }
            inner.put_globals(file, &meta.attrs)?;
            state.globals = Some(meta.attrs.clone());
            Ok(())
        })
    }

    /// Creates (or reopens) one variable and returns it with its concrete type.
    pub fn array(&self, meta: &ArrayMeta) -> Result<Arc<NetcdfTargetArray>> {
        let inner = &self.inner;
        let format = inner.format_for(Some(meta));
        let mut state = self.state();
        let name = meta.name.trim_matches('/').to_string();
        let defined = state.defined.contains(&name);
        if !defined {
            inner.define(&mut state, false, |file, state| {
                inner.define_var(file, state, meta)
            })?;
        }
        let backend = inner.backend(&mut state, meta)?;
        let mut target_meta = meta.clone();
        target_meta.name = name;
        let chunk = chunk_shape(meta, format).map_err(|w| inner.format_error(&meta.name, w))?;
        target_meta.grid = ChunkGrid::regular(&meta.shape(), &chunk);
        if let Backend::Hdf5(ds) = &backend {
            target_meta.codecs = ds.pipeline().describe();
        }
        let array = Arc::new(NetcdfTargetArray {
            inner: self.inner.clone(),
            meta: target_meta,
            slot: Mutex::new(Some(Arc::new(backend))),
        });
        state.arrays.push(Arc::downgrade(&array));
        Ok(array)
    }

    fn write_overhead_of(&self, meta: &ArrayMeta) -> u64 {
        let format = self.inner.format_for(Some(meta));
        if !format.is_hdf5() {
            return 2 * LIBRARY_BUFFERS;
        }
        let chunk = chunk_shape(meta, format).unwrap_or_else(|_| meta.grid.nominal_chunk_shape());
        let c = chunk.iter().product::<u64>() * meta.item_size() as u64;
        let filters = self.inner.filters(meta);
        let codec = if filters.fletcher32 {
            // Written through the library's own filters.
            LIBRARY_BUFFERS
        } else {
            filters.pipeline(meta.item_size()).codec_state_bytes()
        };
        encoded_bound(c) + 2 * c + codec
    }
}

impl NetcdfTargetArray {
    fn backend(&self) -> Result<Arc<Backend>> {
        if let Some(b) = self.slot.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return Ok(b.clone());
        }
        let mut state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        let backend = Arc::new(self.inner.backend(&mut state, &self.meta)?);
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(backend.clone());
        Ok(backend)
    }

    /// Writes `data` to `region` (a union of whole chunks) and flushes, so that what a
    /// finished task wrote survives a crash of a later one.
    pub fn write(&self, region: &Region, data: &[u8]) -> Result<()> {
        match self.backend()?.as_ref() {
            Backend::Hdf5(ds) => {
                ds.write_region(region, data)?;
                ds.flush()?;
                Ok(())
            }
            Backend::Classic { file, varid } => {
                let name = &self.meta.name;
                let expected = region.num_elements() as usize * self.meta.item_size();
                if data.len() != expected || region.ndim() != self.meta.ndim() {
                    return Err(self.inner.lib_error(
                        Some(name),
                        format!(
                            "region {region} needs {expected} bytes, the buffer has {}",
                            data.len()
                        ),
                    ));
                }
                let start: Vec<usize> = region.start.iter().map(|&s| s as usize).collect();
                let count: Vec<usize> = region.shape.iter().map(|&s| s as usize).collect();
                locked(|| {
                    // SAFETY: under the library lock. The variable was defined with
                    // `meta.ndim()` dimensions, the length of `start` and `count` (checked
                    // above); libnetcdf reads the `count` box, `data.len()` bytes in the
                    // variable's type (checked above), from `data`, and copies it.
                    nc(unsafe {
                        sys::nc_put_vara(
                            file.ncid,
                            *varid,
                            start.as_ptr(),
                            count.as_ptr(),
                            data.as_ptr().cast(),
                        )
                    })?;
                    // SAFETY: under the lock; the ncid of our open file, by value.
                    nc(unsafe { sys::nc_sync(file.ncid) })
                })
                .map_err(|m| {
                    self.inner
                        .lib_error(Some(name), format!("cannot write {region}: {m}"))
                })
            }
        }
    }

    /// Reads `region` back (what `rechunk verify` and tests use).
    pub fn read(&self, region: &Region, out: &mut [u8]) -> Result<()> {
        match self.backend()?.as_ref() {
            Backend::Hdf5(ds) => {
                let zeros = vec![0; region.ndim()];
                Ok(ds.read_box(region, out, &region.shape, &zeros)?)
            }
            Backend::Classic { file, varid } => {
                let expected = region.num_elements() as usize * self.meta.item_size();
                if out.len() != expected || region.ndim() != self.meta.ndim() {
                    return Err(self.inner.lib_error(
                        Some(&self.meta.name),
                        format!(
                            "region {region} needs {expected} bytes, the buffer has {}",
                            out.len()
                        ),
                    ));
                }
                let start: Vec<usize> = region.start.iter().map(|&s| s as usize).collect();
                let count: Vec<usize> = region.shape.iter().map(|&s| s as usize).collect();
                locked(|| {
                    // SAFETY: under the library lock. The variable has `meta.ndim()`
                    // dimensions, the length of `start` and `count` (checked above);
                    // libnetcdf writes the `count` box in the variable's type, exactly
                    // `out.len()` bytes (checked above), into `out`.
                    nc(unsafe {
                        sys::nc_get_vara(
                            file.ncid,
                            *varid,
                            start.as_ptr(),
                            count.as_ptr(),
                            out.as_mut_ptr().cast(),
                        )
                    })
                })
                .map_err(|m| {
                    self.inner
                        .lib_error(Some(&self.meta.name), format!("cannot read {region}: {m}"))
                })
            }
        }
    }
}

impl ChunkedArray for NetcdfTargetArray {
    fn meta(&self) -> &ArrayMeta {
        &self.meta
    }

    fn read_region(&self, region: &Region, out: &mut [u8]) -> rechunker_core::Result<()> {
        Ok(self.read(region, out)?)
    }

    fn read_overhead(&self) -> u64 {
        match self
            .slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
        {
            Some(Backend::Hdf5(ds)) => ds.read_overhead(),
            _ => 2 * LIBRARY_BUFFERS,
        }
    }
}

impl ChunkedArrayMut for NetcdfTargetArray {
    fn write_region(&self, region: &Region, data: &[u8]) -> rechunker_core::Result<()> {
        Ok(self.write(region, data)?)
    }

    fn write_overhead(&self) -> u64 {
        match self
            .slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
        {
            Some(Backend::Hdf5(ds)) => ds.write_overhead(),
            _ => 2 * LIBRARY_BUFFERS,
        }
    }
}

impl DatasetTarget for NetcdfTarget {
    fn location(&self) -> &str {
        &self.inner.display
    }

    fn prepare(&self, meta: &DatasetMeta) -> rechunker_core::Result<()> {
        Ok(NetcdfTarget::prepare(self, meta)?)
    }

    fn create_array(&self, meta: &ArrayMeta) -> rechunker_core::Result<Arc<dyn ChunkedArrayMut>> {
        Ok(self.array(meta)?)
    }

    fn write_grid(&self, meta: &ArrayMeta) -> rechunker_core::Result<ChunkGrid> {
        let chunk = chunk_shape(meta, self.inner.format_for(Some(meta))).map_err(|w| {
            NetcdfError::Option(format!(
                "{}: variable `{}`: {w}",
                self.inner.display, meta.name
            ))
        })?;
        Ok(ChunkGrid::regular(&meta.shape(), &chunk))
    }

    fn write_overhead(&self, meta: &ArrayMeta) -> u64 {
        self.write_overhead_of(meta)
    }

    fn finalize(&self, meta: &DatasetMeta) -> rechunker_core::Result<()> {
        let inner = &self.inner;
        inner.format_for(meta.arrays.first());
        let mut state = self.state();
        if state.globals.as_ref() != Some(&meta.attrs) || !state.started {
            // A process that only finalizes (a distributed run) reopens what others wrote.
            inner.define(&mut state, true, |file, state| {
                inner.put_globals(file, &meta.attrs)?;
                state.globals = Some(meta.attrs.clone());
                Ok(())
            })?;
        }
        inner.close_data(&mut state);
        if let Some((file, _)) = state.classic.take() {
            match Arc::try_unwrap(file) {
                Ok(f) => f.close().map_err(|m| inner.lib_error(None, m))?,
                Err(shared) => {
                    // SAFETY: under the library lock; the ncid of our open file, by value.
                    locked(|| nc(unsafe { sys::nc_sync(shared.ncid) }))
                        .map_err(|m| inner.lib_error(None, m))?;
                }
            }
        }
        // A last check that libnetcdf reads what we wrote.
        let check = NcFile::open(&inner.partial_display(), false).map_err(|(_, m)| {
            inner.lib_error(None, format!("the written file does not open: {m}"))
        })?;
        scan(&check).map_err(|m| {
            inner.lib_error(None, format!("the written file does not read back: {m}"))
        })?;
        drop(check);
        std::fs::rename(inner.partial(), &inner.path).map_err(|e| NetcdfError::Io {
            path: inner.display.clone(),
            message: format!(
                "cannot move the finished {} into place: {e}",
                inner.partial_display()
            ),
        })?;
        Ok(())
    }
}
