//! What things cost on this data, measured at plan time: a few source chunks read and decoded
//! through the adapter, one target write unit encoded with the target's codec, and a scratch
//! piece written and read back where scratch would go. The planner itself stays pure: it gets
//! the rates as a [`CostModel`], and the plan records them, so workers of a distributed run
//! follow the plan without measuring again.
//!
//! Each measurement is bounded in time ([`SOURCE_SECONDS`] and the like) and in memory (what
//! it holds is checked against the task memory before it is allocated); where one cannot be
//! made, the fixed rate of [`CostModel::default`] stays, and the record says why.

use crate::array::{ChunkedArray, DatasetTarget};
use crate::direct_io;
use crate::grid::ChunkGrid;
use crate::meta::ArrayMeta;
use crate::planner::CostModel;
use crate::scratch::ScratchStore;
use crate::units::format_bytes;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Time spent reading source chunks, after the first (which warms up the adapter).
const SOURCE_SECONDS: f64 = 0.05;
/// Most source chunks timed.
const SOURCE_CHUNKS: u64 = 6;
/// Time spent encoding target samples; at least one is encoded.
const TARGET_SECONDS: f64 = 0.04;
/// Encoded source chunks an adapter may keep from the probe's reads for the run (see
/// [`crate::ChunkedArray::read_sample`]); counted in the process's own memory when the source
/// is on an object store.
pub const KEPT_SAMPLE_BYTES: u64 = 8 << 20;
/// Largest sample encoded or scratch piece written.
const SAMPLE_BYTES: u64 = 16 << 20;

/// Where scratch would go, when it is a local folder.
#[derive(Clone, Debug)]
pub struct ScratchProbe {
    /// The scratch folder (it need not exist: the probe writes in its nearest existing
    /// ancestor, a temporary file it creates and removes).
    pub location: PathBuf,
    /// Whether the run moves large pieces past the page cache.
    pub direct: bool,
    /// How the run encodes pieces: lz4 pieces are compressed on the way out and
    /// decompressed on the way in, and never go straight from the block to the disk.
    pub codec: crate::scratch::ScratchCodec,
}

/// A store on an object store that the run talks to, and what one request there costs
/// (measured by [`request_cost`]), or why it could not be measured.
#[derive(Clone, Debug)]
pub struct TimedStore {
    pub location: String,
    pub cost: std::result::Result<RequestCost, String>,
}

/// The object stores a run talks to, whose request waits the planner weighs: reads and writes
/// there overlap `io_window` requests per thread, so a wait costs a thread only a share of it.
#[derive(Clone, Debug, Default)]
pub struct RemoteProbe {
    /// The source is on an object store: its timed reads are split into CPU and waiting.
    pub source: bool,
    /// The scratch, when it is on an object store.
    pub scratch: Option<TimedStore>,
    /// The target, when it is on an object store.
    pub target: Option<TimedStore>,
    /// Requests one thread keeps in flight (`rechunker_store::io_window`).
    pub io_window: u64,
}

/// How to time the data before planning (see [`measure`]).
#[derive(Clone, Debug, Default)]
pub struct Measure {
    /// Where scratch would go, when it is a local folder.
    pub scratch: Option<ScratchProbe>,
    /// The object stores involved, whose request waits are timed.
    pub remote: RemoteProbe,
}

/// The rates a plan was made with, and how each was found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub cost: CostModel,
    /// How the source rate was found (`measured: ...` or `fixed: why`).
    pub source: String,
    pub target: String,
    pub scratch: String,
    /// Seconds the measuring took (a run that plans spends them too).
    #[serde(default)]
    pub seconds: f64,
}

impl Rates {
    /// The fixed rates, with `why` they were not measured.
    pub fn fixed(cost: CostModel, why: &str) -> Rates {
        let text = format!("fixed ({why})");
        Rates {
            cost,
            source: text.clone(),
            target: text.clone(),
            scratch: text,
            seconds: 0.0,
        }
    }
}

/// A rate from `bytes` moved in `seconds`, and its description.
fn rate(bytes: u64, seconds: f64, what: &str) -> (f64, String) {
    let seconds = seconds.max(1e-6);
    (
        bytes as f64 / seconds,
        format!(
            "measured: {what}, {} in {:.1} ms",
            format_bytes(bytes),
            seconds * 1e3
        ),
    )
}

/// Measures what reading `source`, encoding into `target` (an array of `target_meta`, written
/// in units of `write_grid`) and passing through scratch cost, holding at most `memory`
/// bytes. Rates that cannot be measured keep `fallback`'s.
pub fn measure(
    source: &dyn ChunkedArray,
    target: &dyn DatasetTarget,
    target_meta: &ArrayMeta,
    write_grid: &ChunkGrid,
    probes: &Measure,
    memory: u64,
    fallback: CostModel,
) -> Rates {
    let started = Instant::now();
    let mut rates = measure_rates(
        source,
        target,
        target_meta,
        write_grid,
        probes,
        memory,
        fallback,
    );
    rates.seconds = started.elapsed().as_secs_f64();
    // The process's memory reserve was measured before the probes ran; their freed buffers
    // must not stay resident beside the tasks (runs with lz4 scratch peaked 10-30 MiB over
    // `--max-mem` 1 GiB).
    crate::pages::release_freed_heap();
    rates
}

fn measure_rates(
    source: &dyn ChunkedArray,
    target: &dyn DatasetTarget,
    target_meta: &ArrayMeta,
    write_grid: &ChunkGrid,
    probes: &Measure,
    memory: u64,
    fallback: CostModel,
) -> Rates {
    let (scratch, remote) = (probes.scratch.as_ref(), &probes.remote);
    let mut rates = Rates::fixed(fallback, "not measured");
    rates.cost.cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    rates.cost.io_window = remote.io_window.max(1);
    let grid = &source.meta().grid;
    let chunk_bytes = source.meta().max_chunk_bytes();
    let n = grid.num_chunks();
    if n == 0 || chunk_bytes == 0 {
        return Rates::fixed(rates.cost, "the array is empty");
    }
    // The source: a few chunks spread over the array, the first one untimed.
    let mut sample = Vec::new();
    if chunk_bytes.saturating_add(source.read_overhead()) > memory {
        rates.source = "fixed (a source chunk and its buffers do not fit the task memory)".into();
    } else {
        let picks = spread(n, SOURCE_CHUNKS + 1);
        let (mut bytes, mut seconds, mut cpu, mut timed) = (0u64, 0.0f64, 0.0f64, 0u64);
        let mut buffer = Vec::new();
        for (i, &c) in picks.iter().enumerate() {
            let region = grid.chunk_region_linear(c);
            let len = region.num_elements() * source.meta().item_size() as u64;
            buffer.resize(len as usize, 0u8);
            let (started, cpu_started) = (Instant::now(), thread_cpu_seconds());
            if let Err(e) = source.read_sample(&region, &mut buffer) {
                tracing::debug!("source rate not measured: {e}");
                break;
            }
            let took = started.elapsed().as_secs_f64();
            let took_cpu = (thread_cpu_seconds() - cpu_started).clamp(0.0, took);
            if i == 0 {
                sample = buffer.clone();
                // The first read warms the adapter up. On an object store the metadata reads
                // already did, and every chunk read is bytes through the store: time it too.
                if picks.len() > 1 && !remote.source {
                    continue;
                }
            }
            (bytes, seconds, cpu, timed) = (bytes + len, seconds + took, cpu + took_cpu, timed + 1);
            if seconds > SOURCE_SECONDS {
                break;
            }
        }
        drop(buffer);
        if timed > 0 && remote.source && cpu > 0.0 {
            // A remote read waits for the store most of its time; the run overlaps those waits
            // (reads ahead), so they are priced apart from the CPU the reads take.
            let wait = (seconds - cpu).max(0.0) / timed as f64;
            let what = format!(
                "{timed} chunks read and decoded, {:.1} ms of CPU and {:.1} ms waiting for the store each",
                cpu * 1e3 / timed as f64,
                wait * 1e3
            );
            (rates.cost.source_bytes_per_second, rates.source) = rate(bytes, cpu, &what);
            rates.cost.source_wait = wait;
        } else if timed > 0 {
            let what = format!("{timed} chunks read and decoded");
            (rates.cost.source_bytes_per_second, rates.source) = rate(bytes, seconds, &what);
        } else {
            rates.source = "fixed (the source could not be read)".into();
        }
    }
    // The target: its first write unit, filled with the source's values, encoded.
    let mut encoded_ratio = None;
    let unit = write_grid.chunk_region_linear(0);
    let unit_bytes = unit.num_elements() * target_meta.item_size() as u64;
    if sample.is_empty() {
        rates.target = "fixed (no source values to encode)".into();
    } else if unit_bytes > SAMPLE_BYTES.min(memory.saturating_sub(chunk_bytes) / 2) {
        rates.target = format!(
            "fixed (a target unit of {} is more than the {} a sample may take)",
            format_bytes(unit_bytes),
            format_bytes(SAMPLE_BYTES.min(memory.saturating_sub(chunk_bytes) / 2))
        );
    } else {
        let data = tiled(&sample, unit_bytes as usize);
        match target.encode_sample(target_meta, &unit, &data, TARGET_SECONDS) {
            None => {
                rates.target = "fixed (this format's codec is not timed apart from writing)".into()
            }
            Some(Err(e)) => rates.target = format!("fixed (the sample did not encode: {e})"),
            Some(Ok(s)) => {
                let what = format!(
                    "a {} unit encoded {}x to {}",
                    format_bytes(unit_bytes),
                    s.times,
                    format_bytes(s.encoded)
                );
                (rates.cost.target_bytes_per_second, rates.target) =
                    rate(unit_bytes * s.times, s.seconds, &what);
                encoded_ratio = Some(s.encoded as f64 / unit_bytes.max(1) as f64);
            }
        }
    }
    // The target's store, when remote: what one request waits there.
    if let Some(store) = &remote.target {
        match &store.cost {
            Ok(c) => {
                rates.cost.target_wait = c.wait;
                rates.cost.store_serial = rates.cost.store_serial.max(c.serial);
                rates.target.push_str(&format!(
                    "; {:.1} ms per request to {}, {:.1} ms of it served one at a time",
                    c.wait * 1e3,
                    store.location,
                    c.serial * 1e3
                ));
            }
            Err(e) => tracing::debug!("target latency not measured: {e}"),
        }
    }
    // Scratch: one piece written and read back the way the run would, where it would.
    match scratch {
        None => match &remote.scratch {
            Some(store) => match &store.cost {
                Ok(c) => {
                    rates.cost.scratch_wait = c.wait;
                    rates.cost.store_serial = rates.cost.store_serial.max(c.serial);
                    rates.scratch = format!(
                        "fixed for the bytes, plus a measured {:.1} ms per request to {}, {:.1} ms of it served one at a time",
                        c.wait * 1e3,
                        store.location,
                        c.serial * 1e3
                    );
                }
                Err(e) => rates.scratch = format!("fixed (its store did not answer: {e})"),
            },
            None => rates.scratch = "fixed (scratch is not on a local disk)".into(),
        },
        Some(_) if sample.is_empty() => rates.scratch = "fixed (no source values to write)".into(),
        Some(_) if memory.saturating_sub(chunk_bytes) / 2 < direct_io::MIN_BYTES => {
            rates.scratch = "fixed (no memory left for a sample piece)".into()
        }
        Some(probe) => {
            // No more than the array itself would put there (a small array, a small piece).
            let bytes = SAMPLE_BYTES
                .min(memory.saturating_sub(chunk_bytes) / 2)
                .min(source.meta().num_bytes().max(direct_io::MIN_BYTES));
            match scratch_round_trip(
                probe,
                &tiled(&sample, bytes as usize),
                source.meta().item_size(),
            ) {
                Ok((write, read)) => {
                    let what = format!(
                        "a piece written in {:.1} ms and read in {:.1} ms{}{}",
                        write * 1e3,
                        read * 1e3,
                        if probe.direct { ", direct I/O" } else { "" },
                        match probe.codec {
                            crate::scratch::ScratchCodec::None => "",
                            _ => ", lz4",
                        }
                    );
                    (rates.cost.scratch_bytes_per_second, rates.scratch) =
                        rate(2 * bytes, write + read, &what);
                    // The target's encoded bytes go to a disk too (through the page cache):
                    // at the write rate measured here, charged to the target. A target on an
                    // object store pays its requests instead (timed above).
                    if let Some(ratio) = encoded_ratio.filter(|_| remote.target.is_none()) {
                        let per_byte =
                            1.0 / rates.cost.target_bytes_per_second + ratio * write / bytes as f64;
                        rates.cost.target_bytes_per_second = 1.0 / per_byte;
                        rates.target.push_str(&format!(
                            ", plus writing {:.0}% of the bytes at the scratch write rate",
                            ratio * 100.0
                        ));
                    }
                }
                Err(e) => rates.scratch = format!("fixed (the probe failed: {e})"),
            }
        }
    }
    rates
}

/// A key no run writes: asking for it measures a request without reading or writing data.
const LATENCY_PROBE_KEY: &str = ".rechunk-latency-probe";

/// Requests sent at once to find what a store serves one at a time.
const BURST_REQUESTS: u64 = 8;

/// What one request to an object store costs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RequestCost {
    /// Seconds one request waits, alone.
    pub wait: f64,
    /// Seconds of it the store serves one request at a time: a burst of `n` requests sent
    /// together takes `(n - 1) * serial` longer than one.
    pub serial: f64,
}

/// What one request to `store` costs: after one read that opens the connection, two bursts of
/// reads at once of a key that is not there. The quickest single read is the wait of one
/// request alone; the quicker burst tells what the store serves one at a time. Three round
/// trips in all (planning on a store 100 ms away pays them), reads only, so `rechunk plan`
/// writes nothing.
pub fn request_cost(store: &dyn ScratchStore) -> crate::Result<RequestCost> {
    store.get(LATENCY_PROBE_KEY)?;
    let timed = || -> crate::Result<f64> {
        let started = Instant::now();
        store.get(LATENCY_PROBE_KEY)?;
        Ok(started.elapsed().as_secs_f64())
    };
    let (mut wait, mut together) = (f64::INFINITY, f64::INFINITY);
    // A stray delay (a thread scheduled late) only ever adds, so the minima are the measure.
    for _ in 0..2 {
        let started = Instant::now();
        let each = std::thread::scope(|scope| {
            let requests: Vec<_> = (0..BURST_REQUESTS).map(|_| scope.spawn(timed)).collect();
            requests
                .into_iter()
                .map(|r| r.join().unwrap_or(Ok(f64::INFINITY)))
                .collect::<crate::Result<Vec<f64>>>()
        })?;
        together = together.min(started.elapsed().as_secs_f64());
        wait = each.into_iter().fold(wait, f64::min);
    }
    Ok(RequestCost {
        wait,
        serial: ((together - wait) / (BURST_REQUESTS - 1) as f64).clamp(0.0, wait),
    })
}

/// CPU seconds this thread has used (user and system).
fn thread_cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if rc != 0 {
        return 0.0;
    }
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// Up to `k` chunk indices spread evenly over `0..n`, starting at 0.
fn spread(n: u64, k: u64) -> Vec<u64> {
    let k = k.min(n).max(1);
    let mut picks: Vec<u64> = (0..k).map(|i| i * n / k).collect();
    picks.dedup();
    picks
}

/// `len` bytes made of `sample` repeated.
fn tiled(sample: &[u8], len: usize) -> Vec<u8> {
    sample.iter().copied().cycle().take(len).collect()
}

/// The nearest existing folder at or above `path`.
fn existing_folder(path: &Path) -> Option<PathBuf> {
    let mut p = Some(path);
    while let Some(dir) = p {
        if dir.is_dir() {
            return Some(dir.to_path_buf());
        }
        p = dir.parent().filter(|d| !d.as_os_str().is_empty());
    }
    std::env::current_dir().ok().filter(|_| path.is_relative())
}

/// Writes `data` to a new temporary file beside where scratch goes and reads it back, as the
/// run would (direct I/O when it uses it); removes the file. Seconds to write and to read.
fn scratch_round_trip(
    probe: &ScratchProbe,
    data: &[u8],
    item: usize,
) -> std::io::Result<(f64, f64)> {
    use std::os::unix::fs::FileExt;
    let dir = existing_folder(&probe.location)
        .ok_or_else(|| std::io::Error::other("no folder to write in"))?;
    // Only a file this process created is removed: `create_new` proves it.
    let path = dir.join(format!(
        ".rechunk-rate-probe.{}.{}.tmp",
        std::process::id(),
        PROBE_SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .open(&path)?;
    let result = (|| {
        use crate::scratch::{decode_piece, encode_piece_into, raw_piece_trailer, ScratchCodec};
        let align = probe.direct.then(|| direct_io::probe(&dir)).flatten();
        let started = Instant::now();
        // Pieces carry a checksum, computed on the way out and checked on the way in; lz4
        // pieces are compressed too.
        let mut encoded = Vec::new();
        let stored: &[u8] = match probe.codec {
            ScratchCodec::None => {
                std::hint::black_box(raw_piece_trailer("probe", &[data]));
                data
            }
            codec => {
                encode_piece_into("probe", data, codec, item, &mut encoded);
                &encoded
            }
        };
        match align {
            Some(align) => direct_io::write_new(&path, &[stored], align)?,
            None => file.write_all_at(stored, 0)?,
        }
        let write = started.elapsed();
        let mut back = vec![0u8; stored.len()];
        let started = Instant::now();
        match align {
            Some(align) => {
                direct_io::read_into(&path, &file, stored.len() as u64, &mut [&mut back], align)?
            }
            None => file.read_exact_at(&mut back, 0)?,
        }
        match probe.codec {
            ScratchCodec::None => {
                std::hint::black_box(raw_piece_trailer("probe", &[&back]));
            }
            _ => {
                let mut raw = vec![0u8; data.len()];
                decode_piece("probe", &back, &mut raw).map_err(std::io::Error::other)?;
            }
        }
        let read = started.elapsed();
        Ok::<(Duration, Duration), std::io::Error>((write, read))
    })();
    let _ = std::fs::remove_file(&path);
    let (write, read) = result?;
    Ok((write.as_secs_f64(), read.as_secs_f64()))
}

static PROBE_SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_picks_distinct_chunks_from_the_start() {
        assert_eq!(spread(1000, 4), vec![0, 250, 500, 750]);
        assert_eq!(spread(2, 7), vec![0, 1]);
        assert_eq!(spread(1, 7), vec![0]);
    }

    #[test]
    fn the_scratch_probe_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let probe = ScratchProbe {
            location: dir.path().join("out.zarr.rechunk-scratch"),
            direct: true,
            codec: crate::scratch::ScratchCodec::None,
        };
        let (w, r) = scratch_round_trip(&probe, &vec![7u8; 2 << 20], 4).unwrap();
        assert!(w > 0.0 && r > 0.0);
        let lz4 = ScratchProbe {
            codec: crate::scratch::ScratchCodec::Lz4,
            ..probe
        };
        scratch_round_trip(&lz4, &vec![7u8; 2 << 20], 4).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
