//! Whole files written and read past the page cache (`O_DIRECT`).
//!
//! Scratch pieces are written once and read once, minutes later, by another task; target chunks
//! are written once and not read again by this process. Caching them gains nothing, but filling
//! fresh page-cache pages with gigabytes costs the kernel about as much CPU as a codec (measured
//! on the benchmark machine: ~3 s of system time per 4 GB of pieces, ~4 s per 2 GB of Zarr
//! chunks). With direct I/O the device moves the bytes by DMA.
//!
//! Direct I/O needs memory addresses and file offsets and lengths aligned to what the file
//! system reports (`statx` `STATX_DIOALIGN`, often 512 bytes). Where a part of a file is aligned
//! (a run of a page-aligned task block, at an aligned place in the file) it moves straight
//! between memory and the device; anything else passes through an aligned per-thread buffer, and
//! the last partial block of a file through an ordinary cached handle. Files keep their exact
//! lengths and read back the same either way.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Alignment of the transfer buffer: a page, at least what any file system asks for.
const PAGE: usize = 4096;

/// Bytes of the per-thread transfer buffer; every worker thread holds one.
pub const BUFFER_BYTES: usize = 1 << 20;

/// Objects shorter than this stay on the cached path: a direct transfer waits for the device,
/// which only pays when it saves copying many pages.
pub const MIN_BYTES: u64 = 1 << 20;

/// Most bytes moved by one direct system call (Linux moves at most 2 GiB per call).
const MAX_CALL: usize = 1 << 30;

/// What direct I/O in one directory requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alignment {
    /// Of memory addresses.
    memory: usize,
    /// Of file offsets and transfer lengths.
    offset: usize,
}

impl Alignment {
    /// What every file system accepts, when one does not say what it needs.
    const PAGE: Alignment = Alignment {
        memory: PAGE,
        offset: PAGE,
    };

    /// Whether bytes at `addr` may move to or from file offset `offset` directly.
    fn allows(&self, addr: *const u8, offset: usize) -> bool {
        (addr as usize).is_multiple_of(self.memory) && offset.is_multiple_of(self.offset)
    }

    /// `len` rounded down to whole transfer units.
    fn floor(&self, len: usize) -> usize {
        len / self.offset * self.offset
    }
}

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's page-aligned transfer buffer (allocated on first use).
fn with_buffer<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    BUFFER.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < BUFFER_BYTES + PAGE {
            *buf = vec![0; BUFFER_BYTES + PAGE];
        }
        let at = buf.as_ptr().align_offset(PAGE);
        f(&mut buf[at..at + BUFFER_BYTES])
    })
}

#[cfg(target_os = "linux")]
fn open_direct(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    options.custom_flags(libc::O_DIRECT).open(path)
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_: &mut OpenOptions, _: &Path) -> io::Result<File> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The alignment `file` needs for direct I/O, as its file system reports it; a page where it
/// does not say (kernels before 6.1).
#[cfg(target_os = "linux")]
fn alignment_of(file: &File) -> Alignment {
    use std::os::fd::AsRawFd;
    // SAFETY: statx fills the zeroed struct it is given; the empty path with AT_EMPTY_PATH
    // names the open descriptor itself.
    let reported = unsafe {
        let mut stx: libc::statx = std::mem::zeroed();
        let rc = libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        );
        (rc == 0 && stx.stx_mask & libc::STATX_DIOALIGN != 0).then_some((
            stx.stx_dio_mem_align as usize,
            stx.stx_dio_offset_align as usize,
        ))
    };
    match reported {
        Some((memory, offset))
            if memory.is_power_of_two()
                && offset.is_power_of_two()
                && memory <= PAGE
                && offset <= PAGE =>
        {
            Alignment { memory, offset }
        }
        _ => Alignment::PAGE,
    }
}

#[cfg(not(target_os = "linux"))]
fn alignment_of(_: &File) -> Alignment {
    Alignment::PAGE
}

/// Numbers the probe files of this process, so that concurrent probes never pick one name.
static PROBE_SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What direct I/O needs in `dir`, or `None` where it does not work (tmpfs, some FUSE mounts):
/// a page of data is written and read back directly to find out.
pub fn probe(dir: &Path) -> Option<Alignment> {
    let path = dir.join(format!(
        ".direct-io-test-{}.{}",
        std::process::id(),
        PROBE_SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    // A new file or none: a file of that name that is already there is not ours to write over
    // or remove, so the probe then reports "no direct I/O" and leaves it alone.
    let file = match open_direct(
        OpenOptions::new().write(true).create_new(true).read(true),
        &path,
    ) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return None,
        Err(_) => {
            // Some file systems refuse O_DIRECT only after creating the file (tmpfs before
            // Linux 6.6): with O_EXCL, a file there now is one this open made.
            let _ = std::fs::remove_file(&path);
            return None;
        }
    };
    let works = with_buffer(|buf| -> io::Result<Alignment> {
        buf[..PAGE].fill(0x5a);
        file.write_all_at(&buf[..PAGE], 0)?;
        buf[..PAGE].fill(0);
        file.read_exact_at(&mut buf[..PAGE], 0)?;
        if buf[..PAGE].iter().any(|&b| b != 0x5a) {
            return Err(io::ErrorKind::InvalidData.into());
        }
        Ok(alignment_of(&file))
    });
    let _ = std::fs::remove_file(&path);
    works.ok()
}

/// Creates (or truncates) `path` to hold the concatenation of `parts`.
pub fn write_new(path: &Path, parts: &[&[u8]], align: Alignment) -> io::Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let cached = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let direct = open_direct(OpenOptions::new().write(true), path)?;
    let bulk = align.floor(total);
    // Writes `data`, which starts at the aligned `start`: direct up to `bulk`, cached after.
    let store = |data: &[u8], start: usize| -> io::Result<()> {
        let direct_len = data.len().min(bulk.saturating_sub(start));
        direct.write_all_at(&data[..direct_len], start as u64)?;
        cached.write_all_at(&data[direct_len..], (start + direct_len) as u64)
    };
    with_buffer(|buf| {
        // The buffer holds file bytes `start..start + fill`; `start` is always aligned.
        let (mut start, mut fill) = (0usize, 0usize);
        for part in parts {
            let mut data = *part;
            while !data.is_empty() {
                let offset = start + fill;
                let straight = align.floor(data.len()).min(MAX_CALL);
                if fill == 0 && straight > 0 && align.allows(data.as_ptr(), offset) {
                    direct.write_all_at(&data[..straight], offset as u64)?;
                    data = &data[straight..];
                    start = offset + straight;
                    continue;
                }
                let n = data.len().min(buf.len() - fill);
                buf[fill..fill + n].copy_from_slice(&data[..n]);
                data = &data[n..];
                fill += n;
                if fill == buf.len() {
                    store(buf, start)?;
                    (start, fill) = (start + fill, 0);
                }
            }
        }
        store(&buf[..fill], start)
    })
}

/// Reads the whole file at `path`, `total` bytes long and already open as `cached`, into
/// `parts` in order.
pub fn read_into(
    path: &Path,
    cached: &File,
    total: u64,
    parts: &mut [&mut [u8]],
    align: Alignment,
) -> io::Result<()> {
    let total = total as usize;
    let direct = open_direct(OpenOptions::new().read(true), path)?;
    let bulk = align.floor(total);
    with_buffer(|buf| {
        // The buffer holds file bytes `start..start + len`.
        let (mut start, mut len) = (0usize, 0usize);
        let mut offset = 0usize;
        for part in parts.iter_mut() {
            let mut out: &mut [u8] = part;
            while !out.is_empty() {
                if (start..start + len).contains(&offset) {
                    let n = out.len().min(start + len - offset);
                    out[..n].copy_from_slice(&buf[offset - start..offset - start + n]);
                    out = &mut std::mem::take(&mut out)[n..];
                    offset += n;
                    continue;
                }
                let straight = align
                    .floor(out.len().min(bulk.saturating_sub(offset)))
                    .min(MAX_CALL);
                if straight > 0 && align.allows(out.as_ptr(), offset) {
                    direct.read_exact_at(&mut out[..straight], offset as u64)?;
                    out = &mut std::mem::take(&mut out)[straight..];
                    offset += straight;
                    continue;
                }
                start = align.floor(offset);
                len = buf.len().min(total - start);
                let direct_len = len.min(bulk.saturating_sub(start));
                direct.read_exact_at(&mut buf[..direct_len], start as u64)?;
                cached.read_exact_at(&mut buf[direct_len..len], (start + direct_len) as u64)?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `buf` at the given lengths (the rest is the last part).
    fn cut_ref<'a>(mut buf: &'a [u8], lengths: &[usize]) -> Vec<&'a [u8]> {
        let mut parts = Vec::new();
        for &n in lengths {
            let (a, b) = buf.split_at(n.min(buf.len()));
            parts.push(a);
            buf = b;
        }
        parts.push(buf);
        parts
    }

    fn cut<'a>(mut buf: &'a mut [u8], lengths: &[usize]) -> Vec<&'a mut [u8]> {
        let mut parts = Vec::new();
        for &n in lengths {
            let (a, b) = std::mem::take(&mut buf).split_at_mut(n.min(buf.len()));
            parts.push(a);
            buf = b;
        }
        parts.push(buf);
        parts
    }

    #[test]
    fn the_probe_leaves_files_it_did_not_create_and_removes_its_own() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        // Files with the names the probes of this process pick next (other tests may probe
        // at the same time: plant well ahead).
        let next = PROBE_SEQUENCE.load(std::sync::atomic::Ordering::Relaxed);
        let mut planted = Vec::new();
        for k in next..next + 256 {
            let path = dir
                .path()
                .join(format!(".direct-io-test-{}.{k}", std::process::id()));
            std::fs::write(&path, b"user data").unwrap();
            planted.push(path);
        }
        for _ in 0..4 {
            probe(dir.path());
        }
        for path in &planted {
            assert_eq!(
                std::fs::read(path).unwrap(),
                b"user data",
                "{}",
                path.display()
            );
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names.len(),
            planted.len(),
            "the probe left a file: {names:?}"
        );
        // Where it may create its file, it finds direct I/O and removes the file again.
        let clean = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        assert!(
            probe(clean.path()).is_some(),
            "direct I/O on the project's disk"
        );
        assert_eq!(std::fs::read_dir(clean.path()).unwrap().count(), 0);
    }

    #[test]
    fn aligned_and_unaligned_parts_round_trip_with_exact_lengths() {
        // /tmp may be a tmpfs (no O_DIRECT; the store falls back to cached I/O, tested
        // elsewhere): then the crate's own folder, on the project's disk. Neither: fail, since
        // skipping would pass without testing anything.
        let candidates = [
            tempfile::tempdir().unwrap(),
            tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap(),
        ];
        let (dir, align) = candidates
            .iter()
            .find_map(|d| probe(d.path()).map(|align| (d, align)))
            .expect("direct I/O is supported neither in the temp folder nor in the project's folder; run the tests on a filesystem with O_DIRECT (ext4, xfs)");
        // A page-aligned source, so that some parts qualify for straight transfers.
        let mut block = crate::pages::PageBuffer::default();
        for total in [
            PAGE,
            3 * PAGE + 17,
            BUFFER_BYTES + PAGE - 1,
            2 * BUFFER_BYTES + 5,
        ] {
            block.set_len(total + 2 * PAGE).unwrap();
            for (i, b) in block.iter_mut().enumerate() {
                *b = (i * 7 + i / 4099) as u8;
            }
            // Parts: unaligned, empty, page-aligned whole pages, and an odd tail.
            for lengths in [
                vec![5, 0, PAGE, 3],
                vec![0, PAGE, 1, PAGE + 1],
                vec![total / 3, 0, total / 2],
            ] {
                let first = if lengths[0] == 0 { PAGE } else { 1 };
                let data = &block[first..first + total];
                let parts = cut_ref(data, &lengths);
                let path = dir.path().join(format!("piece-{total}-{}", lengths[1]));
                write_new(&path, &parts, align).unwrap();
                assert_eq!(std::fs::metadata(&path).unwrap().len(), total as u64);
                assert_eq!(std::fs::read(&path).unwrap(), data, "total {total}");

                let mut back = crate::pages::PageBuffer::default();
                back.set_len(total + PAGE).unwrap();
                let out = &mut back[first.min(PAGE)..][..total];
                let cached = File::open(&path).unwrap();
                read_into(
                    &path,
                    &cached,
                    total as u64,
                    &mut cut(&mut *out, &lengths),
                    align,
                )
                .unwrap();
                assert!(out == data, "total {total}, parts {lengths:?}");
            }
        }
    }
}
