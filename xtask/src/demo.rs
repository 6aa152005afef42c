//! `cargo xtask demo`: the main job on a built-in example.

use crate::{synth, util};
use anyhow::Result;
use std::process::Command;

pub fn run(_args: &[String]) -> Result<()> {
    let rechunk = util::build_rechunk()?;
    let dir = util::root().join("target/demo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (src, dst) = (
        dir.join("tas-timeslices.raw"),
        dir.join("tas-timeseries.zarr"),
    );

    util::step("making an example: tas(time=2000, lat=181, lon=360) float32 in time slices (1, 181, 360), 521 MB");
    synth::write_tas(&src, 2000, 181, 360)?;
    util::run(Command::new(&rechunk).arg("inspect").arg(&src))?;

    let args = [
        "--chunks",
        "time=-1,lat=16,lon=16",
        "--shards",
        "time=-1,lat=32,lon=32",
        "--codec",
        "zstd:3",
        "--max-mem",
        "256MiB",
    ];
    util::step("planning the rechunk to cloud-optimized Zarr v3: time-series chunks (2000, 16, 16) in (2000, 32, 32) shards, zstd, within 256 MiB");
    util::run(
        Command::new(&rechunk)
            .arg("plan")
            .arg(&src)
            .arg(&dst)
            .args(args),
    )?;

    util::step("rechunking");
    util::run(Command::new(&rechunk).arg(&src).arg(&dst).args(args))?;

    util::step("verifying every value against the source");
    util::run(Command::new(&rechunk).arg("verify").arg(&src).arg(&dst))?;
    util::run(Command::new(&rechunk).arg("inspect").arg(&dst))?;
    util::step(&format!("done: the result is in {}", dst.display()));
    Ok(())
}
