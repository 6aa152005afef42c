//! `rechunk verify`: are two datasets equal, value for value?

use anyhow::{bail, Result};
use rechunker_core::digest::{digest_array, first_difference};
use rechunker_core::{ChunkedArray, DatasetSource};

/// Compares every array of `source` with the array of the same name in `target`. Each side is
/// read once in its own chunk order and reduced to a layout-independent digest; only when the
/// digests differ are the arrays compared block by block to name the first differing element.
/// Buffers take at most `max_mem` (one block per thread). Returns the number of bytes compared.
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
        let per_thread = |array: &dyn ChunkedArray| {
            (max_mem / threads)
                .saturating_sub(array.read_overhead())
                .max(1)
        };
        let (x, y) = (
            digest_array(a.as_ref(), per_thread(a.as_ref()))?,
            digest_array(b.as_ref(), per_thread(b.as_ref()))?,
        );
        if x != y {
            let at = first_difference(a.as_ref(), b.as_ref(), max_mem / threads)?;
            bail!(
                "`{}` differs {} between {src_name} and {dst_name}",
                meta.name,
                match at {
                    Some(at) => format!("at {at:?}"),
                    None => format!("(digests {x} and {y}, but a second reading found no difference: is one of them being written?)"),
                }
            );
        }
        compared += meta.num_bytes();
    }
    Ok(compared)
}
