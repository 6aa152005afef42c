//! Reading an HDF5 file: every numeric dataset in every group.

use crate::array::Hdf5Array;
use crate::attrs::{read_attributes, string_attribute};
use crate::error::{Hdf5Error, Result};
use hdf5_sys::h5::{haddr_t, hsize_t, H5_index_t, H5_iter_order_t};
use hdf5_sys::h5f::H5Fis_hdf5;
use hdf5_sys::h5g::H5Gopen2;
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5l::{H5L_info1_t, H5L_type_t, H5Literate1};
use hdf5_sys::h5o::{H5O_info1_t, H5O_type_t, H5Oget_info_by_name2, H5O_INFO_BASIC};
use hdf5_sys::h5p::H5P_DEFAULT;
use rechunker_core::{
    ArrayMeta, AttrValue, ChunkGrid, ChunkedArray, DataType, DatasetMeta, DatasetSource,
    NativeEncoding,
};
use rechunker_h5::json::{json_to_scalar, scalar_to_json};
use rechunker_h5::{
    locked, scale_names, slab_chunks, ChunkedDataset, Hid, KeptFilters, SLAB_BYTES,
};
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};
use std::path::Path;
use std::sync::Arc;

/// The `NAME` libnetcdf gives the dimension scale of a dimension without a coordinate
/// variable; such datasets hold no data.
pub(crate) const NETCDF_PHONY_SCALE: &str = "This is a netCDF dimension but not a netCDF variable";

/// True when `path` starts with the HDF5 signature (also true for NetCDF-4 files).
pub fn is_hdf5(path: &Path) -> bool {
    let Some(text) = path.to_str() else {
        return false;
    };
    let Ok(c) = CString::new(text) else {
        return false;
    };
    // SAFETY: under the library lock; `c` is a NUL-terminated path that outlives the call.
    path.is_file() && locked(|| unsafe { H5Fis_hdf5(c.as_ptr()) } > 0)
}

/// How to open a source.
#[derive(Clone, Debug, Default)]
pub struct Hdf5ReadOptions {
    /// Skip datasets of unsupported types (strings, compounds, ...) with a warning instead of
    /// failing.
    pub skip_unsupported: bool,
}

/// An HDF5 file opened read-only.
pub struct Hdf5Source {
    path: String,
    meta: DatasetMeta,
    arrays: Vec<Arc<Hdf5Array>>,
    _file: Hid,
}

impl std::fmt::Debug for Hdf5Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hdf5Source")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// A link found while walking the file.
struct Link {
    name: String,
    hard: bool,
}

unsafe extern "C" fn collect_link(
    _group: hid_t,
    name: *const c_char,
    info: *const H5L_info1_t,
    data: *mut c_void,
) -> i32 {
    // SAFETY: `data` is the `&mut Vec<Link>` that `links` passes, alive and not otherwise
    // borrowed while `H5Literate1` calls us synchronously.
    let links = unsafe { &mut *data.cast::<Vec<Link>>() };
    // SAFETY: libhdf5 passes a valid link info struct for the duration of the call.
    let hard = unsafe { (*info).type_ } == H5L_type_t::H5L_TYPE_HARD;
    links.push(Link {
        // SAFETY: libhdf5 passes the link's NUL-terminated name, valid during the call; we
        // copy it.
        name: unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned(),
        hard,
    });
    0
}

/// The links of `group`, in creation order when tracked, else by name (lock held).
fn links(group: hid_t) -> std::result::Result<Vec<Link>, String> {
    for index in [H5_index_t::H5_INDEX_CRT_ORDER, H5_index_t::H5_INDEX_NAME] {
        let mut out: Vec<Link> = Vec::new();
        let mut idx: hsize_t = 0;
        // SAFETY: lock held (only `walk`, under `locked`, calls this). `idx` and `out` are
        // locals that outlive the call; `collect_link` casts the visitor data back to exactly
        // `Vec<Link>`, and libhdf5 calls it only during this call.
        let status = unsafe {
            H5Literate1(
                group,
                index,
                H5_iter_order_t::H5_ITER_INC,
                &mut idx,
                Some(collect_link),
                (&mut out as *mut Vec<Link>).cast(),
            )
        };
        if status >= 0 {
            return Ok(out);
        }
        if index == H5_index_t::H5_INDEX_NAME {
            rechunker_h5::check(status)?;
        }
    }
    Ok(Vec::new())
}

/// Collects the datasets below `group` (lock held): (path without leading `/`, open id).
fn walk(
    group: hid_t,
    prefix: &str,
    visited: &mut HashSet<haddr_t>,
    out: &mut Vec<(String, Hid)>,
) -> std::result::Result<(), String> {
    for link in links(group)? {
        if !link.hard {
            tracing::debug!(link = %link.name, "skipping a soft or external link");
            continue;
        }
        let cname = CString::new(link.name.as_str()).map_err(|e| e.to_string())?;
        let mut info = H5O_info1_t::default();
        // SAFETY: lock held; `cname` outlives the call and `info` is a local the call fills.
        rechunker_h5::check(unsafe {
            H5Oget_info_by_name2(
                group,
                cname.as_ptr(),
                &mut info,
                H5O_INFO_BASIC,
                H5P_DEFAULT,
            )
        })?;
        if !visited.insert(info.addr) {
            continue;
        }
        let path = if prefix.is_empty() {
            link.name.clone()
        } else {
            format!("{prefix}/{}", link.name)
        };
        match info.type_ {
            H5O_type_t::H5O_TYPE_GROUP => {
                // SAFETY: lock held; `cname` is a NUL-terminated name that outlives the call.
                let g = Hid::new(unsafe { H5Gopen2(group, cname.as_ptr(), H5P_DEFAULT) })?;
                walk(g.id(), &path, visited, out)?;
            }
            H5O_type_t::H5O_TYPE_DATASET => {
                let d = rechunker_h5::open_dataset(group, &link.name)?;
                out.push((path, d));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Gives dimensions without a dimension scale names, as h5netcdf does: `phony_dim_N`, one per
/// distinct length, a second one where one dataset has two unnamed dimensions of that length.
#[derive(Default)]
struct PhonyDims {
    by_length: HashMap<u64, Vec<String>>,
    count: usize,
}

impl PhonyDims {
    fn names(&mut self, dims: &[Option<String>], shape: &[u64]) -> Vec<String> {
        let mut used: HashMap<u64, usize> = HashMap::new();
        dims.iter()
            .zip(shape)
            .map(|(name, &len)| {
                if let Some(n) = name {
                    return n.clone();
                }
                let k = used.entry(len).or_insert(0);
                let list = self.by_length.entry(len).or_default();
                if *k >= list.len() {
                    list.push(format!("phony_dim_{}", self.count));
                    self.count += 1;
                }
                *k += 1;
                list[*k - 1].clone()
            })
            .collect()
    }
}

fn basename(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// The `_FillValue` attribute as the model keeps it: typed as the variable.
pub(crate) fn normalize_fill_attribute(meta: &mut ArrayMeta) {
    let dtype = meta.dtype;
    if let Some(value) = meta.attrs.get("_FillValue").cloned() {
        let scalar = match &value.value {
            serde_json::Value::Array(items) if items.len() == 1 => json_to_scalar(&items[0]),
            other => json_to_scalar(other),
        };
        if let Some(s) = scalar.and_then(|s| {
            s.to_bytes(dtype)
                .and_then(|b| rechunker_core::Scalar::from_bytes(dtype, &b))
        }) {
            meta.attrs.insert(
                "_FillValue",
                AttrValue {
                    value: scalar_to_json(s),
                    dtype: (dtype != DataType::Bool).then_some(dtype),
                },
            );
        }
    }
}

impl Hdf5Source {
    /// Opens `path` read-only and reads the metadata of every dataset.
    pub fn open(path: impl AsRef<Path>) -> Result<Hdf5Source> {
        Self::open_with(path, &Hdf5ReadOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: &Hdf5ReadOptions) -> Result<Hdf5Source> {
        let path_ref = path.as_ref();
        let display = path_ref.display().to_string();
        let open_err = |message: String| Hdf5Error::Open {
            path: display.clone(),
            message,
        };
        std::fs::metadata(path_ref).map_err(|e| open_err(e.to_string()))?;
        if !is_hdf5(path_ref) {
            return Err(Hdf5Error::NotHdf5 { path: display });
        }
        let file = rechunker_h5::open_file(&display, false)
            .map_err(|m| open_err(format!("{m}; the file may be truncated or damaged")))?;
        let (file, found, global) = locked(|| -> Result<_> {
            let mut found = Vec::new();
            walk(file.id(), "", &mut HashSet::new(), &mut found)
                .map_err(|m| open_err(format!("cannot list its contents: {m}")))?;
            let global = read_attributes(file.id(), false)
                .map_err(|m| open_err(format!("cannot read the root attributes: {m}")))?;
            Ok((file, found, global))
        })?;
        let mut phony = PhonyDims::default();
        let mut arrays = Vec::new();
        for (name, dset) in found {
            let (is_scale, scale_name) = locked(|| {
                let s = rechunker_h5::is_scale(dset.id());
                (
                    s,
                    if s {
                        string_attribute(dset.id(), "NAME")
                    } else {
                        None
                    },
                )
            });
            if scale_name
                .as_deref()
                .is_some_and(|n| n.starts_with(NETCDF_PHONY_SCALE))
            {
                continue;
            }
            let dset_id = dset.id();
            let dataset = match ChunkedDataset::open(dset, &display, &name) {
                Ok(d) => d,
                Err(e) => {
                    if options.skip_unsupported {
                        let line = format!("skipping dataset `{name}` of {display}: {}", e.message);
                        tracing::warn!("{line}");
                        continue;
                    }
                    return Err(Hdf5Error::Unsupported {
                        path: display.clone(),
                        variable: name,
                        what: e.message,
                    });
                }
            };
            let shape = dataset.shape().to_vec();
            let (scales, attrs) = locked(|| {
                let scales = scale_names(dset_id, shape.len()).unwrap_or_else(|e| {
                    tracing::warn!(dataset = %name, "cannot read its dimension scales: {e}");
                    vec![None; shape.len()]
                });
                (scales, read_attributes(dset_id, is_scale))
            });
            let attrs = attrs.map_err(|m| {
                Hdf5Error::H5(rechunker_h5::H5Error::variable(
                    &display,
                    &name,
                    format!("cannot read its attributes: {m}"),
                ))
            })?;
            let mut dims: Vec<Option<String>> =
                scales.iter().map(|s| s.as_deref().map(basename)).collect();
            if is_scale && shape.len() == 1 && dims[0].is_none() {
                dims[0] = Some(basename(&name));
            }
            // Unlimited dimensions as NetCDF-4 (HDF5 underneath) has them: a dimension scale
            // (or the scale itself) the dataset may grow along. Resizable datasets without
            // scales name no dimension.
            let named: Vec<bool> = dims.iter().map(Option::is_some).collect();
            let dims = phony.names(&dims, &shape);
            let unlimited_dims: Vec<String> = dims
                .iter()
                .zip(&named)
                .zip(dataset.max_shape())
                .filter(|((_, named), max)| **named && max.is_none())
                .map(|((d, _), _)| d.clone())
                .collect();
            let item = dataset.dtype().size();
            let chunk = dataset
                .chunk_shape()
                .map(<[u64]>::to_vec)
                .unwrap_or_else(|| slab_chunks(&shape, item, SLAB_BYTES));
            let mut meta = ArrayMeta {
                name: name.clone(),
                dims,
                dtype: dataset.dtype(),
                grid: ChunkGrid::regular(&shape, &chunk),
                fill_value: dataset.user_fill(),
                attrs,
                codecs: dataset.pipeline().describe(),
                encoding: None,
                unlimited_dims,
            };
            meta.encoding = Some(native_encoding(
                &meta.codecs,
                dataset.chunk_shape().is_some(),
            ));
            normalize_fill_attribute(&mut meta);
            arrays.push(Arc::new(Hdf5Array { meta, dataset }));
        }
        let shown: &str = &display;
        tracing::debug!(path = shown, arrays = arrays.len(), "opened HDF5 file");
        Ok(Hdf5Source {
            meta: DatasetMeta {
                arrays: arrays.iter().map(|a| a.meta.clone()).collect(),
                attrs: global,
            },
            path: display,
            arrays,
            _file: file,
        })
    }

    /// One array with its concrete type.
    pub fn array(&self, name: &str) -> Result<Arc<Hdf5Array>> {
        self.arrays
            .iter()
            .find(|a| a.meta.name == name)
            .cloned()
            .ok_or_else(|| Hdf5Error::NoSuchArray {
                path: self.path.clone(),
                variable: name.into(),
            })
    }
}

/// The `format` of the [`NativeEncoding`] an HDF5 source gives its datasets.
pub const ENCODING_FORMAT: &str = "hdf5";

/// What an HDF5 -> HDF5 rewrite keeps of a dataset: its filters (see [`KeptFilters`]) and
/// whether it was chunked (a contiguous dataset has none, and is written uncompressed).
fn native_encoding(codecs: &[String], chunked: bool) -> NativeEncoding {
    let mut doc = serde_json::Map::new();
    KeptFilters::from_described(codecs).write_json(&mut doc);
    if !chunked {
        doc.insert("contiguous".into(), true.into());
    }
    NativeEncoding {
        format: ENCODING_FORMAT.into(),
        document: serde_json::Value::Object(doc),
        lone: false,
    }
}

/// The filters of an HDF5 source's dataset that an HDF5 target keeps, unless it had some we
/// cannot write.
pub(crate) fn kept_filters(meta: &ArrayMeta) -> Option<KeptFilters> {
    let e = meta
        .encoding
        .as_ref()
        .filter(|e| e.format == ENCODING_FORMAT)?;
    Some(KeptFilters::from_json(&e.document)).filter(|k| !k.other)
}

impl DatasetSource for Hdf5Source {
    fn location(&self) -> &str {
        &self.path
    }

    fn meta(&self) -> &DatasetMeta {
        &self.meta
    }

    fn open_array(&self, name: &str) -> rechunker_core::Result<Arc<dyn ChunkedArray>> {
        Ok(self.array(name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phony_dims_follow_h5netcdf() {
        let mut p = PhonyDims::default();
        assert_eq!(
            p.names(&[None, None], &[3, 4]),
            ["phony_dim_0", "phony_dim_1"]
        );
        assert_eq!(p.names(&[None], &[4]), ["phony_dim_1"]);
        assert_eq!(
            p.names(&[None, None], &[4, 4]),
            ["phony_dim_1", "phony_dim_2"]
        );
        assert_eq!(
            p.names(&[Some("x".into()), None], &[4, 3]),
            ["x", "phony_dim_0"]
        );
    }
}
