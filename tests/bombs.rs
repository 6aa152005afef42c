//! Decompression bombs through the `rechunk` binary: a Zarr source whose one chunk is a ~32 KB
//! zstd frame (or a few MB of gzip) that inflates to 1 GiB must fail with one clear error while
//! the whole process stays under `--max-mem`, and leave no target that looks complete.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

const GIB: u64 = 1 << 30;
/// 4 x 512 x 512 float32 in chunks of 1 x 512 x 512: 1 MiB a chunk.
const CHUNK_BYTES: u64 = 512 * 512 * 4;

/// A zstd frame of RLE blocks (128 KiB of `byte` each, 4 bytes apiece) that decodes to `total`
/// bytes, with its content size in the header when `content_size`.
fn zstd_rle(total: u64, byte: u8, content_size: bool) -> Vec<u8> {
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd];
    if content_size {
        out.push(0b1100_0000);
        out.push(7 << 3);
        out.extend_from_slice(&total.to_le_bytes());
    } else {
        out.push(0);
        out.push(7 << 3);
    }
    const BLOCK: u64 = 128 << 10;
    let blocks = total.div_ceil(BLOCK);
    for i in 0..blocks {
        let size = BLOCK.min(total - i * BLOCK);
        let header = (size << 3) | (1 << 1) | u64::from(i + 1 == blocks);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.push(byte);
    }
    out
}

/// Deflate bits, least significant first.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u64, count: u32) {
        self.acc |= value << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    /// A fixed-Huffman code (sent most significant bit first).
    fn code(&mut self, code: u64, len: u32) {
        let reversed = (0..len).fold(0, |r, i| (r << 1) | ((code >> i) & 1));
        self.put(reversed, len);
    }
}

/// A gzip member whose one fixed-Huffman block inflates to `total` zero bytes: a literal 0,
/// then matches of 258 bytes at distance 1 (13 bits each: about 6.5 MB a GiB). CRC and size
/// are left zero: a bounded decoder never gets there, an unbounded one inflates it all first.
fn gzip_zeros(total: u64) -> Vec<u8> {
    let mut bits = Bits {
        out: vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff],
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman
    bits.code(0x30, 8); // literal 0
    let mut left = total - 1;
    while left >= 258 {
        bits.code(0xc5, 8); // length 258 (code 285)
        bits.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.code(0x30, 8);
    }
    bits.code(0, 7); // end of block
    bits.put(0, 7);
    let mut out = bits.out;
    out.extend_from_slice(&[0; 8]);
    out
}

fn write_json(path: &Path, value: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec(value).unwrap()).unwrap();
}

/// A v3 group with array `tas` (4 x 512 x 512 float32, `codec`), whose chunk 2 is `bomb` and
/// the others `good`.
fn source(root: &Path, codec: Value, good: &[u8], bomb: &[u8]) {
    write_json(
        &root.join("zarr.json"),
        &json!({"zarr_format": 3, "node_type": "group", "attributes": {}}),
    );
    write_json(
        &root.join("tas/zarr.json"),
        &json!({
            "zarr_format": 3, "node_type": "array", "shape": [4, 512, 512], "data_type": "float32",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, 512, 512]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0.0,
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, codec],
            "attributes": {}, "dimension_names": ["time", "lat", "lon"],
        }),
    );
    for t in 0..4 {
        let path = root.join(format!("tas/c/{t}/0/0"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, if t == 2 { bomb } else { good }).unwrap();
    }
}

/// Runs `rechunk args` and returns its exit status, stderr and peak RSS in bytes (the child's
/// own `ru_maxrss`, from `wait4`).
#[allow(clippy::zombie_processes)] // reaped by `wait4`, which std's `Child` does not know of
fn run_measured(args: &[&str]) -> (ExitStatus, String, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rechunk"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rechunk");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 fills it and the status of our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are live locals wait4 writes; `pid` is our own child, not
    // yet reaped (std's `wait` is never called on it), so it names no other process.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    (
        ExitStatus::from_raw(status),
        err,
        usage.ru_maxrss as u64 * 1024,
    )
}

fn assert_bounded(dir: &Path, name: &str, codec: Value, good: &[u8], bomb: &[u8]) {
    let src = dir.join(format!("{name}.zarr"));
    source(&src, codec, good, bomb);
    let dst = dir.join(format!("{name}-out.zarr"));
    let (src, dst) = (src.display().to_string(), dst.display().to_string());
    let (status, err, peak) = run_measured(&[
        &src,
        &dst,
        "--chunks",
        "time=-1,lat=64,lon=64",
        "--max-mem",
        "200MiB",
    ]);
    eprintln!(
        "{name}: bomb of {} bytes, {status}, peak RSS {:.1} MiB\n{err}",
        bomb.len(),
        peak as f64 / (1 << 20) as f64
    );
    assert!(!status.success(), "{name}: a bomb must fail: {err}");
    assert!(!err.contains("panicked"), "{name}: {err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{name}: one error line: {err}"
    );
    let expected = format!(
        "`tas` chunk tas/c/2/0/0 in {src} decodes to more than the {CHUNK_BYTES} bytes its shape holds: the chunk is corrupt or hostile"
    );
    assert!(err.contains(&expected), "{name}: {err}\nwanted: {expected}");
    assert!(
        peak < 200 << 20,
        "{name}: peak RSS {peak} bytes is over --max-mem 200MiB"
    );
    // Nothing that looks complete: the target cannot be opened.
    let inspect = rechunk(&["inspect", &dst]);
    assert!(
        !inspect.status.success(),
        "{name}: the target looks complete: {}",
        stdout(&inspect)
    );
}

#[test]
fn zstd_bomb_of_a_gib_stays_under_max_mem() {
    let dir = tempfile::tempdir().unwrap();
    let zstd = json!({"name": "zstd", "configuration": {"level": 3, "checksum": false}});
    let good = zstd_rle(CHUNK_BYTES, 0x42, true);
    // With its content size in the header (fails before decoding) and without (fails when the
    // chunk's buffer is full).
    for (name, content_size) in [("zstd", true), ("zstd-no-size", false)] {
        let bomb = zstd_rle(GIB, 0x42, content_size);
        assert!(bomb.len() < 40 << 10, "{}", bomb.len());
        assert_bounded(dir.path(), name, zstd.clone(), &good, &bomb);
    }
}

#[test]
fn gzip_bomb_of_a_gib_stays_under_max_mem() {
    let dir = tempfile::tempdir().unwrap();
    let gzip = json!({"name": "gzip", "configuration": {"level": 1}});
    // The honest chunks use the same construction, with a valid trailer.
    let mut good = gzip_zeros(CHUNK_BYTES);
    let n = good.len();
    let crc = crc32_zeros(CHUNK_BYTES);
    good[n - 8..n - 4].copy_from_slice(&crc.to_le_bytes());
    good[n - 4..].copy_from_slice(&(CHUNK_BYTES as u32).to_le_bytes());
    let bomb = gzip_zeros(GIB + GIB / 2);
    assert_bounded(dir.path(), "gzip", gzip, &good, &bomb);
}

/// CRC-32 of `n` zero bytes.
fn crc32_zeros(n: u64) -> u32 {
    let mut crc = !0u32;
    for _ in 0..n {
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crafted_gzip_is_valid() {
    // The honest chunk of the gzip test is real gzip: the bomb is the same construction.
    let dir = tempfile::tempdir().unwrap();
    let mut good = gzip_zeros(CHUNK_BYTES);
    let n = good.len();
    good[n - 8..n - 4].copy_from_slice(&crc32_zeros(CHUNK_BYTES).to_le_bytes());
    good[n - 4..].copy_from_slice(&(CHUNK_BYTES as u32).to_le_bytes());
    let gzip = json!({"name": "gzip", "configuration": {"level": 1}});
    let src = dir.path().join("ok.zarr");
    source(&src, gzip, &good, &good);
    let dst = dir.path().join("ok.raw");
    ok(&[
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunks",
        "time=-1,lat=64,lon=64",
        "-q",
    ]);
    ok(&["verify", src.to_str().unwrap(), dst.to_str().unwrap()]);
}
