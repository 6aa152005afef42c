//! `cargo xtask demo`: the main job on a built-in example. A year of hourly data as 12 monthly
//! NetCDF-4 files in time slices becomes one cloud-optimized Zarr v3 store with time-series
//! chunks in shards, then is verified value for value.

use crate::{synth, util};
use anyhow::Result;
use std::process::Command;

/// Hours in each month of 2001.
const MONTHS: [u64; 12] = [744, 672, 744, 720, 744, 720, 744, 744, 720, 744, 720, 744];
const LAT: u64 = 73;
const LON: u64 = 144;

pub fn run(_args: &[String]) -> Result<()> {
    let rechunk = util::build_rechunk()?;
    let dir = util::root().join("target/demo");
    let _ = std::fs::remove_dir_all(&dir);
    let archive = dir.join("archive");
    std::fs::create_dir_all(&archive)?;
    let hours: u64 = MONTHS.iter().sum();
    util::step(&format!(
        "making an example NetCDF archive: 12 monthly NetCDF-4 files of hourly tas on a {LAT} x {LON} grid, \
         time-slice chunks (1, {LAT}, {LON}), zlib: {hours} hours, {} MB",
        hours * LAT * LON * 4 / 1_000_000
    ));
    let mut t0 = 0;
    for (m, h) in MONTHS.iter().enumerate() {
        let raw = dir.join(format!("month-{m:02}.raw"));
        synth::write_month(&raw, t0, *h, LAT, LON)?;
        let nc = archive.join(format!("tas_2001{:02}.nc", m + 1));
        util::run(
            Command::new(&rechunk)
                .arg(&raw)
                .arg(&nc)
                .args(["--chunks", "time=1", "--codec", "zlib:1", "-q"]),
        )?;
        let _ = std::fs::remove_dir_all(&raw);
        t0 += h;
    }
    let pattern = format!("{}/*.nc", archive.display());
    util::run(Command::new(&rechunk).args(["inspect", &pattern, "--concat-dim", "time"]))?;

    let dst = dir.join("tas.zarr");
    let args = [
        "--concat-dim",
        "time",
        "--chunks",
        "time=-1,lat=24,lon=24",
        "--shards",
        "time=-1,lat=24,lon=48",
        "--codec",
        "zstd:3",
        "--max-mem",
        "1GiB",
    ];
    util::step("plan: the archive to cloud-optimized Zarr v3, time-series chunks (8760, 24, 24) in (8760, 24, 48) shards, zstd, within 1 GiB");
    util::run(
        Command::new(&rechunk)
            .arg("plan")
            .arg(&pattern)
            .arg(&dst)
            .args(args),
    )?;
    util::step("rechunking");
    util::run(Command::new(&rechunk).arg(&pattern).arg(&dst).args(args))?;
    util::step("verifying every value against the archive");
    util::run(
        Command::new(&rechunk)
            .args(["verify", &pattern])
            .arg(&dst)
            .args(["--concat-dim", "time"]),
    )?;
    util::run(Command::new(&rechunk).arg("inspect").arg(&dst))?;
    util::step(&format!(
        "done: {} is ready for xarray.open_zarr; the archive is in {}",
        dst.display(),
        archive.display()
    ));
    Ok(())
}
