//! The Python package `rechunker_rs` (crates/rechunker-py): its test wheel and pytest suite
//! (`cargo xtask test`), and the self-contained release wheel (`cargo xtask wheel`).

use crate::util::{self, root, step};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The venv that builds, installs and tests the wheel: the reference readers, maturin, pytest,
/// tqdm, distributed, auditwheel. Apart from `.venv`, whose packages the Rust interop tests use.
pub const VENV: &str = ".venv-py";
pub const REQUIREMENTS: &str = "tests/python/requirements-py.txt";

fn crate_dir() -> PathBuf {
    root().join("crates/rechunker-py")
}

/// Cargo's target directory (CARGO_TARGET_DIR, else `target/`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

pub fn venv_bin(name: &str) -> PathBuf {
    root().join(VENV).join("bin").join(name)
}

/// Builds the wheel with maturin into a fresh `out` folder and returns its path: the release
/// wheel, or the debug test wheel with the library's fault hooks.
fn maturin_build(out: &Path, release: bool) -> Result<PathBuf> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("cannot empty {}", out.display()))?;
    }
    let mut cmd = Command::new(venv_bin("maturin"));
    cmd.arg("build")
        .args(["--auditwheel", "skip", "--out"])
        .arg(out);
    if release {
        cmd.arg("--release");
    } else {
        cmd.args(["--features", "pyo3/extension-module,fault-injection"]);
    }
    util::run(cmd.current_dir(crate_dir()))?;
    the_wheel(out)
}

/// The one wheel in `dir`.
fn the_wheel(dir: &Path) -> Result<PathBuf> {
    let wheels: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    match wheels.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!("expected one wheel in {}, found {wheels:?}", dir.display()),
    }
}

/// Builds the debug test wheel, bundles its libraries as the release wheel does, checks it in a
/// fresh venv, installs it into the test venv and runs the pytest suite on it: the suite runs
/// on the self-contained wheel users get, not on one that finds its libraries in this tree.
pub fn test() -> Result<()> {
    util::python_venv(VENV, REQUIREMENTS)?;
    step("Python package: building the test wheel (maturin build, debug, fault hooks on)");
    let raw = maturin_build(&target_dir().join("wheels-debug-raw"), false)?;
    let wheel = repair(&raw, &target_dir().join("wheels-debug"))?;
    check_in_fresh_venv(&wheel)?;
    step(&format!(
        "Python package: installing {} into {VENV}",
        wheel.display()
    ));
    let wheel_arg = wheel.to_string_lossy();
    util::pip_install(
        &venv_bin("python"),
        &["--force-reinstall", "--no-deps", &wheel_arg],
    )?;
    step("Python package: running pytest (crates/rechunker-py/tests/test_rechunker_rs.py)");
    // rechunker 0.5 runs beside us in the zarr-python 2 venv, for the side-by-side cases.
    util::run(
        Command::new(venv_bin("python"))
            .args(["-m", "pytest", "-q", "tests/test_rechunker_rs.py"])
            .env(
                "RECHUNKER_PYTHON_ZARR2",
                root().join(".venv-zarr2/bin/python"),
            )
            .current_dir(crate_dir()),
    )
}

/// `cargo xtask wheel`: a release wheel with every shared library it needs bundled
/// (auditwheel repair), in `target/wheels`, then checked in a fresh venv; returns its path.
pub fn wheel() -> Result<PathBuf> {
    crate::build_prerequisites()?;
    util::python_venv(VENV, REQUIREMENTS)?;
    step("building the release wheel (maturin build --release)");
    let raw = maturin_build(&target_dir().join("wheels-raw"), true)?;
    let wheel = repair(&raw, &root().join("target/wheels"))?;
    check_in_fresh_venv(&wheel)?;
    step(&format!("wheel ready: {}", wheel.display()));
    Ok(wheel)
}

/// Bundles the shared libraries `raw` needs into a manylinux wheel in a fresh `out` folder
/// (auditwheel repair) and returns its path.
fn repair(raw: &Path, out: &Path) -> Result<PathBuf> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("cannot empty {}", out.display()))?;
    }
    step("bundling the wheel's shared libraries (auditwheel repair)");
    // auditwheel finds libtiledb through the extension's rpath, the others in the system.
    let path = format!(
        "{}:{}",
        root().join(VENV).join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    util::run(
        Command::new(venv_bin("auditwheel"))
            .arg("repair")
            .arg(raw)
            .arg("-w")
            .arg(out)
            .env("PATH", &path),
    )?;
    the_wheel(out)
}

/// Installs `wheel` into a fresh venv and checks that it imports, runs `rechunk --help` and
/// needs no shared library outside itself and the manylinux policy (tests/wheel_check.py).
fn check_in_fresh_venv(wheel: &Path) -> Result<()> {
    step(&format!(
        "checking {} in a fresh venv (import, rechunk --help, ldd)",
        wheel.display()
    ));
    util::run(
        Command::new(venv_bin("python"))
            .args(["-m", "pytest", "-q", "tests/wheel_check.py"])
            .env("RECHUNKER_WHEEL", wheel)
            .current_dir(crate_dir()),
    )
}
