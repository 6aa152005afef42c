//! What becomes of the fragments a run writes (one per write task).

use crate::error::{Context as _, Result};
use crate::ffi::{Config, Context};
use std::path::Path;

/// What a target does at the end with an array's fragments: one per write task, plus one per
/// block of partial tiles at the domain's end.
///
/// Measured (libtiledb 2.30, a 190 MiB float32 array in 4 to 1860 fragments, 2 threads):
/// reading the whole array takes the same time whatever the fragment count; opening it and
/// reading one point's time series takes 2-7 ms with a few fragments, 0.14-0.24 s with 1860,
/// and 0.04-0.05 s with 1860 once the commits and fragment metadata are consolidated (which
/// costs at most 0.2 s). Merging all fragments costs another pass over the data (0.7-1.7 s for
/// 190 MiB, about as long as writing it; 3-5 s and 145-167 MiB of memory from 1860 fragments).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fragments {
    /// Keep one fragment per task; consolidate the commit files and the fragment metadata
    /// into one each, so that opening the array reads a few files whatever the task count.
    Keep,
    /// Also merge every fragment into one (a second pass over all the data) and vacuum.
    Consolidate,
    /// [`Fragments::Keep`] up to [`AUTO_LIMIT`] fragments, [`Fragments::Consolidate`] beyond:
    /// the result is never left as thousands of fragments, and the usual run (a few fragments
    /// per gigabyte of memory budget) pays nothing for it.
    #[default]
    Auto,
}

/// Fragments beyond which [`Fragments::Auto`] merges them.
pub const AUTO_LIMIT: usize = 1000;

/// Bytes of the library's buffer per attribute while consolidating.
const CONSOLIDATION_BUFFER: u64 = 16 << 20;

fn run(ctx: &Context, uri: &str, mode: &str) -> Result<()> {
    let action = format!("cannot consolidate the {mode}");
    let config = Config::with(&[
        ("sm.consolidation.mode", mode),
        ("sm.vacuum.mode", mode),
        // Fragments written in parallel are not adjacent in time order: with the default (1.0)
        // the consolidator's greedy steps stop at the first pair whose union box has a gap, and
        // nothing is merged. All fragments together cover the array exactly.
        ("sm.consolidation.amplification", "1000000"),
        (
            "sm.consolidation.buffer_size",
            &CONSOLIDATION_BUFFER.to_string(),
        ),
    ])
    .at(uri, &action)?;
    ctx.consolidate(uri, &config).at(uri, &action)?;
    ctx.vacuum(uri, &config)
        .at(uri, &format!("cannot vacuum the {mode}"))
}

/// Applies `policy` to the array at `uri`.
pub(crate) fn tidy(ctx: &Context, uri: &str, policy: Fragments) -> Result<()> {
    let count = fragment_count(uri);
    if count <= 1 {
        return Ok(());
    }
    if policy == Fragments::Consolidate || (policy == Fragments::Auto && count > AUTO_LIMIT) {
        tracing::info!(uri, fragments = count, "consolidating fragments");
        run(ctx, uri, "fragments")?;
    }
    run(ctx, uri, "commits")?;
    run(ctx, uri, "fragment_meta")
}

/// Fragments of the local array at `uri` (entries of its `__fragments` folder).
pub fn fragment_count(uri: &str) -> usize {
    let path = Path::new(uri.strip_prefix("file://").unwrap_or(uri)).join("__fragments");
    std::fs::read_dir(path).map_or(0, |d| d.filter(|e| e.is_ok()).count())
}
