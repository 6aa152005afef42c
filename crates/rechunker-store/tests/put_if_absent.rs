//! `put_if_absent` is a create-if-absent that the store itself decides: of writers racing for
//! one key exactly one wins and the others are told the key exists, on the local scratch
//! directory, on object_store's in-memory store and on S3 (moto, from the workspace venv).

use object_store::memory::InMemory;
use rechunker_core::scratch::{LocalScratch, ScratchStore};
use rechunker_store::ObjectScratch;
use std::sync::{Arc, Barrier};

#[path = "../test-support/moto.rs"]
mod moto;
use moto::Moto;

const WRITERS: usize = 4;
const ROUNDS: usize = 25;

/// Races one writer per store (each its own instance, as separate processes would have) for
/// `ROUNDS` fresh keys, all released at once; fails unless each key has exactly one winner and
/// holds the winner's bytes.
fn race(stores: &[Arc<dyn ScratchStore>]) -> Result<(), String> {
    for round in 0..ROUNDS {
        let key = format!("race/{round}/rechunk-scratch.json");
        let start = Barrier::new(stores.len());
        let outcomes: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    let (key, start) = (&key, &start);
                    s.spawn(move || {
                        start.wait();
                        store
                            .put_if_absent(key, format!("writer {i}").as_bytes())
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<usize> = (0..outcomes.len()).filter(|&i| outcomes[i]).collect();
        if winners.len() != 1 {
            return Err(format!("{key}: {} writers won: {winners:?}", winners.len()));
        }
        let stored = stores[0].get(&key).map_err(|e| e.to_string())?;
        let want = format!("writer {}", winners[0]);
        if stored.as_deref() != Some(want.as_bytes()) {
            return Err(format!("{key} holds {stored:?}, not the winner's `{want}`"));
        }
        // A late writer loses too.
        if stores[0]
            .put_if_absent(&key, b"late")
            .map_err(|e| e.to_string())?
        {
            return Err(format!("{key}: a late writer won"));
        }
    }
    Ok(())
}

/// The read-then-write that `put_if_absent` must not be, with every writer's read forced to
/// happen before any write: `race` has to catch it, or it proves nothing.
struct ReadThenWrite {
    inner: Arc<dyn ScratchStore>,
    between: Arc<Barrier>,
}

impl ScratchStore for ReadThenWrite {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn put(&self, key: &str, data: &[u8]) -> rechunker_core::Result<()> {
        self.inner.put(key, data)
    }
    fn put_if_absent(&self, key: &str, data: &[u8]) -> rechunker_core::Result<bool> {
        let absent = self.inner.get(key)?.is_none();
        self.between.wait();
        if absent {
            self.inner.put(key, data)?;
        }
        Ok(absent)
    }
    fn get(&self, key: &str) -> rechunker_core::Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn list(&self, prefix: &str) -> rechunker_core::Result<Vec<String>> {
        self.inner.list(prefix)
    }
    fn remove_prefix(&self, prefix: &str) -> rechunker_core::Result<()> {
        self.inner.remove_prefix(prefix)
    }
    fn delete(&self, key: &str) -> rechunker_core::Result<()> {
        self.inner.delete(key)
    }
}

#[test]
fn the_race_check_catches_a_read_then_write() {
    let memory = Arc::new(InMemory::new());
    let inner: Arc<dyn ScratchStore> = Arc::new(ObjectScratch::new("memory://", memory).unwrap());
    let between = Arc::new(Barrier::new(WRITERS));
    let stores: Vec<Arc<dyn ScratchStore>> = (0..WRITERS)
        .map(|_| {
            Arc::new(ReadThenWrite {
                inner: inner.clone(),
                between: between.clone(),
            }) as Arc<dyn ScratchStore>
        })
        .collect();
    let e = race(&stores).unwrap_err();
    assert!(e.contains(&format!("{WRITERS} writers won")), "{e}");
}

#[test]
fn one_writer_wins_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("scratch");
    let stores: Vec<Arc<dyn ScratchStore>> = (0..WRITERS)
        .map(|_| Arc::new(LocalScratch::open(&root).unwrap()) as Arc<dyn ScratchStore>)
        .collect();
    race(&stores).unwrap();
}

#[test]
fn one_writer_wins_in_memory() {
    let memory = Arc::new(InMemory::new());
    let stores: Vec<Arc<dyn ScratchStore>> = (0..WRITERS)
        .map(|_| {
            Arc::new(ObjectScratch::new("memory://", memory.clone()).unwrap())
                as Arc<dyn ScratchStore>
        })
        .collect();
    race(&stores).unwrap();
    basics(stores[0].as_ref());
}

/// Puts, reads, lists and removes behave as the scratch contract says.
fn basics(s: &dyn ScratchStore) {
    s.put("a/b/c", b"xyz").unwrap();
    s.put("a/b/c", b"xyz2").unwrap();
    assert_eq!(s.get("a/b/c").unwrap().unwrap(), b"xyz2");
    assert!(s.get("a/nothing").unwrap().is_none());
    s.put_parts("a/parts", &[b"12", b"", b"345"]).unwrap();
    assert_eq!(s.get("a/parts").unwrap().unwrap(), b"12345");
    assert!(s.put_if_absent("a/j", b"1").unwrap());
    assert!(!s.put_if_absent("a/j", b"2").unwrap());
    assert_eq!(s.get("a/j").unwrap().unwrap(), b"1");
    s.put("ab/other", b"").unwrap();
    let mut keys = s.list("a/").unwrap();
    keys.sort();
    assert_eq!(keys, ["b/c", "j", "parts"]);
    s.delete("a/j").unwrap();
    s.delete("a/j").unwrap();
    assert!(s.get("a/j").unwrap().is_none());
    s.remove_prefix("a").unwrap();
    assert!(s.list("a/").unwrap().is_empty());
    assert_eq!(
        s.list("").unwrap().len(),
        1 + s.list("race/").unwrap().len()
    );
    assert!(!s.is_empty().unwrap());
    for bad in ["", "../x", "a//b", "a/./b"] {
        let e = s.get(bad).unwrap_err().to_string();
        assert!(e.contains("not a scratch key"), "{bad}: {e}");
    }
    s.remove_prefix("").unwrap();
    assert!(s.is_empty().unwrap());
}

#[test]
fn only_writable_object_stores_hold_scratch() {
    let e = ObjectScratch::open("https://example.invalid/x")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("writable"), "{e}");
    let e = ObjectScratch::open("/tmp/x").err().unwrap().to_string();
    assert!(e.contains("local path"), "{e}");
}

#[test]
fn one_writer_wins_on_s3() {
    let moto = Moto::start();
    // Only this test sets AWS_* in this binary.
    moto.use_for_s3();
    moto.create_bucket("bucket");
    let stores: Vec<Arc<dyn ScratchStore>> = (0..WRITERS)
        .map(|_| {
            Arc::new(ObjectScratch::open("s3://bucket/work/x.rechunk-scratch").unwrap())
                as Arc<dyn ScratchStore>
        })
        .collect();
    race(&stores).unwrap();
    basics(stores[0].as_ref());
    // The prefix is the store's root: nothing leaked outside it, and it is empty again.
    let outside = ObjectScratch::open("s3://bucket").unwrap();
    assert!(outside.is_empty().unwrap());
}
