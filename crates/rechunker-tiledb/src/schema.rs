//! Array schemas: what a dense TileDB array looks like in rechunker's terms, checked for what
//! this adapter supports, and new schemas for the arrays it writes.

use crate::error::{Context as _, Result, TileDbError};
use crate::ffi::{self, Attribute, Context, Dimension, Domain, Filter, FilterList, Schema};
use crate::ffi::{ArrayType, Datatype, Layout, VAR_NUM};
use crate::types::{self, Codec};
use rechunker_core::{ChunkGrid, DataType, Region};
use std::sync::Arc;

/// One dimension: its name, integer type, inclusive domain and tile extent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DimInfo {
    pub name: String,
    pub tdb_type: Datatype,
    pub lo: i128,
    pub hi: i128,
    pub extent: u64,
}

impl DimInfo {
    pub fn len(&self) -> u64 {
        (self.hi - self.lo + 1) as u64
    }
}

/// One attribute: name, type, fill value (one native-endian cell) and its filters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AttrInfo {
    pub name: String,
    pub dtype: DataType,
    pub fill: Vec<u8>,
    /// Filter descriptions in pipeline order, e.g. `["byteshuffle", "zstd(level=3)"]`.
    pub filters: Vec<String>,
}

/// A dense array's schema, as far as rechunker cares.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ArrayInfo {
    pub uri: String,
    pub dims: Vec<DimInfo>,
    pub attrs: Vec<AttrInfo>,
    pub cell_order: Layout,
    pub tile_order: Layout,
}

impl ArrayInfo {
    /// Loads and checks the schema of the array at `uri`: dense, integer dimensions,
    /// fixed-size non-nullable numeric attributes.
    pub fn load(ctx: &Arc<Context>, uri: &str) -> Result<ArrayInfo> {
        let schema = Schema::load(ctx, uri).at(uri, "cannot read the array schema")?;
        Self::from_schema(&schema, uri)
    }

    pub fn from_schema(schema: &Schema, uri: &str) -> Result<ArrayInfo> {
        let read = |e: ffi::LibError| TileDbError::Library {
            uri: uri.into(),
            variable: None,
            action: "cannot read the array schema".into(),
            message: e.0,
        };
        if schema.array_type().map_err(read)? == ArrayType::Sparse {
            return Err(TileDbError::unsupported(
                uri,
                "a sparse array (only dense arrays can be rechunked)",
            ));
        }
        let mut dims = Vec::new();
        for dim in schema.domain().map_err(read)?.dimensions().map_err(read)? {
            let name = dim.name().map_err(read)?;
            let t = dim.dtype().map_err(read)?;
            if types::int_type(t).is_none() || dim.cell_val_num().map_err(read)? != 1 {
                return Err(TileDbError::unsupported(
                    uri,
                    format!(
                        "dimension `{name}` of type {} (dense dimensions must be integers)",
                        types::type_name(t)
                    ),
                ));
            }
            let domain = dim.domain().map_err(read)?;
            let size = types::int_type(t).map_or(0, |(s, _)| s);
            let (lo, hi) = match (
                types::decode_int(t, &domain),
                types::decode_int(t, domain.get(size..).unwrap_or(&[])),
            ) {
                (Some(lo), Some(hi)) if hi >= lo => (lo, hi),
                _ => {
                    return Err(TileDbError::unsupported(
                        uri,
                        format!("dimension `{name}` without a valid domain"),
                    ))
                }
            };
            if hi - lo + 1 > u64::MAX as i128 {
                return Err(TileDbError::unsupported(
                    uri,
                    format!("dimension `{name}` spanning the whole 64-bit range"),
                ));
            }
            let len = (hi - lo + 1) as u64;
            let extent = types::decode_int(t, &dim.tile_extent().map_err(read)?)
                .filter(|&e| e > 0)
                .map_or(len, |e| e.min(len as i128) as u64);
            dims.push(DimInfo {
                name,
                tdb_type: t,
                lo,
                hi,
                extent,
            });
        }
        let mut attrs = Vec::new();
        for attr in schema.attributes().map_err(read)? {
            let name = attr.name().map_err(read)?;
            let shown = if name.is_empty() {
                "(anonymous)".to_string()
            } else {
                name.clone()
            };
            let n = attr.cell_val_num().map_err(read)?;
            if n == VAR_NUM {
                return Err(TileDbError::unsupported(
                    uri,
                    format!("the variable-length attribute `{shown}`"),
                ));
            }
            let t = attr.dtype().map_err(read)?;
            if n != 1 {
                return Err(TileDbError::unsupported(
                    uri,
                    format!("the attribute `{shown}` with {n} values per cell"),
                ));
            }
            if attr.nullable().map_err(read)? {
                return Err(TileDbError::unsupported(
                    uri,
                    format!("the nullable attribute `{shown}`"),
                ));
            }
            let Some(dtype) = types::data_type(t) else {
                return Err(TileDbError::unsupported(
                    uri,
                    format!("the attribute `{shown}` of type {}", types::type_name(t)),
                ));
            };
            let mut filters = Vec::new();
            for f in attr.filters().map_err(read)?.filters().map_err(read)? {
                let kind = f.kind().map_err(read)?;
                let level = if types::is_compressor(kind) {
                    f.level().ok()
                } else {
                    None
                };
                filters.push(types::describe_filter(kind, level));
            }
            let mut fill = attr.fill_value().map_err(read)?;
            fill.resize(dtype.size(), 0);
            attrs.push(AttrInfo {
                name,
                dtype,
                fill,
                filters,
            });
        }
        if dims.is_empty() || attrs.is_empty() {
            return Err(TileDbError::unsupported(
                uri,
                "an array without dimensions or attributes",
            ));
        }
        Ok(ArrayInfo {
            uri: uri.into(),
            dims,
            attrs,
            cell_order: schema.cell_order().map_err(read)?,
            tile_order: schema.tile_order().map_err(read)?,
        })
    }

    pub fn shape(&self) -> Vec<u64> {
        self.dims.iter().map(DimInfo::len).collect()
    }

    pub fn dim_names(&self) -> Vec<String> {
        self.dims.iter().map(|d| d.name.clone()).collect()
    }

    /// The tile grid in 0-based offsets from each domain's start.
    pub fn grid(&self) -> ChunkGrid {
        ChunkGrid::regular(
            &self.shape(),
            &self.dims.iter().map(|d| d.extent).collect::<Vec<_>>(),
        )
    }

    /// The subarray of `region` (0-based offsets): `[lo, hi]` per dimension in domain
    /// coordinates, native-endian values of the dimensions' type.
    pub fn subarray(&self, region: &Region) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.dims.len() * 16);
        for (d, dim) in self.dims.iter().enumerate() {
            let lo = dim.lo + region.start[d] as i128;
            let hi = lo + region.shape[d] as i128 - 1;
            // In range: regions are checked against the shape before this is called.
            out.extend(types::encode_int(dim.tdb_type, lo).unwrap_or_default());
            out.extend(types::encode_int(dim.tdb_type, hi).unwrap_or_default());
        }
        out
    }
}

/// Reopens the array an earlier (interrupted) run created at `path`, or creates it with
/// `create` and loads it. An array whose creation itself was interrupted (no readable schema,
/// no fragment written yet) is removed and created again. The flag says whether it existed.
pub(crate) fn reopen_or_create(
    ctx: &Arc<Context>,
    path: &std::path::Path,
    create: impl FnOnce(&str) -> Result<()>,
) -> Result<(ArrayInfo, bool)> {
    let uri = path.display().to_string();
    if path.exists() {
        match ArrayInfo::load(ctx, &uri) {
            Ok(info) => return Ok((info, true)),
            Err(e) => {
                if crate::fragments::fragment_count(&uri) > 0 {
                    return Err(e);
                }
                tracing::info!(uri, "recreating an array whose creation was interrupted");
                std::fs::remove_dir_all(path)
                    .map_err(|e| TileDbError::io(path, "remove an unfinished array", e))?;
            }
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| TileDbError::io(parent, "create a folder", e))?;
    }
    create(&uri)?;
    Ok((ArrayInfo::load(ctx, &uri)?, false))
}

/// Where a new attribute's filters come from.
pub(crate) enum Filters<'a> {
    Codec(Codec),
    /// A copy of another attribute's pipeline (in-place rechunking keeps the filters).
    Like(&'a FilterList),
}

/// A new dense attribute.
pub(crate) struct NewAttr<'a> {
    pub name: &'a str,
    pub dtype: DataType,
    pub fill: Option<Vec<u8>>,
    pub filters: Filters<'a>,
}

/// Builds the filter list of `codec`.
pub(crate) fn codec_filters(ctx: &Arc<Context>, codec: &Codec) -> ffi::LibResult<FilterList> {
    let mut list = FilterList::new(ctx)?;
    for (kind, level) in codec.filters() {
        let mut f = Filter::new(ctx, kind)?;
        if let Some(l) = level {
            f.set_level(l)?;
        }
        list.add(&f)?;
    }
    Ok(list)
}

/// A dimension handle for `d`; the library checks that the tiles fit the domain's type.
fn new_dimension(ctx: &Arc<Context>, uri: &str, d: &DimInfo) -> Result<Dimension> {
    let extent = d.extent.clamp(1, d.len());
    let bad = |message: String| TileDbError::Tiles {
        uri: uri.into(),
        dim: d.name.clone(),
        extent,
        domain: format!(
            "{} domain [{}, {}]",
            types::type_name(d.tdb_type),
            d.lo,
            d.hi
        ),
        message,
    };
    let encode = |v: i128| {
        types::encode_int(d.tdb_type, v)
            .ok_or_else(|| bad(format!("{v} is not a {}", types::type_name(d.tdb_type))))
    };
    let mut domain = encode(d.lo)?;
    domain.extend(encode(d.hi)?);
    // The library accepts such a dimension, but cannot then write the last tile.
    let expanded = d.lo + (d.len().div_ceil(extent) * extent) as i128 - 1;
    if types::encode_int(d.tdb_type, expanded).is_none() {
        return Err(bad(format!(
            "rounded up to whole tiles it would end at {expanded}"
        )));
    }
    Dimension::new(ctx, &d.name, d.tdb_type, &domain, &encode(extent as i128)?)
        .map_err(|e| bad(e.0))
}

/// Checks that dimensions `dims` (with new tile extents) can be created, without creating
/// anything.
pub(crate) fn check_dims(ctx: &Arc<Context>, uri: &str, dims: &[DimInfo]) -> Result<()> {
    for d in dims {
        new_dimension(ctx, uri, d)?;
    }
    Ok(())
}

/// Creates a dense array at `uri` with `dims` (tile extents given) and `attrs`.
pub(crate) fn create_array(
    ctx: &Arc<Context>,
    uri: &str,
    dims: &[DimInfo],
    attrs: &[NewAttr<'_>],
    orders: (Layout, Layout),
) -> Result<()> {
    let fail = |action: &str| {
        let action = action.to_string();
        move |e: ffi::LibError| TileDbError::Library {
            uri: uri.into(),
            variable: None,
            action,
            message: e.0,
        }
    };
    let mut domain = Domain::new(ctx).map_err(fail("cannot create the domain"))?;
    for d in dims {
        let dim = new_dimension(ctx, uri, d)?;
        domain
            .add_dimension(&dim)
            .at_var(uri, "cannot add the dimension", &d.name)?;
    }
    let mut schema =
        Schema::new(ctx, ArrayType::Dense).map_err(fail("cannot create the schema"))?;
    schema
        .set_domain(&domain)
        .map_err(fail("cannot set the domain"))?;
    schema
        .set_cell_order(orders.0)
        .map_err(fail("cannot set the cell order"))?;
    schema
        .set_tile_order(orders.1)
        .map_err(fail("cannot set the tile order"))?;
    for a in attrs {
        let mut attr = Attribute::new(ctx, a.name, types::tiledb_type(a.dtype)).at_var(
            uri,
            "cannot create the attribute",
            a.name,
        )?;
        if let Some(fill) = &a.fill {
            attr.set_fill_value(fill)
                .at_var(uri, "cannot set the fill value", a.name)?;
        }
        match &a.filters {
            Filters::Codec(codec) => {
                let list =
                    codec_filters(ctx, codec).at_var(uri, "cannot build the filters", a.name)?;
                attr.set_filters(&list)
            }
            Filters::Like(list) => attr.set_filters(list),
        }
        .at_var(uri, "cannot set the filters", a.name)?;
        schema
            .add_attribute(&attr)
            .at_var(uri, "cannot add the attribute", a.name)?;
    }
    schema.check().map_err(fail("the new schema is invalid"))?;
    schema
        .create_array(uri)
        .map_err(fail("cannot create the array"))
}
