//! Reading a NetCDF file's structure: groups, dimensions, variables and attributes.

use crate::attrs::read_attributes;
use crate::nc::{self, dtype_of, inq_dim, inq_var, nc, type_description, NcFile};
use crate::options::NetcdfFormat;
use netcdf_sys as sys;
use rechunker_core::{Attributes, DataType};
use rechunker_h5::locked;
use std::collections::{HashMap, HashSet};
use std::os::raw::c_int;

/// One variable as libnetcdf describes it.
#[derive(Clone, Debug)]
pub(crate) struct VarInfo {
    /// Path without the leading `/` (`grp/var` in groups).
    pub name: String,
    /// Full group path (`/` for the root).
    pub group: String,
    pub varid: c_int,
    /// The data type, or what the unsupported type is.
    pub dtype: Result<DataType, String>,
    /// Dimension names: the local name, or, when the file has other dimensions of that name
    /// used by variables (in other groups), the full path (`/g2/dim`, `/dim`): see
    /// [`rechunker_core::meta::qualified_dim`].
    pub dims: Vec<String>,
    /// The full path of each dimension (`/g2/dim`), its identity in the file.
    pub dim_paths: Vec<String>,
    pub shape: Vec<u64>,
    pub chunking: Option<Vec<u64>>,
    /// Storage fill value (one native element); `None` when the variable is not filled.
    pub fill: Option<Vec<u8>>,
    pub attrs: Attributes,
    /// Stored filters, e.g. `["shuffle", "zlib(1)"]` (NetCDF-4 only).
    pub codecs: Vec<String>,
}

impl VarInfo {
    /// The HDF5 dataset paths this variable may have in a NetCDF-4 file.
    pub fn h5_paths(&self) -> [String; 2] {
        h5_paths(&self.name)
    }
}

/// The HDF5 dataset paths of variable `name` (`grp/var`) in a NetCDF-4 file. libnetcdf renames
/// a variable that shares its name with a dimension it is not the coordinate of; that name
/// comes first, as the plain name may be the data-less scale of the dimension.
pub(crate) fn h5_paths(name: &str) -> [String; 2] {
    let (group, base) = name.rsplit_once('/').unwrap_or(("", name));
    let prefix = if group.is_empty() {
        String::new()
    } else {
        format!("/{group}")
    };
    [
        format!("{prefix}/_nc4_non_coord_{base}"),
        format!("{prefix}/{base}"),
    ]
}

/// A file's structure.
#[derive(Clone, Debug)]
pub(crate) struct FileInfo {
    pub format: NetcdfFormat,
    pub vars: Vec<VarInfo>,
    pub attrs: Attributes,
    /// Names of unlimited dimensions (as variables name them).
    pub unlimited: Vec<String>,
    /// Every dimension with its local name and length (first definition wins for repeated
    /// names).
    pub dims: Vec<(String, u64)>,
}

impl FileInfo {
    pub fn var(&self, name: &str) -> Option<&VarInfo> {
        self.vars.iter().find(|v| v.name == name)
    }
}

/// Reads the structure of an open file (takes the lock).
pub(crate) fn scan(file: &NcFile) -> Result<FileInfo, String> {
    let format = file.format()?;
    let format = NetcdfFormat::from_nc(format)
        .ok_or_else(|| format!("file format {format} is not NetCDF-3 or NetCDF-4"))?;
    locked(|| {
        let mut info = FileInfo {
            format,
            vars: Vec::new(),
            attrs: read_attributes(file.ncid, sys::NC_GLOBAL).map_err(|e| format!("global {e}"))?,
            unlimited: Vec::new(),
            dims: Vec::new(),
        };
        let mut scope = Scope::default();
        scan_group(file.ncid, "/", &mut info, &mut scope)?;
        qualify_dims(&mut info, &scope);
        Ok(info)
    })
}

/// Dimensions by id: where each is defined, and which are unlimited.
#[derive(Default)]
struct Scope {
    /// Full path of each dimension (`/g2/dim`).
    paths: HashMap<c_int, String>,
    /// Unlimited dimensions, in the order found.
    unlimited: Vec<c_int>,
}

/// Names dimensions by their full path where their local name is shared by another dimension
/// that variables use (groups of a NetCDF-4 file each defining `dim`), so that every name of the
/// dataset means one dimension.
fn qualify_dims(info: &mut FileInfo, scope: &Scope) {
    let mut by_local: HashMap<&str, HashSet<&str>> = HashMap::new();
    for var in &info.vars {
        for (local, path) in var.dims.iter().zip(&var.dim_paths) {
            by_local.entry(local).or_default().insert(path);
        }
    }
    let shared: HashSet<String> = by_local
        .into_iter()
        .filter(|(_, paths)| paths.len() > 1)
        .map(|(local, _)| local.to_string())
        .collect();
    let name = |local: &str, path: &str| {
        if shared.contains(local) {
            path.to_string()
        } else {
            local.to_string()
        }
    };
    for var in &mut info.vars {
        var.dims = var
            .dims
            .iter()
            .zip(&var.dim_paths)
            .map(|(local, path)| name(local, path))
            .collect();
    }
    info.unlimited = Vec::new();
    for id in &scope.unlimited {
        let Some(path) = scope.paths.get(id) else {
            continue;
        };
        let local = path.rsplit('/').next().unwrap_or(path);
        let n = name(local, path);
        if !info.unlimited.contains(&n) {
            info.unlimited.push(n);
        }
    }
}

/// Ids of the dimensions `grp` itself defines.
pub(crate) fn own_dimids(grp: c_int) -> Result<Vec<c_int>, String> {
    locked(|| {
        let mut n = 0;
        // SAFETY: under the library lock; a null list asks for the count only.
        if unsafe { sys::nc_inq_dimids(grp, &mut n, std::ptr::null_mut(), 0) } != sys::NC_NOERR {
            // Classic files number their dimensions 0..n.
            // SAFETY: under the lock; `n` is a local the call writes.
            nc(unsafe { sys::nc_inq_ndims(grp, &mut n) })?;
            return Ok((0..n).collect());
        }
        let mut ids = vec![0; n.max(0) as usize];
        if n > 0 {
            // SAFETY: same lock hold, so the group still defines `n` dimensions, the length
            // of `ids` (parents' dimensions are not included: the last argument is 0).
            nc(unsafe { sys::nc_inq_dimids(grp, &mut n, ids.as_mut_ptr(), 0) })?;
        }
        Ok(ids)
    })
}

fn scan_group(
    grp: c_int,
    path: &str,
    info: &mut FileInfo,
    scope: &mut Scope,
) -> Result<(), String> {
    for id in own_dimids(grp)? {
        let (name, _) = inq_dim(grp, id)?;
        let full = format!("{}/{name}", path.trim_end_matches('/'));
        scope.paths.entry(id).or_insert(full);
    }
    for id in nc::unlimited_dimids(grp)? {
        if !scope.unlimited.contains(&id) {
            scope.unlimited.push(id);
        }
    }
    if path != "/" {
        let attrs = read_attributes(grp, sys::NC_GLOBAL).unwrap_or_default();
        if !attrs.is_empty() {
            tracing::debug!(
                group = path,
                "attributes of groups other than the root are not carried"
            );
        }
    }
    for varid in nc::varids(grp)? {
        let (name, xtype, dimids) = inq_var(grp, varid)?;
        let full = if path == "/" {
            name.clone()
        } else {
            format!("{}/{name}", path.trim_start_matches('/'))
        };
        let mut dims = Vec::with_capacity(dimids.len());
        let mut dim_paths = Vec::with_capacity(dimids.len());
        let mut shape = Vec::with_capacity(dimids.len());
        for &d in &dimids {
            let (dname, len) = inq_dim(grp, d)?;
            if !info.dims.iter().any(|(n, _)| *n == dname) {
                info.dims.push((dname.clone(), len));
            }
            dim_paths.push(
                scope
                    .paths
                    .get(&d)
                    .cloned()
                    .unwrap_or_else(|| format!("/{dname}")),
            );
            dims.push(dname);
            shape.push(len);
        }
        let mut attrs =
            read_attributes(grp, varid).map_err(|e| format!("variable `{full}`: {e}"))?;
        let mut dtype = dtype_of(xtype).ok_or_else(|| type_description(grp, xtype));
        // xarray stores booleans as bytes with the attribute dtype = "bool".
        if matches!(dtype, Ok(DataType::Int8 | DataType::UInt8))
            && attrs.get("dtype").is_some_and(|a| a.value == "bool")
        {
            dtype = Ok(DataType::Bool);
            attrs.0.retain(|(n, _)| n != "dtype");
        }
        let (chunking, fill) = match &dtype {
            Ok(dt) => (
                nc::chunking(grp, varid, dimids.len()),
                nc::fill_value(grp, varid, *dt),
            ),
            Err(_) => (None, None),
        };
        info.vars.push(VarInfo {
            name: full,
            group: path.to_string(),
            varid,
            dtype,
            dims,
            dim_paths,
            shape,
            chunking,
            fill,
            attrs,
            codecs: if info.format.is_hdf5() {
                codecs(grp, varid)
            } else {
                Vec::new()
            },
        });
    }
    for (child, name) in nc::groups(grp)? {
        let child_path = if path == "/" {
            format!("/{name}")
        } else {
            format!("{path}/{name}")
        };
        scan_group(child, &child_path, info, scope)?;
    }
    Ok(())
}

/// The ncid of group `path` (`/` for the root) of an open file.
pub(crate) fn group_id(file: &NcFile, path: &str) -> Result<c_int, String> {
    if path == "/" {
        return Ok(file.ncid);
    }
    let c = nc::cstring(path)?;
    let mut g = 0;
    // SAFETY: under the library lock; `c` is a NUL-terminated path that outlives the call and
    // `g` a local it writes.
    locked(|| nc(unsafe { sys::nc_inq_grp_full_ncid(file.ncid, c.as_ptr(), &mut g) }))?;
    Ok(g)
}

/// The first value of a 1-d variable as a double (for ordering files), if it has one.
pub(crate) fn first_value(file: &NcFile, var: &VarInfo) -> Option<f64> {
    if var.shape.len() != 1 || var.shape[0] == 0 || var.dtype.is_err() {
        return None;
    }
    locked(|| {
        let grp = group_id(file, &var.group).ok()?;
        let index = [0usize];
        let mut v = 0f64;
        // SAFETY: under the library lock; `var` was scanned from this file as 1-d (checked
        // above), so libnetcdf reads the one index in `index` and writes one double into `v`.
        let code = unsafe { sys::nc_get_var1_double(grp, var.varid, index.as_ptr(), &mut v) };
        (code == sys::NC_NOERR).then_some(v)
    })
}

/// Filters of a NetCDF-4 variable, in pipeline order.
fn codecs(grp: c_int, varid: c_int) -> Vec<String> {
    locked(|| codecs_locked(grp, varid))
}

fn codecs_locked(grp: c_int, varid: c_int) -> Vec<String> {
    let mut n = 0usize;
    // SAFETY: under the library lock (`codecs`); a null list asks for the count only.
    if unsafe { sys::nc_inq_var_filter_ids(grp, varid, &mut n, std::ptr::null_mut()) }
        != sys::NC_NOERR
    {
        return Vec::new();
    }
    let mut ids = vec![0u32; n];
    if n > 0
        // SAFETY: same lock hold, so the variable still has `n` filters, the length of `ids`.
        && unsafe { sys::nc_inq_var_filter_ids(grp, varid, &mut n, ids.as_mut_ptr()) }
            != sys::NC_NOERR
    {
        return Vec::new();
    }
    ids.iter()
        .map(|&id| {
            let mut np = 0usize;
            let mut params = [0u32; 16];
            // SAFETY: under the lock; the first call asks for the parameter count only (null
            // list); the second runs only when that count fits `params`, and libnetcdf writes
            // exactly that many.
            let ok = unsafe {
                sys::nc_inq_var_filter_info(grp, varid, id, &mut np, std::ptr::null_mut())
            } == sys::NC_NOERR
                && np <= params.len()
                // SAFETY: see above.
                && unsafe {
                    sys::nc_inq_var_filter_info(grp, varid, id, &mut np, params.as_mut_ptr())
                } == sys::NC_NOERR;
            let first = if ok && np > 0 { Some(params[0]) } else { None };
            match id {
                1 => format!("zlib({})", first.unwrap_or(0)),
                2 => "shuffle".into(),
                3 => "fletcher32".into(),
                rechunker_h5::ZSTD_FILTER_ID_U32 => {
                    format!("zstd({})", first.map_or(3, |l| l as i32))
                }
                other => format!("filter {other}"),
            }
        })
        .collect()
}
