//! `cargo xtask ...`: the project's automation, so a fresh machine needs only cargo.
//!
//! - `demo`: make an example dataset, show the plan, rechunk it with progress, verify the result.
//! - `test`: install what the tests need, then run formatting, lints, the whole test suite and
//!   the Python package's pytest suite.
//! - `bench`: the benchmarks (peak memory under `--max-mem`, planning cost), written to
//!   `docs/benchmarks.md`.
//! - `wheel`: the self-contained Python wheel in `target/wheels`, checked in a fresh venv;
//!   `test-python`: only the Python package's step of `test`.
//! - `setup`: only the installation step.

mod azurite;
mod bench;
mod demo;
mod python;
mod slurm;
mod synth;
mod tiledb;
mod util;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = args
        .split_first()
        .map(|(c, r)| (c.as_str(), r))
        .unwrap_or(("help", &[]));
    match command {
        "demo" => demo::run(rest),
        "test" => test(rest),
        "bench" => bench::run(rest),
        "setup" => setup(),
        "wheel" => python::wheel().map(|_| ()),
        "test-python" => python::test(),
        "help" | "-h" | "--help" => {
            println!("usage: cargo xtask <demo | test | bench | wheel | setup>");
            println!("  demo   make an example dataset and rechunk it, showing plan, progress and result");
            println!("  test   install test prerequisites, then fmt check, clippy and all tests");
            println!(
                "  bench  benchmarks (memory under --max-mem, planning); writes docs/benchmarks.md"
            );
            println!("  wheel  the self-contained Python wheel (maturin + auditwheel) in target/wheels, checked in a fresh venv");
            println!("  test-python  only the Python package's step of `test`: debug wheel, install into .venv-py, pytest");
            println!("  setup  install prerequisites only");
            Ok(())
        }
        other => bail!("unknown xtask `{other}`; try `cargo xtask help`"),
    }
}

/// Debian packages the build and the tests need: NetCDF and HDF5 libraries (and their
/// command-line tools, which the tests compare against), and ISA-L, whose igzip writes deflate
/// level 1 ten times faster than zlib.
const APT_PACKAGES: &[&str] = &[
    "libnetcdf-dev",
    "libhdf5-dev",
    "libisal-dev",
    "netcdf-bin",
    "hdf5-tools",
    "pkg-config",
];

/// Installs what the build and tests need beyond cargo: Debian packages, a Python venv with the
/// reference readers (zarr-python 3, xarray, netCDF4, h5py, tiledb-py) and the S3 test server
/// (moto), the Python package's build and test venv (`.venv-py`), zarr-python 2 in a venv of its own (it cannot share one with zarr 3), libtiledb (from the tiledb PyPI wheel: no TileDB package exists here), Azurite
/// (the Azure Blob Storage emulator, from npm) and a one-node SLURM on localhost for the
/// distributed tests.
fn setup() -> Result<()> {
    build_prerequisites()?;
    util::python_venv(".venv", "tests/python/requirements.txt")?;
    util::python_venv(".venv-zarr2", "tests/python/requirements-zarr2.txt")?;
    util::python_venv(python::VENV, python::REQUIREMENTS)?;
    azurite::install()?;
    slurm::ensure_running()?;
    Ok(())
}

/// What building `rechunk` itself needs beyond cargo: the Debian libraries its adapters link
/// (NetCDF, HDF5, ISA-L) and libtiledb. `demo` and `bench` install only this; `test` adds the
/// reference readers and SLURM.
pub(crate) fn build_prerequisites() -> Result<()> {
    util::apt_install(APT_PACKAGES)?;
    tiledb::install()?;
    Ok(())
}

/// The test hooks the fault tests need (crash a task, slow tasks, abort an in-place job); off
/// in normal builds, so the suite turns them on.
const FAULT_INJECTION: &str = "rechunker/fault-injection";

/// Says up front when the disk may fill before the suite ends, instead of letting a late test
/// fail with "No space left on device".
fn warn_if_disk_is_short() {
    let temp = std::env::temp_dir();
    for (what, path) in [
        ("the build folder", util::root()),
        ("the temporary folder", temp),
    ] {
        if let Some(free) = util::free_bytes(&path) {
            let gib = |bytes: u64| bytes as f64 / f64::from(1u32 << 30);
            eprintln!("{:.1} GiB free for {what} ({})", gib(free), path.display());
            if free < TEST_DISK_NEED {
                eprintln!(
                    "warning: a clean test run needs about {:.0} GiB of disk; free some space \
                     or point CARGO_TARGET_DIR/TMPDIR elsewhere if it fails with \
                     \"No space left on device\"",
                    gib(TEST_DISK_NEED)
                );
            }
        }
    }
}

/// Disk a clean `cargo xtask demo` and `cargo xtask test` need: a clean clone grew to 7 GB
/// (builds 4.5 GB, venvs 2.2 GB), and the tests' temporary data comes on top.
const TEST_DISK_NEED: u64 = 12 << 30;

fn test(rest: &[String]) -> Result<()> {
    setup()?;
    warn_if_disk_is_short();
    if std::env::var_os("CI").is_some() {
        // A clean clone builds once: incremental state would only take disk space.
        std::env::set_var("CARGO_INCREMENTAL", "0");
    }
    util::step("checking formatting (cargo fmt --check)");
    util::cargo(&["fmt", "--all", "--", "--check"])?;
    util::step("linting (cargo clippy -D warnings)");
    util::cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        FAULT_INJECTION,
        "--",
        "-D",
        "warnings",
    ])?;
    util::step("running the test suite (cargo test --workspace --features fault-injection)");
    let mut args = vec!["test", "--workspace", "--features", FAULT_INJECTION];
    args.extend(rest.iter().map(String::as_str));
    // The interop tests find the reference readers through this variable.
    std::env::set_var("RECHUNKER_PYTHON", util::root().join(".venv/bin/python"));
    std::env::set_var(
        "RECHUNKER_PYTHON_ZARR2",
        util::root().join(".venv-zarr2/bin/python"),
    );
    util::cargo(&args)?;
    python::test()?;
    util::step("all tests passed");
    Ok(())
}
