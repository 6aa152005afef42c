//! Target chunk specifications as users write them: `time=8760,lat=24,lon=24` or `8760,24,24`,
//! per variable (`tas:time=-1,lat=24;pr:time=240;time=100`, or the JSON form
//! `{"tas": {"time": -1}, "pr": null, "*": {"time": 100}}`), or `auto` (see [`crate::autochunk`]).

use crate::autochunk::{self, AccessPattern, AutoChunks};
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

/// Target chunks by dimension name or by position, per variable, or chosen automatically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkSpec {
    /// Sizes by dimension name; dimensions not named keep their source chunks (so an empty list,
    /// written `keep`, leaves every chunk as it is).
    ByName(Vec<(String, ChunkSize)>),
    ByPosition(Vec<ChunkSize>),
    /// A spec per variable (never itself per variable), in the order given, and one for every
    /// variable not named (`ByName(vec![])`, keep, when none is given).
    PerVariable {
        variables: Vec<(String, ChunkSpec)>,
        default: Box<ChunkSpec>,
    },
    /// Shapes the planner picks near a target size for an access pattern.
    Auto(AutoChunks),
}

/// A spec that leaves every chunk as the source has it.
pub fn keep() -> ChunkSpec {
    ChunkSpec::ByName(Vec::new())
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

/// One variable's spec in text: `time=8760,lat=24`, `8760,24`, `keep` or `auto[(...)]`.
fn parse_simple(text: &str) -> std::result::Result<ChunkSpec, String> {
    let trimmed = text.trim();
    if trimmed == "keep" {
        return Ok(keep());
    }
    if let Some(rest) = trimmed.strip_prefix("auto") {
        return parse_auto(rest.trim(), trimmed).map(ChunkSpec::Auto);
    }
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if trimmed.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "`{text}` is not a chunk spec: write sizes by name (time=8760,lat=24,lon=24) or by position (8760,24,24), per variable (tas:time=-1;pr:time=240), or auto"
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

/// `` (defaults) or `(for=PATTERN,size=SIZE)`, either key optional.
fn parse_auto(rest: &str, whole: &str) -> std::result::Result<AutoChunks, String> {
    let mut auto = AutoChunks::default();
    if rest.is_empty() {
        return Ok(auto);
    }
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!("`{whole}` is not a chunk spec: write auto, or auto(for=time-series,size=8MiB)")
        })?;
    for item in inner.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("for", v)) => auto.pattern = v.parse()?,
            Some(("size", v)) => auto.target_bytes = autochunk::parse_target_size(v)?,
            _ => {
                return Err(format!(
                    "`{item}` in `{whole}`: auto takes for=time-series|maps|balanced and size=SIZE"
                ))
            }
        }
    }
    Ok(auto)
}

/// The per-variable text form: `;`-separated groups, each `VARIABLE:SPEC` or (at most one) a
/// `SPEC` or `*:SPEC` for every variable not named.
fn parse_groups(text: &str) -> std::result::Result<ChunkSpec, String> {
    let mut variables: Vec<(String, ChunkSpec)> = Vec::new();
    let mut default: Option<ChunkSpec> = None;
    for group in text.split(';').map(str::trim).filter(|g| !g.is_empty()) {
        let (name, spec) = match group.split_once(':') {
            Some((name, spec)) if !name.contains(['=', ',', '(']) => {
                let name = name.trim();
                if name.is_empty() {
                    return Err(format!(
                        "`{group}` in `{text}` has no variable name before `:`"
                    ));
                }
                (Some(name), spec)
            }
            _ => (None, group),
        };
        let spec = parse_simple(spec)?;
        match name {
            None | Some("*") => {
                if default.is_some() {
                    return Err(format!(
                        "`{text}` has two groups for the other variables; give at most one group without a `VARIABLE:` prefix"
                    ));
                }
                default = Some(spec);
            }
            Some(name) => {
                if variables.iter().any(|(n, _)| n == name) {
                    return Err(format!("variable `{name}` appears twice in `{text}`"));
                }
                variables.push((name.to_string(), spec));
            }
        }
    }
    if variables.is_empty() {
        return default.ok_or_else(|| format!("`{text}` is not a chunk spec: it names no chunks"));
    }
    Ok(ChunkSpec::PerVariable {
        variables,
        default: Box::new(default.unwrap_or_else(keep)),
    })
}

impl FromStr for ChunkSpec {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let t = text.trim();
        if t.starts_with('{') {
            return parse_json(t);
        }
        if t.contains([';', ':']) {
            return parse_groups(t);
        }
        parse_simple(text)
    }
}

/// A JSON value of the per-variable form, in the order written.
enum JsonSpec {
    Keep,
    Names(Vec<(String, i64)>),
    Positions(Vec<i64>),
    Text(String),
}

impl<'de> Deserialize<'de> for JsonSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of dimension sizes like {\"time\": -1, \"lat\": 24}, a list of sizes, null (keep the source chunks) or a spec string like \"auto\"")
            }
            fn visit_unit<E>(self) -> std::result::Result<JsonSpec, E> {
                Ok(JsonSpec::Keep)
            }
            fn visit_none<E>(self) -> std::result::Result<JsonSpec, E> {
                Ok(JsonSpec::Keep)
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<JsonSpec, E> {
                Ok(JsonSpec::Text(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<JsonSpec, A::Error> {
                let mut out = Vec::new();
                while let Some(n) = seq.next_element::<i64>()? {
                    out.push(n);
                }
                Ok(JsonSpec::Positions(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<JsonSpec, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, i64>()? {
                    out.push((k, v));
                }
                Ok(JsonSpec::Names(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The top level of the JSON form: variables (and `*`) in the order written.
struct JsonGroups(Vec<(String, JsonSpec)>);

impl<'de> Deserialize<'de> for JsonGroups {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonGroups;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "an object mapping each variable (or \"*\" for the others) to its chunks",
                )
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<JsonGroups, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, JsonSpec>()? {
                    out.push((k, v));
                }
                Ok(JsonGroups(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn json_size(n: i64, dim: &str, text: &str) -> std::result::Result<ChunkSize, String> {
    match n {
        -1 => Ok(ChunkSize::Whole),
        n if n >= 1 => Ok(ChunkSize::Elements(n as u64)),
        n => Err(format!(
            "chunk size {n} for `{dim}` in `{text}`: use a positive integer or -1 for the whole dimension"
        )),
    }
}

fn parse_json(text: &str) -> std::result::Result<ChunkSpec, String> {
    let groups: JsonGroups = serde_json::from_str(text).map_err(|e| {
        format!("the JSON chunk spec is not valid ({e}); write it like {{\"tas\": {{\"time\": -1, \"lat\": 24}}, \"pr\": null, \"*\": {{\"time\": 100}}}}")
    })?;
    let mut variables: Vec<(String, ChunkSpec)> = Vec::new();
    let mut default = None;
    for (name, value) in groups.0 {
        let spec = match value {
            JsonSpec::Keep => keep(),
            JsonSpec::Names(named) => {
                if named.is_empty() {
                    keep()
                } else {
                    let mut out: Vec<(String, ChunkSize)> = Vec::new();
                    for (dim, n) in named {
                        if out.iter().any(|(d, _)| *d == dim) {
                            return Err(format!("dimension `{dim}` appears twice for `{name}` in the JSON chunk spec"));
                        }
                        let size = json_size(n, &dim, &name)?;
                        out.push((dim, size));
                    }
                    ChunkSpec::ByName(out)
                }
            }
            JsonSpec::Positions(sizes) if sizes.is_empty() => {
                return Err(format!(
                    "`{name}` has an empty list of chunk sizes in the JSON chunk spec"
                ))
            }
            JsonSpec::Positions(sizes) => ChunkSpec::ByPosition(
                sizes
                    .iter()
                    .map(|&n| json_size(n, "a dimension", &name))
                    .collect::<std::result::Result<_, _>>()?,
            ),
            JsonSpec::Text(t) => parse_simple(&t)?,
        };
        if name == "*" {
            if default.is_some() {
                return Err("\"*\" appears twice in the JSON chunk spec".into());
            }
            default = Some(spec);
        } else {
            if variables.iter().any(|(n, _)| *n == name) {
                return Err(format!(
                    "variable `{name}` appears twice in the JSON chunk spec"
                ));
            }
            variables.push((name, spec));
        }
    }
    if variables.is_empty() {
        return default.ok_or_else(|| "the JSON chunk spec names no variable".to_string());
    }
    Ok(ChunkSpec::PerVariable {
        variables,
        default: Box::new(default.unwrap_or_else(keep)),
    })
}

fn size_text(s: &ChunkSize) -> String {
    match s {
        ChunkSize::Elements(n) => n.to_string(),
        ChunkSize::Whole => "-1".into(),
    }
}

impl ChunkSpec {
    /// The text of a spec that is not per variable.
    fn simple_text(&self) -> String {
        match self {
            ChunkSpec::ByName(v) if v.is_empty() => "keep".into(),
            ChunkSpec::ByName(v) => v
                .iter()
                .map(|(n, s)| format!("{n}={}", size_text(s)))
                .collect::<Vec<_>>()
                .join(","),
            ChunkSpec::ByPosition(v) => v.iter().map(size_text).collect::<Vec<_>>().join(","),
            ChunkSpec::Auto(a) => a.to_string(),
            ChunkSpec::PerVariable { .. } => self.json_text(),
        }
    }

    /// The JSON form of a spec (per variable: an object; otherwise its value in one).
    fn json_value_text(&self) -> String {
        let key = |k: &str| serde_json::Value::from(k).to_string();
        match self {
            ChunkSpec::ByName(v) if v.is_empty() => "null".into(),
            ChunkSpec::ByName(v) => format!(
                "{{{}}}",
                v.iter()
                    .map(|(n, s)| format!(
                        "{}: {}",
                        key(n),
                        match s {
                            ChunkSize::Elements(n) => n.to_string(),
                            ChunkSize::Whole => "-1".into(),
                        }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ChunkSpec::ByPosition(v) => format!(
                "[{}]",
                v.iter().map(size_text).collect::<Vec<_>>().join(", ")
            ),
            ChunkSpec::Auto(a) => key(&a.to_string()),
            ChunkSpec::PerVariable { .. } => self.json_text(),
        }
    }

    fn json_text(&self) -> String {
        let ChunkSpec::PerVariable { variables, default } = self else {
            return self.json_value_text();
        };
        let key = |k: &str| serde_json::Value::from(k).to_string();
        let mut parts: Vec<String> = variables
            .iter()
            .map(|(n, s)| format!("{}: {}", key(n), s.json_value_text()))
            .collect();
        if **default != keep() {
            parts.push(format!("\"*\": {}", default.json_value_text()));
        }
        format!("{{{}}}", parts.join(", "))
    }

    /// True when this spec names variables one by one.
    pub fn is_per_variable(&self) -> bool {
        matches!(self, ChunkSpec::PerVariable { .. })
    }

    /// The spec that applies to the variable `name`.
    pub fn for_variable(&self, name: &str) -> &ChunkSpec {
        match self {
            ChunkSpec::PerVariable { variables, default } => variables
                .iter()
                .find(|(n, _)| n == name)
                .map_or(&**default, |(_, s)| s),
            other => other,
        }
    }

    /// True when the spec names the variable `name` itself (per variable).
    pub fn names_variable(&self, name: &str) -> bool {
        matches!(self, ChunkSpec::PerVariable { variables, .. } if variables.iter().any(|(n, _)| n == name))
    }

    /// True when `auto` appears anywhere in the spec.
    pub fn has_auto(&self) -> bool {
        match self {
            ChunkSpec::Auto(_) => true,
            ChunkSpec::PerVariable { variables, default } => {
                default.has_auto() || variables.iter().any(|(_, s)| s.has_auto())
            }
            _ => false,
        }
    }

    /// Sets the target size and access pattern of every `auto` in the spec, where given.
    pub fn with_auto(mut self, target_bytes: Option<u64>, pattern: Option<AccessPattern>) -> Self {
        match &mut self {
            ChunkSpec::Auto(a) => {
                if let Some(b) = target_bytes {
                    a.target_bytes = b;
                }
                if let Some(p) = pattern {
                    a.pattern = p;
                }
            }
            ChunkSpec::PerVariable { variables, default } => {
                for (_, s) in variables.iter_mut() {
                    *s = std::mem::replace(s, keep()).with_auto(target_bytes, pattern);
                }
                **default =
                    std::mem::replace(&mut **default, keep()).with_auto(target_bytes, pattern);
            }
            _ => {}
        }
        self
    }
}

impl fmt::Display for ChunkSpec {
    /// The text form, which parses back to the same spec; per-variable specs whose names the
    /// text form cannot carry (`:`, `;`, `,`, `=` ...) are written in the JSON form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ChunkSpec::PerVariable { variables, default } = self else {
            let text = self.simple_text();
            if text.parse::<ChunkSpec>().as_ref() == Ok(self) {
                return f.write_str(&text);
            }
            return write!(f, "{{\"*\": {}}}", self.json_value_text());
        };
        let mut groups: Vec<String> = variables
            .iter()
            .map(|(n, s)| format!("{n}:{}", s.simple_text()))
            .collect();
        if **default != keep() {
            groups.push(default.simple_text());
        }
        let text = groups.join(";");
        if text.parse::<ChunkSpec>().as_ref() == Ok(self) {
            f.write_str(&text)
        } else {
            f.write_str(&self.json_text())
        }
    }
}

impl ChunkSpec {
    /// Checks the spec against a whole dataset and turns it into names: every named dimension
    /// and variable must exist; positional sizes apply to the arrays with that many dimensions
    /// (which must share their dimension names), and through the names to coordinates and other
    /// arrays. Per variable, each variable's spec is checked against that variable and the
    /// spec for the others against the variables not named.
    pub fn for_dataset(&self, dataset: &DatasetMeta, location: &str) -> Result<ChunkSpec> {
        match self {
            ChunkSpec::Auto(_) => Ok(self.clone()),
            ChunkSpec::ByName(_) | ChunkSpec::ByPosition(_) => {
                self.simple_for_dataset(dataset, location)
            }
            ChunkSpec::PerVariable { variables, default } => {
                let mut checked = Vec::new();
                for (name, spec) in variables {
                    let Some(array) = dataset.array(name) else {
                        let known: Vec<&str> =
                            dataset.arrays.iter().map(|a| a.name.as_str()).collect();
                        return Err(Error::Invalid(format!(
                            "--chunks names variable `{name}`, which {location} does not have; its variables are: {}",
                            if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
                        )));
                    };
                    let one = DatasetMeta {
                        arrays: vec![array.clone()],
                        attrs: Default::default(),
                    };
                    let spec = match spec {
                        ChunkSpec::PerVariable { .. } => {
                            return Err(Error::Invalid(format!(
                            "--chunks gives `{name}` a per-variable spec; give it dimension sizes"
                        )))
                        }
                        ChunkSpec::Auto(_) => spec.clone(),
                        _ => spec.simple_for_dataset(&one, &format!("`{name}` in {location}"))?,
                    };
                    checked.push((name.clone(), spec));
                }
                let others = DatasetMeta {
                    arrays: dataset
                        .arrays
                        .iter()
                        .filter(|a| !self.names_variable(&a.name))
                        .cloned()
                        .collect(),
                    attrs: Default::default(),
                };
                let default = match &**default {
                    d if others.arrays.is_empty() || *d == keep() => d.clone(),
                    d @ ChunkSpec::Auto(_) => d.clone(),
                    ChunkSpec::PerVariable { .. } => {
                        return Err(Error::Invalid(
                            "--chunks: the spec for the other variables is itself per variable"
                                .into(),
                        ))
                    }
                    d => d.simple_for_dataset(
                        &others,
                        &format!("the other variables of {location}"),
                    )?,
                };
                Ok(ChunkSpec::PerVariable {
                    variables: checked,
                    default: Box::new(default),
                })
            }
        }
    }

    fn simple_for_dataset(&self, dataset: &DatasetMeta, location: &str) -> Result<ChunkSpec> {
        let dims = dataset.dims();
        match self {
            ChunkSpec::ByName(named) => {
                for (name, _) in named {
                    if !dims.iter().any(|(d, _)| addresses(name, d).is_some()) {
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
            _ => Ok(self.clone()),
        }
    }

    /// Target chunk shape for `array`. Dimensions the spec does not name keep their source chunk
    /// length; sizes beyond a dimension's length are clamped to it. `auto` takes the array's
    /// first dimension (or one named `time`/`t`) as its time dimension; see [`Self::choose`].
    pub fn resolve(&self, array: &ArrayMeta, location: &str) -> Result<Vec<u64>> {
        self.choose(array, &[], location).map(|(chunks, _)| chunks)
    }

    /// Target chunk shape for `array`, and for `auto` one line on why: `time_dims` are the
    /// dataset's time-like dimensions ([`autochunk::time_dims`]).
    pub fn choose(
        &self,
        array: &ArrayMeta,
        time_dims: &[String],
        location: &str,
    ) -> Result<(Vec<u64>, Option<String>)> {
        match self.for_variable(&array.name) {
            ChunkSpec::Auto(auto) => {
                let time = autochunk::time_dimension(&array.dims, time_dims);
                let c = autochunk::choose(
                    &array.shape(),
                    &array.dims,
                    array.item_size() as u64,
                    time,
                    auto,
                );
                Ok((c.chunks, Some(c.why)))
            }
            ChunkSpec::PerVariable { .. } => Err(Error::Invalid(format!(
                "--chunks gives `{}` a per-variable spec; give it dimension sizes",
                array.name
            ))),
            spec => spec.resolve_sizes(array, location).map(|c| (c, None)),
        }
    }

    fn resolve_sizes(&self, array: &ArrayMeta, location: &str) -> Result<Vec<u64>> {
        let shape = array.shape();
        let source = array.grid.nominal_chunk_shape();
        let sizes: Vec<Option<ChunkSize>> = match self {
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
            // A name that addresses one dimension beats a local name that addresses many.
            ChunkSpec::ByName(named) => array
                .dims
                .iter()
                .map(|d| {
                    named
                        .iter()
                        .filter_map(|(n, s)| addresses(n, d).map(|exact| (exact, *s)))
                        .max_by_key(|(exact, _)| *exact)
                        .map(|(_, s)| s)
                })
                .collect(),
            _ => vec![None; shape.len()],
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

/// Whether the `--chunks` name `name` addresses the dimension `dim`: `Some(true)` for that
/// dimension alone (the same name; or a qualified dimension by its path, with or without the
/// leading `/`: `/g2/dim`, `g2/dim`), `Some(false)` as one of many (a local name, `dim`, addresses
/// every qualified dimension of that name, see [`crate::meta::qualified_dim`]).
fn addresses(name: &str, dim: &str) -> Option<bool> {
    if name == dim || (name.contains('/') && dim.strip_prefix('/') == Some(name)) {
        Some(true)
    } else if !name.contains('/') && crate::meta::dim_local_name(dim) == name {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataType;

    #[test]
    fn qualified_dimensions_by_local_name_or_path() {
        let var2 = ArrayMeta::regular(
            "g2/g3/var2",
            &["/dim", "/g2/dim", "/g2/g3/dim"],
            DataType::Float32,
            &[4, 2, 3],
            &[4, 2, 3],
        );
        let root = ArrayMeta::regular("var", &["/dim"], DataType::Float32, &[4], &[4]);
        let ds = DatasetMeta {
            arrays: vec![root.clone(), var2.clone()],
            attrs: Default::default(),
        };
        assert_eq!(var2.group_dims(), ["dim@root", "dim@g2", "dim"]);
        assert_eq!(root.group_dims(), ["dim"]);
        let all: ChunkSpec = "dim=1".parse().unwrap();
        assert_eq!(all.for_dataset(&ds, "x").unwrap(), all);
        assert_eq!(all.resolve(&var2, "x").unwrap(), vec![1, 1, 1]);
        for one in [
            "g2/dim=1",
            "/g2/dim=1",
            "dim=2,/g2/dim=1",
            "/g2/dim=1,dim=2",
        ] {
            let s: ChunkSpec = one.parse().unwrap();
            s.for_dataset(&ds, "x").unwrap();
            let rest = if one.contains("dim=2") { 2 } else { 4 };
            assert_eq!(
                s.resolve(&var2, "x").unwrap(),
                vec![rest, 1, rest.min(3)],
                "{one}"
            );
            assert_eq!(s.to_string().parse::<ChunkSpec>().unwrap(), s);
        }
        let s: ChunkSpec = "/dim=2".parse().unwrap();
        assert_eq!(s.resolve(&var2, "x").unwrap(), vec![2, 2, 3]);
        assert_eq!(s.resolve(&root, "x").unwrap(), vec![2]);
        let e = "g1/dim=1"
            .parse::<ChunkSpec>()
            .unwrap()
            .for_dataset(&ds, "x");
        assert!(e.unwrap_err().to_string().contains("/g2/dim"));
    }

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
        for bad in [
            "",
            "time=",
            "a=1,2",
            "time=0",
            "x",
            "1,,2",
            "t=1,t=2",
            "tas:",
            "tas:x=1;tas:y=2",
            "x=1;y=2",
            ":x=1",
            "auto(for=sideways)",
            "auto(size=0)",
            "auto(x=1)",
            "autox",
            "{",
            "{\"tas\": 3}",
            "{\"tas\": {\"time\": 0}}",
            "{}",
            "[1]",
        ] {
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
        let v: ChunkSpec = "pr:time=10".parse().unwrap();
        let e = v.for_dataset(&ds, "in.nc").unwrap_err().to_string();
        assert!(e.contains("`pr`") && e.contains("time, tas"), "{e}");
        let v: ChunkSpec = "tas:depth=10".parse().unwrap();
        let e = v.for_dataset(&ds, "in.nc").unwrap_err().to_string();
        assert!(e.contains("`depth`") && e.contains("`tas`"), "{e}");
    }

    #[test]
    fn per_variable_text_and_json() {
        let s: ChunkSpec = "tas:time=-1,lat=24; pr:time=240; lon=10".parse().unwrap();
        let ChunkSpec::PerVariable { variables, default } = &s else {
            panic!("{s:?}")
        };
        assert_eq!(variables.len(), 2);
        assert_eq!(**default, "lon=10".parse().unwrap());
        assert_eq!(s.to_string(), "tas:time=-1,lat=24;pr:time=240;lon=10");
        assert_eq!(s.resolve(&tas(), "x").unwrap(), vec![100, 24, 1440]);
        let mut other = tas();
        other.name = "uas".into();
        assert_eq!(s.resolve(&other, "x").unwrap(), vec![1, 721, 10]);
        let j: ChunkSpec =
            r#"{"tas": {"time": -1, "lat": 24}, "pr": {"time": 240}, "*": "lon=10"}"#
                .parse()
                .unwrap();
        assert_eq!(j, s);
        let k: ChunkSpec = r#"{"tas": null, "*": {"time": 100}}"#.parse().unwrap();
        assert_eq!(k.to_string(), "tas:keep;time=100");
        assert_eq!(k.resolve(&tas(), "x").unwrap(), vec![1, 721, 1440]);
        // Names the text form cannot carry are written as JSON.
        let odd: ChunkSpec = r#"{"a:b;c": [1, -1], "d=e": {"x,y": 3}}"#.parse().unwrap();
        assert!(odd.to_string().starts_with('{'), "{odd}");
        assert_eq!(odd.to_string().parse::<ChunkSpec>().unwrap(), odd);
        let auto: ChunkSpec = "tas:auto(for=maps,size=16MiB);auto".parse().unwrap();
        assert_eq!(
            auto.to_string(),
            "tas:auto(for=maps,size=16MiB);auto(for=balanced,size=8MiB)"
        );
        let set = auto.with_auto(Some(1000), Some(AccessPattern::TimeSeries));
        assert_eq!(
            set.to_string(),
            "tas:auto(for=time-series,size=1000);auto(for=time-series,size=1000)"
        );
        assert_eq!("keep".parse::<ChunkSpec>().unwrap(), keep());
        assert_eq!(keep().to_string(), "keep");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn size() -> impl Strategy<Value = ChunkSize> {
            prop_oneof![
                Just(ChunkSize::Whole),
                (1u64..100_000).prop_map(ChunkSize::Elements)
            ]
        }

        fn simple(names: &'static str) -> impl Strategy<Value = ChunkSpec> {
            prop_oneof![
                prop::collection::btree_map(names, size(), 0..4)
                    .prop_map(|m| ChunkSpec::ByName(m.into_iter().collect())),
                prop::collection::vec(size(), 1..4).prop_map(ChunkSpec::ByPosition),
                (
                    prop_oneof![
                        Just(AccessPattern::TimeSeries),
                        Just(AccessPattern::Maps),
                        Just(AccessPattern::Balanced)
                    ],
                    1u64..(1 << 40)
                )
                    .prop_map(|(pattern, target_bytes)| ChunkSpec::Auto(
                        AutoChunks {
                            target_bytes,
                            pattern
                        }
                    )),
            ]
        }

        fn spec() -> impl Strategy<Value = ChunkSpec> {
            // Names with the characters the text form uses, so the JSON form is exercised too.
            prop_oneof![
                simple("[a-z]{1,4}"),
                (
                    prop::collection::btree_map("[a-z:;,=* ]{1,4}", simple("[a-z=,]{1,3}"), 1..4),
                    simple("[a-z]{1,3}")
                )
                    .prop_map(|(vars, default)| ChunkSpec::PerVariable {
                        variables: vars.into_iter().filter(|(n, _)| n != "*").collect(),
                        default: Box::new(default),
                    })
                    .prop_filter("some variable", |s| matches!(s, ChunkSpec::PerVariable { variables, .. } if !variables.is_empty())),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]
            #[test]
            fn display_round_trips(s in spec()) {
                let text = s.to_string();
                let back: ChunkSpec = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                prop_assert_eq!(back, s, "{}", text);
            }
        }
    }
}
