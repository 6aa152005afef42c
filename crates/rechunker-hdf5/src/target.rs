//! Writing an HDF5 file: datasets first (into `PATH.partial`), then attributes of the root and
//! dimension scales, then the rename to `PATH`.

use crate::array::Hdf5Array;
use crate::attrs::write_attributes;
use crate::error::{Hdf5Error, Result};
use crate::options::Hdf5WriteOptions;
use crate::source::NETCDF_PHONY_SCALE;
use hdf5::globals::H5P_FILE_CREATE;
use hdf5_sys::h5f::{H5F_scope_t, H5Fflush};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::{
    H5Pcreate, H5Pset_attr_creation_order, H5Pset_link_creation_order, H5P_CRT_ORDER_INDEXED,
    H5P_CRT_ORDER_TRACKED,
};
use rechunker_core::{
    ArrayMeta, ChunkGrid, ChunkedArrayMut, DataType, DatasetMeta, DatasetTarget, DimGrid, Scalar,
};
use rechunker_h5::json::json_to_scalar;
use rechunker_h5::{
    attach_scale, check, create_dataset, encoded_bound, locked, set_scale, ChunkedDataset,
    DatasetSpec, Hid, Pipeline,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where a target is written until it is finalized: `PATH.partial`.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// An HDF5 file being written. Nothing touches the disk until the first array is created.
pub struct Hdf5Target {
    path: PathBuf,
    display: String,
    options: Hdf5WriteOptions,
    file: Mutex<Option<Arc<Hid>>>,
}

impl std::fmt::Debug for Hdf5Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hdf5Target")
            .field("path", &self.display)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The regular chunk shape of `meta`'s grid, each length clamped to `1..=len`.
fn chunk_shape(meta: &ArrayMeta) -> std::result::Result<Vec<u64>, String> {
    let chunk = regular_chunks(meta)?;
    match rechunker_h5::chunk_too_large(&chunk, meta.item_size()) {
        Some(why) => Err(why),
        None => Ok(chunk),
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

/// The storage fill value of `meta`: its fill value, else its `_FillValue` marker.
fn storage_fill(meta: &ArrayMeta) -> Option<Vec<u8>> {
    let marker = meta.attrs.get("_FillValue").and_then(|a| match &a.value {
        serde_json::Value::Array(items) if items.len() == 1 => json_to_scalar(&items[0]),
        other => json_to_scalar(other),
    });
    meta.fill_value
        .or(marker)
        .and_then(|f: Scalar| f.to_bytes(meta.dtype))
}

impl Hdf5Target {
    /// A target at `path`. The file is created as `PATH.partial` when the first array is.
    pub fn create(path: impl AsRef<Path>, options: Hdf5WriteOptions) -> Result<Hdf5Target> {
        let path = path.as_ref().to_path_buf();
        Ok(Hdf5Target {
            display: path.display().to_string(),
            path,
            options,
            file: Mutex::new(None),
        })
    }

    pub fn options(&self) -> &Hdf5WriteOptions {
        &self.options
    }

    fn partial(&self) -> PathBuf {
        partial_path(&self.path)
    }

    /// The open partial file, created (or reopened when resuming) on first use.
    fn file(&self) -> Result<Arc<Hid>> {
        let mut slot = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = slot.as_ref() {
            return Ok(f.clone());
        }
        let partial = self.partial();
        let shown = partial.display().to_string();
        let reopen = self.options.resume && partial.is_file();
        let file = if reopen {
            rechunker_h5::open_file(&shown, true)
        } else {
            locked(|| -> std::result::Result<Hid, String> {
                // SAFETY: under the library lock; ids by value.
                let fcpl = Hid::new(unsafe { H5Pcreate(*H5P_FILE_CREATE) })?;
                let order = H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED;
                // SAFETY: under the lock; `fcpl` is our live property list, flags by value.
                check(unsafe { H5Pset_link_creation_order(fcpl.id(), order) })?;
                // SAFETY: as above.
                check(unsafe { H5Pset_attr_creation_order(fcpl.id(), order) })?;
                rechunker_h5::create_file(&shown, Some(fcpl.id()))
            })
        }
        .map_err(|m| Hdf5Error::Open {
            path: shown,
            message: if reopen {
                format!("{m}; the unfinished file cannot be resumed: remove it and run again without --resume")
            } else {
                m
            },
        })?;
        let file = Arc::new(file);
        *slot = Some(file.clone());
        Ok(file)
    }

    /// The filters of `meta`: with no codec given, an HDF5 source's own (see
    /// [`crate::source::ENCODING_FORMAT`]); else the options' codec.
    fn pipeline(&self, meta: &ArrayMeta) -> Pipeline {
        if meta.ndim() == 0 {
            return Pipeline::default();
        }
        if self.options.codec.is_none() {
            if let Some(kept) = crate::source::kept_filters(meta) {
                return kept.pipeline(meta.item_size());
            }
        }
        self.options.pipeline(meta.item_size())
    }

    /// Creates (or, when resuming, reopens) one dataset and returns it with its concrete type.
    pub fn array(&self, meta: &ArrayMeta) -> Result<Hdf5Array> {
        let name = meta.name.trim_matches('/').to_string();
        let unsupported = |what: String| Hdf5Error::Unsupported {
            path: self.display.clone(),
            variable: name.clone(),
            what,
        };
        if name.is_empty() {
            return Err(unsupported("an empty name is not supported".into()));
        }
        let chunk = chunk_shape(meta).map_err(|w| {
            Hdf5Error::Option(format!("{}: dataset `{}`: {w}", self.display, meta.name))
        })?;
        let shape = meta.shape();
        let pipeline = self.pipeline(meta);
        let file = self.file()?;
        let existing = rechunker_h5::link_exists(file.id(), &name);
        let dataset = if existing {
            let dset =
                rechunker_h5::open_dataset(file.id(), &name).map_err(|m| Hdf5Error::Exists {
                    path: self.display.clone(),
                    variable: name.clone(),
                    message: format!("it is not a dataset: {m}"),
                })?;
            let ds = ChunkedDataset::open(dset, &self.display, &name)?;
            let same = ds.dtype() == meta.dtype
                && ds.shape() == shape.as_slice()
                && ds.chunk_shape() == Some(chunk.as_slice()).filter(|_| meta.ndim() > 0)
                && ds.pipeline().describe() == pipeline.describe();
            if !same {
                return Err(Hdf5Error::Exists {
                    path: self.display.clone(),
                    variable: name,
                    message: "type, shape, chunks or filters differ".into(),
                });
            }
            ds
        } else {
            let fill = storage_fill(meta);
            let unlimited = vec![false; meta.ndim()];
            let spec = DatasetSpec {
                dtype: meta.dtype,
                shape: &shape,
                chunk: &chunk,
                unlimited: &unlimited,
                pipeline: &pipeline,
                fill: fill.as_deref(),
            };
            let dset = create_dataset(file.id(), &name, &spec, &self.display)?;
            locked(|| write_attributes(dset.id(), &meta.attrs, Some(meta.dtype)))
                .map_err(|m| rechunker_h5::H5Error::variable(&self.display, &name, m))?;
            ChunkedDataset::open(dset, &self.display, &name)?
        };
        let mut target_meta = meta.clone();
        target_meta.name = name;
        target_meta.grid = ChunkGrid::regular(&shape, &chunk);
        target_meta.codecs = pipeline.describe();
        Ok(Hdf5Array {
            meta: target_meta,
            dataset,
        })
    }

    /// Makes the coordinate variables dimension scales and attaches them, creating a data-less
    /// scale (netCDF's convention) for dimensions without one (lock held).
    fn write_dimension_scales(
        &self,
        file: hid_t,
        meta: &DatasetMeta,
    ) -> std::result::Result<(), String> {
        let open = |name: &str| -> std::result::Result<Hid, String> {
            rechunker_h5::open_dataset(file, name)
        };
        let lengths: BTreeMap<String, u64> = meta.dims().into_iter().collect();
        // Which dataset is the scale of each (group, dimension).
        let coordinate = |group: &str, dim: &str| -> Option<String> {
            let candidates = if group.is_empty() {
                vec![dim.to_string()]
            } else {
                vec![format!("{group}/{dim}"), dim.to_string()]
            };
            candidates.into_iter().find(|c| {
                meta.array(c)
                    .is_some_and(|a| a.ndim() == 1 && a.dims[0] == dim)
            })
        };
        let mut made: BTreeMap<String, Hid> = BTreeMap::new();
        for a in &meta.arrays {
            let name = a.name.trim_matches('/');
            let group = name.rsplit_once('/').map_or("", |(g, _)| g);
            for (d, dim) in a.dims.iter().enumerate() {
                let scale_name = match coordinate(group, dim) {
                    Some(c) => c,
                    None if meta.array(dim).is_some() => {
                        tracing::warn!(dimension = %dim, "no dimension scale: a dataset of that name is not its coordinate");
                        continue;
                    }
                    None => dim.clone(),
                };
                if scale_name == name {
                    continue;
                }
                if !made.contains_key(&scale_name) {
                    let scale = if meta.array(&scale_name).is_some() {
                        let s = open(&scale_name)?;
                        set_scale(s.id(), dim)?;
                        s
                    } else {
                        let len = lengths.get(dim).copied().unwrap_or(0);
                        let pipeline = Pipeline::default();
                        let spec = DatasetSpec {
                            dtype: DataType::Float32,
                            shape: &[len],
                            chunk: &[len.max(1)],
                            unlimited: &[false],
                            pipeline: &pipeline,
                            fill: None,
                        };
                        let s = if rechunker_h5::link_exists(file, &scale_name) {
                            open(&scale_name)?
                        } else {
                            create_dataset(file, &scale_name, &spec, &self.display)
                                .map_err(|e| e.message)?
                        };
                        set_scale(s.id(), &format!("{NETCDF_PHONY_SCALE}{len:>10}"))?;
                        s
                    };
                    made.insert(scale_name.clone(), scale);
                }
                let target = open(name)?;
                if let Some(scale) = made.get(&scale_name) {
                    attach_scale(target.id(), scale.id(), d)?;
                }
            }
        }
        // Coordinate variables nothing else uses are still scales.
        for a in &meta.arrays {
            let name = a.name.trim_matches('/');
            let group = name.rsplit_once('/').map_or("", |(g, _)| g);
            if a.ndim() == 1
                && coordinate(group, &a.dims[0]).as_deref() == Some(name)
                && !made.contains_key(name)
            {
                let s = open(name)?;
                set_scale(s.id(), &a.dims[0])?;
            }
        }
        Ok(())
    }
}

impl DatasetTarget for Hdf5Target {
    fn location(&self) -> &str {
        &self.display
    }

    fn create_array(&self, meta: &ArrayMeta) -> rechunker_core::Result<Arc<dyn ChunkedArrayMut>> {
        Ok(Arc::new(self.array(meta)?))
    }

    fn write_grid(&self, meta: &ArrayMeta) -> rechunker_core::Result<ChunkGrid> {
        let chunk = chunk_shape(meta).map_err(|w| {
            Hdf5Error::Option(format!("{}: dataset `{}`: {w}", self.display, meta.name))
        })?;
        Ok(ChunkGrid::regular(&meta.shape(), &chunk))
    }

    fn write_overhead(&self, meta: &ArrayMeta) -> u64 {
        let chunk = chunk_shape(meta).unwrap_or_else(|_| meta.grid.nominal_chunk_shape());
        let c = chunk.iter().product::<u64>() * meta.item_size() as u64;
        encoded_bound(c) + 2 * c + self.pipeline(meta).codec_state_bytes()
    }

    fn finalize(&self, meta: &DatasetMeta) -> rechunker_core::Result<()> {
        // A process that only finalizes (a distributed run) reopens what others wrote; it
        // never creates an empty file that would then look complete.
        let open = self.file.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let file = match open {
            Some(f) => f,
            None => {
                let partial = self.partial();
                let shown = partial.display().to_string();
                if !partial.is_file() {
                    return Err(Hdf5Error::Open {
                        path: shown,
                        message: "it does not exist: nothing was written yet, so there is nothing to finalize".into(),
                    }
                    .into());
                }
                let f =
                    rechunker_h5::open_file(&shown, true).map_err(|message| Hdf5Error::Open {
                        path: shown,
                        message,
                    })?;
                let f = Arc::new(f);
                *self.file.lock().unwrap_or_else(|e| e.into_inner()) = Some(f.clone());
                f
            }
        };
        let display = self.display.clone();
        locked(|| -> std::result::Result<(), String> {
            write_attributes(file.id(), &meta.attrs, None)?;
            self.write_dimension_scales(file.id(), meta)?;
            // SAFETY: under the library lock; `file` is our live file id, passed by value.
            check(unsafe { H5Fflush(file.id(), H5F_scope_t::H5F_SCOPE_GLOBAL) })?;
            Ok(())
        })
        .map_err(|m| rechunker_h5::H5Error::file(&display, m))
        .map_err(Hdf5Error::from)?;
        // Close our handle; arrays still held elsewhere keep the file open until dropped.
        self.file.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(file);
        std::fs::rename(self.partial(), &self.path).map_err(|e| Hdf5Error::Io {
            path: self.display.clone(),
            message: format!(
                "cannot move the finished {} into place: {e}",
                self.partial().display()
            ),
        })?;
        Ok(())
    }
}
