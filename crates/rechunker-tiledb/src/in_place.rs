//! Rechunking a TileDB array (or a group of arrays) where it is.
//!
//! TileDB cannot change tile extents of an existing array, so [`run`] copies it beside the
//! original (`A.rechunk-new`, same schema but tile extents, same metadata; through the core's
//! planner and executor, journaled in `A.rechunk-scratch`), compares the copy with the
//! original value for value, and then swaps it in. A journal `A.rechunk-in-place.json`
//! (replaced atomically at every step) records where the job is:
//!
//! | state | meaning | a rerun |
//! |---|---|---|
//! | (none) | nothing started, or everything finished | starts |
//! | `copying` | `A.rechunk-new` is being written | resumes the copy (finished tasks are skipped) |
//! | `copied` | the copy is complete | verifies it |
//! | `swapping` | verified; the journal holds the identities (device, inode) of `A` and of the copy | exchanges them unless `A` already is the copy |
//! | `cleaning` | `A` is the new array; `A.rechunk-new` holds the old one | deletes it, the scratch and the journal |
//!
//! The swap itself is a single `renameat2(RENAME_EXCHANGE)` of the two folders: atomic, so at
//! every instant `A` is a complete array, the old one or the new one, never neither. It needs a
//! local file system that supports exchanging directories (ext4, xfs, btrfs, tmpfs, ...); that
//! is checked before anything is written.
//!
//! Copying and comparing are the core's: the plan a resumed copy continues and the executor's
//! settings come from [`job`], the value-for-value check from [`compare_arrays`]. What is
//! TileDB's here is the copy target and the crash-safe exchange.
//!
//! Fault injection for tests, with the `fault-injection` feature only:
//! `RECHUNKER_IN_PLACE_ABORT=K` aborts the process right after step `K` (see [`Step`]);
//! `RECHUNKER_IN_PLACE_ABORT=task:N` aborts it after the copy's `N`-th task.

use crate::copy::{ArrayCopyTarget, ArraySource};
use crate::error::{Result, TileDbError};
use crate::fragments::Fragments;
use crate::source::{is_local, name_from_uri, TileDbSource};
use crate::target::local_path;
use crate::types::Codec;
use rechunker_core::digest::{compare_arrays, Comparison};
use rechunker_core::executor::{Executor, Progress};
use rechunker_core::job::{self, JobOptions};
use rechunker_core::planner::CostModel;
use rechunker_core::scratch::{LocalScratch, ScratchCodec, ScratchIo, ScratchStore};
use rechunker_core::{ChunkSpec, ChunkedArray, DatasetSource};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The environment variable of the fault-injection hook (read only with the
/// `fault-injection` feature).
pub const ABORT_ENV: &str = "RECHUNKER_IN_PLACE_ABORT";

/// The points after which [`ABORT_ENV`] can abort the process, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    /// The journal says `copying`; nothing else exists yet.
    JournalCopying = 1,
    /// The copy is complete (metadata written, fragments tidied); the journal still says
    /// `copying`.
    Copied = 2,
    /// The journal says `copied`.
    JournalCopied = 3,
    /// The copy is verified; the journal says `swapping`.
    JournalSwapping = 4,
    /// The folders are exchanged: `A` is the new array.
    Exchanged = 5,
    /// The journal says `cleaning`.
    JournalCleaning = 6,
    /// Part of the old array (at `A.rechunk-new`) is deleted.
    DeletingOld = 7,
    /// The old array is deleted.
    DeletedOld = 8,
    /// The scratch folder is deleted.
    DeletedScratch = 9,
    /// The journal is deleted: done.
    Done = 10,
}

/// The last step, for tests that try every one.
pub const LAST_STEP: u8 = Step::Done as u8;

/// Test hook: aborts the process after `step` when [`ABORT_ENV`] names it.
#[cfg(feature = "fault-injection")]
fn abort_after(step: Step) {
    if std::env::var(ABORT_ENV).ok().as_deref() == Some(&(step as u8).to_string()) {
        eprintln!("{ABORT_ENV}: aborting after step {} ({step:?})", step as u8);
        std::process::abort();
    }
}

#[cfg(not(feature = "fault-injection"))]
fn abort_after(_step: Step) {}

/// How to rechunk in place.
#[derive(Clone)]
pub struct InPlaceOptions {
    /// The new tile extents, by dimension name or position (unnamed dimensions keep theirs).
    pub chunks: ChunkSpec,
    /// New filters for every attribute; `None` keeps each attribute's own.
    pub codec: Option<Codec>,
    /// Peak memory of the whole process.
    pub max_mem: u64,
    /// What the process needs besides task buffers (see `rechunker::memory::reserve`).
    pub memory_reserve: u64,
    pub threads: usize,
    pub min_io: u64,
    pub scratch_codec: ScratchCodec,
    pub scratch_io: ScratchIo,
    pub fragments: Fragments,
    /// Compare the copy with the original value for value before the swap (else only the
    /// schema is checked).
    pub verify: bool,
    pub progress: Arc<dyn Progress>,
    /// Test hook: fail this (stage, task) of the copy.
    pub fail_task: Option<(usize, u64)>,
}

impl InPlaceOptions {
    /// Defaults for everything but the chunks and the memory.
    pub fn new(chunks: ChunkSpec, max_mem: u64, memory_reserve: u64) -> Self {
        InPlaceOptions {
            chunks,
            codec: None,
            max_mem,
            memory_reserve,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            min_io: 1 << 20,
            // The scratch is a local directory, where copying beats compressing.
            scratch_codec: ScratchCodec::None,
            scratch_io: ScratchIo::default(),
            fragments: Fragments::default(),
            verify: true,
            progress: Arc::new(rechunker_core::executor::NoProgress),
            fail_task: None,
        }
    }
}

/// What [`run`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InPlaceReport {
    /// The array already had the requested tile extents: nothing was done.
    pub unchanged: bool,
    /// The state an interrupted run was found in, if any.
    pub resumed_from: Option<String>,
    pub arrays: usize,
    /// Uncompressed bytes copied.
    pub bytes: u64,
    pub tasks_run: u64,
    pub tasks_skipped: u64,
    /// Bytes compared by the verification.
    pub verified_bytes: u64,
}

/// The files of an in-place job on `A`.
#[derive(Clone, Debug)]
pub struct Paths {
    pub array: PathBuf,
    pub new: PathBuf,
    pub journal: PathBuf,
    pub scratch: PathBuf,
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl Paths {
    /// The files of an in-place job on the array at `uri`. A symbolic link (to the array, or on
    /// the way to it) is resolved first: the job works beside the real folder, so the exchange
    /// swaps folders, never a link, and nothing is deleted through one.
    pub fn new(uri: &str) -> Paths {
        let given = local_path(uri);
        let array = std::fs::canonicalize(&given).unwrap_or(given);
        Paths {
            new: beside(&array, ".rechunk-new"),
            journal: beside(&array, ".rechunk-in-place.json"),
            scratch: beside(&array, ".rechunk-scratch"),
            array,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum State {
    Copying,
    Copied,
    Swapping,
    Cleaning,
}

/// The journal file's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Journal {
    format: String,
    version: u32,
    state: State,
    /// The chunk spec, by name.
    chunks: String,
    codec: Option<String>,
    /// (device, inode) of the original folder and of the copy, from `swapping` on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    old_id: Option<(u64, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    new_id: Option<(u64, u64)>,
}

const JOURNAL_FORMAT: &str = "rechunker-tiledb-in-place";

fn in_place_error(paths: &Paths, message: impl Into<String>) -> TileDbError {
    TileDbError::InPlace {
        uri: paths.array.display().to_string(),
        message: message.into(),
    }
}

/// Flushes a folder's entries (renames, creations) to disk.
fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| TileDbError::io(dir, "sync", e))
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl Journal {
    fn read(paths: &Paths) -> Result<Option<Journal>> {
        match std::fs::read(&paths.journal) {
            Ok(bytes) => {
                let j: Journal = serde_json::from_slice(&bytes).map_err(|e| {
                    in_place_error(
                        paths,
                        format!(
                            "the journal {} is unreadable ({e}); inspect it, and remove it only if neither {} nor {} holds the array you need",
                            paths.journal.display(),
                            paths.array.display(),
                            paths.new.display()
                        ),
                    )
                })?;
                if j.format != JOURNAL_FORMAT || j.version != 1 {
                    return Err(in_place_error(
                        paths,
                        format!(
                            "{} is not a journal this rechunk knows",
                            paths.journal.display()
                        ),
                    ));
                }
                Ok(Some(j))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TileDbError::io(&paths.journal, "read", e)),
        }
    }

    /// Replaces the journal atomically (temporary file, flush, rename, flush the folder).
    fn write(&self, paths: &Paths) -> Result<()> {
        let tmp = beside(&paths.journal, ".tmp");
        // Never an empty journal: a rerun would take it for a foreign file.
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| in_place_error(paths, format!("cannot encode the journal: {e}")))?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| TileDbError::io(&tmp, "create", e))?;
        f.write_all(&text)
            .and_then(|()| f.sync_all())
            .map_err(|e| TileDbError::io(&tmp, "write", e))?;
        std::fs::rename(&tmp, &paths.journal)
            .map_err(|e| TileDbError::io(&paths.journal, "replace", e))?;
        sync_dir(&parent(&paths.journal))
    }
}

/// (device, inode) of a folder.
fn identity(path: &Path) -> Result<(u64, u64)> {
    let m = std::fs::symlink_metadata(path).map_err(|e| TileDbError::io(path, "inspect", e))?;
    Ok((m.dev(), m.ino()))
}

fn try_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Atomically exchanges two folders.
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both strings are valid NUL-terminated paths for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Checks, with two empty folders beside `A`, that its file system can exchange folders.
fn probe_exchange(paths: &Paths) -> Result<()> {
    let a = beside(&paths.array, ".rechunk-probe-a");
    let b = beside(&paths.array, ".rechunk-probe-b");
    for p in [&a, &b] {
        let _ = std::fs::remove_dir(p);
        std::fs::create_dir(p).map_err(|e| TileDbError::io(p, "create a probe folder", e))?;
    }
    let result = exchange(&a, &b);
    let _ = std::fs::remove_dir(&a);
    let _ = std::fs::remove_dir(&b);
    result.map_err(|e| {
        in_place_error(
            paths,
            format!("its file system cannot exchange two folders atomically ({e}), which an in-place rechunk needs so that a crash never loses the array; rechunk into a new array instead"),
        )
    })
}

/// Deletes a folder tree, reporting [`Step::DeletingOld`] after its first entry.
fn delete_old(path: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(path) {
        Ok(d) => d
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TileDbError::io(path, "list", e)),
    };
    for (i, e) in entries.iter().enumerate() {
        // A link inside is removed itself, never followed.
        let is_dir = std::fs::symlink_metadata(e).is_ok_and(|m| m.file_type().is_dir());
        let result = if is_dir {
            std::fs::remove_dir_all(e)
        } else {
            std::fs::remove_file(e)
        };
        match result {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(TileDbError::io(e, "delete", err)),
        }
        if i == 0 {
            abort_after(Step::DeletingOld);
        }
    }
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(TileDbError::io(path, "delete", e)),
    }
}

/// Test hook: progress that forwards to another and implements
/// `RECHUNKER_IN_PLACE_ABORT=task:N`.
#[cfg(feature = "fault-injection")]
mod abort_at_task {
    use super::ABORT_ENV;
    use rechunker_core::executor::{Progress, StageReport, StageStart};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    struct AbortingProgress {
        inner: Arc<dyn Progress>,
        abort_at: u64,
        done: AtomicU64,
    }

    impl Progress for AbortingProgress {
        fn stage_started(&self, stage: &StageStart) {
            self.inner.stage_started(stage)
        }

        fn task_finished(&self, bytes: u64) {
            self.inner.task_finished(bytes);
            let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
            if self.abort_at == n {
                eprintln!("{ABORT_ENV}: aborting after task {n} of the copy");
                std::process::abort();
            }
        }

        fn stage_finished(&self, stage: &StageStart, report: &StageReport) {
            self.inner.stage_finished(stage, report)
        }
    }

    /// `progress`, wrapped to abort after the task [`ABORT_ENV`] names.
    pub fn wrap(progress: Arc<dyn Progress>) -> Arc<dyn Progress> {
        let abort_at = std::env::var(ABORT_ENV)
            .ok()
            .and_then(|v| v.strip_prefix("task:").and_then(|n| n.parse().ok()));
        match abort_at {
            Some(abort_at) => Arc::new(AbortingProgress {
                inner: progress,
                abort_at,
                done: AtomicU64::new(0),
            }),
            None => progress,
        }
    }
}

/// The chunk spec by dimension names of `uri`'s dataset.
fn named_spec(uri: &str, chunks: &ChunkSpec) -> Result<ChunkSpec> {
    let source = TileDbSource::open(uri)?;
    Ok(chunks.for_dataset(source.meta(), uri)?)
}

fn job_options(options: &InPlaceOptions, chunks: ChunkSpec) -> JobOptions {
    JobOptions {
        chunks,
        max_mem: options.max_mem,
        memory_reserve: options.memory_reserve,
        threads: options.threads.max(1),
        min_io: options.min_io,
        cost: CostModel::default(),
    }
}

/// Rechunks the TileDB array or group at the local path `uri` in place (see the module
/// documentation), or finishes an interrupted run of the same job.
pub fn run(uri: &str, options: &InPlaceOptions) -> Result<InPlaceReport> {
    if !is_local(uri) {
        return Err(TileDbError::unsupported(
            uri,
            "rechunking in place on an object store (it needs an atomic folder exchange)",
        ));
    }
    let paths = Paths::new(uri);
    let codec = options.codec.map(|c| c.to_string());
    let mut report = InPlaceReport::default();
    let journal = match Journal::read(&paths)? {
        Some(j) => {
            report.resumed_from = Some(format!("{:?}", j.state).to_lowercase());
            j
        }
        None => {
            if !paths.array.exists() {
                return Err(TileDbError::NotTileDb {
                    uri: uri.into(),
                    exists: false,
                });
            }
            let chunks = named_spec(uri, &options.chunks)?;
            for leftover in [&paths.new, &paths.scratch] {
                if leftover.exists() {
                    return Err(in_place_error(
                        &paths,
                        format!(
                            "{} exists but no in-place journal does; it is not from a run this rechunk can continue: remove it first",
                            leftover.display()
                        ),
                    ));
                }
            }
            // Plan before writing anything: bad chunk specs and budgets fail here.
            let source = Arc::new(ArraySource::open(uri, &name_from_uri(uri))?);
            let target =
                ArrayCopyTarget::new(&paths.new, source.clone(), options.codec, options.fragments)?;
            let plan = job::plan_dataset(
                source.as_ref(),
                &target,
                &job_options(options, chunks.clone()),
            )?;
            target.check_tiles(&plan.target_meta().arrays)?;
            let unchanged = plan.arrays.iter().all(|a| {
                source
                    .array(&a.target.name)
                    .is_ok_and(|s| s.meta().grid == a.target.grid)
            }) && options.codec.is_none();
            if unchanged {
                report.unchanged = true;
                return Ok(report);
            }
            probe_exchange(&paths)?;
            let j = Journal {
                format: JOURNAL_FORMAT.into(),
                version: 1,
                state: State::Copying,
                chunks: chunks.to_string(),
                codec: codec.clone(),
                old_id: None,
                new_id: None,
            };
            j.write(&paths)?;
            abort_after(Step::JournalCopying);
            j
        }
    };
    if matches!(journal.state, State::Copying | State::Copied) {
        let chunks = named_spec(uri, &options.chunks)?;
        if chunks.to_string() != journal.chunks || codec != journal.codec {
            return Err(in_place_error(
                &paths,
                format!(
                    "an in-place rechunk with --chunks {}{} was interrupted here; rerun it with those options to finish it, or remove {} and {} to abandon it",
                    journal.chunks,
                    journal.codec.as_ref().map(|c| format!(" --codec {c}")).unwrap_or_default(),
                    paths.new.display(),
                    paths.journal.display()
                ),
            ));
        }
    }
    let mut journal = journal;
    if journal.state == State::Copying {
        copy(uri, &paths, options, &journal, &mut report)?;
        abort_after(Step::Copied);
        journal.state = State::Copied;
        journal.write(&paths)?;
        abort_after(Step::JournalCopied);
    }
    if journal.state == State::Copied {
        report.verified_bytes = verify(uri, &paths, options, &journal)?;
        journal.state = State::Swapping;
        journal.old_id = Some(identity(&paths.array)?);
        journal.new_id = Some(identity(&paths.new)?);
        journal.write(&paths)?;
        abort_after(Step::JournalSwapping);
    }
    if journal.state == State::Swapping {
        let (Some(old_id), Some(new_id)) = (journal.old_id, journal.new_id) else {
            return Err(in_place_error(
                &paths,
                "the journal says `swapping` but lacks the folder identities; inspect it",
            ));
        };
        let at_array = try_identity(&paths.array);
        let at_new = try_identity(&paths.new);
        if at_array == Some(new_id) {
            // Exchanged before the interruption.
        } else if at_array == Some(old_id) && at_new == Some(new_id) {
            exchange(&paths.array, &paths.new).map_err(|e| {
                in_place_error(
                    &paths,
                    format!("cannot exchange it with {}: {e}; the original is untouched, rerun to retry", paths.new.display()),
                )
            })?;
            sync_dir(&parent(&paths.array))?;
        } else {
            return Err(in_place_error(
                &paths,
                format!(
                    "neither {} nor {} is the folder the journal {} expects; something else changed them, inspect them by hand",
                    paths.array.display(),
                    paths.new.display(),
                    paths.journal.display()
                ),
            ));
        }
        abort_after(Step::Exchanged);
        journal.state = State::Cleaning;
        journal.write(&paths)?;
        abort_after(Step::JournalCleaning);
    }
    // Cleaning: `A` is the new array; `A.rechunk-new` holds the old one.
    delete_old(&paths.new)?;
    sync_dir(&parent(&paths.new))?;
    abort_after(Step::DeletedOld);
    match std::fs::remove_dir_all(&paths.scratch) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(TileDbError::io(&paths.scratch, "delete", e)),
    }
    abort_after(Step::DeletedScratch);
    std::fs::remove_file(&paths.journal)
        .map_err(|e| TileDbError::io(&paths.journal, "delete", e))?;
    sync_dir(&parent(&paths.journal))?;
    abort_after(Step::Done);
    Ok(report)
}

/// Copies `A` into `A.rechunk-new`, resuming the journaled tasks of an interrupted copy.
fn copy(
    uri: &str,
    paths: &Paths,
    options: &InPlaceOptions,
    journal: &Journal,
    report: &mut InPlaceReport,
) -> Result<()> {
    let chunks: ChunkSpec = journal
        .chunks
        .parse()
        .map_err(|e: String| in_place_error(paths, e))?;
    let source = Arc::new(ArraySource::open(uri, &name_from_uri(uri))?);
    let target =
        ArrayCopyTarget::new(&paths.new, source.clone(), options.codec, options.fragments)?;
    let scratch: Arc<dyn ScratchStore> =
        Arc::new(LocalScratch::open(&paths.scratch)?.with_io(options.scratch_io));
    // A resumed copy continues the plan it started with, whatever this process measures now.
    let plan = match job::recorded_plan(scratch.as_ref())? {
        Some(plan) => plan,
        None => job::plan_dataset(source.as_ref(), &target, &job_options(options, chunks))?,
    };
    let progress = options.progress.clone();
    #[cfg(feature = "fault-injection")]
    let progress = abort_at_task::wrap(progress);
    let mut executor_options = job::executor_options(&plan, options.scratch_codec);
    executor_options.fail_task = options.fail_task;
    let executor = Executor::new(executor_options, scratch, progress)?;
    let run = job::run_dataset(&plan, source.as_ref(), &target, &executor, true)?;
    report.arrays = plan.arrays.len();
    report.bytes = plan.arrays.iter().map(|a| a.plan.array_bytes()).sum();
    report.tasks_run = run.tasks_run();
    report.tasks_skipped = run.tasks_skipped();
    Ok(())
}

/// Checks that `A.rechunk-new` has the planned tile extents and (with `options.verify`) the
/// same values as `A`; returns the bytes compared.
fn verify(uri: &str, paths: &Paths, options: &InPlaceOptions, journal: &Journal) -> Result<u64> {
    let copy_uri = paths.new.display().to_string();
    let old = ArraySource::open(uri, &name_from_uri(uri))?;
    let new = ArraySource::open(&copy_uri, &name_from_uri(uri))?;
    let mismatch = |message: String| TileDbError::Mismatch {
        uri: uri.into(),
        copy: copy_uri.clone(),
        message: format!(
            "{message}; remove {copy_uri} and {} to start over",
            paths.journal.display()
        ),
    };
    let chunks: ChunkSpec = journal
        .chunks
        .parse()
        .map_err(|e: String| in_place_error(paths, e))?;
    if old.meta().arrays.len() != new.meta().arrays.len() {
        return Err(mismatch("it has another number of arrays".into()));
    }
    let threads = options.threads.max(1) as u64;
    let memory = options
        .max_mem
        .saturating_sub(options.memory_reserve)
        .max(1 << 20);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads as usize)
        .build()
        .map_err(|e| in_place_error(paths, format!("cannot start threads: {e}")))?;
    let mut compared = 0;
    for a in &old.meta().arrays {
        let b = new
            .array(&a.name)
            .map_err(|_| mismatch(format!("it has no array `{}`", a.name)))?;
        let bm = b.meta();
        let expected = job::planned_chunk_shape(a, &chunks, uri)?;
        if bm.shape() != a.shape() || bm.dtype != a.dtype || bm.dims != a.dims {
            return Err(mismatch(format!(
                "`{}` has another shape, type or dimensions",
                a.name
            )));
        }
        if bm.grid.nominal_chunk_shape() != expected {
            return Err(mismatch(format!(
                "`{}` has tiles {:?}, not the requested {expected:?}",
                a.name,
                bm.grid.nominal_chunk_shape()
            )));
        }
        if !options.verify {
            continue;
        }
        let x = old.array(&a.name)?;
        match pool.install(|| compare_arrays(x.as_ref(), b.as_ref(), memory / threads))? {
            Comparison::Equal => {}
            Comparison::DiffersAt(at) => {
                return Err(mismatch(format!("`{}` differs at {at:?}", a.name)))
            }
            Comparison::ReadDifferently(before, after) => {
                return Err(mismatch(format!(
                    "`{}` read differently twice (digests {after} and {before})",
                    a.name
                )))
            }
        }
        compared += a.num_bytes();
    }
    Ok(compared)
}
