//! The executor: runs a plan's stages on a thread pool within a whole-process memory budget,
//! journaling each finished task so an interrupted run resumes where it stopped.

use crate::array::{ChunkedArray, ChunkedArrayMut};
use crate::error::{Error, Result};
use crate::layout::{buffer_len, contiguous_runs, copy_box, split_slabs_mut};
use crate::pages::PageBuffer;
use crate::planner::{Endpoint, Plan};
use crate::region::Region;
use crate::scratch::{
    check_raw_piece, decode_piece, encode_piece_into, raw_piece_trailer, Fetched, ScratchCodec,
    ScratchStore, PIECE_TRAILER,
};
use rayon::prelude::*;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// Bytes tasks may reserve, shared by all running tasks: a task starts only when its reservation
/// fits, so the sum of live task buffers never exceeds the budget.
pub struct MemoryBudget {
    total: u64,
    available: Mutex<u64>,
    freed: Condvar,
}

impl MemoryBudget {
    pub fn new(total: u64) -> Self {
        MemoryBudget {
            total,
            available: Mutex::new(total),
            freed: Condvar::new(),
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Blocks until `bytes` (capped at the total, so one oversized task can still run alone)
    /// are free, then holds them until the permit drops.
    pub fn acquire(&self, bytes: u64) -> Permit<'_> {
        let bytes = bytes.min(self.total);
        let mut available = self.available.lock().unwrap_or_else(|p| p.into_inner());
        while *available < bytes {
            available = self
                .freed
                .wait(available)
                .unwrap_or_else(|p| p.into_inner());
        }
        *available -= bytes;
        Permit {
            budget: self,
            bytes,
        }
    }
}

/// A reservation in a [`MemoryBudget`], released on drop.
pub struct Permit<'a> {
    budget: &'a MemoryBudget,
    bytes: u64,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut available = self
            .budget
            .available
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *available += self.bytes;
        self.budget.freed.notify_all();
    }
}

/// A stage about to run.
#[derive(Clone, Debug)]
pub struct StageStart {
    pub array: String,
    pub stage: usize,
    pub stages: usize,
    pub tasks: u64,
    /// Tasks the journal shows finished by an earlier run.
    pub already_done: u64,
    /// Uncompressed bytes the stage moves.
    pub bytes: u64,
}

/// What a stage did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageReport {
    pub tasks_run: u64,
    pub tasks_skipped: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Receives progress events; the CLI draws bars from them. Called from worker threads.
pub trait Progress: Send + Sync {
    fn stage_started(&self, _stage: &StageStart) {}
    fn task_finished(&self, _bytes: u64) {}
    fn stage_finished(&self, _stage: &StageStart, _report: &StageReport) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;
impl Progress for NoProgress {}

/// One array to copy under a plan.
pub struct ArrayJob<'a> {
    /// Name for messages.
    pub name: &'a str,
    /// Prefix of this array's objects in the scratch store (ends with `/`).
    pub scratch_prefix: String,
    pub plan: &'a Plan,
    pub source: &'a dyn ChunkedArray,
    pub target: &'a dyn ChunkedArrayMut,
}

pub struct ExecutorOptions {
    pub threads: usize,
    /// Bytes all tasks together may hold (the process budget minus its own footprint).
    pub task_memory: u64,
    pub codec: ScratchCodec,
    /// Test hook: fail this (stage, task) to simulate a crash mid-run.
    pub fail_task: Option<(usize, u64)>,
}

fn journal_prefix(array_prefix: &str, stage: usize) -> String {
    format!("{array_prefix}journal/{stage}/")
}

/// Tasks of `stage` of the array under `array_prefix` that the journal in `scratch` records as
/// finished (by this process or any other).
pub fn finished_tasks(
    scratch: &dyn ScratchStore,
    array_prefix: &str,
    stage: usize,
) -> Result<HashSet<u64>> {
    let keys = scratch.list(&journal_prefix(array_prefix, stage))?;
    Ok(keys.iter().filter_map(|k| k.parse().ok()).collect())
}

/// One of `count` processes sharing a stage: it runs the tasks `index, index + count, ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// How many of `tasks` tasks belong to this shard.
    pub fn len(&self, tasks: u64) -> u64 {
        tasks.saturating_sub(self.index).div_ceil(self.count.max(1))
    }

    /// The `k`-th task of this shard.
    pub fn task(&self, k: u64) -> u64 {
        self.index + k * self.count
    }

    pub fn contains(&self, task: u64) -> bool {
        task % self.count.max(1) == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// `i/n`, zero-based: `0/4` .. `3/4`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || {
            format!("shard `{s}`: write INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4, or `auto`")
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

pub struct Executor {
    pool: rayon::ThreadPool,
    memory: MemoryBudget,
    scratch: Arc<dyn ScratchStore>,
    progress: Arc<dyn Progress>,
    codec: ScratchCodec,
    fail_task: Option<(usize, u64)>,
    shard: Shard,
    task_delay: Option<std::time::Duration>,
    owner_marker: Option<&'static str>,
}

impl Executor {
    pub fn new(
        options: ExecutorOptions,
        scratch: Arc<dyn ScratchStore>,
        progress: Arc<dyn Progress>,
    ) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads.max(1))
            .thread_name(|i| format!("rechunk-{i}"))
            .build()
            .map_err(|e| {
                Error::Invalid(format!(
                    "cannot start {} worker threads: {e}",
                    options.threads
                ))
            })?;
        Ok(Executor {
            pool,
            memory: MemoryBudget::new(options.task_memory),
            scratch,
            progress,
            codec: options.codec,
            fail_task: options.fail_task,
            shard: Shard { index: 0, count: 1 },
            task_delay: None,
            owner_marker: None,
        })
    }

    /// Runs only `shard`'s tasks of each stage (several processes share the stage).
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Test hook: every task sleeps this long after writing its outputs and before its journal
    /// entry, so that fault tests can kill a worker mid-stage at a predictable moment.
    pub fn with_task_delay(mut self, delay: std::time::Duration) -> Self {
        self.task_delay = Some(delay);
        self
    }

    /// Checks after each task that the scratch still holds `key` (its ownership marker, see
    /// [`crate::job::claim_scratch`]). An object store that was emptied or restarted mid-run
    /// loses the marker; a task whose writes landed there takes them back and fails, so no
    /// unmarked pieces stay behind that a rerun would have to refuse as someone else's files.
    pub fn with_owner_marker(mut self, key: &'static str) -> Self {
        self.owner_marker = Some(key);
        self
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    pub fn scratch(&self) -> &dyn ScratchStore {
        self.scratch.as_ref()
    }

    /// Runs every stage of `job.plan` in order.
    pub fn run_array(&self, job: &ArrayJob<'_>) -> Result<Vec<StageReport>> {
        (0..job.plan.stages.len())
            .map(|k| self.run_stage(job, k))
            .collect()
    }

    fn journal_prefix(job: &ArrayJob<'_>, stage: usize) -> String {
        journal_prefix(&job.scratch_prefix, stage)
    }

    fn piece_key(job: &ArrayJob<'_>, boundary: usize, piece: &Region) -> String {
        // Grouped in folders by the first coordinate so no folder grows huge.
        let coords: Vec<String> = piece.start.iter().map(u64::to_string).collect();
        match coords.split_first() {
            Some((first, rest)) if !rest.is_empty() => {
                format!(
                    "{}pieces/{boundary}/{first}/{}",
                    job.scratch_prefix,
                    rest.join(".")
                )
            }
            Some((first, _)) => format!("{}pieces/{boundary}/{first}", job.scratch_prefix),
            None => format!("{}pieces/{boundary}/scalar", job.scratch_prefix),
        }
    }

    /// Tasks of `stage` recorded as finished.
    pub fn finished_tasks(&self, job: &ArrayJob<'_>, stage: usize) -> Result<HashSet<u64>> {
        finished_tasks(self.scratch.as_ref(), &job.scratch_prefix, stage)
    }

    /// Runs one stage, skipping journaled tasks when resuming. The first failing task stops it.
    pub fn run_stage(&self, job: &ArrayJob<'_>, stage: usize) -> Result<StageReport> {
        let started = Instant::now();
        let plan = job.plan;
        let shard = self.shard;
        let tasks = shard.len(plan.num_tasks(stage));
        // Finished tasks are never redone: a fresh run's journal is empty, a resumed or
        // distributed one skips what any process finished.
        let mut done = self.finished_tasks(job, stage)?;
        done.retain(|&t| shard.contains(t));
        let start = StageStart {
            array: job.name.to_string(),
            stage,
            stages: plan.stages.len(),
            tasks,
            already_done: done.len() as u64,
            // In u128: a large array times many tasks overflows 64 bits before the division.
            bytes: (plan.array_bytes() as u128 * tasks as u128
                / plan.num_tasks(stage).max(1) as u128) as u64,
        };
        self.progress.stage_started(&start);
        let failed = AtomicBool::new(false);
        let first_error: Mutex<Option<Error>> = Mutex::new(None);
        let buffers = BufferPool::default();
        let (run, bytes, next) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        // Tasks are started by runner threads outside the pool, which wait for memory there;
        // the pool's threads only ever do a task's work (its chunks spread over them). A pool
        // thread that waited for memory could deadlock: while it waits in a join it may steal
        // another task, which then waits for the memory its own task holds.
        let runners = (self.threads() as u64).min(tasks).max(1);
        let claim = || loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            if k >= tasks {
                return None;
            }
            let task = shard.task(k);
            if !done.contains(&task) {
                return Some(task);
            }
        };
        // A source that prefetches gets each runner's next task as soon as the current one's
        // reads are done, so that its first chunks arrive while the current task writes; only
        // where the plan's task memory counted at least what the source will hold (a plan file
        // from elsewhere may have counted less, or nothing).
        let prefetching = plan.input(stage) == Endpoint::Source
            && plan.source_prefetch > 0
            && plan.source_prefetch >= job.source.prefetch_overhead();
        let runner = || {
            let mut claimed = claim();
            while let Some(task) = claimed.take() {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let region = plan.task_region(stage, task);
                let mut after_read = || {
                    if !prefetching {
                        return;
                    }
                    claimed = claim();
                    if let Some(upcoming) = claimed {
                        let threads = (plan.task_threads as usize).clamp(1, self.threads());
                        job.source
                            .prefetch(&plan.task_region(stage, upcoming), threads);
                    }
                };
                match self.run_task(job, stage, task, &region, &buffers, &mut after_read) {
                    Ok(n) => {
                        run.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(n, Ordering::Relaxed);
                        self.progress.task_finished(n);
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        first.get_or_insert(Error::Task {
                            variable: job.name.to_string(),
                            stage,
                            task,
                            region,
                            source: Box::new(e),
                        });
                        break;
                    }
                }
                if !prefetching {
                    claimed = claim();
                }
            }
        };
        let spawned = std::thread::scope(|scope| {
            (0..runners).try_for_each(|i| {
                std::thread::Builder::new()
                    .name(format!("rechunk-task-{i}"))
                    .spawn_scoped(scope, runner)
                    .map(drop)
            })
        });
        let result = match (
            first_error.into_inner().unwrap_or_else(|p| p.into_inner()),
            spawned,
        ) {
            (Some(e), _) => Err(e),
            (None, Err(e)) => Err(Error::Invalid(format!("cannot start a task thread: {e}"))),
            (None, Ok(())) => Ok(()),
        };
        let report = StageReport {
            tasks_run: run.into_inner(),
            tasks_skipped: done.len() as u64,
            bytes: bytes.into_inner(),
            seconds: started.elapsed().as_secs_f64(),
        };
        result?;
        self.progress.stage_finished(&start, &report);
        Ok(report)
    }

    /// Reads one block from the stage's input and writes it to the stage's output, calling
    /// `after_read` in between; returns the bytes moved.
    fn run_task(
        &self,
        job: &ArrayJob<'_>,
        stage: usize,
        task: u64,
        region: &Region,
        pool: &BufferPool,
        after_read: &mut (dyn FnMut() + Send),
    ) -> Result<u64> {
        if self.fail_task == Some((stage, task)) {
            return Err(Error::Invalid(
                "failure injected by RECHUNKER_FAIL_TASK".into(),
            ));
        }
        let plan = job.plan;
        let item = plan.item_size as usize;
        let len = buffer_len(&region.shape, item)
            .ok_or_else(|| Error::Invalid(format!("block {region} does not fit in memory")))?;
        let _permit = self.memory.acquire(plan.stages[stage].task_memory);
        let mut buffers = pool.take();
        let result = self
            .pool
            .install(|| self.move_block(job, stage, region, len, &mut buffers, after_read));
        pool.give(buffers);
        // What codecs and stores allocated and freed during the task stays resident in holes
        // of the heap otherwise, beyond what the budget counts (runs with lz4 scratch peaked
        // over --max-mem).
        crate::pages::release_freed_heap();
        result?;
        if let Some(delay) = self.task_delay {
            std::thread::sleep(delay);
        }
        let journal_key = format!("{}{task}", Self::journal_prefix(job, stage));
        self.scratch.put(&journal_key, b"")?;
        self.check_owner_marker(job, stage, region, &journal_key)?;
        // A piece is the overlap of one block of each of two consecutive stages, so it has
        // exactly one reader: once that task is journaled its input pieces are dead. Freeing
        // them now keeps the scratch (and the page cache) from holding a whole boundary.
        if let Endpoint::Pieces(boundary) = plan.input(stage) {
            let keys: Vec<String> = plan
                .pieces_in(boundary, region)
                .iter()
                .map(|p| Self::piece_key(job, boundary, p))
                .collect();
            self.scratch.delete_many(&keys)?;
        }
        Ok(len as u64)
    }

    /// Fails, after deleting what the task just wrote to the scratch, if the scratch lost its
    /// ownership marker. Checked after the journal entry, so whatever reached a store that
    /// restarted empty before that point is taken back.
    fn check_owner_marker(
        &self,
        job: &ArrayJob<'_>,
        stage: usize,
        region: &Region,
        journal_key: &str,
    ) -> Result<()> {
        let Some(marker) = self.owner_marker else {
            return Ok(());
        };
        if self.scratch.get(marker)?.is_some() {
            return Ok(());
        }
        let mut written = vec![journal_key.to_string()];
        if let Endpoint::Pieces(boundary) = job.plan.output(stage) {
            written.extend(
                job.plan
                    .pieces_in(boundary, region)
                    .iter()
                    .map(|p| Self::piece_key(job, boundary, p)),
            );
        }
        let cleanup = match self.scratch.delete_many(&written) {
            Ok(()) => "the pieces this task wrote there were removed".to_string(),
            Err(e) => format!("removing the pieces this task wrote there failed: {e}"),
        };
        Err(Error::scratch(
            self.scratch.location(),
            format!(
                "its `{marker}` disappeared during the run (was the store emptied or restarted?), so the journal of finished tasks is gone; {cleanup}; rerun with --overwrite to start over"
            ),
        ))
    }

    fn move_block(
        &self,
        job: &ArrayJob<'_>,
        stage: usize,
        region: &Region,
        len: usize,
        buffers: &mut TaskBuffers,
        after_read: &mut (dyn FnMut() + Send),
    ) -> Result<()> {
        let plan = job.plan;
        // The planner counted each of the task's threads' chunk or piece buffers in its memory.
        let threads = (plan.task_threads as usize).clamp(1, self.threads());
        let TaskBuffers { block, pieces } = buffers;
        if pieces.len() < threads {
            pieces.resize_with(threads, PieceBuffers::default);
        }
        // Every byte of the block is overwritten by the source or by its pieces before it is
        // read, so its old contents may stay: zeroing 1 GB per stage was pure cost.
        block.set_len(len).map_err(|e| {
            Error::Invalid(format!(
                "cannot allocate a block of {len} bytes for {region}: {e}"
            ))
        })?;
        match plan.input(stage) {
            Endpoint::Source => job
                .source
                .read_region_parallel(region, block, threads)
                .map_err(Error::from_source)?,
            Endpoint::Pieces(boundary) => {
                self.read_pieces(job, boundary, region, block, &mut pieces[..threads])?
            }
            Endpoint::Target => unreachable!("no stage reads the target"),
        }
        after_read();
        match plan.output(stage) {
            Endpoint::Target => job.target.write_region_parallel(region, block, threads)?,
            Endpoint::Pieces(boundary) => {
                let list = plan.pieces_in(boundary, region);
                let per_thread = list.len().div_ceil(threads).max(1);
                list.par_chunks(per_thread)
                    .zip(pieces[..threads].par_iter_mut())
                    .try_for_each(|(group, buffers)| {
                        group.iter().try_for_each(|p| {
                            self.write_piece(job, boundary, p, region, block, buffers)
                        })
                    })?;
            }
            Endpoint::Source => unreachable!("no stage writes the source"),
        }
        Ok(())
    }

    /// Fills `block` (of `region`) from its pieces of `boundary`. Pieces come in C order, so
    /// those of one slab along the first dimension follow each other and a slab is a
    /// contiguous part of the block: the threads (one set of `buffers` each) fill groups of
    /// whole slabs side by side.
    fn read_pieces(
        &self,
        job: &ArrayJob<'_>,
        boundary: usize,
        region: &Region,
        block: &mut [u8],
        buffers: &mut [PieceBuffers],
    ) -> Result<()> {
        let list = job.plan.pieces_in(boundary, region);
        let mut starts: Vec<u64> = list
            .iter()
            .filter_map(|p| p.start.first().copied())
            .collect();
        starts.dedup();
        let groups = buffers.len().min(starts.len());
        if groups <= 1 {
            let buffers = &mut buffers[0];
            return list
                .iter()
                .try_for_each(|p| self.read_piece(job, boundary, p, region, block, buffers));
        }
        let end = region.end(0);
        let slabs: Vec<Region> = (0..groups)
            .map(|i| {
                let first = starts[starts.len() * i / groups];
                let last = starts
                    .get(starts.len() * (i + 1) / groups)
                    .copied()
                    .unwrap_or(end);
                let mut slab = region.clone();
                slab.start[0] = first;
                slab.shape[0] = last - first;
                slab
            })
            .collect();
        let item = job.plan.item_size as usize;
        let parts = split_slabs_mut(block, &slabs, item)
            .ok_or_else(|| Error::Invalid(format!("block {region} has the wrong size")))?;
        slabs
            .par_iter()
            .zip(parts)
            .zip(buffers.par_iter_mut())
            .try_for_each(|((slab, part), buffers)| {
                list.iter()
                    .filter(|p| slab.contains(p))
                    .try_for_each(|p| self.read_piece(job, boundary, p, slab, part, buffers))
            })
    }

    /// Gathers `piece` out of the block into `raw` (unless it is the whole block), encodes it
    /// into `encoded` and stores it.
    fn write_piece(
        &self,
        job: &ArrayJob<'_>,
        boundary: usize,
        piece: &Region,
        block: &Region,
        data: &[u8],
        buffers: &mut PieceBuffers,
    ) -> Result<()> {
        let PieceBuffers { raw, encoded } = buffers;
        let item = job.plan.item_size as usize;
        let key = Self::piece_key(job, boundary, piece);
        if let Some(runs) = self.direct_runs(block, piece, item) {
            let runs: Vec<&[u8]> = runs.into_iter().map(|r| &data[r]).collect();
            let trailer = raw_piece_trailer(&key, &runs);
            let parts: Vec<&[u8]> = runs.into_iter().chain([&trailer[..]]).collect();
            return self.scratch.put_parts(&key, &parts);
        }
        if piece == block {
            encode_piece_into(&key, data, self.codec, item, encoded);
        } else {
            raw.clear();
            resize_exact(raw, buffer_len(&piece.shape, item).unwrap_or(0));
            copy_box(
                data,
                &block.shape,
                &piece.offset_in(block),
                raw,
                &piece.shape,
                &vec![0; piece.ndim()],
                &piece.shape,
                item,
            );
            encode_piece_into(&key, raw, self.codec, item, encoded);
        }
        self.scratch.put_vec(&key, encoded)
    }

    /// Where `piece` lies in `block` as contiguous runs, when pieces are stored uncompressed and
    /// the runs are long enough to read and write in place (no gathering, encoding or
    /// decoding copies).
    fn direct_runs(
        &self,
        block: &Region,
        piece: &Region,
        item: usize,
    ) -> Option<Vec<Range<usize>>> {
        /// Shorter runs cost more in system calls than a gathering copy.
        const MIN_RUN: usize = 64 << 10;
        if self.codec != ScratchCodec::None {
            return None;
        }
        let runs = contiguous_runs(&block.shape, &piece.offset_in(block), &piece.shape, item);
        (runs.len() == 1 || runs.first().is_some_and(|r| r.len() >= MIN_RUN)).then_some(runs)
    }

    /// Fetches `piece`, checks and decodes it, and places it in the block.
    fn read_piece(
        &self,
        job: &ArrayJob<'_>,
        boundary: usize,
        piece: &Region,
        block: &Region,
        out: &mut [u8],
        buffers: &mut PieceBuffers,
    ) -> Result<()> {
        let PieceBuffers { raw, encoded } = buffers;
        let item = job.plan.item_size as usize;
        let key = Self::piece_key(job, boundary, piece);
        // A missing or damaged piece is recomputed, not fatal: forget that the task that wrote
        // it finished, so the stage before runs it again (a resumed run, or the retry in
        // `job::run_dataset`), and say so.
        let lost = |what: String| -> Error {
            let blocks = &job.plan.stages[boundary].blocks;
            let index: Vec<u64> = blocks
                .dims
                .iter()
                .zip(&piece.start)
                .map(|(g, &x)| g.chunk_of(x))
                .collect();
            let producer = crate::region::ravel(&index, &blocks.grid_shape());
            let reset = self
                .scratch
                .delete(&format!(
                    "{}{producer}",
                    Self::journal_prefix(job, boundary)
                ))
                .and_then(|()| self.scratch.delete(&key));
            Error::LostPiece {
                location: format!("{}/{key}", self.scratch.location()),
                what: match reset {
                    Ok(()) => what,
                    Err(e) => format!("{what} (and resetting its journal entry failed: {e})"),
                },
                stage: boundary,
                task: producer,
            }
        };
        if let Some(runs) = self.direct_runs(block, piece, item) {
            let mut trailer = [0u8; PIECE_TRAILER];
            let mut parts = split_runs_mut(out, &runs);
            parts.push(&mut trailer[..]);
            match self.scratch.get_parts(&key, &mut parts)? {
                Fetched::Missing => return Err(lost("is missing".into())),
                Fetched::Read => {
                    let (trailer, runs) = parts.split_last().expect("the trailer is a part");
                    return check_raw_piece(&key, runs, trailer).map_err(lost);
                }
                // Stored compressed by an earlier run with another --scratch-codec.
                Fetched::OtherLength => {}
            }
        }
        if !self.scratch.get_into(&key, encoded)? {
            return Err(lost("is missing".into()));
        }
        let bad = |m: String| lost(m);
        if piece == block {
            decode_piece(&key, encoded, out).map_err(bad)?;
        } else {
            raw.clear();
            resize_exact(raw, buffer_len(&piece.shape, item).unwrap_or(0));
            decode_piece(&key, encoded, raw).map_err(bad)?;
            copy_box(
                raw,
                &piece.shape,
                &vec![0; piece.ndim()],
                out,
                &block.shape,
                &piece.offset_in(block),
                &piece.shape,
                item,
            );
        }
        Ok(())
    }
}

/// Disjoint mutable views of the ascending, non-overlapping `runs` of `buf`.
fn split_runs_mut<'a>(mut buf: &'a mut [u8], runs: &[Range<usize>]) -> Vec<&'a mut [u8]> {
    let mut out = Vec::with_capacity(runs.len());
    let mut consumed = 0;
    for r in runs {
        let (_, rest) = std::mem::take(&mut buf).split_at_mut(r.start - consumed);
        let (run, rest) = rest.split_at_mut(r.len());
        out.push(run);
        buf = rest;
        consumed = r.end;
    }
    out
}

/// Makes `buf` `len` zeroed bytes long. Growth is exact: `Vec`'s amortized doubling would let
/// a buffer that met a slightly larger piece hold twice what the plan accounted for.
fn resize_exact(buf: &mut Vec<u8>, len: usize) {
    buf.clear();
    buf.reserve_exact(len);
    buf.resize(len, 0);
}

/// The buffers one task works in. Reused from task to task: fresh multi-megabyte allocations
/// cost a page fault per 4 KiB, which dominated the run time before.
#[derive(Default)]
struct TaskBuffers {
    block: PageBuffer,
    /// One set per thread the task spreads its pieces over.
    pieces: Vec<PieceBuffers>,
}

/// A scratch piece gathered out of (or to be placed in) a block, and its encoded bytes.
#[derive(Default)]
struct PieceBuffers {
    raw: Vec<u8>,
    encoded: Vec<u8>,
}

/// Buffers of finished tasks, handed to the next task of the same stage. A set is created only
/// when every existing set is in use by a task holding a memory permit, so the sets never
/// outnumber the tasks the budget admits at once; the pool is dropped with its stage.
#[derive(Default)]
struct BufferPool(Mutex<Vec<TaskBuffers>>);

impl BufferPool {
    fn take(&self) -> TaskBuffers {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    fn give(&self, buffers: TaskBuffers) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(buffers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_tasks_and_enumerate_only_their_own() {
        for tasks in [0u64, 1, 7, 10, 1_000_000_007] {
            for count in [1u64, 2, 3, 8] {
                let total: u64 = (0..count)
                    .map(|i| Shard { index: i, count }.len(tasks))
                    .sum();
                assert_eq!(total, tasks, "{tasks} tasks in {count} shards");
                let shard = Shard {
                    index: count - 1,
                    count,
                };
                // The k-th task of a shard is computed, not searched for: O(1) per task.
                if shard.len(tasks) > 0 {
                    let last = shard.task(shard.len(tasks) - 1);
                    assert!(last < tasks && shard.contains(last));
                    assert!(shard.task(shard.len(tasks)) >= tasks);
                }
            }
        }
        assert_eq!(
            "1/4".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 4 }
        );
        for bad in ["4/4", "1/0", "x", "1-4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
