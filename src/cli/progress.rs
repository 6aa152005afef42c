//! Progress display: a bar per stage on a terminal, plain lines in logs.

use indicatif::{ProgressBar, ProgressStyle};
use rechunker_core::executor::{Progress, StageReport, StageStart};
use rechunker_core::units::{format_bytes, format_seconds};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub struct CliProgress {
    terminal: bool,
    bar: Mutex<Option<ProgressBar>>,
    /// For plain output: bytes done, stage size and when the last line was printed.
    done: AtomicU64,
    total: AtomicU64,
    plain: Mutex<(Instant, Instant)>,
}

impl CliProgress {
    pub fn new() -> Self {
        let now = Instant::now();
        CliProgress {
            terminal: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            plain: Mutex::new((now, now)),
        }
    }
}

fn label(s: &StageStart) -> String {
    format!("{} stage {}/{}", s.array, s.stage + 1, s.stages)
}

impl Progress for CliProgress {
    fn stage_started(&self, s: &StageStart) {
        let remaining = s.bytes * (s.tasks - s.already_done) / s.tasks.max(1);
        self.done.store(0, Ordering::Relaxed);
        self.total.store(remaining, Ordering::Relaxed);
        if s.already_done > 0 {
            eprintln!(
                "{}: {} of {} tasks already done, resuming",
                label(s),
                s.already_done,
                s.tasks
            );
        }
        if self.terminal {
            let bar = ProgressBar::new(remaining);
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label(s));
            *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
        } else {
            *self.plain.lock().unwrap_or_else(|p| p.into_inner()) =
                (Instant::now(), Instant::now());
        }
    }

    fn task_finished(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            bar.inc(bytes);
            return;
        }
        let mut times = self.plain.lock().unwrap_or_else(|p| p.into_inner());
        if times.1.elapsed().as_secs_f64() >= 5.0 {
            times.1 = Instant::now();
            let total = self.total.load(Ordering::Relaxed).max(1);
            let elapsed = times.0.elapsed().as_secs_f64();
            let rate = done as f64 / elapsed.max(1e-9);
            eprintln!(
                "  {:.0}% {}/{} at {}/s, ETA {}",
                100.0 * done as f64 / total as f64,
                format_bytes(done),
                format_bytes(total),
                format_bytes(rate as u64),
                format_seconds((total.saturating_sub(done)) as f64 / rate.max(1.0))
            );
        }
    }

    fn stage_finished(&self, s: &StageStart, r: &StageReport) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
        eprintln!(
            "{}: {} tasks in {} ({}/s){}",
            label(s),
            r.tasks_run,
            format_seconds(r.seconds),
            format_bytes((r.bytes as f64 / r.seconds.max(1e-9)) as u64),
            if r.tasks_skipped > 0 {
                format!(", {} skipped as already done", r.tasks_skipped)
            } else {
                String::new()
            }
        );
    }
}

impl crate::api::Progress for CliProgress {
    /// The plan goes to stdout before the first stage, as `rechunk plan` prints it.
    fn run_started(&self, plan: &rechunker_core::job::DatasetPlan) {
        print!("{}", crate::api::describe(plan));
    }
}
