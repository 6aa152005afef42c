//! Test hooks that make a run fail or slow down on purpose, read from the environment. They
//! exist only with the `fault-injection` feature (which `cargo xtask test` turns on); a normal
//! build ignores these variables.
//!
//! - `RECHUNKER_FAIL_TASK=STAGE:TASK` fails one task as a crash would.
//! - `RECHUNKER_TASK_DELAY_MS=N` slows every task, so that a test can kill a worker mid-stage.
//! - `RECHUNKER_IN_PLACE_ABORT=K` (see [`crate::in_place::ABORT_ENV`]) aborts an in-place job
//!   right after its step `K`; `=task:N` after the copy's `N`-th task.

use crate::api::Progress;
use std::sync::Arc;
use std::time::Duration;

/// The (stage, task) `RECHUNKER_FAIL_TASK` names.
#[cfg(feature = "fault-injection")]
pub fn fail_task() -> Option<(usize, u64)> {
    let v = std::env::var("RECHUNKER_FAIL_TASK").ok()?;
    let (s, t) = v.split_once(':')?;
    Some((s.parse().ok()?, t.parse().ok()?))
}

/// How long `RECHUNKER_TASK_DELAY_MS` delays every task.
#[cfg(feature = "fault-injection")]
pub fn task_delay() -> Option<Duration> {
    std::env::var("RECHUNKER_TASK_DELAY_MS")
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_millis)
}

#[cfg(not(feature = "fault-injection"))]
pub fn fail_task() -> Option<(usize, u64)> {
    None
}

#[cfg(not(feature = "fault-injection"))]
pub fn task_delay() -> Option<Duration> {
    None
}

/// Aborts the process after in-place step `step` (named `name`) when
/// `RECHUNKER_IN_PLACE_ABORT` names it.
#[cfg(feature = "fault-injection")]
pub fn abort_in_place_after(step: u8, name: &str) {
    let env = crate::in_place::ABORT_ENV;
    if std::env::var(env).ok().as_deref() == Some(&step.to_string()) {
        eprintln!("{env}: aborting after step {step} ({name})");
        std::process::abort();
    }
}

#[cfg(not(feature = "fault-injection"))]
pub fn abort_in_place_after(_step: u8, _name: &str) {}

/// `progress`, wrapped to abort the process after the copy task `RECHUNKER_IN_PLACE_ABORT=task:N`
/// names.
#[cfg(feature = "fault-injection")]
pub fn abort_in_place_at_task(progress: Arc<dyn Progress>) -> Arc<dyn Progress> {
    let abort_at = std::env::var(crate::in_place::ABORT_ENV)
        .ok()
        .and_then(|v| v.strip_prefix("task:").and_then(|n| n.parse().ok()));
    match abort_at {
        Some(abort_at) => Arc::new(AbortingProgress {
            inner: progress,
            abort_at,
            done: std::sync::atomic::AtomicU64::new(0),
        }),
        None => progress,
    }
}

#[cfg(not(feature = "fault-injection"))]
pub fn abort_in_place_at_task(progress: Arc<dyn Progress>) -> Arc<dyn Progress> {
    progress
}

/// Progress that forwards to another and aborts after the `abort_at`-th task.
#[cfg(feature = "fault-injection")]
struct AbortingProgress {
    inner: Arc<dyn Progress>,
    abort_at: u64,
    done: std::sync::atomic::AtomicU64,
}

#[cfg(feature = "fault-injection")]
impl rechunker_core::executor::Progress for AbortingProgress {
    fn stage_started(&self, stage: &crate::api::StageStart) {
        self.inner.stage_started(stage)
    }

    fn task_finished(&self, bytes: u64) {
        self.inner.task_finished(bytes);
        let n = self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.abort_at == n {
            eprintln!(
                "{}: aborting after task {n} of the copy",
                crate::in_place::ABORT_ENV
            );
            std::process::abort();
        }
    }

    fn stage_finished(&self, stage: &crate::api::StageStart, report: &crate::api::StageReport) {
        self.inner.stage_finished(stage, report)
    }
}

#[cfg(feature = "fault-injection")]
impl Progress for AbortingProgress {
    fn run_started(&self, plan: &rechunker_core::job::DatasetPlan) {
        self.inner.run_started(plan)
    }
}
