//! The conformance suites checked against known stores: the local scratch directory passes the
//! scratch suite; an in-memory adapter passes the adapter suite, and each flaw planted in it is
//! caught by the case meant to catch it (so no case passes by being unable to fail).

use rechunker_core::conformance::{scratch_store, Capabilities, Factory, CASES};
use rechunker_core::layout::copy_box;
use rechunker_core::scratch::{LocalScratch, ScratchIo};
use rechunker_core::{
    ArrayMeta, ChunkedArray, ChunkedArrayMut, DatasetMeta, DatasetSource, DatasetTarget, Region,
};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

#[test]
fn local_scratch_direct_io() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalScratch::open(dir.path().join("scratch")).unwrap();
    scratch_store(&store);
}

#[test]
fn local_scratch_cached_io() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalScratch::open(dir.path().join("scratch"))
        .unwrap()
        .with_io(ScratchIo::Cached);
    scratch_store(&store);
}

/// What the in-memory adapter gets wrong, one thing at a time.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flaw {
    None,
    /// Array attributes are not kept.
    DropsArrayAttrs,
    /// Unwritten elements read as zero.
    IgnoresFill,
    /// The last element of every read stays untouched.
    ShortReads,
    /// Creating the target stores something.
    EagerCreate,
    /// A read allocates three times the array beyond what it declares.
    HiddenReadBuffer,
    /// The element type is stored as another of the same size.
    WrongType,
    /// Unwritten bools read as a byte that is no bool (0x81).
    BoolGarbage,
    /// A write copies the whole array, changes its copy and stores it back: writes from two
    /// threads lose one another's units.
    RacyWrites,
}

#[derive(Default)]
struct Stored {
    /// Keys stored per dataset name, as a format would list files.
    keys: BTreeMap<String, Vec<String>>,
    arrays: BTreeMap<(String, String), Arc<MemArray>>,
    finalized: BTreeMap<String, DatasetMeta>,
}

struct MemFactory {
    flaw: Flaw,
    stored: Arc<Mutex<Stored>>,
}

struct MemTarget {
    name: String,
    flaw: Flaw,
    stored: Arc<Mutex<Stored>>,
}

struct MemSource {
    name: String,
    meta: DatasetMeta,
    stored: Arc<Mutex<Stored>>,
}

struct MemArray {
    meta: ArrayMeta,
    flaw: Flaw,
    data: Mutex<Vec<u8>>,
}

impl MemFactory {
    fn new(flaw: Flaw) -> Self {
        MemFactory {
            flaw,
            stored: Arc::default(),
        }
    }
}

impl Factory for MemFactory {
    fn create(&self, name: &str) -> rechunker_core::Result<Box<dyn DatasetTarget>> {
        if self.flaw == Flaw::EagerCreate {
            let mut s = self.stored.lock().unwrap();
            s.keys.entry(name.into()).or_default().push("lock".into());
        }
        Ok(Box::new(MemTarget {
            name: name.into(),
            flaw: self.flaw,
            stored: self.stored.clone(),
        }))
    }

    fn open(&self, name: &str) -> rechunker_core::Result<Box<dyn DatasetSource>> {
        let meta = self.stored.lock().unwrap().finalized.get(name).cloned();
        let meta = meta.ok_or_else(|| rechunker_core::Error::storage(format!("no {name}")))?;
        Ok(Box::new(MemSource {
            name: name.into(),
            meta,
            stored: self.stored.clone(),
        }))
    }

    fn stored(&self, name: &str) -> Option<Vec<String>> {
        let s = self.stored.lock().unwrap();
        Some(s.keys.get(name).cloned().unwrap_or_default())
    }
}

impl DatasetTarget for MemTarget {
    fn location(&self) -> &str {
        &self.name
    }

    fn create_array(&self, meta: &ArrayMeta) -> rechunker_core::Result<Arc<dyn ChunkedArrayMut>> {
        let mut meta = meta.clone();
        match self.flaw {
            Flaw::DropsArrayAttrs => meta.attrs = Default::default(),
            Flaw::IgnoresFill => meta.fill_value = None,
            Flaw::WrongType if meta.dtype == rechunker_core::DataType::Int64 => {
                meta.dtype = rechunker_core::DataType::UInt64
            }
            _ => {}
        }
        let mut data = meta
            .fill_bytes()
            .repeat(meta.num_bytes() as usize / meta.item_size());
        if self.flaw == Flaw::IgnoresFill {
            data.fill(0);
        }
        if self.flaw == Flaw::BoolGarbage && meta.dtype == rechunker_core::DataType::Bool {
            data.fill(0x81);
        }
        let array = Arc::new(MemArray {
            meta,
            flaw: self.flaw,
            data: Mutex::new(data),
        });
        let mut s = self.stored.lock().unwrap();
        s.keys
            .entry(self.name.clone())
            .or_default()
            .push(meta_key(&array.meta));
        s.arrays
            .insert((self.name.clone(), array.meta.name.clone()), array.clone());
        Ok(array)
    }

    fn finalize(&self, meta: &DatasetMeta) -> rechunker_core::Result<()> {
        let mut s = self.stored.lock().unwrap();
        let mut meta = meta.clone();
        for a in &mut meta.arrays {
            if let Some(stored) = s.arrays.get(&(self.name.clone(), a.name.clone())) {
                *a = stored.meta.clone();
            }
        }
        s.keys
            .entry(self.name.clone())
            .or_default()
            .push("dataset".into());
        s.finalized.insert(self.name.clone(), meta);
        Ok(())
    }
}

fn meta_key(meta: &ArrayMeta) -> String {
    format!("{}/meta", meta.name)
}

impl DatasetSource for MemSource {
    fn location(&self) -> &str {
        &self.name
    }

    fn meta(&self) -> &DatasetMeta {
        &self.meta
    }

    fn open_array(&self, name: &str) -> rechunker_core::Result<Arc<dyn ChunkedArray>> {
        let s = self.stored.lock().unwrap();
        let array = s
            .arrays
            .get(&(self.name.clone(), name.to_string()))
            .cloned();
        Ok(array.ok_or_else(|| rechunker_core::Error::storage(format!("no {name}")))?)
    }
}

impl ChunkedArray for MemArray {
    fn meta(&self) -> &ArrayMeta {
        &self.meta
    }

    fn read_region(&self, region: &Region, out: &mut [u8]) -> rechunker_core::Result<()> {
        let item = self.meta.item_size();
        let data = self.data.lock().unwrap();
        let zero = vec![0; region.ndim()];
        let shape = self.meta.shape();
        copy_box(
            &data,
            &shape,
            &region.start,
            out,
            &region.shape,
            &zero,
            &region.shape,
            item,
        );
        if self.flaw == Flaw::ShortReads && !out.is_empty() {
            let n = out.len();
            out[n - item..].fill(0xEE);
        }
        if self.flaw == Flaw::HiddenReadBuffer {
            let hidden = vec![1u8; 3 * data.len()];
            std::hint::black_box(&hidden);
        }
        Ok(())
    }

    fn read_overhead(&self) -> u64 {
        0
    }
}

impl ChunkedArrayMut for MemArray {
    fn write_region(&self, region: &Region, data: &[u8]) -> rechunker_core::Result<()> {
        let item = self.meta.item_size();
        let zero = vec![0; region.ndim()];
        let shape = self.meta.shape();
        if self.flaw == Flaw::RacyWrites {
            let mut copy = self.data.lock().unwrap().clone();
            std::thread::sleep(std::time::Duration::from_millis(2));
            copy_box(
                data,
                &region.shape,
                &zero,
                &mut copy,
                &shape,
                &region.start,
                &region.shape,
                item,
            );
            *self.data.lock().unwrap() = copy;
            return Ok(());
        }
        let mut all = self.data.lock().unwrap();
        copy_box(
            data,
            &region.shape,
            &zero,
            &mut all,
            &shape,
            &region.start,
            &region.shape,
            item,
        );
        Ok(())
    }

    fn write_overhead(&self) -> u64 {
        0
    }
}

/// The case of `name`, run on an adapter with `flaw`; true if it passed.
fn passes(flaw: Flaw, name: &str) -> bool {
    let (_, case) = CASES.iter().find(|(n, _)| *n == name).expect("a case");
    let factory = MemFactory::new(flaw);
    catch_unwind(AssertUnwindSafe(|| {
        case(&factory, &Capabilities::everything())
    }))
    .is_ok()
}

#[test]
fn a_faithful_adapter_passes_every_case() {
    for (name, _) in CASES {
        assert!(passes(Flaw::None, name), "{name} fails a faithful adapter");
    }
}

#[test]
fn each_flaw_is_caught_by_its_case() {
    for (flaw, case) in [
        (Flaw::DropsArrayAttrs, "attributes"),
        (Flaw::IgnoresFill, "fill_values"),
        (Flaw::ShortReads, "regions_crossing_chunks"),
        (Flaw::ShortReads, "partial_edge_chunks"),
        (Flaw::ShortReads, "concurrent_reads"),
        (Flaw::EagerCreate, "nothing_stored_before_first_array"),
        (Flaw::HiddenReadBuffer, "memory_overhead"),
        (Flaw::WrongType, "round_trip_every_dtype"),
        (Flaw::BoolGarbage, "unwritten_reads_as_reported_fill"),
        (Flaw::RacyWrites, "concurrent_writes"),
    ] {
        assert!(!passes(flaw, case), "{case} does not catch {flaw:?}");
    }
}
