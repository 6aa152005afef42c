//! What a TileDB source records about each variable's array so that a TileDB target can write
//! the same array again with new tile extents only (`NativeEncoding` of format `"tiledb"`).
//!
//! The document names the source array (`uri`, to copy the attributes' filter pipelines, fill
//! values and metadata exactly, with every filter option), its place in the group (`array`,
//! "" for a lone array), the attribute the variable is and all attributes of the array, and
//! the schema facts the target rebuilds: dimensions (name, type, domain), cell and tile order.

use crate::ffi::{Datatype, Layout};
use crate::schema::{ArrayInfo, DimInfo};
use rechunker_core::NativeEncoding;
use serde::{Deserialize, Serialize};

/// `NativeEncoding::format` of TileDB sources.
pub(crate) const FORMAT: &str = "tiledb";

/// One dimension as the document holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeptDim {
    pub name: String,
    /// `int8` .. `uint64`.
    #[serde(rename = "type")]
    pub dtype: String,
    pub domain: [i64; 2],
}

/// The document of a variable from a TileDB array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeptArray {
    /// The source array, for its filters, fill values and metadata.
    pub uri: String,
    /// The array's path in the source group ("" for a lone array).
    pub array: String,
    /// The attribute this variable is ("" for an anonymous one).
    pub attribute: String,
    /// Every attribute of the source array, in schema order.
    pub attributes: Vec<String>,
    pub dims: Vec<KeptDim>,
    pub cell_order: String,
    pub tile_order: String,
    /// The attribute's filters, as `rechunk inspect` shows them.
    pub filters: Vec<String>,
}

const INT_TYPES: [(Datatype, &str); 8] = [
    (Datatype::Int8, "int8"),
    (Datatype::UInt8, "uint8"),
    (Datatype::Int16, "int16"),
    (Datatype::UInt16, "uint16"),
    (Datatype::Int32, "int32"),
    (Datatype::UInt32, "uint32"),
    (Datatype::Int64, "int64"),
    (Datatype::UInt64, "uint64"),
];

fn order_name(l: Layout) -> &'static str {
    match l {
        Layout::ColMajor => "col-major",
        Layout::Hilbert => "hilbert",
        _ => "row-major",
    }
}

fn order(name: &str) -> Option<Layout> {
    match name {
        "row-major" => Some(Layout::RowMajor),
        "col-major" => Some(Layout::ColMajor),
        _ => None,
    }
}

impl KeptArray {
    /// The document of attribute `index` of `info`, the array at `array` in its group.
    /// `None` when the domain does not fit the document (a uint64 bound above `i64::MAX`).
    pub fn new(info: &ArrayInfo, uri: &str, array: &str, index: usize) -> Option<KeptArray> {
        let mut dims = Vec::new();
        for d in &info.dims {
            let dtype = INT_TYPES.iter().find(|(t, _)| *t == d.tdb_type)?.1;
            dims.push(KeptDim {
                name: d.name.clone(),
                dtype: dtype.into(),
                domain: [i64::try_from(d.lo).ok()?, i64::try_from(d.hi).ok()?],
            });
        }
        let attr = info.attrs.get(index)?;
        Some(KeptArray {
            uri: uri.into(),
            array: array.into(),
            attribute: attr.name.clone(),
            attributes: info.attrs.iter().map(|a| a.name.clone()).collect(),
            dims,
            cell_order: order_name(info.cell_order).into(),
            tile_order: order_name(info.tile_order).into(),
            filters: attr.filters.clone(),
        })
    }

    /// The encoding of the variable. `lone` stays false even for a lone array: that flag
    /// makes other formats' targets (Zarr) write a lone array, and across formats a TileDB
    /// array gives a dataset; a TileDB target sees a lone array by its empty `array`.
    pub fn encoding(&self) -> NativeEncoding {
        NativeEncoding {
            format: FORMAT.into(),
            document: serde_json::to_value(self).unwrap_or_default(),
            lone: false,
        }
    }

    /// The document of `encoding`, if it is a readable TileDB one.
    pub fn from_encoding(encoding: Option<&NativeEncoding>) -> Option<KeptArray> {
        let e = encoding.filter(|e| e.format == FORMAT)?;
        serde_json::from_value(e.document.clone()).ok()
    }

    /// The dimensions with tile extents `chunks` (clamped to each dimension's length);
    /// `None` when the document names a type or order this crate does not write.
    pub fn dims(&self, chunks: &[u64]) -> Option<Vec<DimInfo>> {
        if chunks.len() != self.dims.len() {
            return None;
        }
        self.dims
            .iter()
            .zip(chunks)
            .map(|(d, &c)| {
                let tdb_type = INT_TYPES.iter().find(|(_, n)| *n == d.dtype)?.0;
                let (lo, hi) = (i128::from(d.domain[0]), i128::from(d.domain[1]));
                let len = u64::try_from(hi - lo + 1).ok().filter(|&l| l > 0)?;
                Some(DimInfo {
                    name: d.name.clone(),
                    tdb_type,
                    lo,
                    hi,
                    extent: c.clamp(1, len),
                })
            })
            .collect()
    }

    /// False for dimensions libtiledb 2.30 cannot write in global order (which the writer
    /// uses): an `int8` or `int16` dimension whose domain spans 0 is refused with "the
    /// subarray must coincide with the tile bounds" even for whole tiles. Such arrays are
    /// written as for sources of other formats.
    pub fn writable(&self) -> bool {
        self.dims.iter().all(|d| {
            !(matches!(d.dtype.as_str(), "int8" | "int16") && d.domain[0] < 0 && d.domain[1] >= 0)
        })
    }

    /// Cell and tile order.
    pub fn orders(&self) -> Option<(Layout, Layout)> {
        Some((order(&self.cell_order)?, order(&self.tile_order)?))
    }

    /// True when this variable shares its source array with other attributes.
    pub fn shared(&self) -> bool {
        self.attributes.len() > 1
    }
}

/// Bytes of slot data [`combine`] moves per write (at least one tile of every attribute).
const COMBINE_BATCH: u64 = 16 << 20;

/// A box of whole tiles of about `budget` bytes (`cell` bytes per cell): one tile, grown
/// along the last dimensions first, so that each write covers contiguous tiles.
fn block_shape(shape: &[u64], tiles: &[u64], cell: u64, budget: u64) -> Vec<u64> {
    let mut block: Vec<u64> = tiles.iter().zip(shape).map(|(&t, &n)| t.min(n)).collect();
    for d in (0..shape.len()).rev() {
        let others: u64 = block
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != d)
            .map(|(_, &b)| b)
            .product::<u64>()
            .max(1)
            * cell.max(1);
        let fit = (budget / others / block[d].max(1)).max(1);
        let grown = (block[d] * fit).min(shape[d]);
        let full = grown >= shape[d];
        block[d] = grown;
        if !full {
            break;
        }
    }
    block
}

/// Writes the attributes `parts` (single-attribute arrays with the same dimensions and
/// tiles, in the order the new array lists them) into one new array at `to` with `attrs`,
/// block by block: a dense write must carry every attribute of its array.
pub(crate) fn combine(
    ctx: &std::sync::Arc<crate::ffi::Context>,
    parts: &[std::sync::Arc<ArrayInfo>],
    attrs: &[crate::schema::NewAttr<'_>],
    orders: (Layout, Layout),
    to: &str,
) -> crate::error::Result<()> {
    use crate::array::TileDbArray;
    use rechunker_core::{ChunkedArray, Region};
    let Some(first) = parts.first() else {
        return Ok(());
    };
    crate::schema::create_array(ctx, to, &first.dims, attrs, orders)?;
    let info = std::sync::Arc::new(ArrayInfo::load(ctx, to)?);
    let slots = TileDbArray::slots(ctx.clone(), info.clone(), "combined");
    let item = slots.meta().dtype.size();
    let n = parts.len() as u64;
    let shape = info.shape();
    let tiles: Vec<u64> = info.dims.iter().map(|d| d.extent).collect();
    let block = block_shape(&shape, &tiles, item as u64 * n, COMBINE_BATCH);
    let readers: Vec<TileDbArray> = parts
        .iter()
        .map(|p| {
            let a = &p.attrs[0];
            let names = p.dim_names();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let meta = rechunker_core::ArrayMeta::regular("part", &names, a.dtype, &shape, &tiles);
            TileDbArray::attribute(ctx.clone(), p.clone(), 0, meta)
        })
        .collect();
    let counts: Vec<u64> = shape
        .iter()
        .zip(&block)
        .map(|(&s, &b)| s.div_ceil(b))
        .collect();
    let mut packed = Vec::new();
    let mut slot_buf = Vec::new();
    for index in rechunker_core::region::indices(&counts) {
        let start: Vec<u64> = index.iter().zip(&block).map(|(&i, &b)| i * b).collect();
        let size: Vec<u64> = start
            .iter()
            .zip(&block)
            .zip(&shape)
            .map(|((&s, &b), &n)| b.min(n - s))
            .collect();
        let region = Region::new(start.clone(), size.clone());
        let cells = region.num_elements() as usize;
        slot_buf.clear();
        slot_buf.resize(cells * item * parts.len(), 0);
        for (i, reader) in readers.iter().enumerate() {
            let width = reader.meta().dtype.size();
            packed.clear();
            packed.resize(cells * width, 0);
            reader.read(&region, &mut packed)?;
            let slot = &mut slot_buf[i * cells * item..(i + 1) * cells * item];
            for (c, value) in packed.chunks_exact(width).enumerate() {
                slot[c * item..c * item + width].copy_from_slice(value);
            }
        }
        let mut s = vec![0];
        s.extend(start);
        let mut z = vec![n];
        z.extend(size);
        slots.write(&Region::new(s, z), &slot_buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_grow_from_the_last_dimension() {
        // Three tiles of 5 along `y` would pass the budget: two, then the rest.
        assert_eq!(block_shape(&[40, 12], &[8, 5], 4, 4 * 8 * 12), vec![8, 10]);
        assert_eq!(block_shape(&[40, 12], &[8, 5], 4, 1 << 20), vec![40, 12]);
        assert_eq!(block_shape(&[40, 12], &[8, 5], 4, 1), vec![8, 5]);
        assert_eq!(block_shape(&[40, 100], &[8, 5], 1, 8 * 20), vec![8, 20]);
    }
}
