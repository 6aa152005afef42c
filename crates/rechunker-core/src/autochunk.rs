//! `--chunks auto`: chunk shapes near a target size that suit how the data will be read.
//!
//! - time-series: the time dimension whole (or as long as the target allows), the others
//!   square-ish, so that a point's whole series is in one chunk;
//! - maps: 1 along time, the others whole (or large blocks keeping the map's aspect), so that a
//!   time step's map is one chunk (or a few);
//! - balanced: about the same number of chunks along every dimension (like dask's `auto`).
//!
//! A chunk never exceeds its dimension; lengths are evened out (`ceil(n / ceil(n / c))`) so the
//! last chunk is not a sliver, then nudged one step at a time towards the target size.

use crate::meta::DatasetMeta;
use crate::units::{format_bytes, parse_size};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The default `--target-chunk-size`.
pub const DEFAULT_TARGET_BYTES: u64 = 8 << 20;

/// How the rechunked data will be read (`--for`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessPattern {
    TimeSeries,
    Maps,
    #[default]
    Balanced,
}

impl FromStr for AccessPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "time-series" | "timeseries" | "time_series" => Ok(AccessPattern::TimeSeries),
            "maps" | "map" => Ok(AccessPattern::Maps),
            "balanced" => Ok(AccessPattern::Balanced),
            other => Err(format!(
                "`{other}` is not an access pattern: use time-series, maps or balanced"
            )),
        }
    }
}

impl fmt::Display for AccessPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccessPattern::TimeSeries => "time-series",
            AccessPattern::Maps => "maps",
            AccessPattern::Balanced => "balanced",
        })
    }
}

/// `auto`: a target chunk size and an access pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoChunks {
    pub target_bytes: u64,
    pub pattern: AccessPattern,
}

impl Default for AutoChunks {
    fn default() -> Self {
        AutoChunks {
            target_bytes: DEFAULT_TARGET_BYTES,
            pattern: AccessPattern::default(),
        }
    }
}

/// A target size as `--target-chunk-size` takes it: more than 0 bytes.
pub fn parse_target_size(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        0 => Err(format!(
            "target chunk size `{text}` is 0; give a size like 8MiB"
        )),
        n => Ok(n),
    }
}

/// A size written exactly, in the largest binary unit that divides it.
fn exact_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

impl fmt::Display for AutoChunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "auto(for={},size={})",
            self.pattern,
            exact_size(self.target_bytes)
        )
    }
}

fn is_time_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("time") || name.eq_ignore_ascii_case("t")
}

/// The dataset's time-like dimensions: named `time` or `t`, unlimited (in the arrays' metadata,
/// or among `unlimited`), or whose coordinate variable says so in CF terms (`axis: T`,
/// `standard_name: time`).
pub fn time_dims(dataset: &DatasetMeta, unlimited: &[String]) -> Vec<String> {
    let mut unlimited = unlimited.to_vec();
    unlimited.extend(dataset.unlimited_dims());
    let attr = |name: &str, key: &str| {
        dataset
            .array(name)
            .filter(|a| a.is_coordinate())
            .and_then(|a| a.attrs.get(key))
            .and_then(|v| v.value.as_str().map(str::to_string))
    };
    dataset
        .dims()
        .into_iter()
        .map(|(d, _)| d)
        .filter(|d| {
            is_time_name(d)
                || unlimited.contains(d)
                || attr(d, "axis").is_some_and(|a| a.eq_ignore_ascii_case("T"))
                || attr(d, "standard_name").is_some_and(|s| s == "time")
        })
        .collect()
}

/// Which of `dims` is time: one of the dataset's `time_dims` (or named `time`/`t`); when the
/// dataset has no time-like dimension at all, the first of two or more dimensions.
pub fn time_dimension(dims: &[String], time_dims: &[String]) -> Option<usize> {
    if let Some(i) = dims
        .iter()
        .position(|d| time_dims.contains(d) || is_time_name(d))
    {
        return Some(i);
    }
    (time_dims.is_empty() && dims.len() >= 2).then_some(0)
}

/// The chunk shape `auto` picked, and one line on why.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub chunks: Vec<u64>,
    pub why: String,
}

/// `c` evened out over a dimension of `s`: the same number of chunks, as equal as can be.
fn even(s: u64, c: u64) -> u64 {
    let c = c.clamp(1, s.max(1));
    s.max(1).div_ceil(s.max(1).div_ceil(c))
}

/// The next longer even chunk length than `c` along `s` (one chunk fewer).
fn longer(s: u64, c: u64) -> Option<u64> {
    let n = s.div_ceil(c);
    (n > 1).then(|| s.div_ceil(n - 1))
}

/// The next shorter even chunk length than `c` along `s`.
fn shorter(s: u64, c: u64) -> Option<u64> {
    (c > 1).then(|| s.div_ceil(s.div_ceil(c - 1)))
}

/// Chunk lengths along the dimensions `free` of `shape` whose product is near `budget`
/// elements, each proportional to its weight (`weight(d)`) where the dimension allows: the
/// lengths are `clamp(w * lambda, 1, s)` for the `lambda` that meets the budget.
fn fill(shape: &[u64], free: &[usize], weight: impl Fn(usize) -> f64, budget: f64) -> Vec<u64> {
    let s = |d: usize| shape[d].max(1) as f64;
    let capacity: f64 = free.iter().map(|&d| s(d)).product();
    if capacity <= budget {
        return free.iter().map(|&d| shape[d].max(1)).collect();
    }
    if budget <= 1.0 {
        return vec![1; free.len()];
    }
    let log_product = |l: f64| -> f64 {
        free.iter()
            .map(|&d| (weight(d).ln() + l).clamp(0.0, s(d).ln()))
            .sum()
    };
    let target = budget.ln();
    let mut lo = free
        .iter()
        .map(|&d| -weight(d).ln())
        .fold(f64::INFINITY, f64::min);
    let mut hi = free
        .iter()
        .map(|&d| s(d).ln() - weight(d).ln())
        .fold(f64::NEG_INFINITY, f64::max);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if log_product(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let mut chunks: Vec<u64> = free
        .iter()
        .map(|&d| {
            let c = (weight(d).ln() + lo).exp().clamp(1.0, s(d)).round() as u64;
            even(shape[d].max(1), c)
        })
        .collect();
    // Nudge one dimension at a time while that brings the product closer to the budget.
    let distance = |chunks: &[u64]| {
        let p: f64 = chunks.iter().map(|&c| (c as f64).ln()).sum();
        (p - target).abs()
    };
    for _ in 0..1000 {
        let now = distance(&chunks);
        let mut best: Option<(f64, usize, u64)> = None;
        for (i, &d) in free.iter().enumerate() {
            let n = shape[d].max(1);
            for c in [longer(n, chunks[i]), shorter(n, chunks[i])]
                .into_iter()
                .flatten()
            {
                let mut trial = chunks.clone();
                trial[i] = c;
                let dist = distance(&trial);
                if dist < now - 1e-9 && best.is_none_or(|(b, _, _)| dist < b) {
                    best = Some((dist, i, c));
                }
            }
        }
        match best {
            Some((_, i, c)) => chunks[i] = c,
            None => break,
        }
    }
    chunks
}

/// `names` and `values` of some dimensions as `lat/lon 24x24`.
fn dims_text(names: &[&str], values: &[u64]) -> String {
    format!(
        "{} {}",
        names.join("/"),
        values
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("x")
    )
}

/// Picks the chunk shape of an array of `shape` (dimensions `dims`, elements of `item_size`
/// bytes) for `auto`, with `time` its time dimension if it has one.
pub fn choose(
    shape: &[u64],
    dims: &[String],
    item_size: u64,
    time: Option<usize>,
    auto: &AutoChunks,
) -> Choice {
    let n = shape.len();
    let pattern = auto.pattern;
    let target = auto.target_bytes.max(1);
    let item = item_size.max(1);
    let budget = (target / item).max(1) as f64;
    let bytes = |chunks: &[u64]| chunks.iter().product::<u64>().saturating_mul(item);
    let whole: Vec<u64> = shape.iter().map(|&s| s.max(1)).collect();
    let name = |d: usize| dims.get(d).map_or("?", String::as_str);
    if n == 0 {
        return Choice {
            chunks: Vec::new(),
            why: format!("{pattern}: a single value"),
        };
    }
    let total: f64 = whole.iter().map(|&s| s as f64).product();
    if total <= budget {
        return Choice {
            why: format!(
                "{pattern}: the whole array ({}) is within ~{}: one chunk",
                format_bytes(bytes(&whole)),
                format_bytes(target)
            ),
            chunks: whole,
        };
    }
    let all: Vec<usize> = (0..n).collect();
    let balanced = |note: &str| {
        let chunks = fill(&whole, &all, |d| whole[d] as f64, budget);
        let counts: Vec<u64> = whole
            .iter()
            .zip(&chunks)
            .map(|(s, c)| s.div_ceil(*c))
            .collect();
        let names: Vec<&str> = all.iter().map(|&d| name(d)).collect();
        Choice {
            why: format!(
                "balanced{note}: {} ({} chunks) to reach ~{}; chunks of {}",
                dims_text(&names, &chunks),
                counts
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join("x"),
                format_bytes(target),
                format_bytes(bytes(&chunks))
            ),
            chunks,
        }
    };
    let time = match (pattern, time) {
        (AccessPattern::Balanced, _) => return balanced(""),
        (_, None) => return balanced(&format!(" (for {pattern}, but no time dimension)")),
        _ if n == 1 => return balanced(&format!(" (for {pattern}, one dimension)")),
        (_, Some(t)) => t,
    };
    let others: Vec<usize> = all.iter().copied().filter(|&d| d != time).collect();
    let other_names: Vec<&str> = others.iter().map(|&d| name(d)).collect();
    let mut chunks = whole.clone();
    let why = if pattern == AccessPattern::TimeSeries {
        let t = whole[time].min(budget as u64).max(1);
        chunks[time] = t;
        let rest = fill(&whole, &others, |_| 1.0, budget / t as f64);
        for (&d, c) in others.iter().zip(rest) {
            chunks[d] = c;
        }
        let along = if t == whole[time] {
            format!("{} whole ({t})", name(time))
        } else {
            format!(
                "{} {t} of {} (as long as ~{} allows)",
                name(time),
                whole[time],
                format_bytes(target)
            )
        };
        let rest: Vec<u64> = others.iter().map(|&d| chunks[d]).collect();
        format!(
            "time-series: {along}, {} to reach ~{}; chunks of {}",
            dims_text(&other_names, &rest),
            format_bytes(target),
            format_bytes(bytes(&chunks))
        )
    } else {
        chunks[time] = 1;
        let rest = fill(&whole, &others, |d| whole[d] as f64, budget);
        for (&d, c) in others.iter().zip(&rest) {
            chunks[d] = *c;
        }
        let map_whole = others.iter().all(|&d| chunks[d] == whole[d]);
        if map_whole {
            format!(
                "maps: {} 1, {} whole; chunks of {} (one map)",
                name(time),
                dims_text(&other_names, &rest),
                format_bytes(bytes(&chunks))
            )
        } else {
            let counts: Vec<u64> = others
                .iter()
                .map(|&d| whole[d].div_ceil(chunks[d]))
                .collect();
            format!(
                "maps: {} 1, {} ({} chunks per map) to reach ~{}; chunks of {}",
                name(time),
                dims_text(&other_names, &rest),
                counts
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join("x"),
                format_bytes(target),
                format_bytes(bytes(&chunks))
            )
        }
    };
    Choice { chunks, why }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(d: &[&str]) -> Vec<String> {
        d.iter().map(|s| s.to_string()).collect()
    }

    fn pick(shape: &[u64], pattern: AccessPattern, mib: u64) -> Choice {
        let auto = AutoChunks {
            target_bytes: mib << 20,
            pattern,
        };
        let dims = names(&["time", "lat", "lon"]);
        choose(shape, &dims, 4, time_dimension(&dims, &[]), &auto)
    }

    fn mib(c: &Choice) -> f64 {
        c.chunks.iter().product::<u64>() as f64 * 4.0 / (1 << 20) as f64
    }

    #[test]
    fn patterns_pick_their_shapes() {
        let shape = [87600, 721, 1440];
        let ts = pick(&shape, AccessPattern::TimeSeries, 8);
        assert_eq!(ts.chunks[0], 87600, "{ts:?}");
        assert!(ts.chunks[1].abs_diff(ts.chunks[2]) <= 2, "{ts:?}");
        assert!((4.0..=16.0).contains(&mib(&ts)), "{ts:?}");
        assert!(
            ts.why
                .starts_with("time-series: time whole (87600), lat/lon "),
            "{}",
            ts.why
        );
        let maps = pick(&shape, AccessPattern::Maps, 8);
        assert_eq!(maps.chunks, vec![1, 721, 1440], "{maps:?}");
        assert!(maps.why.contains("one map"), "{}", maps.why);
        let small = pick(&shape, AccessPattern::Maps, 1);
        assert_eq!(small.chunks[0], 1);
        assert!((0.5..=2.0).contains(&mib(&small)), "{small:?}");
        let b = pick(&shape, AccessPattern::Balanced, 8);
        assert!((4.0..=16.0).contains(&mib(&b)), "{b:?}");
        let counts: Vec<u64> = shape
            .iter()
            .zip(&b.chunks)
            .map(|(s, c)| s.div_ceil(*c))
            .collect();
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*hi <= 2 * lo, "{counts:?}");
        // Time longer than the target: as long as it allows.
        let long = pick(&[10_000_000, 4, 4], AccessPattern::TimeSeries, 8);
        assert_eq!(long.chunks, vec![2 << 20, 1, 1], "{long:?}");
        // Small arrays are one chunk.
        let tiny = pick(&[10, 10, 10], AccessPattern::Maps, 8);
        assert_eq!(tiny.chunks, vec![10, 10, 10]);
    }

    #[test]
    fn time_dimension_rules() {
        assert_eq!(time_dimension(&names(&["x", "time"]), &[]), Some(1));
        assert_eq!(time_dimension(&names(&["y", "x"]), &[]), Some(0));
        assert_eq!(time_dimension(&names(&["y", "x"]), &names(&["time"])), None);
        assert_eq!(
            time_dimension(&names(&["rec", "x"]), &names(&["rec"])),
            Some(0)
        );
        assert_eq!(time_dimension(&names(&["x"]), &[]), None);
    }

    #[test]
    fn chunks_never_exceed_dimensions_and_stay_near_the_target() {
        for shape in [
            [3u64, 50_000, 7000],
            [1, 1, 100_000_000],
            [999, 998, 997],
            [2, 3, 100_000_000],
        ] {
            for pattern in [
                AccessPattern::TimeSeries,
                AccessPattern::Maps,
                AccessPattern::Balanced,
            ] {
                let c = pick(&shape, pattern, 8);
                assert!(
                    c.chunks.iter().zip(&shape).all(|(c, s)| *c >= 1 && c <= s),
                    "{c:?}"
                );
                let fixed_by_pattern =
                    pattern == AccessPattern::Maps && shape[1] * shape[2] * 4 < 4 << 20;
                if !fixed_by_pattern {
                    assert!(
                        (4.0..=16.0).contains(&mib(&c)),
                        "{shape:?} {pattern}: {c:?}"
                    );
                }
            }
        }
    }
}
