//! Array and dataset metadata, shared by every format.

use crate::dtype::{DataType, Scalar};
use crate::grid::ChunkGrid;
use serde::{Deserialize, Serialize};

/// One attribute value. JSON carries the value; `dtype` keeps the element type for formats whose
/// attributes are typed (NetCDF `short` vs `int`, HDF5, TileDB), so they survive a round trip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttrValue {
    pub value: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<DataType>,
}

impl AttrValue {
    pub fn json(value: serde_json::Value) -> Self {
        AttrValue { value, dtype: None }
    }
}

/// Attributes in the order the source stored them (NetCDF users read `ncdump` in that order).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attributes(pub Vec<(String, AttrValue)>);

impl Attributes {
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Sets `name`, replacing an existing value in place.
    pub fn insert(&mut self, name: impl Into<String>, value: AttrValue) {
        let name = name.into();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Everything about one array except its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArrayMeta {
    /// Variable name (the array's path inside its group, without the leading `/`).
    pub name: String,
    /// One name per dimension; adapters invent `dim_0`, ... when the format has none.
    pub dims: Vec<String>,
    pub dtype: DataType,
    /// Chunk grid; its extent is the array's shape.
    pub grid: ChunkGrid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill_value: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attrs: Attributes,
    /// Human-readable description of the stored codecs, e.g. `["shuffle", "zlib(1)"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codecs: Vec<String>,
}

impl ArrayMeta {
    /// An array of `shape` in regular `chunks`, with no fill value, attributes or codecs; set
    /// those fields afterwards where they matter.
    pub fn regular(
        name: &str,
        dims: &[&str],
        dtype: DataType,
        shape: &[u64],
        chunks: &[u64],
    ) -> Self {
        ArrayMeta {
            name: name.into(),
            dims: dims.iter().map(|d| d.to_string()).collect(),
            dtype,
            grid: ChunkGrid::regular(shape, chunks),
            fill_value: None,
            attrs: Attributes::default(),
            codecs: Vec::new(),
        }
    }

    pub fn shape(&self) -> Vec<u64> {
        self.grid.shape()
    }

    pub fn ndim(&self) -> usize {
        self.grid.ndim()
    }

    pub fn item_size(&self) -> usize {
        self.dtype.size()
    }

    /// Uncompressed size of the whole array.
    pub fn num_bytes(&self) -> u64 {
        self.shape().iter().product::<u64>() * self.item_size() as u64
    }

    /// Bytes of the largest chunk, uncompressed.
    pub fn max_chunk_bytes(&self) -> u64 {
        self.grid.max_chunk_elements() * self.item_size() as u64
    }

    /// The fill value as one native-endian element (zeros when unset or unrepresentable).
    pub fn fill_bytes(&self) -> Vec<u8> {
        self.fill_value
            .and_then(|f| f.to_bytes(self.dtype))
            .unwrap_or_else(|| vec![0; self.item_size()])
    }

    /// True for a 1-d variable named after its dimension (a coordinate variable).
    pub fn is_coordinate(&self) -> bool {
        self.dims.len() == 1 && self.dims[0] == self.name
    }
}

/// A group of arrays sharing named dimensions, plus global attributes: a NetCDF file, a Zarr
/// group, an HDF5 file or a TileDB group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetMeta {
    pub arrays: Vec<ArrayMeta>,
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attrs: Attributes,
}

impl DatasetMeta {
    pub fn array(&self, name: &str) -> Option<&ArrayMeta> {
        self.arrays.iter().find(|a| a.name == name)
    }

    /// Dimension names with their lengths, in order of first appearance.
    pub fn dims(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = Vec::new();
        for a in &self.arrays {
            for (name, len) in a.dims.iter().zip(a.shape()) {
                if !out.iter().any(|(n, _)| n == name) {
                    out.push((name.clone(), len));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_keep_order_and_replace() {
        let mut a = Attributes::default();
        a.insert("units", AttrValue::json("K".into()));
        a.insert(
            "scale_factor",
            AttrValue {
                value: 0.1.into(),
                dtype: Some(DataType::Float32),
            },
        );
        a.insert("units", AttrValue::json("degC".into()));
        let names: Vec<_> = a.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["units", "scale_factor"]);
        assert_eq!(a.get("units").unwrap().value, "degC");
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Attributes>(&json).unwrap(), a);
    }
}
