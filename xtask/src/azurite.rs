//! Installs Azurite, Microsoft's Azure Storage emulator, into `<workspace>/.tools/azurite/`
//! (gitignored) for the `az://` tests: the npm package, run by the Node.js that Debian's
//! `nodejs` package provides. Running it again does nothing once that version is in place.

use crate::util;
use anyhow::{Context, Result};
use std::process::Command;

/// The Azurite release the tests run; 3.35 is the last that supports Node.js before 22.
const VERSION: &str = "3.35.0";
/// Written last, holding the version: its presence means "installed".
const STAMP: &str = "INSTALLED";

/// Installs Node.js and npm unless `npm` runs (a Node.js from elsewhere, e.g. NodeSource, may
/// bring its own npm and conflict with Debian's), then Azurite unless it is there.
pub fn install() -> Result<()> {
    let dir = util::root().join(".tools/azurite");
    let stamp = dir.join(STAMP);
    if std::fs::read_to_string(&stamp).is_ok_and(|v| v.trim() == VERSION) {
        util::step(&format!(
            "Azurite {VERSION} is installed in {}",
            dir.display()
        ));
        return Ok(());
    }
    let npm_runs = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !npm_runs {
        util::apt_install(&["nodejs", "npm"])?;
    }
    util::step(&format!(
        "installing Azurite {VERSION} (the Azure Blob Storage emulator) from npm into {}",
        dir.display()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    util::run(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(format!("azurite@{VERSION}")),
    )?;
    std::fs::write(&stamp, VERSION).with_context(|| format!("cannot write {}", stamp.display()))
}
