//! Reading NetCDF files: one file, or many concatenated along a dimension.

use crate::error::{NetcdfError, Result};
use crate::nc::{nc, NcFile};
use crate::options::{NetcdfFormat, NetcdfReadOptions};
use crate::scan::{first_value, group_id, scan, FileInfo, VarInfo};
use netcdf_sys as sys;
use rechunker_core::layout::{buffer_len, fill_elements};
use rechunker_core::region::{indices, ravel};
use rechunker_core::{
    ArrayMeta, AttrValue, ChunkGrid, ChunkedArray, DataType, DatasetMeta, DatasetSource, DimGrid,
    NativeEncoding, Region, Scalar,
};
use rechunker_h5::json::{json_to_scalar, scalar_to_json};
use rechunker_h5::{
    encoded_bound, locked, slab_chunks, ChunkedDataset, Hid, KeptFilters, LIBRARY_BUFFERS,
    SLAB_BYTES,
};
use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Files of a multi-file source whose data handles stay open at once; older ones are closed
/// and reopened when read again.
const OPEN_FILES: usize = 16;

/// True when `path` starts like a NetCDF-3 file (`CDF` 1, 2 or 5) or an HDF5 file (which
/// NetCDF-4 files are).
pub fn is_netcdf(path: &Path) -> bool {
    matches!(sniff(path), Ok(Some(_)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Classic,
    Hdf5,
}

fn sniff(path: &Path) -> std::io::Result<Option<Kind>> {
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut head)?;
    if n == 4 && &head[..3] == b"CDF" && matches!(head[3], 1 | 2 | 5) {
        return Ok(Some(Kind::Classic));
    }
    let Some(text) = path.to_str() else {
        return Ok(None);
    };
    let Ok(c) = CString::new(text) else {
        return Ok(None);
    };
    // SAFETY: under the library lock; `c` is a NUL-terminated path that outlives the call.
    let hdf5 = locked(|| unsafe { hdf5_sys::h5f::H5Fis_hdf5(c.as_ptr()) } > 0);
    Ok(hdf5.then_some(Kind::Hdf5))
}

/// The open data handles of one file.
enum Data {
    /// NetCDF-4: the file through HDF5, one dataset per variable (raw chunk reads).
    Hdf5 {
        _file: Hid,
        datasets: HashMap<String, ChunkedDataset>,
    },
    /// NetCDF-3: the file through libnetcdf.
    Classic { file: NcFile },
}

/// One file of a source.
struct Member {
    display: String,
    path: PathBuf,
    kind: Kind,
    info: FileInfo,
    data: Mutex<Option<Arc<Data>>>,
}

impl Member {
    fn library_error(&self, variable: Option<&str>, message: String) -> NetcdfError {
        NetcdfError::Library {
            path: self.display.clone(),
            variable: variable.map(str::to_string),
            message,
        }
    }

    /// Opens the data handles (lock taken inside).
    fn open_data(&self) -> Result<Data> {
        match self.kind {
            Kind::Classic => {
                let file =
                    NcFile::open(&self.display, false).map_err(|(_, m)| NetcdfError::Damaged {
                        path: self.display.clone(),
                        message: m,
                    })?;
                Ok(Data::Classic { file })
            }
            Kind::Hdf5 => {
                let file = rechunker_h5::open_file(&self.display, false).map_err(|m| {
                    self.library_error(None, format!("cannot open through HDF5: {m}"))
                })?;
                let mut datasets = HashMap::new();
                for var in &self.info.vars {
                    let Ok(dtype) = var.dtype else { continue };
                    let ds = open_var_dataset(&file, var, &self.display)?;
                    let mut ds = ds;
                    if let Some(fill) = &var.fill {
                        ds.set_fill(fill.clone());
                    }
                    if ds.dtype().size() != dtype.size() {
                        return Err(self.library_error(
                            Some(&var.name),
                            format!("HDF5 stores it as {}, NetCDF as {dtype}", ds.dtype()),
                        ));
                    }
                    datasets.insert(var.name.clone(), ds);
                }
                Ok(Data::Hdf5 {
                    _file: file,
                    datasets,
                })
            }
        }
    }
}

/// Opens the HDF5 dataset of a NetCDF-4 variable.
fn open_var_dataset(file: &Hid, var: &VarInfo, display: &str) -> Result<ChunkedDataset> {
    for path in var.h5_paths() {
        let found = if rechunker_h5::link_exists(file.id(), &path) {
            rechunker_h5::open_dataset(file.id(), &path).ok()
        } else {
            None
        };
        let Some(dset) = found else { continue };
        let ds = ChunkedDataset::open(dset, display, &var.name)?;
        // The dataset may be shorter than the NetCDF variable along unlimited dimensions.
        if ds.shape().len() == var.shape.len()
            && ds.shape().iter().zip(&var.shape).all(|(a, b)| a <= b)
        {
            return Ok(ds);
        }
    }
    Err(NetcdfError::Library {
        path: display.into(),
        variable: Some(var.name.clone()),
        message: "its HDF5 dataset was not found; the file does not follow the NetCDF-4 layout"
            .into(),
    })
}

/// The files of a source, and which of them have open data handles.
struct Shared {
    members: Vec<Member>,
    lru: Mutex<VecDeque<usize>>,
}

impl Shared {
    /// The data handles of member `k`, opened on demand; opening one closes the least recently
    /// used beyond [`OPEN_FILES`] (readers still holding them keep them until done).
    fn data(&self, k: usize) -> Result<Arc<Data>> {
        let member = &self.members[k];
        {
            let slot = member.data.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(d) = slot.as_ref() {
                let d = d.clone();
                drop(slot);
                self.touch(k);
                return Ok(d);
            }
        }
        let opened = Arc::new(member.open_data()?);
        let mut slot = member.data.lock().unwrap_or_else(|e| e.into_inner());
        let data = slot.get_or_insert_with(|| opened.clone()).clone();
        drop(slot);
        self.touch(k);
        Ok(data)
    }

    fn touch(&self, k: usize) {
        let mut lru = self.lru.lock().unwrap_or_else(|e| e.into_inner());
        lru.retain(|&i| i != k);
        lru.push_back(k);
        while lru.len() > OPEN_FILES {
            if let Some(old) = lru.pop_front() {
                self.members[old]
                    .data
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
            }
        }
    }
}

/// How a variable's elements map to files.
#[derive(Clone, Debug)]
enum Parts {
    /// All in one file.
    Single(usize),
    /// Concatenated along dimension `dim`: member `members[i]` holds
    /// `starts[i]..starts[i + 1]`.
    Concat {
        dim: usize,
        members: Vec<usize>,
        starts: Vec<u64>,
    },
}

/// A variable of a [`NetcdfSource`].
pub struct NetcdfArray {
    meta: ArrayMeta,
    shared: Arc<Shared>,
    parts: Parts,
    fill: Vec<u8>,
    overhead: u64,
}

impl std::fmt::Debug for NetcdfArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetcdfArray")
            .field("meta", &self.meta)
            .field("parts", &self.parts)
            .finish_non_exhaustive()
    }
}

/// Fills the box `shape` at `offset` of a C-order buffer of `out_shape` with `fill`.
fn fill_box(out: &mut [u8], out_shape: &[u64], offset: &[u64], shape: &[u64], fill: &[u8]) {
    let item = fill.len();
    let nd = shape.len();
    if shape.contains(&0) {
        return;
    }
    if nd == 0 {
        out[..item].copy_from_slice(fill);
        return;
    }
    let row = shape[nd - 1] as usize * item;
    for idx in indices(&shape[..nd - 1]) {
        let pos: Vec<u64> = idx
            .iter()
            .zip(offset)
            .map(|(a, b)| a + b)
            .chain(std::iter::once(offset[nd - 1]))
            .collect();
        let at = ravel(&pos, out_shape) as usize * item;
        fill_elements(&mut out[at..at + row], fill);
    }
}

impl NetcdfArray {
    fn location(&self, k: usize) -> &str {
        &self.shared.members[k].display
    }

    /// Reads `region` into `out` (C order, native endian).
    pub fn read(&self, region: &Region, out: &mut [u8]) -> Result<()> {
        self.read_stored(region, out)?;
        if self.meta.dtype == DataType::Bool {
            // Booleans are stored as bytes, and an element never written holds the byte fill
            // (libnetcdf's default is -127 when no `_FillValue` says otherwise): any nonzero
            // byte is true, as numpy's and xarray's cast reads it, and as the fill is reported.
            for b in out.iter_mut() {
                *b = u8::from(*b != 0);
            }
        }
        Ok(())
    }

    /// The stored bytes of `region`.
    fn read_stored(&self, region: &Region, out: &mut [u8]) -> Result<()> {
        let shape = self.meta.shape();
        let item = self.meta.item_size();
        let first = match &self.parts {
            Parts::Single(k) => *k,
            Parts::Concat { members, .. } => members.first().copied().unwrap_or(0),
        };
        if region.ndim() != shape.len() || (0..region.ndim()).any(|d| region.end(d) > shape[d]) {
            return Err(NetcdfError::Library {
                path: self.location(first).into(),
                variable: Some(self.meta.name.clone()),
                message: format!("region {region} is outside its shape {shape:?}"),
            });
        }
        let expected = region.num_elements() as usize * item;
        if out.len() != expected {
            return Err(NetcdfError::Library {
                path: self.location(first).into(),
                variable: Some(self.meta.name.clone()),
                message: format!(
                    "region {region} needs {expected} bytes, the buffer has {}",
                    out.len()
                ),
            });
        }
        if region.is_empty() {
            return Ok(());
        }
        match &self.parts {
            Parts::Single(k) => {
                let zeros = vec![0; region.ndim()];
                self.read_member(*k, region, out, &region.shape, &zeros)
            }
            Parts::Concat {
                dim,
                members,
                starts,
            } => {
                let (lo, hi) = (region.start[*dim], region.end(*dim));
                for (i, &k) in members.iter().enumerate() {
                    let (s, e) = (starts[i], starts[i + 1]);
                    let (a, b) = (lo.max(s), hi.min(e));
                    if a >= b {
                        continue;
                    }
                    let mut local = region.clone();
                    local.start[*dim] = a - s;
                    local.shape[*dim] = b - a;
                    let mut offset = vec![0; region.ndim()];
                    offset[*dim] = a - lo;
                    self.read_member(k, &local, out, &region.shape, &offset)?;
                }
                Ok(())
            }
        }
    }

    fn read_member(
        &self,
        k: usize,
        local: &Region,
        out: &mut [u8],
        out_shape: &[u64],
        out_offset: &[u64],
    ) -> Result<()> {
        let data = self.shared.data(k)?;
        match data.as_ref() {
            Data::Hdf5 { datasets, .. } => {
                let ds = datasets
                    .get(&self.meta.name)
                    .ok_or_else(|| NetcdfError::NoSuchArray {
                        path: self.location(k).into(),
                        variable: self.meta.name.clone(),
                    })?;
                let stored = Region::full(ds.shape());
                if stored.contains(local) {
                    return Ok(ds.read_box(local, out, out_shape, out_offset)?);
                }
                // Past the end of the dataset along an unlimited dimension: fill values.
                fill_box(out, out_shape, out_offset, &local.shape, &self.fill);
                if let Some(part) = local.intersect(&stored) {
                    let offset: Vec<u64> = part
                        .offset_in(local)
                        .iter()
                        .zip(out_offset)
                        .map(|(a, b)| a + b)
                        .collect();
                    ds.read_box(&part, out, out_shape, &offset)?;
                }
                Ok(())
            }
            Data::Classic { file } => self.read_classic(k, file, local, out, out_shape, out_offset),
        }
    }

    fn read_classic(
        &self,
        k: usize,
        file: &NcFile,
        local: &Region,
        out: &mut [u8],
        out_shape: &[u64],
        out_offset: &[u64],
    ) -> Result<()> {
        let member = &self.shared.members[k];
        let var = member
            .info
            .var(&self.meta.name)
            .ok_or_else(|| NetcdfError::NoSuchArray {
                path: member.display.clone(),
                variable: self.meta.name.clone(),
            })?;
        let item = self.meta.item_size();
        // libnetcdf writes through raw pointers below: make sure the box lies inside `out`
        // and that an element of the stored type is `item` bytes.
        let ndim = local.ndim();
        let fits = var.shape.len() == ndim
            && out_shape.len() == ndim
            && out_offset.len() == ndim
            && var.dtype.as_ref().is_ok_and(|dt| dt.size() == item)
            && buffer_len(out_shape, item) == Some(out.len())
            && (0..ndim).all(|d| {
                out_offset[d]
                    .checked_add(local.shape[d])
                    .is_some_and(|end| end <= out_shape[d])
            });
        if !fits {
            return Err(member.library_error(
                Some(&self.meta.name),
                format!(
                    "cannot read {local} into a box at {out_offset:?} of a {out_shape:?} buffer of {} bytes",
                    out.len()
                ),
            ));
        }
        let start: Vec<usize> = local.start.iter().map(|&s| s as usize).collect();
        let count: Vec<usize> = local.shape.iter().map(|&s| s as usize).collect();
        let at = ravel(out_offset, out_shape) as usize * item;
        let whole = out_shape == local.shape.as_slice();
        locked(|| {
            let grp = group_id(file, &var.group)?;
            if whole {
                // SAFETY: under the library lock. The variable has `ndim` dimensions, the
                // length of `start` and `count`; libnetcdf writes the `count` box in the
                // variable's type (`item` bytes an element) contiguously, which is all of
                // `out` since `out_shape` is the box (checked above).
                nc(unsafe {
                    sys::nc_get_vara(
                        grp,
                        var.varid,
                        start.as_ptr(),
                        count.as_ptr(),
                        out.as_mut_ptr().cast(),
                    )
                })
            } else {
                // A box of a larger buffer: map each dimension to its stride in `out`.
                let nd = out_shape.len();
                let mut imap = vec![1isize; nd];
                for d in (0..nd.saturating_sub(1)).rev() {
                    imap[d] = imap[d + 1] * out_shape[d + 1] as isize;
                }
                // SAFETY: under the library lock. Element `i` of the box goes to element
                // `sum(i[d] * imap[d])` after `at`, i.e. to the C-order position of
                // `out_offset + i` in `out_shape`; the box fits inside `out_shape` and `out`
                // holds all of it (checked above), so every write lands inside `out`. A null
                // stride means 1.
                nc(unsafe {
                    sys::nc_get_varm(
                        grp,
                        var.varid,
                        start.as_ptr(),
                        count.as_ptr(),
                        std::ptr::null(),
                        imap.as_ptr(),
                        out[at..].as_mut_ptr().cast(),
                    )
                })
            }
        })
        .map_err(|m| {
            member.library_error(
                Some(&self.meta.name),
                format!("cannot read {local}: {m}; the file may be truncated"),
            )
        })
    }
}

impl ChunkedArray for NetcdfArray {
    fn meta(&self) -> &ArrayMeta {
        &self.meta
    }

    fn read_region(&self, region: &Region, out: &mut [u8]) -> rechunker_core::Result<()> {
        Ok(self.read(region, out)?)
    }

    fn read_overhead(&self) -> u64 {
        self.overhead
    }
}

/// A NetCDF-3 or NetCDF-4 file, or many files concatenated along one dimension, opened
/// read-only.
///
/// NetCDF-4 variables are read through HDF5 with raw chunk reads decoded outside the library
/// lock; NetCDF-3 variables through libnetcdf. Chunked variables keep their chunk grid;
/// contiguous and NetCDF-3 variables are read in slabs of about 4 MiB that are whole along
/// the trailing dimensions (for `(time, lat, lon)` one or more time steps).
pub struct NetcdfSource {
    location: String,
    meta: DatasetMeta,
    arrays: Vec<Arc<NetcdfArray>>,
    unlimited: Vec<String>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NetcdfSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetcdfSource")
            .field("location", &self.location)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Opens one file and reads its structure.
fn open_member(path: &Path) -> Result<(Member, NcFile)> {
    let display = path.display().to_string();
    std::fs::metadata(path).map_err(|e| NetcdfError::Open {
        path: display.clone(),
        message: e.to_string(),
    })?;
    let kind = sniff(path)
        .map_err(|e| NetcdfError::Open {
            path: display.clone(),
            message: e.to_string(),
        })?
        .ok_or_else(|| NetcdfError::NotNetcdf {
            path: display.clone(),
        })?;
    if kind == Kind::Classic {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if let Ok(Some(expected)) = crate::classic::expected_size(path) {
            if len < expected {
                return Err(NetcdfError::Damaged {
                    path: display,
                    message: format!(
                        "its header describes {expected} bytes, but the file has only {len}"
                    ),
                });
            }
        }
    }
    let file = NcFile::open(&display, false).map_err(|(_, message)| NetcdfError::Damaged {
        path: display.clone(),
        message,
    })?;
    let info = scan(&file).map_err(|message| NetcdfError::Damaged {
        path: display.clone(),
        message,
    })?;
    if kind == Kind::Hdf5 && !info.format.is_hdf5()
        || kind == Kind::Classic && info.format.is_hdf5()
    {
        return Err(NetcdfError::Damaged {
            path: display,
            message: "its signature and its format disagree".into(),
        });
    }
    Ok((
        Member {
            display,
            path: path.to_path_buf(),
            kind,
            info,
            data: Mutex::new(None),
        },
        file,
    ))
}

/// The model's `_FillValue`: typed as the variable.
fn normalize_fill_attribute(meta: &mut ArrayMeta) {
    let dtype = meta.dtype;
    let Some(value) = meta.attrs.get("_FillValue").cloned() else {
        return;
    };
    let scalar = match &value.value {
        serde_json::Value::Array(items) if items.len() == 1 => json_to_scalar(&items[0]),
        other => json_to_scalar(other),
    };
    if let Some(s) = scalar
        .and_then(|s| s.to_bytes(dtype))
        .and_then(|b| Scalar::from_bytes(dtype, &b))
    {
        meta.attrs.insert(
            "_FillValue",
            AttrValue {
                value: scalar_to_json(s),
                dtype: (dtype != DataType::Bool).then_some(dtype),
            },
        );
    }
}

/// The chunk shape a variable is read in: its own chunks, or slabs.
fn read_chunks(var: &VarInfo, dtype: DataType) -> Vec<u64> {
    var.chunking
        .clone()
        .unwrap_or_else(|| slab_chunks(&var.shape, dtype.size(), SLAB_BYTES))
}

/// Extra memory one read of a variable with these chunks takes.
fn overhead(kind: Kind, var: &VarInfo, dtype: DataType) -> u64 {
    match (kind, &var.chunking) {
        (Kind::Hdf5, Some(chunk)) => {
            let c = chunk.iter().product::<u64>() * dtype.size() as u64;
            encoded_bound(c) + 2 * c + LIBRARY_BUFFERS
        }
        _ => 2 * LIBRARY_BUFFERS,
    }
}

/// The `format` of the [`NativeEncoding`] a NetCDF source gives its variables.
pub const ENCODING_FORMAT: &str = "netcdf";

/// What a NetCDF -> NetCDF rewrite keeps of a variable: the file's flavour (`"flavour":
/// "netcdf4"`, as `--netcdf-format` spells it) and the variable's filters (see
/// [`KeptFilters`]; none for contiguous and NetCDF-3 variables, which stay uncompressed).
fn native_encoding(var: &VarInfo, format: NetcdfFormat) -> NativeEncoding {
    let mut doc = serde_json::Map::new();
    doc.insert("flavour".into(), format.to_string().into());
    KeptFilters::from_described(&var.codecs).write_json(&mut doc);
    if var.chunking.is_none() {
        doc.insert("contiguous".into(), true.into());
    }
    NativeEncoding {
        format: ENCODING_FORMAT.into(),
        document: serde_json::Value::Object(doc),
        lone: false,
    }
}

/// The NetCDF document of `meta`'s encoding, when its source was NetCDF.
fn netcdf_document(meta: &ArrayMeta) -> Option<&serde_json::Value> {
    meta.encoding
        .as_ref()
        .filter(|e| e.format == ENCODING_FORMAT)
        .map(|e| &e.document)
}

/// The flavour of the NetCDF file `meta` came from.
pub(crate) fn kept_flavour(meta: &ArrayMeta) -> Option<NetcdfFormat> {
    netcdf_document(meta)?
        .get("flavour")?
        .as_str()?
        .parse()
        .ok()
}

/// The filters of `meta`'s NetCDF source variable, unless it had some we cannot write.
pub(crate) fn kept_filters(meta: &ArrayMeta) -> Option<KeptFilters> {
    Some(KeptFilters::from_json(netcdf_document(meta)?)).filter(|k| !k.other)
}

fn var_meta(var: &VarInfo, dtype: DataType, grid: ChunkGrid, format: NetcdfFormat) -> ArrayMeta {
    let mut meta = ArrayMeta {
        name: var.name.clone(),
        dims: var.dims.clone(),
        dtype,
        grid,
        fill_value: var.fill.as_ref().and_then(|f| Scalar::from_bytes(dtype, f)),
        attrs: var.attrs.clone(),
        codecs: var.codecs.clone(),
        encoding: Some(native_encoding(var, format)),
        unlimited_dims: Vec::new(),
    };
    normalize_fill_attribute(&mut meta);
    meta
}

fn unsupported(
    member: &Member,
    var: &VarInfo,
    what: &str,
    options: &NetcdfReadOptions,
) -> Result<()> {
    if options.skip_unsupported {
        tracing::warn!(
            "skipping variable `{}` of {}: {what} is not supported",
            var.name,
            member.display
        );
        Ok(())
    } else {
        Err(NetcdfError::Unsupported {
            path: member.display.clone(),
            variable: var.name.clone(),
            what: what.into(),
        })
    }
}

impl NetcdfSource {
    /// Opens one NetCDF-3 or NetCDF-4 file read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<NetcdfSource> {
        Self::open_with(path, &NetcdfReadOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: &NetcdfReadOptions) -> Result<NetcdfSource> {
        let (member, file) = open_member(path.as_ref())?;
        drop(file);
        let mut arrays = Vec::new();
        for var in &member.info.vars {
            let dtype = match &var.dtype {
                Ok(d) => *d,
                Err(what) => {
                    unsupported(&member, var, what, options)?;
                    continue;
                }
            };
            let grid = ChunkGrid::regular(&var.shape, &read_chunks(var, dtype));
            arrays.push((
                var_meta(var, dtype, grid, member.info.format),
                Parts::Single(0),
                overhead(member.kind, var, dtype),
                var.fill.clone(),
            ));
        }
        let location = member.display.clone();
        let unlimited = member.info.unlimited.clone();
        let attrs = member.info.attrs.clone();
        Ok(Self::assemble(
            location,
            vec![member],
            arrays,
            attrs,
            unlimited,
        ))
    }

    fn assemble(
        location: String,
        members: Vec<Member>,
        arrays: Vec<(ArrayMeta, Parts, u64, Option<Vec<u8>>)>,
        attrs: rechunker_core::Attributes,
        unlimited: Vec<String>,
    ) -> NetcdfSource {
        let shared = Arc::new(Shared {
            members,
            lru: Mutex::new(VecDeque::new()),
        });
        let arrays: Vec<Arc<NetcdfArray>> = arrays
            .into_iter()
            .map(|(mut meta, parts, overhead, fill)| {
                // Unlimited dimensions are part of the array's metadata: a NetCDF target keeps
                // them, through plans and plan files.
                meta.unlimited_dims = meta
                    .dims
                    .iter()
                    .filter(|d| unlimited.contains(d))
                    .cloned()
                    .collect();
                let fill = fill
                    .filter(|f| f.len() == meta.item_size())
                    .unwrap_or_else(|| meta.fill_bytes());
                Arc::new(NetcdfArray {
                    meta,
                    shared: shared.clone(),
                    parts,
                    fill,
                    overhead,
                })
            })
            .collect();
        NetcdfSource {
            location,
            meta: DatasetMeta {
                arrays: arrays.iter().map(|a| a.meta.clone()).collect(),
                attrs,
            },
            arrays,
            unlimited,
            shared,
        }
    }

    /// Opens many files as one dataset concatenated along `concat_dim`.
    ///
    /// Files are ordered by the first value of the coordinate variable `concat_dim` (in the
    /// given order when there is none). Every file must have the same variables with the same
    /// types and dimensions, and the same lengths of all other dimensions; variables with
    /// `concat_dim` are concatenated (the coordinate too), the others are taken from the first
    /// file, as are the attributes. Files of different lengths give an irregular chunk grid
    /// along `concat_dim` whose boundaries include every file boundary.
    pub fn open_many<P: AsRef<Path>>(paths: &[P], concat_dim: &str) -> Result<NetcdfSource> {
        Self::open_many_with(paths, concat_dim, &NetcdfReadOptions::default())
    }

    pub fn open_many_with<P: AsRef<Path>>(
        paths: &[P],
        concat_dim: &str,
        options: &NetcdfReadOptions,
    ) -> Result<NetcdfSource> {
        if paths.is_empty() {
            return Err(NetcdfError::Option(
                "no NetCDF files to concatenate; check the path pattern".into(),
            ));
        }
        let mut opened: Vec<(Member, Option<f64>)> = Vec::with_capacity(paths.len());
        for p in paths {
            let (member, file) = open_member(p.as_ref())?;
            if !member.info.dims.iter().any(|(n, _)| n == concat_dim) {
                return Err(NetcdfError::MissingConcatDim {
                    path: member.display.clone(),
                    dim: concat_dim.into(),
                    found: member
                        .info
                        .dims
                        .iter()
                        .map(|(n, l)| format!("{n}={l}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            let key = member
                .info
                .var(concat_dim)
                .filter(|v| v.dims.len() == 1 && v.dims[0] == concat_dim)
                .and_then(|v| first_value(&file, v));
            drop(file);
            opened.push((member, key));
        }
        if opened.iter().all(|(_, k)| k.is_some()) {
            opened.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
            for w in opened.windows(2) {
                if w[0].1 == w[1].1 {
                    return Err(NetcdfError::Mismatch {
                        path: w[1].0.display.clone(),
                        message: format!(
                            "starts at the same `{concat_dim}` value ({}) as {}; the files overlap",
                            w[1].1.unwrap_or_default(),
                            w[0].0.display
                        ),
                    });
                }
            }
        } else {
            tracing::warn!(
                "no `{concat_dim}` coordinate in every file: concatenating in the given order"
            );
        }
        let members: Vec<Member> = opened.into_iter().map(|(m, _)| m).collect();
        check_consistent(&members, concat_dim, options)?;
        let first = &members[0];
        let dim_len = |m: &Member| {
            m.info
                .dims
                .iter()
                .find(|(n, _)| n == concat_dim)
                .map_or(0, |(_, l)| *l)
        };
        let lengths: Vec<u64> = members.iter().map(dim_len).collect();
        let mut arrays = Vec::new();
        for var in &first.info.vars {
            let dtype = match &var.dtype {
                Ok(d) => *d,
                Err(what) => {
                    unsupported(first, var, what, options)?;
                    continue;
                }
            };
            let Some(dim) = var.dims.iter().position(|d| d == concat_dim) else {
                let grid = ChunkGrid::regular(&var.shape, &read_chunks(var, dtype));
                arrays.push((
                    var_meta(var, dtype, grid, first.info.format),
                    Parts::Single(0),
                    overhead(first.kind, var, dtype),
                    var.fill.clone(),
                ));
                continue;
            };
            let mut starts = vec![0u64];
            let mut bounds = vec![0u64];
            let mut member_ids = Vec::new();
            let mut max_overhead = 0;
            let base = read_chunks(var, dtype);
            for (k, m) in members.iter().enumerate() {
                let mv = m.info.var(&var.name).ok_or_else(|| NetcdfError::Mismatch {
                    path: m.display.clone(),
                    message: format!("has no variable `{}`", var.name),
                })?;
                let len = mv.shape[dim];
                let chunks = read_chunks(mv, dtype);
                if chunks
                    .iter()
                    .enumerate()
                    .any(|(d, c)| d != dim && *c != base[d])
                {
                    tracing::debug!(file = %m.display, variable = %var.name, "chunked differently from the first file; reading with the first file's chunks");
                }
                max_overhead = max_overhead.max(overhead(m.kind, mv, dtype));
                let offset = *starts.last().unwrap_or(&0);
                let c = chunks[dim].max(1);
                let mut at = c;
                while at < len {
                    bounds.push(offset + at);
                    at += c;
                }
                if len > 0 {
                    bounds.push(offset + len);
                    member_ids.push(k);
                    starts.push(offset + len);
                }
            }
            let total = *starts.last().unwrap_or(&0);
            let mut shape = var.shape.clone();
            shape[dim] = total;
            let mut dims = ChunkGrid::regular(&shape, &base).dims;
            bounds.dedup();
            dims[dim] = DimGrid::Explicit {
                bounds: Arc::new(bounds),
            }
            .simplified();
            if total == 0 {
                dims[dim] = DimGrid::regular(0, base[dim]);
            }
            arrays.push((
                var_meta(var, dtype, ChunkGrid::new(dims), first.info.format),
                Parts::Concat {
                    dim,
                    members: member_ids,
                    starts,
                },
                max_overhead,
                var.fill.clone(),
            ));
        }
        let location = format!(
            "{} ({} files along `{concat_dim}`, {} in all)",
            first.display,
            members.len(),
            lengths.iter().sum::<u64>()
        );
        let unlimited = first.info.unlimited.clone();
        let attrs = first.info.attrs.clone();
        Ok(Self::assemble(location, members, arrays, attrs, unlimited))
    }

    /// Names of the unlimited dimensions (of the first file), whether a variable uses them or
    /// not; each array's metadata names those of its own
    /// ([`ArrayMeta::unlimited_dims`](rechunker_core::ArrayMeta::unlimited_dims)).
    pub fn unlimited_dims(&self) -> &[String] {
        &self.unlimited
    }

    /// The files in the order they are concatenated.
    pub fn files(&self) -> Vec<&Path> {
        self.shared
            .members
            .iter()
            .map(|m| m.path.as_path())
            .collect()
    }

    /// One array with its concrete type.
    pub fn array(&self, name: &str) -> Result<Arc<NetcdfArray>> {
        self.arrays
            .iter()
            .find(|a| a.meta.name == name)
            .cloned()
            .ok_or_else(|| NetcdfError::NoSuchArray {
                path: self.location.clone(),
                variable: name.into(),
            })
    }
}

/// Checks that every file has the variables, types and dimensions of the first.
fn check_consistent(
    members: &[Member],
    concat_dim: &str,
    options: &NetcdfReadOptions,
) -> Result<()> {
    let first = &members[0];
    let relevant = |m: &Member| -> Vec<String> {
        m.info
            .vars
            .iter()
            .filter(|v| v.dtype.is_ok() || !options.skip_unsupported)
            .map(|v| v.name.clone())
            .collect()
    };
    let names = relevant(first);
    let units = |m: &Member, attr: &str| {
        m.info
            .var(concat_dim)
            .and_then(|v| v.attrs.get(attr).map(|a| a.value.clone()))
    };
    for m in &members[1..] {
        let mismatch = |message: String| NetcdfError::Mismatch {
            path: m.display.clone(),
            message,
        };
        let theirs = relevant(m);
        if let Some(missing) = names.iter().find(|n| !theirs.contains(n)) {
            return Err(mismatch(format!(
                "has no variable `{missing}`, which {} has; all files must hold the same variables",
                first.display
            )));
        }
        if let Some(extra) = theirs.iter().find(|n| !names.contains(n)) {
            return Err(mismatch(format!(
                "has a variable `{extra}` that {} does not; all files must hold the same variables",
                first.display
            )));
        }
        for (dim, len) in &first.info.dims {
            if dim == concat_dim {
                continue;
            }
            if let Some((_, l)) = m.info.dims.iter().find(|(n, _)| n == dim) {
                if l != len {
                    return Err(mismatch(format!(
                        "dimension `{dim}` has length {l} here but {len} in {}; only `{concat_dim}` may differ between the files",
                        first.display
                    )));
                }
            }
        }
        for attr in ["units", "calendar"] {
            if units(m, attr) != units(first, attr) {
                return Err(mismatch(format!(
                    "`{concat_dim}` has {attr} {} here but {} in {}; convert the files to the same {attr} first",
                    units(m, attr).map_or("(none)".into(), |v| v.to_string()),
                    units(first, attr).map_or("(none)".into(), |v| v.to_string()),
                    first.display
                )));
            }
        }
        for name in &names {
            let (a, b) = match (first.info.var(name), m.info.var(name)) {
                (Some(a), Some(b)) => (a, b),
                _ => continue,
            };
            let describe = |v: &VarInfo| match &v.dtype {
                Ok(d) => d.name().to_string(),
                Err(w) => w.clone(),
            };
            if describe(a) != describe(b) {
                return Err(mismatch(format!(
                    "variable `{name}` is {} here but {} in {}",
                    describe(b),
                    describe(a),
                    first.display
                )));
            }
            if a.dims != b.dims {
                return Err(mismatch(format!(
                    "variable `{name}` has dimensions ({}) here but ({}) in {}",
                    b.dims.join(", "),
                    a.dims.join(", "),
                    first.display
                )));
            }
            for (d, dim) in a.dims.iter().enumerate() {
                if dim != concat_dim && a.shape[d] != b.shape[d] {
                    return Err(mismatch(format!(
                        "variable `{name}` has {} elements along `{dim}` here but {} in {}",
                        b.shape[d], a.shape[d], first.display
                    )));
                }
            }
        }
    }
    Ok(())
}

impl DatasetSource for NetcdfSource {
    fn location(&self) -> &str {
        &self.location
    }

    fn meta(&self) -> &DatasetMeta {
        &self.meta
    }

    fn open_array(&self, name: &str) -> rechunker_core::Result<Arc<dyn ChunkedArray>> {
        Ok(self.array(name)?)
    }
}
