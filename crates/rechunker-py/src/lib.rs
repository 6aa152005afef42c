//! `rechunker_rs._native`: the Rust half of the `rechunker_rs` Python package, a thin binding of
//! the `rechunker` library API (`rechunker::api`, `rechunker::plan_file`, `rechunker::cli`).
//! Everything Python-shaped (zarr and xarray objects, rechunker's `target_chunks`, tqdm, Dask)
//! is in the package's Python modules; everything the CLI also needs is in the library.
//!
//! Long calls run without the GIL. A run goes on a thread of its own while the calling thread
//! waits for its progress events, hands them to the Python callback and checks for signals, so
//! that Ctrl-C stops the run (through `rechunker::api::Cancel`) and raises `KeyboardInterrupt`.

use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyMemoryError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rechunker::api::{self, Cancel, ErrorKind, Progress, Rechunk, Report};
use rechunker::formats::{TargetFormat, WriteOptions};
use rechunker::plan_file::{PlanFile, Status};
use rechunker_core::executor::{Shard, StageReport, StageStart};
use rechunker_core::job::DatasetPlan;
use rechunker_core::ChunkSpec;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A library error as the Python exception its kind calls for, with the library's message.
fn to_py(e: anyhow::Error) -> PyErr {
    let message = api::error_message(&e);
    match api::error_kind(&e) {
        ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
        ErrorKind::Memory => PyMemoryError::new_err(message),
        ErrorKind::Invalid => PyValueError::new_err(message),
        ErrorKind::Interrupted => PyKeyboardInterrupt::new_err(message),
        ErrorKind::Other => PyRuntimeError::new_err(message),
    }
}

/// What a run tells the thread that waits for it.
enum Event {
    Started(DatasetPlan),
    Stage(StageStart),
    Tasks(u64),
    StageDone(StageStart, StageReport),
    Done(anyhow::Result<Report>),
}

/// Progress that forwards every event to the waiting thread.
struct Forward(Mutex<Sender<Event>>);

impl Forward {
    fn send(&self, event: Event) {
        // The receiver lives until the run's Done; a send after that has no one to tell.
        let _ = self.0.lock().unwrap_or_else(|p| p.into_inner()).send(event);
    }
}

impl rechunker_core::executor::Progress for Forward {
    fn stage_started(&self, s: &StageStart) {
        self.send(Event::Stage(s.clone()));
    }
    fn task_finished(&self, bytes: u64) {
        self.send(Event::Tasks(bytes));
    }
    fn stage_finished(&self, s: &StageStart, r: &StageReport) {
        self.send(Event::StageDone(s.clone(), r.clone()));
    }
}

impl Progress for Forward {
    fn run_started(&self, plan: &DatasetPlan) {
        self.send(Event::Started(plan.clone()));
    }
}

fn stage_dict<'py>(py: Python<'py>, s: &StageStart) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("array", &s.array)?;
    d.set_item("stage", s.stage)?;
    d.set_item("stages", s.stages)?;
    d.set_item("tasks", s.tasks)?;
    d.set_item("already_done", s.already_done)?;
    d.set_item("bytes", s.bytes)?;
    Ok(d)
}

fn report_dict<'py>(py: Python<'py>, r: &Report) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("arrays", r.arrays)?;
    d.set_item("data_bytes", r.data_bytes)?;
    d.set_item("moved_bytes", r.moved_bytes)?;
    d.set_item("seconds", r.seconds)?;
    d.set_item("tasks_run", r.tasks_run)?;
    d.set_item("tasks_skipped", r.tasks_skipped)?;
    d.set_item("peak_memory", r.peak_memory)?;
    d.set_item("max_mem", r.max_mem)?;
    d.set_item("summary", r.summary())?;
    Ok(d)
}

/// Hands `event` to the Python callback as `callback(name, info)`.
fn deliver(py: Python<'_>, callback: &Bound<'_, PyAny>, event: &Event) -> PyResult<()> {
    match event {
        Event::Started(plan) => {
            let d = PyDict::new(py);
            d.set_item("stages", plan.num_stages())?;
            let tasks: u64 = api::stage_rows(plan).iter().map(|r| r.tasks).sum();
            d.set_item("tasks", tasks)?;
            d.set_item(
                "bytes",
                plan.arrays
                    .iter()
                    .map(|a| a.plan.array_bytes())
                    .sum::<u64>(),
            )?;
            callback.call1(("run_started", d))?;
        }
        Event::Stage(s) => {
            callback.call1(("stage_started", stage_dict(py, s)?))?;
        }
        Event::Tasks(_) => {}
        Event::StageDone(s, r) => {
            let d = stage_dict(py, s)?;
            d.set_item("tasks_run", r.tasks_run)?;
            d.set_item("tasks_skipped", r.tasks_skipped)?;
            d.set_item("bytes_moved", r.bytes)?;
            d.set_item("seconds", r.seconds)?;
            callback.call1(("stage_finished", d))?;
        }
        Event::Done(_) => {}
    }
    Ok(())
}

/// Runs `work` on a thread of its own, without the GIL, while this thread delivers its
/// progress events to `callback` and checks for signals every 100 ms. A signal (Ctrl-C) or an
/// exception in the callback sets the run's `cancel`; the run then stops at its next task and
/// that exception is raised.
fn run_watched(
    py: Python<'_>,
    callback: Option<&Bound<'_, PyAny>>,
    cancel: Cancel,
    work: impl FnOnce(Arc<Forward>, Cancel) -> anyhow::Result<Report> + Send + 'static,
) -> PyResult<Report> {
    let (tx, rx): (Sender<Event>, Receiver<Event>) = channel();
    // In a mutex only so that a reference to it may cross into `detach`; one thread uses it.
    let rx = Mutex::new(rx);
    let forward = Arc::new(Forward(Mutex::new(tx.clone())));
    let thread_cancel = cancel.clone();
    let worker = std::thread::Builder::new()
        .name("rechunk-run".into())
        .spawn(move || {
            let result = work(forward, thread_cancel);
            let _ = tx.send(Event::Done(result));
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the run's thread: {e}")))?;
    let mut raised: Option<PyErr> = None;
    let result = loop {
        let first = py.detach(|| {
            rx.lock()
                .unwrap_or_else(|p| p.into_inner())
                .recv_timeout(Duration::from_millis(100))
        });
        let mut events = Vec::new();
        match first {
            Ok(e) => events.push(e),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                break Err(anyhow::anyhow!("the run's thread ended without a result"));
            }
        }
        events.extend(rx.lock().unwrap_or_else(|p| p.into_inner()).try_iter());
        let mut done = None;
        // Task events come in bursts: one callback call per burst.
        let (mut tasks, mut bytes) = (0u64, 0u64);
        for event in events {
            if let Event::Tasks(b) = event {
                tasks += 1;
                bytes += b;
                continue;
            }
            if let (Some(cb), true) = (callback, tasks > 0 && raised.is_none()) {
                if let Err(e) = cb.call1(("task_finished", (tasks, bytes))) {
                    raised = Some(e);
                    cancel.set();
                }
                (tasks, bytes) = (0, 0);
            }
            if let Event::Done(r) = event {
                done = Some(r);
                continue;
            }
            if let (Some(cb), None) = (callback, &raised) {
                if let Err(e) = deliver(py, cb, &event) {
                    raised = Some(e);
                    cancel.set();
                }
            }
        }
        if let (Some(cb), true) = (callback, tasks > 0 && raised.is_none()) {
            if let Err(e) = cb.call1(("task_finished", (tasks, bytes))) {
                raised = Some(e);
                cancel.set();
            }
        }
        if let Some(r) = done {
            break r;
        }
        if raised.is_none() {
            if let Err(e) = py.check_signals() {
                raised = Some(e);
                cancel.set();
            }
        }
    };
    let _ = py.detach(|| worker.join());
    match (raised, result) {
        // Stopped for the exception: raise it, with what the library says of the stop.
        (Some(e), Err(stopped)) => {
            let note = api::error_message(&stopped);
            if e.is_instance_of::<PyKeyboardInterrupt>(py) {
                Err(PyKeyboardInterrupt::new_err(note))
            } else {
                Err(e)
            }
        }
        // The run ended before it saw the flag.
        (Some(e), Ok(_)) => Err(e),
        (None, r) => r.map_err(to_py),
    }
}

/// The library's chunk spec from its text or JSON form (what `rechunk --chunks` takes).
fn parse_chunks(text: &str) -> PyResult<ChunkSpec> {
    text.parse()
        .map_err(|e: String| PyValueError::new_err(format!("target_chunks: {e}")))
}

/// A planned run.
#[pyclass(module = "rechunker_rs._native", frozen)]
struct NativePlan {
    /// Taken by the first `execute`.
    plan: Mutex<Option<api::Plan>>,
    dataset: DatasetPlan,
}

#[pymethods]
impl NativePlan {
    /// What `rechunk plan` prints: stages, tasks, bytes, memory per task and an estimate.
    fn describe(&self) -> String {
        api::describe(&self.dataset)
    }

    /// The plan as JSON (as `rechunk plan --json` prints it).
    fn to_json(&self) -> String {
        self.dataset.to_json()
    }

    /// One JSON object per stage of every array: array, dtype, shape, source_chunks,
    /// target_chunks, stage, stages, tasks, block_shape, reads, writes, max_piece_bytes,
    /// bytes, task_memory, parallelism.
    fn stage_rows_json(&self) -> PyResult<String> {
        serde_json::to_string(&api::stage_rows(&self.dataset))
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// Stages of the longest array plan.
    #[getter]
    fn num_stages(&self) -> usize {
        self.dataset.num_stages()
    }

    #[getter]
    fn source(&self) -> String {
        self.dataset.source.clone()
    }

    #[getter]
    fn target(&self) -> String {
        self.dataset.target.clone()
    }

    #[getter]
    fn max_mem(&self) -> u64 {
        self.dataset.max_mem
    }

    /// Writes a plan file at `path` for workers (`rechunk run --plan`, or the Dask executor),
    /// as `rechunk plan -o` does: records the plan in the scratch and creates the target's
    /// arrays.
    fn save(&self, py: Python<'_>, path: String) -> PyResult<()> {
        let plan = self.plan.lock().unwrap_or_else(|p| p.into_inner());
        let plan = plan.as_ref().ok_or_else(|| {
            PyRuntimeError::new_err(
                "this plan has run already; call rechunk() again to save a new one",
            )
        })?;
        // The plan shown is the plan saved (planning again could measure another budget).
        py.detach(|| plan.save(Path::new(&path)).map(|_| ()))
            .map_err(to_py)
    }

    /// Runs the plan here; returns the report as a dict. `progress(event, info)` is called on
    /// this thread for `run_started`, `stage_started`, `task_finished` (info: (tasks, bytes))
    /// and `stage_finished`.
    #[pyo3(signature = (progress=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let plan = self
            .plan
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| {
                PyRuntimeError::new_err(
                    "this plan has run already; call rechunk() again for a new run",
                )
            })?;
        let report = run_watched(
            py,
            progress.as_ref(),
            Cancel::default(),
            move |forward, cancel| plan.execute_until(forward, &cancel),
        )?;
        report_dict(py, &report)
    }
}

/// Plans a run from `source` to `target` (see `rechunker_rs.rechunk` for the Python-level
/// arguments); touches nothing.
#[pyfunction]
#[pyo3(signature = (source, target, chunks, max_mem, threads=None, options=None, scratch=None, overwrite=false, resume=false, format=None))]
#[allow(clippy::too_many_arguments)]
fn plan(
    py: Python<'_>,
    source: String,
    target: String,
    chunks: Option<String>,
    max_mem: u64,
    threads: Option<usize>,
    options: Option<BTreeMap<String, String>>,
    scratch: Option<String>,
    overwrite: bool,
    resume: bool,
    format: Option<String>,
) -> PyResult<NativePlan> {
    let chunks = chunks.as_deref().map(parse_chunks).transpose()?;
    let format = match format.as_deref() {
        None => None,
        Some(id) => Some(TargetFormat::by_id(id).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown target format `{id}`; use zarr, netcdf, hdf5, tiledb or raw"
            ))
        })?),
    };
    if threads == Some(0) {
        return Err(PyValueError::new_err(
            "threads=0 would run no task; give 1 or more, or None for twice the cores",
        ));
    }
    let mut write = WriteOptions::default();
    for (name, value) in options.unwrap_or_default() {
        write = write.with(&name, Some(value));
    }
    let settings = Rechunk::new(source, target)
        .chunks(chunks)
        .max_mem(max_mem)
        .threads(threads)
        .format(format)
        .write_options(write)
        .scratch(scratch)
        .overwrite(overwrite)
        .resume(resume)
        .absolute_paths();
    let planned = py.detach(move || settings.plan()).map_err(to_py)?;
    Ok(NativePlan {
        dataset: planned.dataset_plan().clone(),
        plan: Mutex::new(Some(planned)),
    })
}

/// Bytes in a size like `2GiB`, `512MB` or `1048576` (as `--max-mem` takes it).
#[pyfunction]
fn parse_size(text: &str) -> PyResult<u64> {
    rechunker_core::units::parse_size(text).map_err(PyValueError::new_err)
}

/// Checks a chunk spec in the text or JSON form; returns its canonical text.
#[pyfunction]
fn check_chunks(text: &str) -> PyResult<String> {
    parse_chunks(text).map(|c| c.to_string())
}

/// Stages in the plan file at `path`.
#[pyfunction]
fn plan_file_stages(path: &str) -> PyResult<usize> {
    PlanFile::load(Path::new(path))
        .map(|f| f.plan.num_stages())
        .map_err(to_py)
}

/// Runs shard `index` of `count` of stage `stage` of the plan file at `path` in this process
/// (what `rechunk run --plan PATH --stage S --shard index/count` does); returns the report.
#[pyfunction]
fn run_stage<'py>(
    py: Python<'py>,
    path: String,
    stage: usize,
    index: u64,
    count: u64,
) -> PyResult<Bound<'py, PyDict>> {
    if count == 0 || index >= count {
        return Err(PyValueError::new_err(format!(
            "shard {index}/{count}: give an index from 0 to count - 1"
        )));
    }
    let report = run_watched(py, None, Cancel::default(), move |forward, _cancel| {
        let file = PlanFile::load(Path::new(&path))?;
        file.run_stage(stage, Shard { index, count }, forward)
    })?;
    report_dict(py, &report)
}

/// Per stage, per array: `(array, done, tasks)`.
type StageTasks = Vec<Vec<(String, u64, u64)>>;

/// Per stage, per array: `(array, done, tasks)`; `None` once the run is finalized.
#[pyfunction]
fn plan_file_status(py: Python<'_>, path: String) -> PyResult<Option<StageTasks>> {
    let status = py
        .detach(move || PlanFile::load(Path::new(&path))?.status())
        .map_err(to_py)?;
    Ok(match status {
        Status::Finalized => None,
        Status::Running(stages) => Some(
            stages
                .into_iter()
                .map(|arrays| {
                    arrays
                        .into_iter()
                        .map(|s| (s.array.clone(), s.done, s.tasks))
                        .collect()
                })
                .collect(),
        ),
    })
}

/// Writes the target's final metadata and removes the scratch, once every stage is complete.
#[pyfunction]
fn finalize(py: Python<'_>, path: String) -> PyResult<()> {
    py.detach(move || PlanFile::load(Path::new(&path))?.finalize())
        .map_err(to_py)
}

/// The `rechunk` command with `args` (program name first); returns its exit status.
#[pyfunction]
fn cli_main(py: Python<'_>, args: Vec<String>) -> i32 {
    let code = py.detach(move || rechunker::cli::main_with_args(args));
    // ExitCode has no accessor; the CLI exits 0, 1 or clap's 2.
    if code == std::process::ExitCode::SUCCESS {
        0
    } else if code == std::process::ExitCode::FAILURE {
        1
    } else {
        2
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativePlan>()?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(parse_size, m)?)?;
    m.add_function(wrap_pyfunction!(check_chunks, m)?)?;
    m.add_function(wrap_pyfunction!(plan_file_stages, m)?)?;
    m.add_function(wrap_pyfunction!(run_stage, m)?)?;
    m.add_function(wrap_pyfunction!(plan_file_status, m)?)?;
    m.add_function(wrap_pyfunction!(finalize, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    Ok(())
}
