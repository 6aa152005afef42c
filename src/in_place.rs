//! `rechunk in-place`: rechunk a dataset where it is, for formats whose driver can (TileDB,
//! which cannot change the tile extents of an existing array). The workflow is here, once:
//! the copy beside the dataset goes through the same planner, executor, resume and
//! verification as every run; the driver supplies only what is its format's (see
//! [`InPlaceTarget`]): the copy target and the crash-safe exchange.
//!
//! The copy `A.rechunk-new` is journaled in `A.rechunk-scratch`; a journal
//! `A.rechunk-in-place.json` (replaced atomically at every step) records where the job is:
//!
//! | state | meaning | a rerun |
//! |---|---|---|
//! | (none) | nothing started, or everything finished | starts |
//! | `copying` | `A.rechunk-new` is being written | resumes the copy (finished tasks are skipped) |
//! | `copied` | the copy is complete | verifies it |
//! | `swapping` | verified; the journal holds the identities (device, inode) of `A` and of the copy | exchanges them unless `A` already is the copy |
//! | `cleaning` | `A` is the new dataset; `A.rechunk-new` holds the old one | deletes it, the scratch and the journal |
//!
//! The exchange is atomic, so at every instant `A` is a complete dataset, the old one or the
//! new one, never neither; the driver checks that the file system can do it before anything
//! is written. Nothing is deleted but what the job created: the copy (which holds the old
//! dataset only after the exchange), the scratch, the journal.
//!
//! Fault injection for tests, with the `fault-injection` feature only:
//! `RECHUNKER_IN_PLACE_ABORT=K` aborts the process right after step `K` (see [`Step`]);
//! `RECHUNKER_IN_PLACE_ABORT=task:N` aborts it after the copy's `N`-th task.

use crate::api::{self, Progress};
use crate::{fault, formats, memory, ownership};
use anyhow::{anyhow, bail, Context as _, Result};
use rechunker_core::driver::{FormatOptions, InPlaceTarget, SourceOptions};
use rechunker_core::job::{self, JobOptions};
use rechunker_core::planner::CostModel;
use rechunker_core::scratch::{LocalScratch, ScratchCodec, ScratchIo, ScratchStore};
use rechunker_core::units::{format_bytes, format_seconds};
use rechunker_core::ChunkSpec;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The environment variable of the fault-injection hook (read only with the
/// `fault-injection` feature).
pub const ABORT_ENV: &str = "RECHUNKER_IN_PLACE_ABORT";

/// The points after which [`ABORT_ENV`] can abort the process, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    /// The journal says `copying`; nothing else exists yet.
    JournalCopying = 1,
    /// The copy is complete (finalized); the journal still says `copying`.
    Copied = 2,
    /// The journal says `copied`.
    JournalCopied = 3,
    /// The copy is verified; the journal says `swapping`.
    JournalSwapping = 4,
    /// The folders are exchanged: `A` is the new dataset.
    Exchanged = 5,
    /// The journal says `cleaning`.
    JournalCleaning = 6,
    /// Part of the old dataset (at `A.rechunk-new`) is deleted.
    DeletingOld = 7,
    /// The old dataset is deleted.
    DeletedOld = 8,
    /// The scratch folder is deleted.
    DeletedScratch = 9,
    /// The journal is deleted: done.
    Done = 10,
}

/// The last step, for tests that try every one.
pub const LAST_STEP: u8 = Step::Done as u8;

fn abort_after(step: Step) {
    fault::abort_in_place_after(step as u8, &format!("{step:?}"));
}

/// An in-place rechunk of the dataset at a local path. Running it again finishes an
/// interrupted run.
#[derive(Clone, Debug)]
pub struct InPlace {
    location: String,
    chunks: ChunkSpec,
    options: FormatOptions,
    max_mem: u64,
    threads: Option<usize>,
    scratch_io: ScratchIo,
}

/// What an in-place job did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InPlaceReport {
    /// The dataset already had the requested chunks: nothing was done.
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

/// What [`InPlace::run`] did.
#[derive(Clone, Debug)]
pub struct InPlaceDone {
    pub array: String,
    pub report: InPlaceReport,
    pub seconds: f64,
    pub peak_memory: Option<u64>,
    pub max_mem: u64,
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
    /// The files of an in-place job on the dataset at `location`. A symbolic link (to the
    /// dataset, or on the way to it) is resolved first: the job works beside the real folder,
    /// so the exchange swaps folders, never a link, and nothing is deleted through one.
    pub fn new(location: &str) -> Paths {
        let given = PathBuf::from(location.strip_prefix("file://").unwrap_or(location));
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
    /// The driver (format id) of the dataset; journals of the first version were TileDB's.
    #[serde(default = "tiledb")]
    driver: String,
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

fn tiledb() -> String {
    "tiledb".into()
}

const JOURNAL_FORMAT: &str = "rechunker-in-place";
/// The name journals had while the workflow lived in the TileDB adapter; still read.
const OLD_JOURNAL_FORMAT: &str = "rechunker-tiledb-in-place";

impl Journal {
    fn read(paths: &Paths) -> Result<Option<Journal>> {
        let bytes = match std::fs::read(&paths.journal) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(anyhow!("{}: cannot read: {e}", paths.journal.display())),
        };
        let j: Journal = serde_json::from_slice(&bytes).map_err(|e| {
            anyhow!(
                "{}: the journal {} is unreadable ({e}); inspect it, and remove it only if neither {} nor {} holds the dataset you need",
                paths.array.display(),
                paths.journal.display(),
                paths.array.display(),
                paths.new.display()
            )
        })?;
        if ![JOURNAL_FORMAT, OLD_JOURNAL_FORMAT].contains(&j.format.as_str()) || j.version != 1 {
            bail!(
                "{}: {} is not a journal this rechunk knows",
                paths.array.display(),
                paths.journal.display()
            );
        }
        Ok(Some(j))
    }

    /// Replaces the journal atomically (temporary file, flush, rename, flush the folder).
    fn write(&self, paths: &Paths) -> Result<()> {
        let tmp = beside(&paths.journal, ".tmp");
        // Never an empty journal: a rerun would take it for a foreign file.
        let text = serde_json::to_vec_pretty(self).context("cannot encode the journal")?;
        let io =
            |action: &str, e: std::io::Error| anyhow!("{}: cannot {action}: {e}", tmp.display());
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
        f.write_all(&text).map_err(|e| io("write", e))?;
        f.sync_all().map_err(|e| io("flush", e))?;
        drop(f);
        std::fs::rename(&tmp, &paths.journal).map_err(|e| {
            anyhow!(
                "{}: cannot rename it to {}: {e}",
                tmp.display(),
                paths.journal.display()
            )
        })?;
        sync_dir(&parent(&paths.journal))
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
        .map_err(|e| anyhow!("{}: cannot sync: {e}", dir.display()))
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The owner the copy's run records in the scratch folder ([`job::claim_scratch`]): the copy's
/// location.
fn scratch_owner(copy: &Path) -> String {
    copy.display().to_string()
}

/// Removes what the copy wrote to the scratch folder, through the marker its run left there:
/// a folder or link put there since, or one with files rechunk did not write, is left alone
/// (with a warning), never deleted.
fn release_scratch(scratch: &Path, copy: &Path) -> Result<()> {
    match std::fs::symlink_metadata(scratch) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("{}: cannot inspect: {e}", scratch.display()),
        Ok(m) if !m.is_dir() => {
            tracing::warn!(scratch = %scratch.display(), "not removing the scratch place: it is no longer the folder rechunk made");
            return Ok(());
        }
        Ok(_) => {}
    }
    let store = LocalScratch::open(scratch)?;
    job::release_scratch(&store, &scratch_owner(copy))?;
    Ok(())
}

fn identity(path: &Path) -> Result<(u64, u64)> {
    let m = std::fs::symlink_metadata(path)
        .map_err(|e| anyhow!("{}: cannot inspect: {e}", path.display()))?;
    Ok((m.dev(), m.ino()))
}

fn try_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl InPlace {
    /// New chunks `chunks` (by dimension name or position; unnamed dimensions keep theirs) for
    /// the dataset at `location`.
    pub fn new(location: impl Into<String>, chunks: ChunkSpec) -> Self {
        InPlace {
            location: location.into(),
            chunks,
            options: FormatOptions::new(),
            max_mem: 1 << 30,
            threads: None,
            scratch_io: ScratchIo::default(),
        }
    }

    /// A new codec for every array (default: each keeps its own), in the format's spelling.
    pub fn codec(mut self, codec: impl Into<Option<String>>) -> Self {
        match codec.into() {
            Some(c) => self.options.insert("codec".into(), c),
            None => self.options.remove("codec"),
        };
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

    /// Copies, verifies and swaps in the new dataset, holding its lock throughout; or
    /// finishes an interrupted run of the same job.
    pub fn run(&self, progress: Arc<dyn Progress>) -> Result<InPlaceDone> {
        let started = Instant::now();
        let location = self.location.as_str();
        if let Some((scheme, _)) = location.split_once("://") {
            if scheme != "file" {
                bail!("{location}: rechunking in place needs a local path (it exchanges two folders atomically); rechunk into a new dataset instead");
            }
        }
        let threads = self
            .threads
            .unwrap_or_else(|| memory::default_threads(self.max_mem));
        if threads == 0 {
            bail!("0 threads would run no task; give 1 or more");
        }
        let _lock = ownership::TargetLock::acquire(location)?;
        let report = self.job(threads, progress).with_context(|| {
            format!("rechunking {location} in place stopped; rerun the same command to finish it (the dataset stays readable meanwhile)")
        })?;
        Ok(InPlaceDone {
            array: self.location.clone(),
            report,
            seconds: started.elapsed().as_secs_f64(),
            peak_memory: memory::peak_rss(),
            max_mem: self.max_mem,
        })
    }

    fn job_options(&self, threads: usize, chunks: ChunkSpec) -> JobOptions {
        JobOptions {
            chunks,
            max_mem: self.max_mem,
            memory_reserve: memory::reserve(threads),
            threads,
            min_io: 1 << 20,
            cost: CostModel::default(),
        }
    }

    /// The chunk spec by dimension names of the dataset, as a source of its format sees it.
    fn named_spec(&self, format: formats::TargetFormat) -> Result<ChunkSpec> {
        let source = format
            .driver()
            .open_source(&self.location, &SourceOptions::default())?;
        Ok(self
            .chunks
            .for_dataset(source.dataset.meta(), &self.location)?)
    }

    /// The journaled state machine (see the module documentation).
    fn job(&self, threads: usize, progress: Arc<dyn Progress>) -> Result<InPlaceReport> {
        let location = self.location.as_str();
        let paths = Paths::new(location);
        let mut report = InPlaceReport::default();
        let (mut journal, format, target) = match Journal::read(&paths)? {
            Some(j) => {
                report.resumed_from = Some(format!("{:?}", j.state).to_lowercase());
                let format = formats::TargetFormat::by_id(&j.driver).ok_or_else(|| {
                    anyhow!(
                        "{}: the journal names the format `{}`, which this rechunk does not know",
                        paths.journal.display(),
                        j.driver
                    )
                })?;
                // In every state `A` is a complete dataset, the old one or the new one.
                let target = format.driver().in_place(location, &self.options)?;
                (j, format, target)
            }
            None => {
                if !paths.array.exists() {
                    bail!("{location} does not exist; check the path");
                }
                let format = formats::format_of(location)?;
                let target = format.driver().in_place(location, &self.options)?;
                match self.start(threads, &paths, format, target.as_ref())? {
                    Some(j) => (j, format, target),
                    None => {
                        report.unchanged = true;
                        return Ok(report);
                    }
                }
            }
        };
        if matches!(journal.state, State::Copying | State::Copied) {
            let chunks = self.named_spec(format)?;
            if chunks.to_string() != journal.chunks || target.codec() != journal.codec {
                bail!(
                    "{}: an in-place rechunk with --chunks {}{} was interrupted here; rerun it with those options to finish it, or remove {} and {} to abandon it",
                    paths.array.display(),
                    journal.chunks,
                    journal.codec.as_ref().map(|c| format!(" --codec {c}")).unwrap_or_default(),
                    paths.new.display(),
                    paths.journal.display()
                );
            }
        }
        if journal.state == State::Copying {
            self.copy(
                threads,
                &paths,
                target.as_ref(),
                &journal,
                progress,
                &mut report,
            )?;
            abort_after(Step::Copied);
            journal.state = State::Copied;
            journal.write(&paths)?;
            abort_after(Step::JournalCopied);
        }
        if journal.state == State::Copied {
            report.verified_bytes = self.verify(threads, &paths, target.as_ref(), &journal)?;
            journal.state = State::Swapping;
            journal.old_id = Some(identity(&paths.array)?);
            journal.new_id = Some(identity(&paths.new)?);
            journal.write(&paths)?;
            abort_after(Step::JournalSwapping);
        }
        if journal.state == State::Swapping {
            let (Some(old_id), Some(new_id)) = (journal.old_id, journal.new_id) else {
                bail!(
                    "{}: the journal says `swapping` but lacks the folder identities; inspect it",
                    paths.journal.display()
                );
            };
            let at_array = try_identity(&paths.array);
            let at_new = try_identity(&paths.new);
            if at_array == Some(new_id) {
                // Exchanged before the interruption.
            } else if at_array == Some(old_id) && at_new == Some(new_id) {
                target.exchange(&paths.array, &paths.new).map_err(|e| {
                    anyhow!(
                        "{}: cannot exchange it with {}: {e}; the original is untouched, rerun to retry",
                        paths.array.display(),
                        paths.new.display()
                    )
                })?;
                sync_dir(&parent(&paths.array))?;
            } else {
                bail!(
                    "{}: neither it nor {} is the folder the journal {} expects; something else changed them, inspect them by hand",
                    paths.array.display(),
                    paths.new.display(),
                    paths.journal.display()
                );
            }
            abort_after(Step::Exchanged);
            journal.state = State::Cleaning;
            journal.write(&paths)?;
            abort_after(Step::JournalCleaning);
        }
        // Cleaning: `A` is the new dataset; `A.rechunk-new` holds the old one, unless a run
        // interrupted after deleting all of it. Only the folder the journal recorded as the old
        // dataset is deleted: one put there since is someone else's.
        match try_identity(&paths.new) {
            None => {}
            Some(found) if Some(found) == journal.old_id => {
                target.delete_old(&paths.new, &mut || abort_after(Step::DeletingOld))?;
                sync_dir(&parent(&paths.new))?;
            }
            Some(_) => bail!(
                "{}: {} is not the original dataset the journal {} recorded (something replaced it), so rechunk will not delete it; {} already holds the rechunked dataset: inspect {} and remove it and the journal by hand",
                paths.array.display(),
                paths.new.display(),
                paths.journal.display(),
                paths.array.display(),
                paths.new.display()
            ),
        }
        abort_after(Step::DeletedOld);
        release_scratch(&paths.scratch, &paths.new)?;
        abort_after(Step::DeletedScratch);
        std::fs::remove_file(&paths.journal)
            .map_err(|e| anyhow!("{}: cannot delete: {e}", paths.journal.display()))?;
        sync_dir(&parent(&paths.journal))?;
        abort_after(Step::Done);
        Ok(report)
    }

    /// Plans the copy before writing anything (bad chunk specs and budgets fail here) and
    /// writes the first journal; `None` when the dataset already has the requested chunks.
    fn start(
        &self,
        threads: usize,
        paths: &Paths,
        format: formats::TargetFormat,
        target: &dyn InPlaceTarget,
    ) -> Result<Option<Journal>> {
        let chunks = self.named_spec(format)?;
        for leftover in [&paths.new, &paths.scratch] {
            // A dangling link counts: writing through it would create files elsewhere.
            if leftover.symlink_metadata().is_ok() {
                bail!(
                    "{}: {} exists but no in-place journal does; it is not from a run this rechunk can continue: remove it first",
                    paths.array.display(),
                    leftover.display()
                );
            }
        }
        let source = target.source();
        let copy = target.copy_target(&paths.new)?;
        let plan = job::plan_dataset(
            source.as_ref(),
            copy.as_ref(),
            &self.job_options(threads, chunks.clone()),
        )?;
        target.check_arrays(&plan.target_meta().arrays)?;
        let unchanged = plan.arrays.iter().all(|a| {
            source
                .meta()
                .array(&a.target.name)
                .is_some_and(|s| s.grid == a.target.grid)
        }) && target.codec().is_none();
        if unchanged {
            return Ok(None);
        }
        target.check_exchange(&paths.array)?;
        let j = Journal {
            format: JOURNAL_FORMAT.into(),
            version: 1,
            driver: format.driver().id().into(),
            state: State::Copying,
            chunks: chunks.to_string(),
            codec: target.codec(),
            old_id: None,
            new_id: None,
        };
        j.write(paths)?;
        abort_after(Step::JournalCopying);
        Ok(Some(j))
    }

    /// Copies `A` into `A.rechunk-new`, continuing the plan and the finished tasks of an
    /// interrupted copy as every resumed run does.
    fn copy(
        &self,
        threads: usize,
        paths: &Paths,
        target: &dyn InPlaceTarget,
        journal: &Journal,
        progress: Arc<dyn Progress>,
        report: &mut InPlaceReport,
    ) -> Result<()> {
        let chunks: ChunkSpec = journal
            .chunks
            .parse()
            .map_err(|e: String| anyhow!("{}: {e}", paths.journal.display()))?;
        let source = target.source();
        let copy = target.copy_target(&paths.new)?;
        let scratch: Arc<dyn ScratchStore> =
            Arc::new(LocalScratch::open(&paths.scratch)?.with_io(self.scratch_io));
        let fresh = job::plan_dataset(
            source.as_ref(),
            copy.as_ref(),
            &self.job_options(threads, chunks),
        )?;
        let plan = match job::recorded_plan(scratch.as_ref())? {
            Some(stored) => {
                api::resumable(&stored, &fresh, source.meta()).map_err(|e| {
                    anyhow!(
                        "{}/{}: {e}; remove {}, {} and {} to start over",
                        paths.scratch.display(),
                        job::PLAN_KEY,
                        paths.new.display(),
                        paths.scratch.display(),
                        paths.journal.display()
                    )
                })?;
                stored
            }
            None => fresh,
        };
        let progress = fault::abort_in_place_at_task(progress);
        // The scratch is a local directory, where copying beats compressing.
        let executor = api::executor(&plan, ScratchCodec::None, scratch, progress)?;
        let run = job::run_dataset(&plan, source.as_ref(), copy.as_ref(), &executor, true)?;
        report.arrays = plan.arrays.len();
        report.bytes = plan.arrays.iter().map(|a| a.plan.array_bytes()).sum();
        report.tasks_run = run.tasks_run();
        report.tasks_skipped = run.tasks_skipped();
        Ok(())
    }

    /// Checks that `A.rechunk-new` has the planned chunks and the same values as `A` (through
    /// [`crate::verify::verify`], as `rechunk verify` does); returns the bytes compared.
    fn verify(
        &self,
        threads: usize,
        paths: &Paths,
        target: &dyn InPlaceTarget,
        journal: &Journal,
    ) -> Result<u64> {
        let location = self.location.as_str();
        let copy_at = paths.new.display().to_string();
        let mismatch = |message: String| {
            anyhow!(
                "{location}: the rechunked copy {copy_at} differs from the original, which is untouched: {message}; remove {copy_at} and {} to start over",
                paths.journal.display()
            )
        };
        let chunks: ChunkSpec = journal
            .chunks
            .parse()
            .map_err(|e: String| anyhow!("{}: {e}", paths.journal.display()))?;
        let old = target.source();
        let new = target.open_copy(&paths.new)?;
        if old.meta().arrays.len() != new.meta().arrays.len() {
            return Err(mismatch("it has another number of arrays".into()));
        }
        for a in &old.meta().arrays {
            let Some(b) = new.meta().array(&a.name) else {
                return Err(mismatch(format!("it has no array `{}`", a.name)));
            };
            if b.shape() != a.shape() || b.dtype != a.dtype || b.dims != a.dims {
                return Err(mismatch(format!(
                    "`{}` has another shape, type or dimensions",
                    a.name
                )));
            }
            let expected = job::planned_chunk_shape(a, &chunks, location)?;
            if b.grid.nominal_chunk_shape() != expected {
                return Err(mismatch(format!(
                    "`{}` has chunks {:?}, not the requested {expected:?}",
                    a.name,
                    b.grid.nominal_chunk_shape()
                )));
            }
        }
        // Like a run, max_mem bounds the whole process: its own footprint comes off first.
        let buffers = self
            .max_mem
            .saturating_sub(memory::reserve(threads))
            .max(1 << 20);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .context("cannot start threads")?;
        pool.install(|| crate::verify::verify(old.as_ref(), new.as_ref(), buffers))
            .map_err(|e| mismatch(format!("{e:#}")))
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
