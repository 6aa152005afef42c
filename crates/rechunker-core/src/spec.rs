//! Target chunk specifications as users write them: `time=8760,lat=24,lon=24` or `8760,24,24`.

use crate::error::{Error, Result};
use crate::meta::{ArrayMeta, DatasetMeta};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The size of a target chunk along one dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkSize {
    Elements(u64),
    /// `-1`: the whole dimension in one chunk.
    Whole,
}

/// Target chunks by dimension name or by position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkSpec {
    ByName(Vec<(String, ChunkSize)>),
    ByPosition(Vec<ChunkSize>),
}

fn parse_size(text: &str, whole: &str) -> std::result::Result<ChunkSize, String> {
    match text.trim() {
        "-1" => Ok(ChunkSize::Whole),
        t => match t.parse::<u64>() {
            Ok(0) => Err(format!("chunk size 0 in `{whole}`: chunks need at least 1 element (-1 means the whole dimension)")),
            Ok(n) => Ok(ChunkSize::Elements(n)),
            Err(_) => Err(format!(
                "`{t}` in `{whole}` is not a chunk size: use a positive integer or -1 for the whole dimension"
            )),
        },
    }
}

impl FromStr for ChunkSpec {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if text.trim().is_empty() || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "`{text}` is not a chunk spec: write sizes by name (time=8760,lat=24,lon=24) or by position (8760,24,24)"
            ));
        }
        if parts.iter().all(|p| p.contains('=')) {
            let mut named = Vec::new();
            for p in parts {
                let (name, size) = p.split_once('=').unwrap_or((p, ""));
                let name = name.trim();
                if name.is_empty() {
                    return Err(format!(
                        "`{p}` in `{text}` has no dimension name before `=`"
                    ));
                }
                if named.iter().any(|(n, _): &(String, ChunkSize)| n == name) {
                    return Err(format!("dimension `{name}` appears twice in `{text}`"));
                }
                named.push((name.to_string(), parse_size(size, text)?));
            }
            Ok(ChunkSpec::ByName(named))
        } else if parts.iter().any(|p| p.contains('=')) {
            Err(format!(
                "`{text}` mixes names and positions: write either time=8760,lat=24 or 8760,24"
            ))
        } else {
            parts
                .iter()
                .map(|p| parse_size(p, text))
                .collect::<std::result::Result<_, _>>()
                .map(ChunkSpec::ByPosition)
        }
    }
}

impl fmt::Display for ChunkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = |s: &ChunkSize| match s {
            ChunkSize::Elements(n) => n.to_string(),
            ChunkSize::Whole => "-1".into(),
        };
        let parts: Vec<String> = match self {
            ChunkSpec::ByName(v) => v.iter().map(|(n, s)| format!("{n}={}", size(s))).collect(),
            ChunkSpec::ByPosition(v) => v.iter().map(size).collect(),
        };
        f.write_str(&parts.join(","))
    }
}

impl ChunkSpec {
    /// Checks the spec against a whole dataset and turns it into names: every named dimension
    /// must exist; positional sizes apply to the arrays with that many dimensions (which must
    /// share their dimension names), and through the names to coordinates and other arrays.
    pub fn for_dataset(&self, dataset: &DatasetMeta, location: &str) -> Result<ChunkSpec> {
        let dims = dataset.dims();
        match self {
            ChunkSpec::ByName(named) => {
                for (name, _) in named {
                    if !dims.iter().any(|(d, _)| d == name) {
                        let known: Vec<&str> = dims.iter().map(|(d, _)| d.as_str()).collect();
                        return Err(Error::Invalid(format!(
                            "--chunks names dimension `{name}`, which {location} does not have; its dimensions are: {}",
                            if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
                        )));
                    }
                }
                Ok(self.clone())
            }
            ChunkSpec::ByPosition(sizes) => {
                let matching: Vec<&ArrayMeta> = dataset
                    .arrays
                    .iter()
                    .filter(|a| a.ndim() == sizes.len())
                    .collect();
                let Some(first) = matching.first() else {
                    let widest = dataset.arrays.iter().max_by_key(|a| a.ndim());
                    return match widest {
                        Some(array) => self.resolve(array, location).map(|_| self.clone()),
                        None => Err(Error::Invalid(format!(
                            "{location} has no arrays to rechunk"
                        ))),
                    };
                };
                if let Some(other) = matching.iter().find(|a| a.dims != first.dims) {
                    return Err(Error::Invalid(format!(
                        "--chunks {self} is ambiguous in {location}: `{}` has dimensions ({}) but `{}` has ({}); name the dimensions, like {}",
                        first.name,
                        first.dims.join(", "),
                        other.name,
                        other.dims.join(", "),
                        first.dims.iter().zip(sizes).map(|(d, s)| ChunkSpec::ByName(vec![(d.clone(), *s)]).to_string()).collect::<Vec<_>>().join(",")
                    )));
                }
                Ok(ChunkSpec::ByName(
                    first
                        .dims
                        .iter()
                        .cloned()
                        .zip(sizes.iter().copied())
                        .collect(),
                ))
            }
        }
    }

    /// Target chunk shape for `array`. Dimensions the spec does not name keep their source chunk
    /// length; sizes beyond a dimension's length are clamped to it.
    pub fn resolve(&self, array: &ArrayMeta, location: &str) -> Result<Vec<u64>> {
        let shape = array.shape();
        let source = array.grid.nominal_chunk_shape();
        let sizes: Vec<Option<ChunkSize>> = match self {
            ChunkSpec::ByName(named) => array
                .dims
                .iter()
                .map(|d| named.iter().find(|(n, _)| n == d).map(|(_, s)| *s))
                .collect(),
            ChunkSpec::ByPosition(sizes) => {
                if sizes.len() != shape.len() {
                    return Err(Error::Invalid(format!(
                        "--chunks {self} gives {} sizes but `{}` in {location} has {} dimensions ({}); give {} sizes or name them, like {}",
                        sizes.len(),
                        array.name,
                        shape.len(),
                        array.dims.join(", "),
                        shape.len(),
                        array.dims.iter().zip(&shape).map(|(d, n)| format!("{d}={n}")).collect::<Vec<_>>().join(",")
                    )));
                }
                sizes.iter().copied().map(Some).collect()
            }
        };
        Ok(sizes
            .iter()
            .enumerate()
            .map(|(d, s)| {
                let want = match s {
                    Some(ChunkSize::Elements(n)) => *n,
                    Some(ChunkSize::Whole) => shape[d],
                    None => source[d],
                };
                want.min(shape[d]).max(1)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataType;

    fn tas() -> ArrayMeta {
        ArrayMeta::regular(
            "tas",
            &["time", "lat", "lon"],
            DataType::Float32,
            &[100, 721, 1440],
            &[1, 721, 1440],
        )
    }

    #[test]
    fn parse_and_resolve() {
        let s: ChunkSpec = "time=-1, lon=24".parse().unwrap();
        assert_eq!(s.resolve(&tas(), "x").unwrap(), vec![100, 721, 24]);
        let p: ChunkSpec = "50,24,5000".parse().unwrap();
        assert_eq!(p.resolve(&tas(), "x").unwrap(), vec![50, 24, 1440]);
        assert_eq!(p.to_string(), "50,24,5000");
    }

    #[test]
    fn bad_specs_explain_themselves() {
        for bad in ["", "time=", "a=1,2", "time=0", "x", "1,,2", "t=1,t=2"] {
            assert!(bad.parse::<ChunkSpec>().is_err(), "{bad}");
        }
        let p: ChunkSpec = "8760,24".parse().unwrap();
        let e = p.resolve(&tas(), "in.nc").unwrap_err().to_string();
        assert!(e.contains("3 dimensions") && e.contains("time=100"), "{e}");
        let mut time = tas();
        time.name = "time".into();
        time.dims.truncate(1);
        time.grid.dims.truncate(1);
        let ds = DatasetMeta {
            arrays: vec![time, tas()],
            attrs: Default::default(),
        };
        let e = p.for_dataset(&ds, "in.nc").unwrap_err().to_string();
        assert!(e.contains("3 dimensions"), "{e}");
        let positional: ChunkSpec = "10,24,24".parse().unwrap();
        assert_eq!(
            positional.for_dataset(&ds, "in.nc").unwrap().to_string(),
            "time=10,lat=24,lon=24"
        );
        let n: ChunkSpec = "depth=3".parse().unwrap();
        let e = n.for_dataset(&ds, "in.nc").unwrap_err().to_string();
        assert!(e.contains("`depth`") && e.contains("time, lat, lon"), "{e}");
    }
}
