//! Test hooks that make a run fail or slow down on purpose, read from the environment. They
//! exist only with the `fault-injection` feature (which `cargo xtask test` turns on); a normal
//! build ignores these variables.
//!
//! - `RECHUNKER_FAIL_TASK=STAGE:TASK` fails one task as a crash would.
//! - `RECHUNKER_TASK_DELAY_MS=N` slows every task, so that a test can kill a worker mid-stage.
//! - `RECHUNKER_IN_PLACE_ABORT` (see `rechunker_tiledb::in_place::ABORT_ENV`) aborts an
//!   in-place job at a chosen step.

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
