//! `rechunk in-place`: rechunk a TileDB array (or group) where it is. The settings a run
//! shares with every other (threads, the memory the process keeps for itself, progress, the
//! test hooks) are decided here; the TileDB adapter supplies what is TileDB's: the copy beside
//! the array, its journal and the crash-safe exchange (see `rechunker_tiledb::in_place`), which
//! copies and compares through the core's one implementation.

use crate::api::Progress;
use crate::{fault, memory, ownership};
use anyhow::Result;
use rechunker_core::scratch::ScratchIo;
use rechunker_core::units::{format_bytes, format_seconds};
use rechunker_core::ChunkSpec;
use rechunker_tiledb::in_place::{self, InPlaceOptions, InPlaceReport};
use std::sync::Arc;
use std::time::Instant;

/// An in-place rechunk of the TileDB array or group at a local path. Running it again
/// finishes an interrupted run.
#[derive(Clone, Debug)]
pub struct InPlace {
    array: String,
    chunks: ChunkSpec,
    codec: Option<String>,
    max_mem: u64,
    threads: Option<usize>,
    scratch_io: ScratchIo,
}

/// What [`InPlace::run`] did.
#[derive(Clone, Debug)]
pub struct InPlaceDone {
    pub array: String,
    pub report: InPlaceReport,
    pub seconds: f64,
    pub peak_memory: Option<u64>,
    pub max_mem: u64,
}

impl InPlace {
    /// New tile extents `chunks` for the array at `array`.
    pub fn new(array: impl Into<String>, chunks: ChunkSpec) -> Self {
        InPlace {
            array: array.into(),
            chunks,
            codec: None,
            max_mem: 1 << 30,
            threads: None,
            scratch_io: ScratchIo::default(),
        }
    }

    /// New filters for every attribute (default: each keeps its own).
    pub fn codec(mut self, codec: impl Into<Option<String>>) -> Self {
        self.codec = codec.into();
        self
    }

    /// Peak memory of the whole process (default 1 GiB).
    pub fn max_mem(mut self, bytes: u64) -> Self {
        self.max_mem = bytes;
        self
    }

    /// Tasks run at once (default: see [`memory::default_threads`]).
    pub fn threads(mut self, threads: impl Into<Option<usize>>) -> Self {
        self.threads = threads.into();
        self
    }

    /// How large scratch pieces move.
    pub fn scratch_io(mut self, io: ScratchIo) -> Self {
        self.scratch_io = io;
        self
    }

    /// Copies, verifies and swaps in the new array, holding its lock throughout.
    pub fn run(&self, progress: Arc<dyn Progress>) -> Result<InPlaceDone> {
        let started = Instant::now();
        let _lock = ownership::TargetLock::acquire(&self.array)?;
        let threads = self
            .threads
            .unwrap_or_else(|| memory::default_threads(self.max_mem));
        let mut options =
            InPlaceOptions::new(self.chunks.clone(), self.max_mem, memory::reserve(threads));
        options.threads = threads;
        options.scratch_io = self.scratch_io;
        options.codec = self
            .codec
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        options.progress = progress;
        options.fail_task = fault::fail_task();
        let report = in_place::run(&self.array, &options).map_err(|e| {
            anyhow::Error::new(e).context(format!("rechunking {} in place stopped; rerun the same command to finish it (the array stays readable meanwhile)", self.array))
        })?;
        Ok(InPlaceDone {
            array: self.array.clone(),
            report,
            seconds: started.elapsed().as_secs_f64(),
            peak_memory: memory::peak_rss(),
            max_mem: self.max_mem,
        })
    }
}

impl InPlaceDone {
    /// The line `rechunk in-place` prints at the end.
    pub fn summary(&self) -> String {
        let r = &self.report;
        if r.unchanged {
            return format!(
                "{} already has those tile extents: nothing to do",
                self.array
            );
        }
        format!(
            "done: {} rechunked in place ({} arrays, {} copied and verified) in {}{}; tasks run {}, skipped {}; peak memory {} of --max-mem {}",
            self.array,
            r.arrays,
            format_bytes(r.bytes),
            format_seconds(self.seconds),
            r.resumed_from
                .as_ref()
                .map(|s| format!(", resumed from `{s}`"))
                .unwrap_or_default(),
            r.tasks_run,
            r.tasks_skipped,
            format_bytes(self.peak_memory.unwrap_or(0)),
            format_bytes(self.max_mem),
        )
    }
}
