//! `rechunk verify`: are two datasets equal, value for value?

use crate::api::open_source;
use crate::{formats, memory};
use anyhow::{bail, Result};
use rechunker_core::digest::{compare_arrays, Comparison};
use rechunker_core::{DatasetSource, VariableSelection};

/// Compares every array of `source` with the array of the same name in `target`. Each side is
/// read once in its own chunk order and reduced to a layout-independent digest; only when the
/// digests differ are the arrays compared block by block to name the first differing element
/// (see [`compare_arrays`]). Buffers take at most `max_mem` (one block per thread). Returns the
/// number of bytes compared.
pub fn verify(source: &dyn DatasetSource, target: &dyn DatasetSource, max_mem: u64) -> Result<u64> {
    let (src_name, dst_name) = (source.location(), target.location());
    let threads = rayon::current_num_threads() as u64;
    let mut compared = 0;
    // A lone array is named after its path, which its copy need not share: two datasets of
    // one array each, one of them lone, compare those arrays.
    let (src_meta, dst_meta) = (source.meta(), target.meta());
    let lone_pair = match (src_meta.arrays.as_slice(), dst_meta.arrays.as_slice()) {
        ([a], [b]) if src_meta.lone_array().is_some() || dst_meta.lone_array().is_some() => {
            Some((a.name.clone(), b.name.clone()))
        }
        _ => None,
    };
    let target_name = |name: &str| match &lone_pair {
        Some((a, b)) if a == name => b.clone(),
        _ => name.to_string(),
    };
    for meta in &source.meta().arrays {
        let Some(other) = target.meta().array(&target_name(&meta.name)) else {
            bail!(
                "{dst_name} has no variable `{}`, which {src_name} has",
                meta.name
            );
        };
        if other.shape() != meta.shape() || other.dtype != meta.dtype {
            bail!(
                "`{}` differs: {} {:?} in {src_name} but {} {:?} in {dst_name}",
                meta.name,
                meta.dtype,
                meta.shape(),
                other.dtype,
                other.shape()
            );
        }
        let (a, b) = (
            source.open_array(&meta.name)?,
            target.open_array(&target_name(&meta.name))?,
        );
        let differs = match compare_arrays(a.as_ref(), b.as_ref(), max_mem / threads)? {
            Comparison::Equal => None,
            Comparison::DiffersAt(at) => Some(format!("at {at:?}")),
            Comparison::ReadDifferently(x, y) => Some(format!("(digests {x} and {y}, but a second reading found no difference: is one of them being written?)")),
        };
        if let Some(how) = differs {
            bail!(
                "`{}` differs {how} between {src_name} and {dst_name}",
                meta.name
            );
        }
        compared += meta.num_bytes();
    }
    Ok(compared)
}

/// A comparison of two datasets by location: `src` (optionally a file pattern, seen through a
/// variable selection) against `dst`.
#[derive(Clone, Debug)]
pub struct Verify {
    src: String,
    dst: String,
    concat_dim: Option<String>,
    skip_unsupported: bool,
    selection: VariableSelection,
    max_mem: u64,
}

/// What [`Verify::run`] found equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    pub arrays: usize,
    /// Uncompressed bytes compared.
    pub bytes: u64,
}

impl Verify {
    pub fn new(src: impl Into<String>, dst: impl Into<String>) -> Self {
        Verify {
            src: src.into(),
            dst: dst.into(),
            concat_dim: None,
            skip_unsupported: false,
            selection: VariableSelection::default(),
            max_mem: 1 << 30,
        }
    }

    /// Joins the files a pattern `src` matches along this dimension.
    pub fn concat_dim(mut self, dim: impl Into<Option<String>>) -> Self {
        self.concat_dim = dim.into();
        self
    }

    /// Compares without the variables a run with `skip_unsupported` left out.
    pub fn skip_unsupported(mut self, skip: bool) -> Self {
        self.skip_unsupported = skip;
        self
    }

    /// Compares only the variables a run with this selection copied.
    pub fn select(mut self, selection: VariableSelection) -> Self {
        self.selection = selection;
        self
    }

    /// Peak memory of the whole process (default 1 GiB).
    pub fn max_mem(mut self, bytes: u64) -> Self {
        self.max_mem = bytes;
        self
    }

    /// Compares the two; fails naming the first difference.
    pub fn run(&self) -> Result<Verified> {
        let src = open_source(
            &self.src,
            self.concat_dim.as_deref(),
            self.skip_unsupported,
            &self.selection,
        )?
        .dataset;
        let dst = formats::open_source(&self.dst, None, false)?.dataset;
        // Like a run, max_mem bounds the whole process: its own footprint comes off first.
        let threads = rayon::current_num_threads();
        let buffers = self
            .max_mem
            .saturating_sub(memory::reserve(threads))
            .max(1 << 20);
        let bytes = verify(src.as_ref(), dst.as_ref(), buffers)?;
        Ok(Verified {
            arrays: src.meta().arrays.len(),
            bytes,
        })
    }
}
