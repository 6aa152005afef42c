//! Small helpers: announcing steps, running commands, measuring children.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Announces what is about to happen, so a user sees progress through long steps.
pub fn step(message: &str) {
    eprintln!("\n==> {message}");
}

/// Bytes free to an unprivileged writer on the file system that holds `path`, if it can be asked.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: c_path is NUL-terminated and stats is written by statvfs before it is read.
    let stats = unsafe {
        if libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return None;
        }
        stats.assume_init()
    };
    Some(stats.f_bavail as u64 * stats.f_frsize as u64)
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs cargo with `args` in the workspace root, failing if it fails.
pub fn cargo(args: &[&str]) -> Result<()> {
    let status = Command::new(cargo_bin())
        .args(args)
        .current_dir(root())
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed", args.join(" "));
    }
    Ok(())
}

/// Builds the release `rechunk` binary and returns its path.
pub fn build_rechunk() -> Result<PathBuf> {
    crate::build_prerequisites()?;
    step("building rechunk (release)");
    cargo(&["build", "--release", "--quiet", "--bin", "rechunk"])?;
    // Where cargo put it: CARGO_TARGET_DIR when set (a worktree's own), else `target/`.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    Ok(target.join("release/rechunk"))
}

/// What a finished child process used.
pub struct Measured {
    pub seconds: f64,
    /// Peak resident set size of the child (the kernel's high-water mark), bytes.
    pub peak_rss: u64,
    pub success: bool,
}

/// Runs `cmd` to completion, measuring wall time and peak RSS with `wait4`.
pub fn measure(cmd: &mut Command) -> Result<Measured> {
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    reap(child, started, &format!("{cmd:?}"))
}

/// Like [`measure`], also returning what `cmd` printed on its standard output.
pub fn measure_output(cmd: &mut Command) -> Result<(Measured, String)> {
    use std::io::Read;
    let started = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    Ok((reap(child, started, &format!("{cmd:?}"))?, out))
}

/// Waits for `child` (started at `started`) with `wait4`, for its exit status and peak RSS.
fn reap(child: std::process::Child, started: Instant, what: &str) -> Result<Measured> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data (integers and timevals), for which all zeros is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are live locals wait4 writes; `pid` is our own child,
    // which std has not reaped (we never call `wait` on it), so it names no other process.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if rc < 0 {
        bail!(
            "wait4 failed for {what}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(Measured {
        seconds: started.elapsed().as_secs_f64(),
        peak_rss: usage.ru_maxrss as u64 * 1024,
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    })
}

/// Runs `cmd`, failing with its name if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed");
    }
    Ok(())
}

/// Creates (or updates) the Python venv `dir` in the workspace with the pinned packages of
/// `requirements`. A stamp file holding the requirements makes it a no-op when nothing changed.
pub fn python_venv(dir: &str, requirements: &str) -> Result<PathBuf> {
    let root = root();
    let venv = root.join(dir);
    let wanted = std::fs::read_to_string(root.join(requirements))
        .with_context(|| format!("cannot read {requirements}"))?;
    let stamp = venv.join(".rechunker-requirements");
    let python = venv.join("bin/python");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        step(&format!("python venv {dir} is up to date ({requirements})"));
        return Ok(python);
    }
    step(&format!("creating python venv {dir} with {requirements}"));
    let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&system_python).args(["-m", "venv", "--clear"]).arg(&venv)).with_context(|| {
        format!("cannot create a venv with {system_python}; install python3 and python3-venv (apt-get install python3-venv)")
    })?;
    let requirements_path = root.join(requirements);
    pip_install(&python, &["-r", &requirements_path.to_string_lossy()])?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// `python -m pip install --quiet ARGS`.
pub fn pip_install(python: &Path, args: &[&str]) -> Result<()> {
    run(Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(args))
}

/// Installs the Debian `packages` that are missing (with sudo unless root).
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            let out = Command::new("dpkg-query").args(["-W", "-f", "${Status}", p]).output();
            !matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        step(&format!("Debian packages present: {}", packages.join(" ")));
        return Ok(());
    }
    step(&format!(
        "installing Debian packages: {}",
        missing.join(" ")
    ));
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            Command::new("sudo")
        };
        if !root {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args).context("cannot install the Debian packages; install them by hand and retry")
}
