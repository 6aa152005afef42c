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
    /// How the source format stored this array, in its own terms (see [`NativeEncoding`]):
    /// a target of the same format may write the array the same way. `None` for formats that
    /// do not fill it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<NativeEncoding>,
    /// Those of [`dims`](Self::dims) the source stores as unlimited (NetCDF: a dimension that
    /// can grow). A target whose format has unlimited dimensions keeps them; others ignore
    /// this. Part of the array's metadata, so it travels through plans and plan files (older
    /// plan files without it load as none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlimited_dims: Vec<String>,
}

/// An array's metadata as its own format stores it, carried opaquely from a source adapter to a
/// target adapter of the same format (through plan files too), so that a same-format rewrite
/// keeps what the user had: codecs and their settings, fill value, memory order, key layout,
/// attributes. The core never looks inside `document`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NativeEncoding {
    /// The format `document` belongs to, e.g. `"zarr"`.
    pub format: String,
    /// The format's own metadata of the array (for Zarr: its documents by store key).
    pub document: serde_json::Value,
    /// The array is the whole dataset, stored on its own rather than inside a group (a Zarr
    /// array at the root of its store); a target that can writes it the same way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lone: bool,
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
            encoding: None,
            unlimited_dims: Vec::new(),
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

    /// The path of the array's group, `""` for the root.
    pub fn group(&self) -> &str {
        self.name
            .trim_matches('/')
            .rsplit_once('/')
            .map_or("", |(g, _)| g)
    }

    /// The dimension names as the array's group writes them (Zarr `_ARRAY_DIMENSIONS`, NetCDF
    /// dimensions): a dimension qualified with its group ([`qualified_dim`]) takes its own name
    /// in that group and `NAME@GROUP` elsewhere (`dim@g2.g3`, `dim@root`; `/` is no letter of a
    /// NetCDF name), so that no group holds two dimensions of one name; others as they are.
    pub fn group_dims(&self) -> Vec<String> {
        let group = self.group();
        self.dims
            .iter()
            .map(|d| match qualified_dim(d) {
                Some((g, local)) if g == group => local.to_string(),
                Some(("", local)) => format!("{local}@root"),
                Some((g, local)) => format!("{local}@{}", g.replace('/', ".")),
                None => d.clone(),
            })
            .collect()
    }
}

/// A dimension name qualified with the path of the group that defines it, as `(group, name)`:
/// `/g2/dim` is `("g2", "dim")`, `/dim` (the root's) `("", "dim")`. Sources whose groups define
/// different dimensions of one name (NetCDF-4) name those so, to keep them apart; `None` for
/// other names.
pub fn qualified_dim(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix('/')?;
    let (group, local) = rest.rsplit_once('/').unwrap_or(("", rest));
    (!local.is_empty()).then_some((group, local))
}

/// The name a dimension has inside its group: `dim` for `/g2/dim`, the name itself otherwise.
pub fn dim_local_name(name: &str) -> &str {
    qualified_dim(name).map_or(name, |(_, local)| local)
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

    /// The dataset's only array when the dataset is that array on its own, stored without a
    /// group around it (see [`NativeEncoding::lone`]).
    pub fn lone_array(&self) -> Option<&ArrayMeta> {
        match self.arrays.as_slice() {
            [a] if a.encoding.as_ref().is_some_and(|e| e.lone) => Some(a),
            _ => None,
        }
    }

    /// The dimensions some array stores as unlimited (see [`ArrayMeta::unlimited_dims`]), in
    /// order of first appearance.
    pub fn unlimited_dims(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in self.arrays.iter().flat_map(|a| &a.unlimited_dims) {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
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

    #[test]
    fn native_encodings_round_trip_and_are_optional() {
        let mut m = ArrayMeta::regular("a", &["x"], DataType::Float32, &[4], &[2]);
        // Metadata written before encodings existed still loads.
        let old = serde_json::to_value(&m).unwrap();
        assert!(old.get("encoding").is_none());
        assert_eq!(serde_json::from_value::<ArrayMeta>(old).unwrap(), m);
        m.encoding = Some(NativeEncoding {
            format: "zarr".into(),
            document: serde_json::json!({".zarray": {"fill_value": null, "chunks": [2]}}),
            lone: true,
        });
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<ArrayMeta>(&json).unwrap(), m);
        let ds = DatasetMeta {
            arrays: vec![m.clone()],
            attrs: Attributes::default(),
        };
        assert_eq!(ds.lone_array(), Some(&m));
        let two = DatasetMeta {
            arrays: vec![m.clone(), m],
            attrs: Attributes::default(),
        };
        assert!(two.lone_array().is_none());
    }
}

#[cfg(test)]
mod unlimited_tests {
    use super::*;

    #[test]
    fn unlimited_dims_survive_json_and_older_json_has_none() {
        let mut a =
            ArrayMeta::regular("tas", &["time", "lat"], DataType::Float32, &[4, 3], &[1, 3]);
        a.unlimited_dims = vec!["time".into()];
        let text = serde_json::to_string(&a).unwrap();
        let back: ArrayMeta = serde_json::from_str(&text).unwrap();
        assert_eq!(back.unlimited_dims, ["time"]);
        let mut b = a.clone();
        b.name = "pr".into();
        let d = DatasetMeta {
            arrays: vec![a.clone(), b],
            attrs: Default::default(),
        };
        assert_eq!(d.unlimited_dims(), ["time"]);
        // What a plan file written before the field existed holds.
        let mut old: serde_json::Value = serde_json::to_value(&a).unwrap();
        old.as_object_mut().unwrap().remove("unlimited_dims");
        let back: ArrayMeta = serde_json::from_value(old).unwrap();
        assert!(back.unlimited_dims.is_empty());
        a.unlimited_dims.clear();
        assert!(!serde_json::to_string(&a).unwrap().contains("unlimited"));
    }
}
