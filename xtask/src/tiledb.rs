//! Fetches libtiledb for the `tiledb-sys` crate into `<workspace>/.tools/tiledb/` (gitignored).
//!
//! No registry here packages TileDB for Rust or C, so the library comes from the tiledb-py wheel
//! on PyPI: TileDB core 2.30.0, built for manylinux_2_28 (glibc 2.28 or later) and needing
//! nothing but the C and C++ runtime. `pip download` fetches exactly that wheel whatever the
//! local Python is (and works where a Debian Python refuses `pip install`); its sha256 is
//! checked, and the one shared library is unpacked from it (a wheel is a zip file; Python's
//! `zipfile` unpacks it, so no zip crate is needed). Running it again does nothing once the
//! library is in place.
//!
//! Wiring: `mod tiledb;` in `main.rs` and `tiledb::install()?;` in `setup()`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The wheel and what is in it.
const VERSION: &str = "0.36.1";
const WHEEL: &str = "tiledb-0.36.1-cp311-cp311-manylinux_2_28_x86_64.whl";
const WHEEL_SHA256: &str = "28031477d62b74ded0123559f02f784913bb440bc4d739c0d2de8334a372015b";
const MEMBER: &str = "tiledb.libs/libtiledb-edd2b82f.so.2.30";
/// The library's file name, which is also its soname.
pub const LIBRARY: &str = "libtiledb-edd2b82f.so.2.30";
/// Written last, after the library: its presence with the wheel's hash means "installed".
const STAMP: &str = "INSTALLED";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Installs libtiledb into `<workspace>/.tools/tiledb/` unless it is there; returns that folder.
pub fn install() -> Result<PathBuf> {
    install_into(&workspace_root().join(".tools/tiledb"))
}

/// Installs libtiledb into `dir` unless it is there already; returns `dir`.
pub fn install_into(dir: &Path) -> Result<PathBuf> {
    if is_installed(dir) {
        eprintln!("libtiledb 2.30 is installed in {}", dir.display());
        return Ok(dir.to_path_buf());
    }
    if cfg!(not(all(target_os = "linux", target_arch = "x86_64"))) {
        bail!("the libtiledb this setup fetches is built for Linux x86_64 only; on another platform install TileDB 2.30 and set TILEDB_LIB_DIR to the folder holding libtiledb");
    }
    eprintln!(
        "\n==> fetching libtiledb 2.30 (tiledb-py {VERSION} wheel from PyPI) into {}",
        dir.display()
    );
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let download = dir.join("download");
    let _ = std::fs::remove_dir_all(&download);
    std::fs::create_dir_all(&download)
        .with_context(|| format!("cannot create {}", download.display()))?;
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            "manylinux_2_28_x86_64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            &format!("tiledb=={VERSION}"),
            "-d",
        ])
        .arg(&download)
        .status()
        .context("cannot run `python3 -m pip`; install Python 3 with pip")?;
    if !status.success() {
        bail!("`python3 -m pip download tiledb=={VERSION}` failed (see above); check the network connection to PyPI");
    }
    let wheel = download.join(WHEEL);
    if !wheel.is_file() {
        bail!(
            "pip did not save {WHEEL} in {}; the index served another file",
            download.display()
        );
    }
    // Python checks the hash and unpacks the one member into a temporary name, then renames it,
    // so an interrupted setup never leaves a truncated library under the real name.
    let script = r#"
import hashlib, shutil, sys, zipfile
wheel, expected, member, dest = sys.argv[1:5]
h = hashlib.sha256()
with open(wheel, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
if h.hexdigest() != expected:
    sys.exit(f"sha256 of {wheel} is {h.hexdigest()}, expected {expected}")
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
"#;
    let partial = dir.join(format!("{LIBRARY}.partial"));
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&wheel)
        .arg(WHEEL_SHA256)
        .arg(MEMBER)
        .arg(&partial)
        .status()
        .context("cannot run python3")?;
    if !status.success() {
        let _ = std::fs::remove_file(&partial);
        bail!(
            "cannot unpack libtiledb from {} (see above)",
            wheel.display()
        );
    }
    let library = dir.join(LIBRARY);
    std::fs::rename(&partial, &library)
        .with_context(|| format!("cannot move the library to {}", library.display()))?;
    std::fs::write(dir.join(STAMP), format!("{WHEEL} sha256 {WHEEL_SHA256}\n"))
        .with_context(|| format!("cannot write {}", dir.join(STAMP).display()))?;
    let _ = std::fs::remove_dir_all(&download);
    eprintln!("libtiledb 2.30 installed: {}", library.display());
    Ok(dir.to_path_buf())
}

/// True when `dir` holds the library from this very wheel.
fn is_installed(dir: &Path) -> bool {
    let stamp = std::fs::read_to_string(dir.join(STAMP)).unwrap_or_default();
    stamp.contains(WHEEL_SHA256)
        && std::fs::metadata(dir.join(LIBRARY)).is_ok_and(|m| m.is_file() && m.len() > 1 << 20)
}
