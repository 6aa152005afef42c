//! What one read or one write holds beyond its buffer, measured against what the adapter
//! declares ([`ChunkedArray::read_overhead`], [`ChunkedArrayMut::write_overhead`],
//! [`DatasetTarget::write_overhead`]): the planner budgets exactly those.
//!
//! Measured as the peak resident size of the process during the call minus the resident size
//! before it, so native libraries' allocations count too. The caller's buffer is allocated and
//! touched before, so it is not part of the peak. Other cases are held off meanwhile.

use super::helpers::{array, open, open_array, pick_dtype, read, units};
use super::{data_for, sub, Capabilities, Factory, MEASURING};
use crate::{DatasetMeta, Region};

/// Slack allowed beyond the declared overhead: allocator bookkeeping, thread stacks touched by a
/// library's pool, small metadata, and the page-granular noise of resident sizes.
pub const MEMORY_MARGIN: u64 = 4 << 20;

/// Bytes of one chunk of the measured array: large against [`MEMORY_MARGIN`], so an adapter
/// that holds one chunk more than it declares fails.
const CHUNK_BYTES: u64 = 8 << 20;

/// One write of a whole unit and one read across four chunks stay within the declared overheads.
pub fn memory_overhead(factory: &dyn Factory, caps: &Capabilities) {
    let _alone = MEASURING.write().unwrap_or_else(|e| e.into_inner());
    let probe = ResidentProbe::new();
    let dt = pick_dtype(caps);
    let item = dt.size() as u64;
    let rows = 512;
    let cols = CHUNK_BYTES / item / rows;
    let meta = array("big", dt, &[2 * rows, 2 * cols], &[rows, cols]);
    let dataset = DatasetMeta {
        arrays: vec![meta.clone()],
        attrs: Default::default(),
    };
    let data = data_for(&meta, 99);
    let target = factory.create("memory").expect("a target");
    target.prepare(&dataset).expect("prepare");
    let declared_by_target = target.write_overhead(&meta);
    let array_mut = target.create_array(&meta).expect("the array");
    let declared = array_mut.write_overhead().min(declared_by_target);
    let units = units(target.as_ref(), &meta);
    assert!(units.len() >= 2, "the write grid has {} units", units.len());
    for (i, unit) in units.iter().enumerate() {
        let bytes = sub(&data, &meta.shape(), unit, meta.item_size());
        // The first write opens what the library opens once; later ones are what a task costs.
        if i == 1 {
            let used = probe.peak_during(|| array_mut.write_region(unit, &bytes).expect("write"));
            eprintln!(
                "conformance: a write of {} bytes held {used} bytes; declared {declared}",
                bytes.len()
            );
            assert!(
                used <= declared + MEMORY_MARGIN,
                "{}: writing {unit} ({} bytes) held {used} bytes beyond its data; declared {declared} \
                 (array {}, target {declared_by_target}) + margin {MEMORY_MARGIN}",
                target.location(),
                bytes.len(),
                array_mut.write_overhead(),
            );
        } else {
            array_mut.write_region(unit, &bytes).expect("write");
        }
    }
    drop(array_mut);
    target.finalize(&dataset).expect("finalize");
    drop(target);

    let source = open(factory, "memory");
    let array = open_array(source.as_ref(), "big");
    let warm = Region::new(vec![0, 0], vec![1, 1]);
    let _ = read(array.as_ref(), &warm);
    let r = Region::new(vec![rows / 2, cols / 2], vec![rows, cols]);
    let mut out = vec![0xA5u8; (r.num_elements() * item) as usize];
    let declared = array.read_overhead();
    let used = probe.peak_during(|| array.read_region(&r, &mut out).expect("read"));
    eprintln!(
        "conformance: a read of {} bytes held {used} bytes; declared {declared}",
        out.len()
    );
    assert!(
        used <= declared + MEMORY_MARGIN,
        "{}: reading {r} ({} bytes) held {used} bytes beyond its buffer; declared {declared} + margin {MEMORY_MARGIN}",
        source.location(),
        out.len()
    );
    assert!(
        out == sub(&data, &meta.shape(), &r, meta.item_size()),
        "read {r} differs"
    );
}

/// Resident-size measurement of this process (Linux `/proc`).
struct ResidentProbe;

impl ResidentProbe {
    /// Makes freed buffers leave the resident set at once (glibc keeps big ones in its heap
    /// otherwise, and a peak would hide in memory that was already resident).
    fn new() -> Self {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only sets allocator parameters; any value is valid.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
        }
        ResidentProbe
    }

    /// `/proc/self/status` field `field` (`VmRSS:`, `VmHWM:`) in bytes.
    fn status(field: &str) -> u64 {
        let text = std::fs::read_to_string("/proc/self/status")
            .expect("the memory case needs Linux /proc/self/status");
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
        let kib: u64 = line
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{field} {line}: {e}"));
        kib << 10
    }

    /// Bytes by which the resident peak during `f` exceeds the resident size before it.
    fn peak_during(&self, f: impl FnOnce()) -> u64 {
        let before = Self::status("VmRSS:");
        std::fs::write("/proc/self/clear_refs", "5")
            .expect("the memory case resets the resident peak through /proc/self/clear_refs");
        f();
        Self::status("VmHWM:").saturating_sub(before)
    }
}
