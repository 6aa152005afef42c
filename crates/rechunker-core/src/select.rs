//! `--variables` / `--drop-variables`: a filtered view of a source dataset, so that every
//! adapter gets variable selection for free and the planner only ever sees what is copied.

use crate::array::{ChunkedArray, DatasetSource};
use crate::error::{Error, Result};
use crate::meta::DatasetMeta;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Which variables to copy: only `variables` (with their coordinates) when given, all
/// otherwise; then without `drop`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableSelection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

impl VariableSelection {
    /// True when nothing is selected away.
    pub fn is_all(&self) -> bool {
        self.variables.is_none() && self.drop.is_empty()
    }

    /// The names of `meta`'s arrays this selection keeps, in the dataset's order: the named
    /// variables, their coordinate variables (1-d, named after a dimension they use) and the
    /// variables their CF `coordinates` attribute names, then without the dropped ones.
    /// Unknown names are an error naming them and listing the dataset's variables.
    pub fn keep(&self, meta: &DatasetMeta, location: &str) -> Result<Vec<String>> {
        let unknown = |flag: &str, names: &[String]| -> Result<()> {
            let missing: Vec<String> = names
                .iter()
                .filter(|n| meta.array(n).is_none())
                .map(|n| format!("`{n}`"))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            let known: Vec<&str> = meta.arrays.iter().map(|a| a.name.as_str()).collect();
            Err(Error::Invalid(format!(
                "{flag} names {} {}, which {location} does not have; its variables are: {}",
                if missing.len() == 1 {
                    "variable"
                } else {
                    "variables"
                },
                missing.join(", "),
                if known.is_empty() {
                    "(none)".to_string()
                } else {
                    known.join(", ")
                }
            )))
        };
        if let Some(v) = &self.variables {
            unknown("--variables", v)?;
        }
        unknown("--drop-variables", &self.drop)?;
        let mut kept: Vec<&str> = match &self.variables {
            None => meta.arrays.iter().map(|a| a.name.as_str()).collect(),
            Some(v) => v.iter().map(String::as_str).collect(),
        };
        // Coordinates of what is kept, and theirs in turn.
        let mut i = 0;
        while i < kept.len() {
            let Some(array) = meta.array(kept[i]) else {
                i += 1;
                continue;
            };
            let cf = array
                .attrs
                .get("coordinates")
                .and_then(|c| c.value.as_str())
                .unwrap_or_default();
            let wanted = array
                .dims
                .iter()
                .map(String::as_str)
                .filter(|d| meta.array(d).is_some_and(|c| c.is_coordinate()))
                .chain(cf.split_whitespace().filter(|n| meta.array(n).is_some()));
            for name in wanted {
                if !kept.contains(&name) {
                    kept.push(meta.array(name).map_or(name, |a| a.name.as_str()));
                }
            }
            i += 1;
        }
        let names: Vec<String> = meta
            .arrays
            .iter()
            .filter(|a| kept.contains(&a.name.as_str()) && !self.drop.contains(&a.name))
            .map(|a| a.name.clone())
            .collect();
        if names.is_empty() {
            return Err(Error::Invalid(format!(
                "--variables/--drop-variables leave no variable of {location} to copy"
            )));
        }
        Ok(names)
    }

    /// `meta` with only the arrays this selection keeps (see [`VariableSelection::keep`]).
    pub fn apply(&self, meta: &DatasetMeta, location: &str) -> Result<DatasetMeta> {
        let names = self.keep(meta, location)?;
        Ok(DatasetMeta {
            arrays: meta
                .arrays
                .iter()
                .filter(|a| names.contains(&a.name))
                .cloned()
                .collect(),
            attrs: meta.attrs.clone(),
        })
    }
}

/// A source seen through a [`VariableSelection`]: its metadata holds only the selected arrays,
/// and only those can be opened.
pub struct SelectedSource {
    inner: Box<dyn DatasetSource>,
    meta: DatasetMeta,
}

impl SelectedSource {
    pub fn new(inner: Box<dyn DatasetSource>, selection: &VariableSelection) -> Result<Self> {
        let meta = selection.apply(inner.meta(), inner.location())?;
        Ok(SelectedSource { inner, meta })
    }
}

impl DatasetSource for SelectedSource {
    fn location(&self) -> &str {
        self.inner.location()
    }

    fn meta(&self) -> &DatasetMeta {
        &self.meta
    }

    fn open_array(&self, name: &str) -> Result<Arc<dyn ChunkedArray>> {
        if self.meta.array(name).is_none() {
            return Err(Error::Invalid(format!(
                "`{name}` is not among the variables selected from {}",
                self.inner.location()
            )));
        }
        self.inner.open_array(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{ArrayMeta, AttrValue};
    use crate::DataType;

    fn dataset() -> DatasetMeta {
        let a = |name: &str, dims: &[&str]| {
            let shape: Vec<u64> = dims.iter().map(|_| 4).collect();
            ArrayMeta::regular(name, dims, DataType::Float32, &shape, &shape)
        };
        let mut tas = a("tas", &["time", "y", "x"]);
        tas.attrs
            .insert("coordinates", AttrValue::json("lat lon missing".into()));
        DatasetMeta {
            arrays: vec![
                a("time", &["time"]),
                a("y", &["y"]),
                a("x", &["x"]),
                a("lat", &["y", "x"]),
                a("lon", &["y", "x"]),
                tas,
                a("pr", &["time", "y", "x"]),
                a("depth", &["z"]),
            ],
            attrs: Default::default(),
        }
    }

    fn sel(variables: Option<&[&str]>, drop: &[&str]) -> VariableSelection {
        VariableSelection {
            variables: variables.map(|v| v.iter().map(|s| s.to_string()).collect()),
            drop: drop.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn selections() {
        let ds = dataset();
        assert_eq!(
            sel(Some(&["tas"]), &[]).keep(&ds, "in").unwrap(),
            ["time", "y", "x", "lat", "lon", "tas"]
        );
        assert_eq!(
            sel(Some(&["pr"]), &["time"]).keep(&ds, "in").unwrap(),
            ["y", "x", "pr"]
        );
        assert_eq!(
            sel(None, &["tas", "depth"]).keep(&ds, "in").unwrap(),
            ["time", "y", "x", "lat", "lon", "pr"]
        );
        let e = sel(Some(&["tas", "huss"]), &[])
            .keep(&ds, "in.nc")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`huss`") && e.contains("in.nc") && e.contains("tas, pr"),
            "{e}"
        );
        let e = sel(None, &["nope"])
            .keep(&ds, "in")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--drop-variables names variable `nope`"),
            "{e}"
        );
        assert!(sel(Some(&["depth"]), &["depth"]).keep(&ds, "in").is_err());
    }
}
